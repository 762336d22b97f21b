//! Observability: every metric of the process is defined here and registered on one
//! Prometheus registry (text format at `/metrics`), so names, label sets and the per-camera
//! cardinality budget are reviewed in one place. Stages receive typed handles (looked up
//! once, never per frame) and only count.
//!
//! Files: `metrics.rs` ([`Metrics`]: the registry, ingest and camera series), `detect.rs`
//! (detection path), `registry.rs` (appeal registry).

mod detect;
mod metrics;
mod registry;
mod sensors;
mod telemetry;

pub use detect::{ClassLabel, DetectMetrics, EventLabels, ModelLabel};
pub use metrics::{
    CameraMetrics, DROP_DECODER_QUEUE_FULL, DROP_DETECT_QUEUE_FULL, DROP_QUEUE_FULL, Metrics,
};
pub use registry::{CategorySource, RegistryMetrics, StageLabel, StatusLabel};
pub use sensors::{
    AlarmLabel, MessageLabels, OUTCOME_APPLIED, OUTCOME_DUPLICATE, OUTCOME_REJECTED, OUTCOME_STALE,
    OUTCOME_UNKNOWN_SENSOR, ReasonLabel, SensorMetrics,
};
pub use telemetry::{ProtocolLabel, RejectLabels, StateLabel, TelemetryMetrics};
