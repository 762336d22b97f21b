//! Values that cross module boundaries. No I/O here.
//!
//! - [`CameraId`]: the stable id of a camera from its config.
//! - [`State`], [`Reason`]: a camera's supervisor state and why it is in it.
//! - [`Position`]: a WGS84 point.
//! - [`Frame`]: one sampled, decoded, scaled frame leaving ingest.
//! - [`Detection`]: one object a detector found in a frame, box in source pixels.
//! - [`DetectionEvent`]: a confirmed hazard or a broken zone rule, with its evidence.

mod camera;
mod detection;
mod event;
mod frame;
mod ids;
mod incident;
mod position;

pub use camera::{Reason, State};
pub use detection::{BBox, Detection, ModelRef};
pub use event::{DetectionEvent, EventKind, Evidence};
pub use frame::{Frame, Letterbox, PixelsError};
pub use ids::CameraId;
pub use incident::{
    Category, CategoryError, EvidenceRef, Observation, RejectReason, Source, Status,
};
pub use position::Position;
