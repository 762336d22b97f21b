//! The detector: a model, its batch tensor and its decoder, run on a dedicated OS thread that
//! owns the ort `Session` (`Session::run` takes `&mut self`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;

use super::DetectError;
use super::batcher::{Batch, Batcher};
use super::model::{Model, Runtime};
use super::postprocess::Decoder;
use super::preprocess::Preprocessor;
use crate::config::{ExecutionProvider, ModelManifest};
use crate::domain::{Detection, Frame, ModelRef};
use crate::queue::FrameQueue;

/// What a detector worker is built from (one worker per model per core in practice).
#[derive(Clone, Debug)]
pub struct DetectorConfig {
    /// `models/<name>/model.toml`.
    pub manifest: PathBuf,
    /// The ONNX Runtime shared library; `None` reads `ORT_DYLIB_PATH`.
    pub runtime_library: Option<PathBuf>,
    /// Most frames per inference (cross-camera batch).
    pub max_batch: usize,
    /// How long a started batch waits for more frames.
    pub max_wait: Duration,
    /// ONNX Runtime compute threads for this worker's session.
    pub intra_threads: usize,
    /// Where the session runs.
    pub provider: ExecutionProvider,
    /// Batch size, inference time, frames and detections; `None` records nothing.
    pub metrics: Option<crate::obs::DetectMetrics>,
}

impl DetectorConfig {
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        Self {
            manifest: manifest.into(),
            runtime_library: None,
            max_batch: 8,
            max_wait: Duration::from_millis(20),
            intra_threads: 1,
            provider: ExecutionProvider::Cpu,
            metrics: None,
        }
    }

    /// Everything [`DetectorHandle::spawn`] checks, without starting a thread: the runtime
    /// library loads, the manifest is valid and the model passes its contract check. For the
    /// `validate` subcommand.
    pub fn validate(&self) -> Result<ModelManifest, DetectError> {
        let runtime = Runtime::load(self.runtime_library.as_deref())?;
        let manifest = ModelManifest::load(&self.manifest)?;
        let detector = Detector::load_on(&runtime, manifest, 1, 1, self.provider)?;
        Ok(detector.model.manifest)
    }
}

/// The result of running one batch.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub detections: Vec<Detection>,
    /// The frames that were analysed, in batch order (detections refer to them by camera + seq).
    pub analysed: Vec<Frame>,
    /// Frames that could not be analysed (wrong size, unreadable buffer), with the reason.
    pub rejected: Vec<(Frame, String)>,
}

/// A model ready to run batches, on whatever thread owns it.
#[derive(Debug)]
pub struct Detector {
    model: Model,
    model_ref: Arc<ModelRef>,
    class_names: Vec<Arc<str>>,
    preprocessor: Preprocessor,
    decoder: Decoder,
}

/// A batch failed as a whole (inference or an output that does not fit the manifest).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model `{model}`: {message}")]
pub struct InferenceError {
    pub model: String,
    pub message: String,
}

impl Detector {
    /// Loads the manifest and the model and checks its contract; `max_batch` sizes the tensor.
    pub fn load(
        runtime: &Runtime,
        manifest: ModelManifest,
        max_batch: usize,
        intra_threads: usize,
    ) -> Result<Self, DetectError> {
        Self::load_on(
            runtime,
            manifest,
            max_batch,
            intra_threads,
            ExecutionProvider::Cpu,
        )
    }

    /// [`Detector::load`] on an execution provider.
    pub fn load_on(
        runtime: &Runtime,
        manifest: ModelManifest,
        max_batch: usize,
        intra_threads: usize,
        provider: ExecutionProvider,
    ) -> Result<Self, DetectError> {
        let model = Model::load_on(runtime, manifest, intra_threads, provider)?;
        let m = &model.manifest;
        Ok(Self {
            model_ref: Arc::new(ModelRef {
                name: m.name.clone(),
                version: m.version.clone(),
            }),
            class_names: m
                .classes
                .iter()
                .map(|c| Arc::from(c.name.as_str()))
                .collect(),
            preprocessor: Preprocessor::new(m.input_width, m.input_height, max_batch),
            decoder: Decoder::new(m.layout, m.thresholds(), m.iou_threshold, m.max_detections),
            model,
        })
    }

