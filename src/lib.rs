//! sitcenter: city situational-center video and sensor monitoring.
//!
//! # Layout (one line per module; docs/ARCHITECTURE.md tells the same story)
//! Imports go one way (`tests/layers.rs`): app → api → qa/web → the stages → queue → obs →
//! config → domain.
//! - [`domain`]: values that cross modules (ids, positions, camera states, frames, detections, events, appeal values).
//! - [`config`]: site folder (`site.toml`, `cameras.toml`, secrets) → validated settings, every error with file:line; model manifests, incident rules, pipeline template list.
//! - [`obs`]: every Prometheus metric, on one registry.
//! - [`queue`]: the node's channel types: bounded FrameQueue (`WhenFull`), DropLedger.
//! - [`geo`]: city layers (districts, bodies, manholes, collection points, cameras) in R-trees; image→map.
//! - [`sim`]: simulated RTSP cameras over `test-media/`.
//! - [`ingest`]: GStreamer and retina, cameras → sampled frames in the FrameQueue; per-camera supervisors.
//! - [`incidents`]: observations → appeal plans (category rule, responsible body, SLA, dedup).
//! - [`detect`]: ONNX detectors (ort): frame batches → detections, one OS thread per session.
//! - [`registry`]: the appeal registry in PostgreSQL (append-only events, gap-free numbers, SLA escalation).
//! - [`auth`]: sign-in (Argon2id), sessions, roles, API keys with scopes, audit.
//! - [`events`]: analysed frames → tracks, temporal confirmation, zone offence rules → detection events with evidence; MQTT publisher.
//! - [`qa`]: replay of recorded footage through the same pipeline; precision/recall.
//! - [`web`]: the operator UI served by the API, latest-frame previews.
//! - [`api`]: HTTP (axum): one `router(ApiState)` of per-router states.
//! - [`sensors`]: manhole-cover sensors over MQTT → per-sensor alarms → appeals, exactly once.
//! - [`telemetry`]: vehicle GPS (Wialon IPS, Teltonika, OsmAnd) → live fleet in an R-tree, day-partitioned tracks, liveness.
//! - [`app`]: wiring: builds the stages from config, owns shutdown and config reload.
//!
//! The binary's edge (clap commands, the decode-floor tool) is `src/main.rs` and `src/cli/`.

pub mod api;
pub mod app;
pub mod auth;
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
pub mod sensors;
pub mod sim;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod test_util;
pub mod web;
