//! A running node without its HTTP front: ingest, FrameQueue, the frame consumer and, when
//! the site has `[detect]`, the detection path. Tests and benchmarks start one directly.
//!
//! Frame path (queue policy on every edge):
//! ```text
//! cameras → FrameQueue (drop-oldest, counted per camera)
//!   → frame consumer thread ─┬─► web::Previews (latest frame of watched cameras)
//!                            └─► detect queue (only cameras with detectors; drop-oldest,
//!                                counted per camera, reason detect_queue_full)
//!   → Batcher → DetectorHandle worker(s) (OS threads, one ort Session each)
//!   → AnalysedFrame channel (bounded, blocking)
//!   → event stage thread (tracks, zone rules, evidence JPEGs)
//!   → RecentEvents ring + sinks (registry, MQTT: bounded, blocking)
//! ```
//! Shutdown runs the same way: cameras stop, the FrameQueue closes and drains, the consumer
//! closes the detect queue, workers drain it and end, the stage drains and drops the sinks'
//! senders, each sink finishes.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{CameraConfig, DetectSettings, SiteConfig};
use crate::detect::{AnalysedFrame, DetectorConfig, DetectorHandle, DetectorStatus};
use crate::domain::DetectionEvent;
use crate::events::{EventStage, EvidenceWriter, RecentEvents, RuleBook, StageSettings};
use crate::ingest::Ingest;
use crate::obs::{DROP_DETECT_QUEUE_FULL, Metrics};
use crate::queue::{DropLedger, FrameQueue, Pushed, WhenFull};
use crate::web::Previews;

use super::AppError;

/// Frames taken from the queue per wake-up of the consumer.
const CONSUMER_BATCH: usize = 32;
/// Analysed frames in flight between the detector workers and the event stage.
const ANALYSED_CAPACITY: usize = 64;
/// Events in flight to each sink.
pub const SINK_CAPACITY: usize = 64;

/// A consumer of detection events (registry stage, MQTT publisher): its bounded input and the
/// task that ends once the input is closed and drained.
pub struct EventSink {
    pub name: &'static str,
    pub events: mpsc::Sender<Arc<DetectionEvent>>,
    pub task: JoinHandle<()>,
}

struct DetectionPath {
    settings: DetectSettings,
    rules: Arc<RuleBook>,
    queue: Arc<FrameQueue>,
    config: DetectorConfig,
    workers: Mutex<Vec<DetectorHandle>>,
    analysed: Mutex<Option<mpsc::Sender<AnalysedFrame>>>,
    stage: Mutex<Option<std::thread::JoinHandle<()>>>,
    sinks: Mutex<Vec<JoinHandle<()>>>,

    /// Model files' modification times at the last (re)load.
    stamp: Mutex<Option<Vec<std::time::SystemTime>>>,
}

pub struct Node {
    pub ingest: Arc<Ingest>,
    pub metrics: Arc<Metrics>,
    pub previews: Arc<Previews>,
    /// Recent detection events (empty without `[detect]`).
    pub events: Arc<RecentEvents>,
    /// What the detector runs (`None` without `[detect]`), for `/api/detect`.
    detector: watch::Sender<Option<DetectorStatus>>,
    consumer: Mutex<Option<std::thread::JoinHandle<()>>>,
    detection: Option<DetectionPath>,
}

fn model_stamp(settings: &DetectSettings) -> Option<Vec<std::time::SystemTime>> {
    [
        &settings.manifest.manifest_path,
        &settings.manifest.model_path,
    ]
    .iter()
    .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
    .collect()
}

fn spawn_workers(
    config: &DetectorConfig,
    count: usize,
    queue: &Arc<FrameQueue>,
    out: &mpsc::Sender<AnalysedFrame>,
) -> Result<Vec<DetectorHandle>, crate::detect::DetectError> {
    let mut workers = Vec::with_capacity(count);
    for _ in 0..count {
        match DetectorHandle::spawn_analysed(config, queue.clone(), out.clone()) {
            Ok(w) => workers.push(w),
            Err(error) => {
                for w in &workers {
                    w.stop();
                }
                for w in workers {
                    if w.join().is_err() {
                        tracing::error!("detector worker panicked");
                    }
                }
                return Err(error);
            }
        }
    }
    Ok(workers)
}

