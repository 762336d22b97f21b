//! Ingest: cameras → sampled [`Frame`]s in the [`FrameQueue`].
//!
//! One way in: [`Ingest`]. It owns a `CameraSupervisor` (`supervisor.rs`) per camera, a
//! tokio task on one of the tick-driven receive threads (`ticker.rs`), with one of two
//! backends:
//!
//! - **shared-decoder** (default for `rtsp-h264` cameras over TCP sampling keyframes):
//!   the RTSP session runs with `retina` (`rtsp.rs`), delta units are
//!   dropped as they arrive, and only the keyframe that is due goes, with its SPS/PPS, to
//!   a shared pool of GStreamer decoders (`pool.rs`: bounded queue, drop oldest, counted
//!   per camera). No thread and no decoder per camera.
//! - **pipeline**: one GStreamer pipeline per camera from a `pipelines/` template (RTSP
//!   source → depay → parse → keyframe gate → decode → scale/convert → appsink): H.265,
//!   UDP, decode-every-frame and files, and the baseline.
//!
//! Frames leave through a non-blocking push into the shared, bounded FrameQueue (policy:
//! drop oldest, counted per camera). Admission control refuses cameras whose decoding
//! would exceed `[ingest] decode_budget_ms_per_s` (state `refused`, reason
//! `over_capacity`). Cameras are added, removed and restarted at run time with
//! [`Ingest::apply`] without touching the others.
//!
//! [`Frame`]: crate::domain::Frame
//! [`FrameQueue`]: crate::queue::FrameQueue

mod appsink;
mod backoff;
mod decoders;
mod error;
mod file;
mod memory;
mod pipeline;
mod pool;
mod rtsp;
mod status;
mod supervisor;
#[cfg(test)]
mod tests;
mod ticker;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use decoders::{StandaloneDecoders, clip_keyframes};
pub use error::IngestError;
pub use file::run_file;
pub use pipeline::check_all as check_templates;
pub use status::CameraSnapshot;

/// Which cameras [`Ingest::page`] returns.
#[derive(Debug, Clone, Default)]
pub struct CameraFilter {
    /// A state name (`streaming`, `failed`, …).
    pub state: Option<String>,
    pub district: Option<String>,
    /// Part of the id, name or address, any case.
    pub text: Option<String>,
    pub offset: usize,
    pub limit: usize,
}

use crate::config::{
    BuiltinPipeline, CameraConfig, IngestSettings, PipelineName, PipelineTemplates, RtspBackend,
    SamplingMode, Transport,
};
use crate::domain::{CameraId, Reason, State};
use crate::obs::Metrics;
use crate::queue::{DropLedger, FrameQueue};
use pipeline::Params;
use pool::DecoderPool;
use status::CameraStatus;
use supervisor::CameraSupervisor;

/// What every supervisor shares.
pub(crate) struct Shared {
    pub settings: IngestSettings,
    pub templates: PipelineTemplates,
    pub params: Params,
    pub queue: Arc<FrameQueue>,
    pub metrics: Arc<Metrics>,
    pub ledger: Arc<DropLedger>,
    pub connect_slots: Arc<Semaphore>,
    /// The shared keyframe decoders (`rtsp_backend = "shared-decoder"`).
    pub pool: Option<Arc<DecoderPool>>,
}

impl Shared {
    /// The decoder pool when `camera` goes through the shared-decoder backend: RTSP
    /// with the `rtsp-h264` template, over TCP, sampling keyframes.
    pub fn pool_for(&self, camera: &CameraConfig) -> Option<Arc<DecoderPool>> {
        let eligible = camera.url.scheme() == "rtsp"
            && camera.pipeline == PipelineName::Builtin(BuiltinPipeline::RtspH264)
            && camera.transport == Transport::Tcp
            && camera.sampling.mode == SamplingMode::Keyframes;
        eligible.then(|| self.pool.clone()).flatten()
    }
}

/// Frames per second assumed for a camera that decodes every frame (admission only).
const ASSUMED_FPS: f64 = 25.0;

