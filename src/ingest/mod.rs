//! Ingest: cameras → sampled [`Frame`]s in the [`FrameQueue`].
//!
//! One way in: [`Ingest`]. It owns a [`CameraSupervisor`](supervisor) per camera
//! (own GStreamer pipeline from a `pipelines/` template: RTSP source → depay →
//! parse → keyframe gate → decode → scale/convert to the analysis size →
//! appsink). Frames leave through a non-blocking push into the shared, bounded
//! FrameQueue (policy: drop oldest, counted per camera). Cameras are added,
//! removed and restarted at run time with [`Ingest::apply`] without touching
//! the others.
//!
//! [`Frame`]: crate::domain::Frame

mod appsink;
mod backoff;
mod error;
mod file;
mod memory;
mod pipeline;
mod queue;
mod status;
mod supervisor;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::IngestError;
pub use file::{FileRun, run_file};
pub use pipeline::{Params, Templates};
pub use queue::{FrameQueue, Pushed, WhenFull};
pub use status::{CameraSnapshot, Reason, State, Transition};

use crate::config::{CameraConfig, IngestSettings};
use crate::domain::CameraId;
use crate::obs::Metrics;
use status::{CameraStatus, DropLedger};
use supervisor::CameraSupervisor;

/// Names of the pipeline templates available with `pipelines_dir` (built-in
/// ones when it cannot be read; the config validator reports that separately).
pub fn template_names(pipelines_dir: Option<&Path>) -> Vec<String> {
    Templates::load(pipelines_dir)
        .or_else(|_| Templates::load(None))
        .map(|t| t.names())
        .unwrap_or_default()
}

/// What every supervisor shares.
pub(crate) struct Shared {
    pub settings: IngestSettings,
    pub templates: Templates,
    pub params: Params,
    pub queue: Arc<FrameQueue>,
    pub metrics: Arc<Metrics>,
    pub ledger: Arc<DropLedger>,
    pub connect_slots: Arc<Semaphore>,
}

struct Running {
    config: CameraConfig,
    status: Arc<CameraStatus>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
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
    /// Changes are applied one at a time.
    apply_lock: tokio::sync::Mutex<()>,
    runtime: tokio::runtime::Handle,
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
        let templates = Templates::load(settings.pipelines_dir.as_deref())?;
        if let Some(error) = templates.check_all().into_iter().next() {
            return Err(error);
        }
        metrics.frame_queue_capacity.set(queue.capacity() as i64);
        let params = Params {
            width: settings.analysis_width,
            height: settings.analysis_height,
            live,
        };
        let connect_slots = Arc::new(Semaphore::new(settings.max_concurrent_connects));
        Ok(Self {
            shared: Arc::new(Shared {
                settings,
                templates,
                params,
                queue,
                ledger: Arc::new(DropLedger::new(metrics.clone())),
                metrics,
                connect_slots,
            }),
            cameras: Mutex::new(HashMap::new()),
            apply_lock: tokio::sync::Mutex::new(()),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    pub fn queue(&self) -> &Arc<FrameQueue> {
        &self.shared.queue
    }

    /// Makes the running set of cameras equal `cameras`: starts new ones, stops
    /// removed ones, restarts changed ones; the rest keep streaming untouched.
    /// Returns once removed and restarted cameras have released their pipelines.
    pub async fn apply(&self, cameras: Vec<CameraConfig>) -> ApplyReport {
        let _serialised = self.apply_lock.lock().await;
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
                            stopping.push(old.task);
                            report.restarted.push(id.clone());
                            to_start.push((config, status::Reason::Restarted));
                        }
                    }
                    None => {
                        if let Some(old) = running.remove(&id) {
                            old.cancel.cancel();
                            stopping.push(old.task);
                            report.removed.push(id);
                        }
                    }
                }
            }
            for (id, config) in wanted {
                report.added.push(id);
                to_start.push((config, status::Reason::Started));
            }
        }
        for task in stopping {
            if let Err(error) = task.await {
                tracing::error!(%error, "camera supervisor ended abnormally");
            }
        }
        for id in report.removed.iter().chain(&report.restarted) {
            self.shared.ledger.unregister(id);
            self.shared.metrics.remove_camera(id);
        }
        if !report.removed.is_empty() || !report.restarted.is_empty() {
            memory::release_freed_memory().await;
        }
        let mut running = self.cameras.lock();
        for (config, reason) in to_start {
            let id = config.id.clone();
            running.insert(id, self.spawn(config, reason));
        }
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

    fn spawn(&self, config: CameraConfig, reason: status::Reason) -> Running {
        let status = Arc::new(CameraStatus::new(reason.clone()));
        self.shared.ledger.register(&config.id, status.clone());
        let cancel = CancellationToken::new();
        let supervisor = CameraSupervisor {
            metrics: self.shared.metrics.camera(&config.id),
            camera: config.clone(),
            shared: self.shared.clone(),
            status: status.clone(),
            cancel: cancel.clone(),
        };
        let task = self.runtime.spawn(supervisor.run());
        Running {
            config,
            status,
            cancel,
            task,
        }
    }

    /// Restarts one camera now (e.g. an operator retrying a failed camera).
    pub async fn restart(&self, id: &CameraId) -> bool {
        let config = self.cameras.lock().get(id).map(|r| r.config.clone());
        let Some(config) = config else {
            return false;
        };
        let _serialised = self.apply_lock.lock().await;
        let old = self.cameras.lock().remove(id);
        if let Some(old) = old {
            old.cancel.cancel();
            if let Err(error) = old.task.await {
                tracing::error!(%error, "camera supervisor ended abnormally");
            }
        }
        let running = self.spawn(config, status::Reason::Restarted);
        self.cameras.lock().insert(id.clone(), running);
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
        self.apply(Vec::new()).await;
    }
}