impl Node {
    /// Starts the frame path and every camera of `site`. `live` selects the live
    /// policy (drop when behind) over replay's (block, lose nothing).
    pub async fn start(
        site: &SiteConfig,
        metrics: Arc<Metrics>,
        live: bool,
    ) -> Result<Node, AppError> {
        Self::start_with(site, metrics, live, Vec::new()).await
    }

    /// [`Node::start`] with event sinks (the registry stage). The MQTT publisher, when
    /// configured in `[detect.mqtt]`, is added here.
    pub async fn start_with(
        site: &SiteConfig,
        metrics: Arc<Metrics>,
        live: bool,
        mut sinks: Vec<EventSink>,
    ) -> Result<Node, AppError> {
        let queue = Arc::new(FrameQueue::new(site.ingest.frame_queue_capacity));
        let ingest = Arc::new(Ingest::new(
            site.ingest.clone(),
            queue.clone(),
            metrics.clone(),
            live,
        )?);
        let previews = Arc::new(Previews::default());
        let recent = Arc::new(RecentEvents::new(
            site.detect.as_ref().map_or(1, |d| d.recent_events),
        ));
        let detection = match &site.detect {
            Some(detect) => {
                if let Some(mqtt) = &detect.mqtt {
                    let (tx, rx) = mpsc::channel(SINK_CAPACITY);
                    sinks.push(EventSink {
                        name: "mqtt",
                        events: tx,
                        task: crate::events::spawn_mqtt(mqtt, &site.name, rx),
                    });
                }
                Some(start_detection(site, detect, &metrics, live, &recent, sinks).await?)
            }
            None => {
                if site.cameras.iter().any(|c| !c.detectors.is_empty()) {
                    tracing::warn!(
                        "cameras list detectors but site.toml has no [detect] section: no detection runs"
                    );
                }
                drop(sinks);
                None
            }
        };
        let consumer = {
            let previews = previews.clone();
            let metrics = metrics.clone();
            let ledger = ingest.drop_ledger();
            let detect = detection
                .as_ref()
                .map(|d| (d.rules.clone(), d.queue.clone()));
            std::thread::Builder::new()
                .name("frame-consumer".to_owned())
                .spawn(move || consume(&queue, &previews, &metrics, &ledger, detect))
                .map_err(AppError::Serve)?
        };
        ingest.apply(site.cameras.clone()).await;
        let status = site.detect.as_ref().map(|detect| DetectorStatus {
            model: detect.model_name.clone(),
            version: detect.manifest.version.clone(),
            provider: detect.provider.as_str(),
            workers: detect.workers,
            last_error: None,
        });
        Ok(Node {
            detector: watch::Sender::new(status),
            ingest,
            metrics,
            previews,
            events: recent,
            consumer: Mutex::new(Some(consumer)),
            detection,
        })
    }

    /// Applies reloaded cameras: ingest restarts what changed, the detection rules follow.
    pub async fn apply_cameras(&self, cameras: Vec<CameraConfig>) -> crate::ingest::ApplyReport {
        if let Some(d) = &self.detection {
            d.rules.replace(&cameras, &d.settings);
        }
        self.ingest.apply(cameras).await
    }

    /// What the detector runs (`None` without `[detect]`).
    pub fn detector_status(&self) -> Option<DetectorStatus> {
        self.detector.borrow().clone()
    }

