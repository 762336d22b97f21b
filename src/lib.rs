//! sitcenter: city situational-center video and sensor monitoring.
//!
//! # Layout (one line per module; docs/ARCHITECTURE.md tells the same story)
//! - [`config`]: site folder (`site.toml`, `cameras.toml`, secrets) → validated config, every error with file:line.
//! - [`domain`]: values that cross modules (camera ids, positions, frames, detections, detection events).
//! - [`ingest`]: GStreamer, cameras → sampled frames in the bounded FrameQueue; per-camera supervisors.
//! - [`detect`]: ONNX detectors (ort): frame batches from the FrameQueue → detections, one OS thread per session.
//! - [`events`]: analysed frames → tracks, temporal confirmation, zone offence rules → detection events with evidence; MQTT publisher.
//! - [`obs`]: Prometheus metrics, names and registration.
//! - [`app`]: wiring: builds the stages from config, owns shutdown and config reload.
//! - [`api`]: HTTP: `/metrics`, health, camera status and snapshots (axum).
//! - [`web`]: the operator UI served by the API.
//! - [`qa`]: replay of recorded footage through the same pipeline.
//! - [`sim`]: simulated RTSP cameras over `test-media/` (`sitcenter rtsp-sim`).
//! - [`geo`]: city layers (districts, bodies, manholes, collection points, cameras) in R-trees; image→map.
//! - [`incidents`]: categories → responsible body, SLA stages, dedup rules (TOML).
//! - [`registry`]: the appeal registry in PostgreSQL (append-only events, gap-free numbers, SLA escalation).

pub mod api;
pub mod app;
pub mod config;
pub mod detect;
pub mod domain;
pub mod events;
pub mod geo;
pub mod incidents;
pub mod ingest;
pub mod obs;
pub mod qa;
pub mod queue;
pub mod registry;
pub mod sim;
#[cfg(test)]
pub(crate) mod test_util;
pub mod web;
