//! Running a recorded file through the camera pipeline to its end (QA replay):
//! the same template machinery, sampling gate and appsink as a live camera, but
//! with no reconnects: the end of the file ends the run, and an error names the
//! file and the element that failed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use gstreamer as gst;
use gstreamer::prelude::*;
use tokio::sync::Notify;

use super::appsink::{self, Taps};
use super::error::IngestError;
use super::pipeline::{self, Params};
use super::status::CameraStatus;
use crate::config::{CameraConfig, IngestSettings, PipelineTemplates};
use crate::obs::Metrics;
use crate::queue::{DropLedger, FrameQueue};

/// What a file run delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRun {
    /// Encoded units read from the file.
    pub units: u64,
    /// Sampled frames decoded and queued.
    pub frames: u64,
}

/// Runs `camera` (a `file://` URL) to end of stream, blocking the calling thread.
/// Frames go into `queue`; give it [`WhenFull::Block`](crate::queue::WhenFull::Block) so none is lost.
pub fn run_file(
    camera: &CameraConfig,
    settings: &IngestSettings,
    queue: Arc<FrameQueue>,
    metrics: Arc<Metrics>,
) -> Result<FileRun, IngestError> {
    gst::init()?;
    let templates = PipelineTemplates::load(settings.pipelines_dir.as_deref())?;
    let params = Params {
        width: settings.analysis_width,
        height: settings.analysis_height,
        live: false,
    };
    let built = pipeline::build(&templates, camera, &params, settings.connect_timeout)?;
    let status = Arc::new(CameraStatus::new(super::Reason::Started));
    let ledger = Arc::new(DropLedger::new(metrics.clone()));
    ledger.register(&camera.id, status.counters.frames_dropped.clone());
    appsink::install(
        &built,
        camera,
        (params.width, params.height),
        Taps {
            camera: camera.id.clone(),
            status: status.clone(),
            camera_metrics: metrics.camera(&camera.id),
            metrics: metrics.clone(),
            ledger,
            queue,
            frame_arrived: Arc::new(Notify::new()),
        },
    );
    let file = camera.url.path().to_owned();
    let result = play_to_end(&built.pipeline, &file);
    drop(built);
    metrics.remove_camera(&camera.id);
    result?;
    Ok(FileRun {
        units: status.counters.units_received.load(Ordering::Relaxed),
        frames: status.counters.frames_decoded.load(Ordering::Relaxed),
    })
}

fn play_to_end(pipeline: &gst::Pipeline, file: &str) -> Result<(), IngestError> {
    let bus = pipeline.bus().ok_or_else(|| IngestError::Replay {
        file: file.to_owned(),
        element: String::new(),
        message: "pipeline has no bus".to_owned(),
    })?;
    let started = pipeline.set_state(gst::State::Playing);
    for message in bus.iter_timed(gst::ClockTime::NONE) {
        match message.view() {
            gst::MessageView::Eos(_) => return Ok(()),
            gst::MessageView::Error(e) => {
                return Err(IngestError::Replay {
                    file: file.to_owned(),
                    element: e
                        .src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default(),
                    message: match e.debug() {
                        Some(debug) => format!("{} ({debug})", e.error()),
                        None => e.error().to_string(),
                    },
                });
            }
            _ => {}
        }
    }
    started.map(|_| ()).map_err(|e| IngestError::Replay {
        file: file.to_owned(),
        element: String::new(),
        message: e.to_string(),
    })
}
