use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::detect::DetectMetrics;
use super::registry::RegistryMetrics;
use crate::domain::CameraId;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CameraLabel {
    camera: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    camera: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

/// Every metric of the process. Per-camera series exist only on the few
/// counters that need them (16,000 cameras × labels is the cardinality budget).
pub struct Metrics {
    exposition: Mutex<Registry>,
    frames_received: Family<CameraLabel, Counter>,
    frames_decoded: Family<CameraLabel, Counter>,
    frames_dropped: Family<DropLabels, Counter>,
    reconnects: Family<CameraLabel, Counter>,
    cameras: Family<StateLabel, Gauge>,
    pub frame_queue_depth: Gauge,
    pub frame_queue_capacity: Gauge,
    pub decode_latency_seconds: Histogram,
    pub frames_consumed: Counter,
    pub detect: DetectMetrics,
    /// The appeal registry's (handed to the registry stage when the node starts it).
    pub registry: RegistryMetrics,
    /// The manhole-cover sensor stage (`obs/sensors.rs`).
    pub sensors: super::SensorMetrics,
    /// The vehicle telemetry stage (`obs/telemetry.rs`).
    pub telemetry: super::TelemetryMetrics,
    /// From a sampled keyframe's arrival to its frame entering the FrameQueue.
    pub keyframe_to_frame_seconds: Histogram,
    /// Keyframes waiting for a decoder of the shared pool.
    pub decoder_queue_depth: Gauge,
    /// Keyframes handed to the pool that produced no frame (undecodable data).
    pub decoder_failures: Counter,
    /// Admission control: the decode budget and what admitted cameras need, in CPU ms per second.
    pub decode_budget_ms_per_s: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub decode_admitted_ms_per_s: Gauge<f64, std::sync::atomic::AtomicU64>,
}

/// The per-camera handles, looked up once when a camera starts (never per frame).
#[derive(Clone)]
pub struct CameraMetrics {
    pub frames_received: Counter,
    pub frames_decoded: Counter,
    pub reconnects: Counter,
}

/// Drop reason label: the FrameQueue was full and evicted this camera's oldest frame.
pub const DROP_QUEUE_FULL: &str = "queue_full";
/// Drop reason label: the shared decoder pool's queue was full and evicted this camera's
/// oldest keyframe before it was decoded.
pub const DROP_DECODER_QUEUE_FULL: &str = "decoder_queue_full";

/// Drop reason label: the detector's queue was full and evicted this camera's oldest frame.
pub const DROP_DETECT_QUEUE_FULL: &str = "detect_queue_full";

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sitcenter");
        let frames_received = Family::<CameraLabel, Counter>::default();
        registry.register(
            "frames_received",
            "Encoded frames (access units) received from each camera",
            frames_received.clone(),
        );
        let frames_decoded = Family::<CameraLabel, Counter>::default();
        registry.register(
            "frames_decoded",
            "Sampled frames decoded and handed to analysis, per camera",
            frames_decoded.clone(),
        );
        let frames_dropped = Family::<DropLabels, Counter>::default();
        registry.register(
            "frames_dropped",
            "Sampled frames dropped before analysis, per camera and reason",
            frames_dropped.clone(),
        );
        let reconnects = Family::<CameraLabel, Counter>::default();
        registry.register(
            "camera_reconnects",
            "Reconnection attempts per camera",
            reconnects.clone(),
        );
        let cameras = Family::<StateLabel, Gauge>::default();
        registry.register("cameras", "Cameras by supervisor state", cameras.clone());
        for state in crate::domain::State::ALL {
            cameras
                .get_or_create(&StateLabel {
                    state: state.as_str(),
                })
                .set(0);
        }
        let frame_queue_depth = Gauge::default();
        registry.register(
            "frame_queue_depth",
            "Frames waiting in the FrameQueue",
            frame_queue_depth.clone(),
        );
        let frame_queue_capacity = Gauge::default();
        registry.register(
            "frame_queue_capacity",
            "Capacity of the FrameQueue",
            frame_queue_capacity.clone(),
        );
        let decode_latency_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "decode_latency_seconds",
            "Time from a sampled unit entering the decoder to its frame leaving the pipeline",
            decode_latency_seconds.clone(),
        );
        let frames_consumed = Counter::default();
        registry.register(
            "frames_consumed",
            "Frames taken from the FrameQueue by analysis",
            frames_consumed.clone(),
        );
        let detect = DetectMetrics::registered(&mut registry);
        let registry_metrics = RegistryMetrics::default();
        registry_metrics.register(&mut registry);
        let keyframe_to_frame_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "keyframe_to_frame_seconds",
            "Time from a sampled keyframe arriving from the camera to its decoded frame entering the FrameQueue",
            keyframe_to_frame_seconds.clone(),
        );
        let decoder_queue_depth = Gauge::default();
        registry.register(
            "decoder_queue_depth",
            "Keyframes waiting for a decoder of the shared pool",
            decoder_queue_depth.clone(),
        );
        let decoder_failures = Counter::default();
        registry.register(
            "decoder_failures",
            "Keyframes the shared decoder pool could not decode (no frame came out)",
            decoder_failures.clone(),
        );
        let decode_budget_ms_per_s = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "decode_budget_ms_per_s",
            "Admission control: CPU milliseconds per second granted to decoding",
            decode_budget_ms_per_s.clone(),
        );
        let decode_admitted_ms_per_s = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "decode_admitted_ms_per_s",
            "Admission control: CPU milliseconds per second the admitted cameras need for decoding",
            decode_admitted_ms_per_s.clone(),
        );
        let sensors = super::SensorMetrics::default();
        sensors.register(&mut registry);
        let telemetry = super::TelemetryMetrics::new();
        telemetry.register(&mut registry);
        Self {
            exposition: Mutex::new(registry),
            sensors,
            telemetry,
            keyframe_to_frame_seconds,
            decoder_queue_depth,
            decoder_failures,
            decode_budget_ms_per_s,
            decode_admitted_ms_per_s,
            frames_received,
            frames_decoded,
            frames_dropped,
            reconnects,
            cameras,
            frame_queue_depth,
            frame_queue_capacity,
            decode_latency_seconds,
            frames_consumed,
            detect,
            registry: registry_metrics,
        }
    }

    pub fn camera(&self, id: &CameraId) -> CameraMetrics {
        let label = CameraLabel {
            camera: id.to_string(),
        };
        CameraMetrics {
            frames_received: self.frames_received.get_or_create(&label).clone(),
            frames_decoded: self.frames_decoded.get_or_create(&label).clone(),
            reconnects: self.reconnects.get_or_create(&label).clone(),
        }
    }

    /// Counts a frame of `camera` evicted from the FrameQueue.
    pub fn frame_dropped(&self, camera: &CameraId, reason: &'static str) {
        self.frames_dropped
            .get_or_create(&DropLabels {
                camera: camera.to_string(),
                reason,
            })
            .inc();
    }

    /// Forgets a removed camera's series, so that removed cameras cost nothing.
    pub fn remove_camera(&self, id: &CameraId) {
        let label = CameraLabel {
            camera: id.to_string(),
        };
        self.frames_received.remove(&label);
        self.frames_decoded.remove(&label);
        self.reconnects.remove(&label);
        for reason in [
            DROP_QUEUE_FULL,
            DROP_DETECT_QUEUE_FULL,
            DROP_DECODER_QUEUE_FULL,
        ] {
            self.frames_dropped.remove(&DropLabels {
                camera: id.to_string(),
                reason,
            });
        }
    }

    pub fn camera_state_changed(
        &self,
        from: Option<crate::domain::State>,
        to: Option<crate::domain::State>,
    ) {
        if from == to {
            return;
        }
        if let Some(from) = from {
            self.cameras
                .get_or_create(&StateLabel {
                    state: from.as_str(),
                })
                .dec();
        }
        if let Some(to) = to {
            self.cameras
                .get_or_create(&StateLabel { state: to.as_str() })
                .inc();
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.exposition.lock();
        // Writing into a String cannot fail.
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