    /// What the HTTP API serves from: this node's cameras, previews, metrics, events and
    /// detector status, and the registry's APIs when the site has one.
    pub fn api_state(
        &self,
        site: &SiteConfig,
        reload_now: Arc<tokio::sync::Notify>,
        registry: Option<crate::api::RegistryApiState>,
        session: Option<crate::api::SessionState>,
    ) -> crate::api::ApiState {
        crate::api::ApiState {
            cameras: crate::api::CamerasState::new(
                self.ingest.clone(),
                self.metrics.clone(),
                self.previews.clone(),
                site,
                reload_now,
            ),
            events: crate::api::EventsState {
                events: self.events.clone(),
                detector: self.detector.subscribe(),
            },
            registry,
            session,
            sensors: None,
            telemetry: None,
        }
    }

    fn set_reload_error(&self, error: Option<String>) {
        self.detector.send_modify(|status| {
            if let Some(status) = status {
                status.last_error = error;
            }
        });
    }

    /// Reloads the model when its files changed on disk (or when `force`): new workers are
    /// started first; if the new model does not load, the running workers stay and the error
    /// is logged and kept in [`Node::detector_status`].
    pub async fn reload_detector(&self, force: bool) {
        let Some(d) = &self.detection else {
            return;
        };
        let stamp = model_stamp(&d.settings);
        if !force && *d.stamp.lock() == stamp {
            return;
        }
        *d.stamp.lock() = stamp;
        let Some(out) = d.analysed.lock().clone() else {
            return; // shutting down
        };
        let config = d.config.clone();
        let queue = d.queue.clone();
        let count = d.settings.workers;
        let loaded =
            tokio::task::spawn_blocking(move || spawn_workers(&config, count, &queue, &out)).await;
        match loaded {
            Ok(Ok(new_workers)) => {
                let old = std::mem::replace(&mut *d.workers.lock(), new_workers);
                for w in &old {
                    w.stop();
                }
                let joined =
                    tokio::task::spawn_blocking(move || old.into_iter().all(|w| w.join().is_ok()))
                        .await;
                if !matches!(joined, Ok(true)) {
                    tracing::error!("a replaced detector worker ended abnormally");
                }
                self.set_reload_error(None);
                tracing::info!(model = %d.settings.model_name, "detector reloaded");
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "detector reload refused; the running detector stays");
                self.set_reload_error(Some(error.to_string()));
            }
            Err(error) => tracing::error!(%error, "detector reload task failed"),
        }
    }

    /// Stops cameras first, then lets each stage drain its input and end, in order.
    pub async fn stop(&self) {
        self.ingest.shutdown().await;
        self.ingest.queue().close();
        let consumer = self.consumer.lock().take();
        if let Some(consumer) = consumer {
            let joined = tokio::task::spawn_blocking(move || consumer.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!("frame consumer ended abnormally");
            }
        }
        if let Some(d) = &self.detection {
            // The consumer closed the detect queue on its way out; workers drain it.
            d.queue.close();
            let workers = std::mem::take(&mut *d.workers.lock());
            let joined = tokio::task::spawn_blocking(move || {
                workers.into_iter().map(|w| w.join()).collect::<Vec<_>>()
            })
            .await;
            match joined {
                Ok(results) => {
                    for result in results {
                        match result {
                            Ok((report, reason)) => {
                                tracing::info!(
                                    ?reason,
                                    batches = report.batches,
                                    frames = report.frames,
                                    detections = report.detections,
                                    "detector worker stopped"
                                )
                            }
                            Err(_) => tracing::error!("detector worker panicked"),
                        }
                    }
                }
                Err(error) => tracing::error!(%error, "joining detector workers failed"),
            }
            // Last sender gone: the stage drains, flushes and drops the sinks' senders.
            d.analysed.lock().take();
            let stage = d.stage.lock().take();
            if let Some(stage) = stage {
                let joined = tokio::task::spawn_blocking(move || stage.join()).await;
                if !matches!(joined, Ok(Ok(()))) {
                    tracing::error!("event stage ended abnormally");
                }
            }
            let sinks = std::mem::take(&mut *d.sinks.lock());
            for sink in sinks {
                if let Err(error) = sink.await {
                    tracing::error!(%error, "event sink ended abnormally");
                }
            }
        }
        self.previews.clear();
    }
}

