use serde::Serialize;

/// A WGS84 point (degrees).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Position {
    pub lat: f64,
    pub lon: f64,
}
