//! Observability: metric names and registration (Prometheus text format at
//! `/metrics`), kept in one place so that names and label sets stay consistent.

mod metrics;

pub use metrics::{
    CameraMetrics, ClassLabel, DROP_DECODER_QUEUE_FULL, DROP_DETECT_QUEUE_FULL, DROP_QUEUE_FULL,
    DetectMetrics, EventLabels, Metrics, ModelLabel,
};