async fn start_detection(
    site: &SiteConfig,
    detect: &DetectSettings,
    metrics: &Metrics,
    live: bool,
    recent: &Arc<RecentEvents>,
    sinks: Vec<EventSink>,
) -> Result<DetectionPath, AppError> {
    let rules = Arc::new(RuleBook::new(&site.cameras, detect));
    let policy = if live {
        WhenFull::DropOldest
    } else {
        WhenFull::Block
    };
    let queue = Arc::new(FrameQueue::with_policy(detect.queue_capacity, policy));
    let (tx, rx) = mpsc::channel(ANALYSED_CAPACITY);
    let config = DetectorConfig {
        manifest: detect.manifest.manifest_path.clone(),
        runtime_library: None,
        max_batch: detect.max_batch,
        max_wait: detect.max_wait,
        intra_threads: detect.intra_threads,
        provider: detect.provider,
        metrics: Some(metrics.detect.clone()),
    };
    let workers = {
        let (config, queue, tx) = (config.clone(), queue.clone(), tx.clone());
        let count = detect.workers;
        tokio::task::spawn_blocking(move || spawn_workers(&config, count, &queue, &tx))
            .await
            .map_err(|e| AppError::Serve(std::io::Error::other(e)))??
    };
    let stage = EventStage::new(
        StageSettings {
            tracking: detect.tracking.clone(),
            night: detect.night,
        },
        rules.clone(),
        EvidenceWriter::new(&detect.evidence_dir),
        metrics.detect.clone(),
    );
    let (senders, tasks): (Vec<_>, Vec<_>) =
        sinks.into_iter().map(|s| ((s.events), (s.task))).unzip();
    let stage = {
        let recent = recent.clone();
        std::thread::Builder::new()
            .name("event-stage".to_owned())
            .spawn(move || stage.run(rx, recent, senders))
            .map_err(AppError::Serve)?
    };
    tracing::info!(
        model = %detect.model_name,
        version = %detect.manifest.version,
        provider = detect.provider.as_str(),
        workers = detect.workers,
        "detection running"
    );
    Ok(DetectionPath {
        stamp: Mutex::new(model_stamp(detect)),
        settings: detect.clone(),
        rules,
        queue,
        config,
        workers: Mutex::new(workers),
        analysed: Mutex::new(Some(tx)),
        stage: Mutex::new(Some(stage)),
        sinks: Mutex::new(tasks),
    })
}

/// The frame consumer: keeps each watched camera's latest frame for the UI and hands frames
/// of cameras with detectors to the detect queue (which drops its oldest when full, counted).
fn consume(
    queue: &FrameQueue,
    previews: &Previews,
    metrics: &Metrics,
    ledger: &DropLedger,
    detect: Option<(Arc<RuleBook>, Arc<FrameQueue>)>,
) {
    while let Some(batch) = queue.pop_batch(CONSUMER_BATCH, Duration::from_millis(500)) {
        metrics.frame_queue_depth.set(queue.len() as i64);
        for frame in batch {
            metrics.frames_consumed.inc();
            match &detect {
                Some((rules, detect_queue)) if rules.analyses(&frame.camera) => {
                    previews.put(frame.clone());
                    match detect_queue.push(frame) {
                        Pushed::Queued => {}
                        Pushed::Evicted(old) => {
                            ledger.dropped(&old.camera, DROP_DETECT_QUEUE_FULL);
                            tracing::debug!(
                                camera = old.camera.as_str(),
                                "detect queue full: oldest frame dropped"
                            );
                        }
                        Pushed::Closed(_) => {}
                    }
                }
                _ => previews.put(frame),
            }
        }
    }
    if let Some((_, detect_queue)) = detect {
        detect_queue.close();
    }
}
