use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{CameraId, Category};

/// An axis-aligned box in pixels, corners `(x1, y1)` top-left and `(x2, y2)` bottom-right.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// Intersection over union; 0 when either box is empty.
    pub fn iou(&self, other: &BBox) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }
}

/// Which model produced a detection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRef {
    pub name: String,
    pub version: String,
}

/// One object a detector found in one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub camera: CameraId,
    /// The frame's per-camera sequence number.
    pub seq: u64,
    /// Wall-clock time the frame left the pipeline.
    pub ts: SystemTime,
    /// Stream time of the frame, when the source has one.
    pub pts: Option<Duration>,
    /// Class label from the model manifest.
    pub class: Arc<str>,
    /// The incident category this class raises; `None` for classes that raise nothing by
    /// themselves (the zone rules give their offences a category).
    pub category: Option<Category>,
    pub score: f32,
    /// The class's score threshold that this detection passed.
    pub threshold: f32,
    /// In source (camera) pixels, letterbox removed.
    pub bbox: BBox,
    pub model: Arc<ModelRef>,
}