/// CPU milliseconds per second decoding `camera`'s sampled frames will take, at
/// `keyframe_ms` per decoded frame, at its busiest hour (quiet hours lower the rest).
pub fn decode_need_ms_per_s(camera: &CameraConfig, keyframe_ms: f64) -> f64 {
    match camera.sampling.mode {
        SamplingMode::Keyframes => {
            keyframe_ms / camera.sampling.peak_interval().as_secs_f64().max(1e-3)
        }
        SamplingMode::All => keyframe_ms * ASSUMED_FPS,
    }
}

struct Running {
    config: CameraConfig,
    status: Arc<CameraStatus>,
    cancel: CancellationToken,
    /// `None`: refused by admission control (nothing runs).
    task: Option<JoinHandle<()>>,
    /// Decode time this camera was admitted with (0 when refused).
    need_ms_per_s: f64,
}

/// What [`Ingest::apply`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    pub added: Vec<CameraId>,
    pub removed: Vec<CameraId>,
    pub restarted: Vec<CameraId>,
    pub unchanged: usize,
}

/// The ingest layer of a node.
pub struct Ingest {
    shared: Arc<Shared>,
    cameras: Mutex<HashMap<CameraId, Running>>,
    /// Changes are applied one at a time; a restart reads the camera's config under it.
    apply_lock: tokio::sync::Mutex<()>,
    /// Set by [`Ingest::shutdown`]: nothing starts afterwards (a reload or a restart racing the
    /// shutdown finds an empty set).
    closed: std::sync::atomic::AtomicBool,
    runtime: tokio::runtime::Handle,
    /// The tick-driven receive threads (`receive_tick_ms` > 0); dropped last.
    ticker: Option<ticker::Ticker>,
}

impl Ingest {
    /// Initialises GStreamer and checks every pipeline template parses. Must be
    /// called inside a Tokio runtime.
    pub fn new(
        settings: IngestSettings,
        queue: Arc<FrameQueue>,
        metrics: Arc<Metrics>,
        live: bool,
    ) -> Result<Self, IngestError> {
        gstreamer::init()?;
        let templates = PipelineTemplates::load(settings.pipelines_dir.as_deref())?;
        if let Some(error) = pipeline::check_all(&templates).into_iter().next() {
            return Err(error);
        }
        metrics.frame_queue_capacity.set(queue.capacity() as i64);
        let params = Params {
            width: settings.analysis_width,
            height: settings.analysis_height,
            live,
        };
        let connect_slots = Arc::new(Semaphore::new(settings.max_concurrent_connects));
        let ticker = if settings.receive_tick.is_zero() {
            None
        } else {
            Some(ticker::Ticker::start(
                settings.receive_threads,
                settings.receive_tick,
            )?)
        };
        let pool = match settings.rtsp_backend {
            RtspBackend::SharedDecoder => Some(Arc::new(DecoderPool::start(
                settings.decoder_workers,
                settings.decoder_queue_capacity,
                (settings.analysis_width, settings.analysis_height),
                metrics.clone(),
            )?)),
            RtspBackend::Pipeline => None,
        };
        metrics
            .decode_budget_ms_per_s
            .set(settings.decode_budget_ms_per_s);
        Ok(Self {
            shared: Arc::new(Shared {
                settings,
                templates,
                params,
                queue,
                ledger: Arc::new(DropLedger::new(metrics.clone())),
                metrics,
                connect_slots,
                pool,
            }),
            cameras: Mutex::new(HashMap::new()),
            apply_lock: tokio::sync::Mutex::new(()),
            closed: std::sync::atomic::AtomicBool::new(false),
            runtime: tokio::runtime::Handle::current(),
            ticker,
        })
    }

    pub fn queue(&self) -> &Arc<FrameQueue> {
        &self.shared.queue
    }

    /// Where frames dropped after ingest (e.g. at the detect queue) are counted, so that
    /// each camera's status and the `frames_dropped_total` metric hold every drop.
    pub fn drop_ledger(&self) -> Arc<DropLedger> {
        self.shared.ledger.clone()
    }

