//! A local equirectangular projection (metres east/north of an origin), accurate to well under
//! 0.1 % across a city of 30 km, so R-tree distances are in metres.

use crate::domain::Position;

const METRES_PER_DEGREE_LAT: f64 = 111_132.954;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocalProjection {
    origin: Position,
    metres_per_degree_lon: f64,
}

impl LocalProjection {
    pub fn new(origin: Position) -> Self {
        Self {
            origin,
            metres_per_degree_lon: METRES_PER_DEGREE_LAT * origin.lat.to_radians().cos(),
        }
    }

    pub fn origin(&self) -> Position {
        self.origin
    }

    /// (east, north) metres.
    pub fn to_xy(self, p: Position) -> [f64; 2] {
        [
            (p.lon - self.origin.lon) * self.metres_per_degree_lon,
            (p.lat - self.origin.lat) * METRES_PER_DEGREE_LAT,
        ]
    }

    pub fn to_position(self, xy: [f64; 2]) -> Position {
        Position::new(
            self.origin.lat + xy[1] / METRES_PER_DEGREE_LAT,
            self.origin.lon + xy[0] / self.metres_per_degree_lon,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projected_distance_matches_haversine_within_a_metre_across_the_city() {
        let proj = LocalProjection::new(Position::new(51.15, 71.45));
        let a = Position::new(51.06, 71.31);
        let b = Position::new(51.24, 71.59);
        let (pa, pb) = (proj.to_xy(a), proj.to_xy(b));
        let planar = ((pa[0] - pb[0]).powi(2) + (pa[1] - pb[1]).powi(2)).sqrt();
        let sphere = a.distance_m(&b);
        assert!(
            (planar - sphere).abs() / sphere < 0.003,
            "{planar} vs {sphere}"
        );
        let back = proj.to_position(pa);
        assert!((back.lat - a.lat).abs() < 1e-9 && (back.lon - a.lon).abs() < 1e-9);
    }
}