    pub fn manifest(&self) -> &ModelManifest {
        &self.model.manifest
    }

    /// Keeps candidates down to `floor` (or the class threshold where that is lower), so
    /// QA can score every operating point; each detection still records its class
    /// threshold in [`Detection::threshold`].
    pub fn with_score_floor(mut self, floor: f32) -> Self {
        let m = &self.model.manifest;
        let thresholds = m.thresholds().into_iter().map(|t| t.min(floor)).collect();
        self.decoder = Decoder::new(m.layout, thresholds, m.iou_threshold, m.max_detections);
        self
    }

    pub fn max_batch(&self) -> usize {
        self.preprocessor.max_batch()
    }

    /// Preprocesses, runs and decodes up to `max_batch` frames (more are rejected).
    pub fn run(&mut self, frames: Vec<Frame>) -> Result<BatchOutcome, InferenceError> {
        let mut outcome = BatchOutcome::default();
        let mut accepted = Vec::with_capacity(frames.len());
        for frame in frames {
            if accepted.len() == self.preprocessor.max_batch() {
                outcome.rejected.push((frame, "batch is full".to_owned()));
                continue;
            }
            let filled = match frame.buffer.map_readable() {
                Ok(map) => self
                    .preprocessor
                    .fill(
                        accepted.len(),
                        frame.width,
                        frame.height,
                        frame.stride,
                        &map,
                    )
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("cannot map the frame buffer: {e}")),
            };
            match filled {
                Ok(()) => accepted.push(frame),
                Err(reason) => outcome.rejected.push((frame, reason)),
            }
        }
        if accepted.is_empty() {
            return Ok(outcome);
        }
        let error = |message: String| InferenceError {
            model: self.model_ref.name.clone(),
            message,
        };
        let (shape, data) = self.preprocessor.batch(accepted.len());
        let input = ort::value::TensorRef::from_array_view((shape, data))
            .map_err(|e| error(format!("input tensor: {e}")))?;
        let outputs = self
            .model
            .session
            .run(ort::inputs![input])
            .map_err(|e| error(format!("inference: {e}")))?;
        let Some(output) = outputs.values().next() else {
            return Err(error("the model produced no output".into()));
        };
        let (out_shape, out) = output
            .try_extract_tensor::<f32>()
            .map_err(|e| error(format!("output: {e}")))?;
        if out_shape.first() != Some(&(accepted.len() as i64)) || out.len() % accepted.len() != 0 {
            return Err(error(format!(
                "output shape {out_shape} does not hold a batch of {}",
                accepted.len()
            )));
        }
        let per_image = out.len() / accepted.len();
        let classes = &self.model.manifest.classes;
        for (frame, image_out) in accepted.iter().zip(out.chunks_exact(per_image)) {
            let kept = self
                .decoder
                .decode(image_out)
                .map_err(|e| error(e.to_string()))?;
            for c in kept {
                outcome.detections.push(Detection {
                    camera: frame.camera.clone(),
                    seq: frame.seq,
                    ts: frame.captured_at,
                    pts: frame.pts,
                    class: self.class_names[c.class].clone(),
                    category: classes[c.class].category.clone(),
                    score: c.score,
                    threshold: classes[c.class].score_threshold,
                    bbox: c.to_source(&frame.letterbox),
                    model: self.model_ref.clone(),
                });
            }
        }
        outcome.analysed = accepted;
        Ok(outcome)
    }
}

/// Counters a worker returns when it stops.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WorkerReport {
    pub batches: u64,
    pub frames: u64,
    pub frames_rejected: u64,
    pub batches_failed: u64,
    pub detections: u64,
}

