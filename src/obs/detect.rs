//! Detection-path metrics: models, batches, classes, events (a handful of series, never per
//! camera).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabel {
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabel {
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub kind: &'static str,
    pub class: String,
}

/// Detection-path handles, cloned into the detector workers and the event stage (labels are
/// models, classes and event kinds: a handful of series, never per camera).
#[derive(Clone)]
pub struct DetectMetrics {
    pub frames_analysed: Family<ModelLabel, Counter>,
    pub batch_size: Histogram,
    pub inference_seconds: Histogram,
    pub detections: Family<ClassLabel, Counter>,
    pub events: Family<EventLabels, Counter>,
    pub tracks_active: Gauge,
    pub frame_to_event_seconds: Histogram,
    /// Every analysed frame: from its keyframe's arrival to its detections.
    pub keyframe_to_detection_seconds: Histogram,
    pub evidence_failures: Counter,
}

impl std::fmt::Debug for DetectMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DetectMetrics")
    }
}

impl DetectMetrics {
    /// The handles, registered on `registry`.
    pub(super) fn registered(registry: &mut Registry) -> Self {
        let detect = Self {
            frames_analysed: Family::default(),
            batch_size: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
            inference_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            detections: Family::default(),
            events: Family::default(),
            tracks_active: Gauge::default(),
            frame_to_event_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            keyframe_to_detection_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            evidence_failures: Counter::default(),
        };
        registry.register(
            "frames_analysed",
            "Frames run through a detection model",
            detect.frames_analysed.clone(),
        );
        registry.register(
            "inference_batch_size",
            "Frames per inference batch",
            detect.batch_size.clone(),
        );
        registry.register(
            "inference_seconds",
            "Time to preprocess, run and decode one batch",
            detect.inference_seconds.clone(),
        );
        registry.register(
            "detections",
            "Detections above their class threshold, per class",
            detect.detections.clone(),
        );
        registry.register(
            "detection_events",
            "Detection events (confirmed hazards, offences), per kind and class",
            detect.events.clone(),
        );
        registry.register(
            "tracks_active",
            "Object tracks held by the event stage",
            detect.tracks_active.clone(),
        );
        registry.register(
            "frame_to_event_seconds",
            "From the keyframe arriving from the camera to the detection event it triggered",
            detect.frame_to_event_seconds.clone(),
        );
        registry.register(
                "keyframe_to_detection_seconds",
                "From a sampled keyframe arriving from the camera to its detections (every analysed frame)",
                detect.keyframe_to_detection_seconds.clone(),
            );
        registry.register(
            "evidence_failures",
            "Events whose evidence JPEGs could not be encoded or written",
            detect.evidence_failures.clone(),
        );
        detect
    }
}
