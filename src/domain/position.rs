use serde::{Deserialize, Serialize};

/// A WGS84 point (degrees).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub lat: f64,
    pub lon: f64,
}

/// Mean Earth radius (IUGG), metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

impl Position {
    pub const fn new(lat: f64, lon: f64) -> Self {
        Self { lat, lon }
    }

    /// Both coordinates finite and within WGS84 ranges.
    pub fn is_valid(&self) -> bool {
        self.lat.is_finite()
            && self.lon.is_finite()
            && (-90.0..=90.0).contains(&self.lat)
            && (-180.0..=180.0).contains(&self.lon)
    }

    /// Great-circle (haversine) distance in metres.
    pub fn distance_m(&self, other: &Position) -> f64 {
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let dlat = lat2 - lat1;
        let dlon = (other.lon - self.lon).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().asin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_of_one_hundredth_degree_of_latitude_is_about_1112_metres() {
        let a = Position::new(51.10, 71.40);
        let b = Position::new(51.11, 71.40);
        let d = a.distance_m(&b);
        assert!((d - 1111.9).abs() < 1.0, "{d}");
    }

    #[test]
    fn out_of_range_positions_are_invalid() {
        assert!(!Position::new(91.0, 0.0).is_valid());
        assert!(!Position::new(0.0, f64::NAN).is_valid());
        assert!(Position::new(51.1, 71.4).is_valid());
    }
}