/// Why a worker stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The FrameQueue was closed and drained (shutdown).
    QueueClosed,
    /// The detection receiver was dropped.
    ReceiverGone,
    /// [`DetectorHandle::stop`] was called (a reload replaced this worker).
    Stopped,
}

/// One analysed frame and what was found in it (possibly nothing: a sample with no
/// detection still tells the tracker that time passed and the object was not seen).
#[derive(Debug)]
pub struct AnalysedFrame {
    pub frame: Frame,
    pub detections: Vec<Detection>,
}

/// The one way in: a detector worker thread between the FrameQueue and a bounded
/// detection channel.
#[derive(Debug)]
pub struct DetectorHandle {
    thread: JoinHandle<(WorkerReport, StopReason)>,
    model: Arc<ModelRef>,
    stop: Arc<AtomicBool>,
}

impl DetectorHandle {
    /// Loads everything on the calling thread (so every error comes back here), then starts
    /// the worker thread. Detections go to `detections` with a blocking send: after
    /// detection nothing is dropped, pressure backs up into the FrameQueue, which drops.
    pub fn spawn(
        config: &DetectorConfig,
        queue: Arc<FrameQueue>,
        detections: mpsc::Sender<Detection>,
    ) -> Result<Self, DetectError> {
        let closed = detections.clone();
        Self::spawn_with(
            config,
            queue,
            move |outcome: BatchOutcome| {
                for detection in outcome.detections {
                    if detections.blocking_send(detection).is_err() {
                        return false;
                    }
                }
                true
            },
            move || closed.is_closed(),
        )
    }

    /// Like [`DetectorHandle::spawn`], but sends every analysed frame with its detections (the
    /// tracker needs the samples without detections and the pixels for evidence). Blocking
    /// send, same policy.
    pub fn spawn_analysed(
        config: &DetectorConfig,
        queue: Arc<FrameQueue>,
        out: mpsc::Sender<AnalysedFrame>,
    ) -> Result<Self, DetectError> {
        let closed = out.clone();
        Self::spawn_with(
            config,
            queue,
            move |outcome: BatchOutcome| {
                let BatchOutcome {
                    mut detections,
                    analysed,
                    ..
                } = outcome;
                for frame in analysed {
                    let (mine, rest): (Vec<_>, Vec<_>) = detections
                        .into_iter()
                        .partition(|d| d.camera == frame.camera && d.seq == frame.seq);
                    detections = rest;
                    if out
                        .blocking_send(AnalysedFrame {
                            frame,
                            detections: mine,
                        })
                        .is_err()
                    {
                        return false;
                    }
                }
                true
            },
            move || closed.is_closed(),
        )
    }

    fn spawn_with(
        config: &DetectorConfig,
        queue: Arc<FrameQueue>,
        emit: impl FnMut(BatchOutcome) -> bool + Send + 'static,
        receiver_gone: impl Fn() -> bool + Send + 'static,
    ) -> Result<Self, DetectError> {
        let runtime = Runtime::load(config.runtime_library.as_deref())?;
        let manifest = ModelManifest::load(&config.manifest)?;
        let detector = Detector::load_on(
            &runtime,
            manifest,
            config.max_batch,
            config.intra_threads,
            config.provider,
        )?;
        let model = detector.model_ref.clone();
        let batcher = Batcher::new(
            queue,
            config.max_batch,
            config.max_wait,
            Duration::from_millis(500),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let worker_stop = stop.clone();
        let metrics = config.metrics.clone();
        let thread = std::thread::Builder::new()
            .name(format!("detect-{}", model.name))
            .spawn(move || {
                run_worker(
                    detector,
                    batcher,
                    emit,
                    receiver_gone,
                    &worker_stop,
                    metrics.as_ref(),
                )
            })
            .map_err(|source| DetectError::Spawn {
                model: model.name.clone(),
                source,
            })?;
        Ok(Self {
            thread,
            model,
            stop,
        })
    }

    /// Asks the worker to end after its current batch (frames still queued stay for the
    /// other workers). Join it afterwards.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn model(&self) -> &ModelRef {
        &self.model
    }