    /// Makes the running set of cameras equal `cameras`: starts new ones, stops
    /// removed ones, restarts changed ones; the rest keep streaming untouched.
    /// Returns once removed and restarted cameras have released their pipelines.
    pub async fn apply(&self, cameras: Vec<CameraConfig>) -> ApplyReport {
        let _serialised = self.apply_lock.lock().await;
        let cameras = if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            Vec::new()
        } else {
            cameras
        };
        let mut report = ApplyReport::default();
        let mut wanted: HashMap<CameraId, CameraConfig> =
            cameras.into_iter().map(|c| (c.id.clone(), c)).collect();
        let mut stopping = Vec::new();
        let mut to_start = Vec::new();
        {
            let mut running = self.cameras.lock();
            let ids: Vec<CameraId> = running.keys().cloned().collect();
            for id in ids {
                match wanted.remove(&id) {
                    Some(config) => {
                        let same = running
                            .get(&id)
                            .is_some_and(|r| r.config.same_settings(&config));
                        if same {
                            report.unchanged += 1;
                        } else if let Some(old) = running.remove(&id) {
                            old.cancel.cancel();
                            stopping.push(old);
                            report.restarted.push(id.clone());
                            to_start.push((config, Reason::Restarted));
                        }
                    }
                    None => {
                        if let Some(old) = running.remove(&id) {
                            old.cancel.cancel();
                            stopping.push(old);
                            report.removed.push(id);
                        }
                    }
                }
            }
            for (id, config) in wanted {
                report.added.push(id);
                to_start.push((config, Reason::Started));
            }
        }
        for old in stopping {
            self.stop(old).await;
        }
        for id in report.removed.iter().chain(&report.restarted) {
            self.shared.ledger.unregister(id);
            self.shared.metrics.remove_camera(id);
        }
        if !report.removed.is_empty() || !report.restarted.is_empty() {
            memory::release_freed_memory().await;
        }
        let mut running = self.cameras.lock();
        // Admission: cameras already streaming keep their share; new and changed ones
        // are admitted in id order while the budget lasts; refused ones are looked at
        // again on every change (capacity may have been freed).
        let mut left = self.shared.settings.decode_budget_ms_per_s
            - running.values().map(|r| r.need_ms_per_s).sum::<f64>();
        to_start.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        let mut retry: Vec<CameraId> = running
            .iter()
            .filter(|(_, r)| r.task.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        retry.sort();
        for id in retry {
            let need = running
                .get(&id)
                .map_or(f64::INFINITY, |r| self.need(&r.config));
            if need <= left
                && let Some(old) = running.remove(&id)
            {
                self.shared
                    .metrics
                    .camera_state_changed(Some(State::Refused), None);
                self.shared.ledger.unregister(&id);
                to_start.insert(0, (old.config, Reason::Started));
            }
        }
        for (config, reason) in to_start {
            let id = config.id.clone();
            let need = self.need(&config);
            let camera = if need <= left {
                left -= need;
                self.spawn(config, reason)
            } else {
                self.refuse(config, need, left)
            };
            running.insert(id, camera);
        }
        self.shared
            .metrics
            .decode_admitted_ms_per_s
            .set(running.values().map(|r| r.need_ms_per_s).sum::<f64>());
        drop(running);
        report.added.sort();
        report.removed.sort();
        report.restarted.sort();
        if !(report.added.is_empty() && report.removed.is_empty() && report.restarted.is_empty()) {
            tracing::info!(
                added = report.added.len(),
                removed = report.removed.len(),
                restarted = report.restarted.len(),
                unchanged = report.unchanged,
                "camera set changed"
            );
        }
        report
    }

    fn need(&self, camera: &CameraConfig) -> f64 {
        decode_need_ms_per_s(camera, self.shared.settings.keyframe_decode_ms)
    }

    /// A camera that admission control does not start: visible, counted, not running.
    fn refuse(&self, config: CameraConfig, need: f64, left: f64) -> Running {
        let status = Arc::new(CameraStatus::new(Reason::Started));
        let reason = Reason::OverCapacity {
            needs_ms_per_s: need,
            left_ms_per_s: left.max(0.0),
        };
        tracing::warn!(camera = %config.id, %reason, "camera refused");
        status.set(State::Refused, reason);
        self.shared
            .ledger
            .register(&config.id, status.counters.frames_dropped.clone());
        self.shared
            .metrics
            .camera_state_changed(None, Some(State::Refused));
        Running {
            config,
            status,
            cancel: CancellationToken::new(),
            task: None,
            need_ms_per_s: 0.0,
        }
    }

