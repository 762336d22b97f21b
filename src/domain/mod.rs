//! Values that cross module boundaries. No I/O here.
//!
//! - [`CameraId`]: the stable id of a camera from its config.
//! - [`Position`]: a WGS84 point.
//! - [`Frame`]: one sampled, decoded, scaled frame leaving ingest.

mod frame;
mod ids;
mod position;

pub use frame::{Frame, Letterbox};
pub use ids::CameraId;
pub use position::Position;