    /// Waits for the worker to stop (close the FrameQueue or drop the receiver first).
    pub fn join(self) -> std::thread::Result<(WorkerReport, StopReason)> {
        self.thread.join()
    }
}

fn run_worker(
    mut detector: Detector,
    batcher: Batcher,
    mut emit: impl FnMut(BatchOutcome) -> bool,
    receiver_gone: impl Fn() -> bool,
    stop: &AtomicBool,
    metrics: Option<&crate::obs::DetectMetrics>,
) -> (WorkerReport, StopReason) {
    let model_label = crate::obs::ModelLabel {
        model: detector.model_ref.name.clone(),
    };
    let mut report = WorkerReport::default();
    // Unintentional drops are logged at error level, at most once per interval, with the
    // number suppressed since the last line (the counts are in the report either way).
    let mut reject_log = RateLimit::new(Duration::from_secs(10));
    let mut failure_log = RateLimit::new(Duration::from_secs(10));
    loop {
        if stop.load(Ordering::Relaxed) {
            return (report, StopReason::Stopped);
        }
        let frames = match batcher.next_batch() {
            Batch::Closed => return (report, StopReason::QueueClosed),
            Batch::Idle => {
                if receiver_gone() {
                    return (report, StopReason::ReceiverGone);
                }
                continue;
            }
            Batch::Frames(frames) => frames,
        };
        report.batches += 1;
        report.frames += frames.len() as u64;
        let batch_size = frames.len();
        let started = std::time::Instant::now();
        let result = detector.run(frames);
        if let Some(m) = metrics {
            m.inference_seconds.observe(started.elapsed().as_secs_f64());
            m.batch_size.observe(batch_size as f64);
            if let Ok(outcome) = &result {
                m.frames_analysed
                    .get_or_create(&model_label)
                    .inc_by(outcome.analysed.len() as u64);
                for frame in &outcome.analysed {
                    m.keyframe_to_detection_seconds
                        .observe(frame.received_at.elapsed().as_secs_f64());
                }
                for d in &outcome.detections {
                    m.detections
                        .get_or_create(&crate::obs::ClassLabel {
                            class: d.class.to_string(),
                        })
                        .inc();
                }
            }
        }
        match result {
            Ok(outcome) => {
                for (frame, reason) in &outcome.rejected {
                    report.frames_rejected += 1;
                    if let Some(suppressed) = reject_log.allow() {
                        tracing::error!(camera = frame.camera.as_str(), seq = frame.seq, error = %reason, suppressed, "frame not analysed");
                    }
                }
                let found = outcome.detections.len() as u64;
                if !emit(outcome) {
                    return (report, StopReason::ReceiverGone);
                }
                report.detections += found;
            }
            Err(error) => {
                report.batches_failed += 1;
                if let Some(suppressed) = failure_log.allow() {
                    tracing::error!(error = %error, suppressed, "detection batch failed");
                }
            }
        }
    }
}

/// At most one log line per `interval`; `allow` returns how many were suppressed before it.
struct RateLimit {
    interval: Duration,
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl RateLimit {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    fn allow(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < self.interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_lets_the_first_line_through_and_counts_the_rest() {
        let mut limit = RateLimit::new(Duration::from_secs(3600));
        assert_eq!(limit.allow(), Some(0));
        assert_eq!(limit.allow(), None);
        assert_eq!(limit.allow(), None);
        assert_eq!(limit.suppressed, 2);
        let mut open = RateLimit::new(Duration::ZERO);
        assert_eq!(open.allow(), Some(0));
        assert_eq!(open.allow(), Some(0));
    }
}
