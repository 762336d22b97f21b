//! Detection: batches of frames from the FrameQueue → ONNX models (ort) → [`Detection`]s.
//!
//! Owns the model manifests (`models/<name>/model.toml`), ONNX Runtime loading, sessions
//! and their contract check, preprocessing, decoding (YOLOv8/YOLO11 head or end-to-end
//! NMS output) and class-aware NMS.
//!
//! - Consumes: [`Frame`](crate::domain::Frame)s, packed RGB already at the model's input
//!   size (letterboxed by the pipeline), from the shared [`FrameQueue`](crate::queue::FrameQueue).
//! - Produces: [`Detection`]s (box in source pixels, model name and version, the class
//!   threshold) into a bounded tokio channel ([`DetectorHandle::spawn`]), or every analysed
//!   frame with its detections, possibly none, as an [`AnalysedFrame`]
//!   ([`DetectorHandle::spawn_analysed`], what the event stage consumes).
//! - Queue policy: frames are taken up to `max_batch` at once, across cameras, or whatever
//!   arrived within `max_wait` of the first; detections are sent with a *blocking* send, so
//!   a slow consumer backs pressure up into the FrameQueue, which drops the oldest frames
//!   and counts them. Nothing is dropped after detection.
//! - Threads: each [`DetectorHandle`] is one OS thread owning one ort `Session`, on the
//!   configured [`ExecutionProvider`](crate::config::ExecutionProvider) (CPU, or CUDA/TensorRT when the loaded ONNX Runtime
//!   library has them: otherwise a load error, never a silent fallback).
//!   [`DetectorHandle::stop`] ends a worker after its batch (model reload).
//!
//! One way in: [`DetectorHandle::spawn`] with a [`DetectorConfig`]. [`Detector`] runs
//! batches synchronously (tests, QA replay, benches); the pure stages are exported for
//! benches.
//!
//! Files: `model.rs` (manifest, runtime, session, contract), `preprocess.rs` (RGB → NCHW
//! f32), `postprocess.rs` (decode + NMS, pure), `batcher.rs` (size/time), `worker.rs`
//! (thread), `error.rs`.
//!
//! [`Detection`]: crate::domain::Detection

mod batcher;
mod error;
mod model;
mod postprocess;
mod preprocess;
mod status;
mod worker;

#[cfg(test)]
mod tests;

pub use batcher::{Batch, Batcher};
pub use error::DetectError;
pub use model::{Model, Runtime};
pub use postprocess::{Candidate, Decoder, nms, nms_repeated_max};
pub use preprocess::Preprocessor;
pub use status::DetectorStatus;
pub use worker::{AnalysedFrame, Detector, DetectorConfig, DetectorHandle};