    /// Stops one camera and waits for its supervisor.
    async fn stop(&self, old: Running) {
        old.cancel.cancel();
        match old.task {
            Some(task) => {
                if let Err(error) = task.await {
                    tracing::error!(%error, "camera supervisor ended abnormally");
                }
            }
            None => self
                .shared
                .metrics
                .camera_state_changed(Some(State::Refused), None),
        }
    }

    fn spawn(&self, config: CameraConfig, reason: Reason) -> Running {
        let need_ms_per_s = self.need(&config);
        let status = Arc::new(CameraStatus::new(reason.clone()));
        self.shared
            .ledger
            .register(&config.id, status.counters.frames_dropped.clone());
        let cancel = CancellationToken::new();
        let supervisor = CameraSupervisor {
            metrics: self.shared.metrics.camera(&config.id),
            camera: config.clone(),
            shared: self.shared.clone(),
            status: status.clone(),
            cancel: cancel.clone(),
        };
        let runtime = self.ticker.as_ref().map_or(&self.runtime, |t| t.handle());
        let task = runtime.spawn(supervisor.run());
        Running {
            config,
            status,
            cancel,
            task: Some(task),
            need_ms_per_s,
        }
    }

    /// Restarts one camera now (e.g. an operator retrying a failed camera).
    /// The camera's config is read under the apply lock: a reload or a shutdown that removed
    /// or changed it while this call waited wins, and a removed camera is never resurrected.
    pub async fn restart(&self, id: &CameraId) -> bool {
        let _serialised = self.apply_lock.lock().await;
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        let old = self.cameras.lock().remove(id);
        let Some(old) = old else {
            return false;
        };
        let config = old.config.clone();
        self.stop(old).await;
        let mut running = self.cameras.lock();
        let left = self.shared.settings.decode_budget_ms_per_s
            - running.values().map(|r| r.need_ms_per_s).sum::<f64>();
        let need = self.need(&config);
        let camera = if need <= left {
            self.spawn(config, Reason::Restarted)
        } else {
            self.refuse(config, need, left)
        };
        running.insert(id.clone(), camera);
        true
    }

    pub fn snapshots(&self) -> Vec<CameraSnapshot> {
        let running = self.cameras.lock();
        let mut all: Vec<CameraSnapshot> = running
            .values()
            .map(|r| r.status.snapshot(&r.config))
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// One page of the cameras matching `filter`, sorted by id, and how many match in all.
    /// Only the page is snapshotted; the rest is matched on the configuration and the state.
    pub fn page(&self, filter: &CameraFilter) -> (usize, Vec<CameraSnapshot>) {
        let text = filter.text.as_deref().map(str::to_lowercase);
        let running = self.cameras.lock();
        let mut matched: Vec<&Running> = running
            .values()
            .filter(|r| {
                filter
                    .district
                    .as_deref()
                    .is_none_or(|d| r.config.district.as_deref() == Some(d))
                    && text.as_deref().is_none_or(|t| {
                        r.config.id.as_str().to_lowercase().contains(t)
                            || r.config.name.to_lowercase().contains(t)
                            || r.config.address.to_lowercase().contains(t)
                    })
                    && filter
                        .state
                        .as_deref()
                        .is_none_or(|s| r.status.state().as_str() == s)
            })
            .collect();
        let total = matched.len();
        matched.sort_unstable_by(|a, b| a.config.id.cmp(&b.config.id));
        let page = matched
            .into_iter()
            .skip(filter.offset)
            .take(filter.limit)
            .map(|r| r.status.snapshot(&r.config))
            .collect();
        (total, page)
    }

    pub fn snapshot(&self, id: &CameraId) -> Option<CameraSnapshot> {
        self.cameras
            .lock()
            .get(id)
            .map(|r| r.status.snapshot(&r.config))
    }

    pub fn len(&self) -> usize {
        self.cameras.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops every camera (pipelines to NULL) and waits for them.
    pub async fn shutdown(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.apply(Vec::new()).await;
    }
}
