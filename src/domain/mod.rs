//! Values that cross module boundaries. No I/O here.
//!
//! - [`CameraId`]: the stable id of a camera from its config.
//! - [`Position`]: a WGS84 point.
//! - [`Frame`]: one sampled, decoded, scaled frame leaving ingest.

mod frame;
mod ids;
mod incident;
mod position;

pub use frame::{Frame, Letterbox};
pub use ids::CameraId;
pub use incident::{
    Category, CategoryError, EvidenceRef, Observation, RejectReason, Source, Status,
};
pub use position::Position;
