//! Values that cross module boundaries. No I/O here.
//!
//! - [`Position`]: a WGS84 point.
//! - [`Category`], [`Source`], [`Status`], [`RejectReason`]: what an appeal is about, where it came
//!   from and where it is in its lifecycle.

mod incident;
mod position;

pub use incident::{
    Category, CategoryError, EvidenceRef, Observation, RejectReason, Source, Status,
};
pub use position::Position;
