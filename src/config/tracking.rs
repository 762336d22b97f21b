//! `[detect.tracking]` of `site.toml`: how detections become confirmed objects.

use std::time::Duration;

/// How detections become confirmed objects.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackerSettings {
    /// An object is confirmed when its track spans at least this long (first to latest sample)…
    pub confirm: Duration,
    /// …and was seen in at least this many samples.
    pub min_hits: u32,
    /// An unconfirmed track not seen for longer than this is dropped (a flicker).
    pub max_gap: Duration,
    /// A confirmed track not seen for longer than this is forgotten.
    pub forget: Duration,
    /// Whether an object seen again after being forgotten raises a new event. When false the
    /// forgotten object's box is remembered (bounded) and a match with it stays silent.
    pub realert: bool,
    /// Least IoU for a detection to continue a track.
    pub iou_match: f32,
    /// Fallback: centres closer than this fraction of the track box's diagonal match.
    pub centre_match: f32,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        Self {
            confirm: Duration::from_secs(6),
            min_hits: 3,
            max_gap: Duration::from_secs(10),
            forget: Duration::from_secs(600),
            realert: true,
            iou_match: 0.3,
            centre_match: 0.5,
        }
    }
}
