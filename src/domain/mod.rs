//! Values that cross module boundaries. No I/O here.
//!
//! - [`CameraId`]: the stable id of a camera from its config.
//! - [`State`], [`Reason`]: a camera's supervisor state and why it is in it.
//! - [`Position`]: a WGS84 point.
//! - [`NightHours`]: local hours of the day (night, quiet hours) in a fixed UTC offset.
//! - [`BodyKind`]: what kind of organisation a responsible body is.
//! - [`Frame`]: one sampled, decoded, scaled frame leaving ingest.
//! - [`Detection`]: one object a detector found in a frame, box in source pixels.
//! - [`DetectionEvent`]: a confirmed hazard or a broken zone rule, with its evidence.
//! - [`SensorId`], [`SensorReading`], [`SensorPayload`]: manhole-cover sensors and their wire payload.

mod body;
mod camera;
mod detection;
mod event;
mod frame;
mod hours;
mod ids;
mod incident;
mod position;
mod sensor;

pub use body::BodyKind;
pub use camera::{Reason, State};
pub use detection::{BBox, Detection, ModelRef};
pub use event::{DetectionEvent, EventKind, Evidence};
pub use frame::{Frame, Letterbox, PixelsError};
pub use hours::NightHours;
pub use ids::CameraId;
pub use incident::{Category, EvidenceRef, Observation, RejectReason, Source, Status};
pub use position::Position;
pub use sensor::{
    CoverState, SENSOR_PAYLOAD_VERSION, SensorId, SensorIdError, SensorPayload, SensorReading,
};
