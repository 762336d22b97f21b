//! R-tree indexes: polygons split into small pieces (point-in-polygon in microseconds), and point
//! layers in local metres (nearest within a radius).

use ::geo::{BooleanOps, BoundingRect, Coord, Intersects, MultiPolygon, Point, Polygon, Rect};
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};

use super::projection::LocalProjection;
use crate::domain::Position;

/// Pieces with more vertices than this are split into quadrants before indexing.
pub const MAX_PIECE_VERTICES: usize = 32;
/// Quadrant splitting stops at this depth whatever the vertex count.
const MAX_SPLIT_DEPTH: u32 = 12;

type PieceEntry = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// Polygons (lon/lat) of many owners, split and indexed by piece bounding box.
#[derive(Debug)]
pub(super) struct PolygonIndex {
    /// (owner index, piece)
    pieces: Vec<(u32, Polygon<f64>)>,
    tree: RTree<PieceEntry>,
}

impl PolygonIndex {
    pub(super) fn build<'a>(areas: impl Iterator<Item = (u32, &'a MultiPolygon<f64>)>) -> Self {
        let mut pieces = Vec::new();
        for (owner, area) in areas {
            for poly in area {
                let mut out = Vec::new();
                split(poly.clone(), MAX_SPLIT_DEPTH, &mut out);
                pieces.extend(out.into_iter().map(|p| (owner, p)));
            }
        }
        let entries = pieces
            .iter()
            .enumerate()
            .filter_map(|(i, (_, p))| {
                let r = p.bounding_rect()?;
                let idx = u32::try_from(i).ok()?;
                Some(GeomWithData::new(
                    Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
                    idx,
                ))
            })
            .collect();
        Self {
            pieces,
            tree: RTree::bulk_load(entries),
        }
    }

    pub(super) fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// Owners whose area contains (or touches) the position; each owner once.
    pub(super) fn owners_at(&self, pos: Position) -> Vec<u32> {
        let point = Point::new(pos.lon, pos.lat);
        let mut owners: Vec<u32> = self
            .tree
            .locate_all_at_point(&[pos.lon, pos.lat])
            .filter_map(|entry| {
                let (owner, piece) = self.pieces.get(entry.data as usize)?;
                piece.intersects(&point).then_some(*owner)
            })
            .collect();
        owners.sort_unstable();
        owners.dedup();
        owners
    }
}

fn vertex_count(p: &Polygon<f64>) -> usize {
    p.exterior().0.len() + p.interiors().iter().map(|r| r.0.len()).sum::<usize>()
}

fn split(poly: Polygon<f64>, depth: u32, out: &mut Vec<Polygon<f64>>) {
    if vertex_count(&poly) <= MAX_PIECE_VERTICES || depth == 0 {
        out.push(poly);
        return;
    }
    let Some(bbox) = poly.bounding_rect() else {
        return;
    };
    let (min, max, c) = (bbox.min(), bbox.max(), bbox.center());
    let quadrants = [
        Rect::new(min, c),
        Rect::new(Coord { x: c.x, y: min.y }, Coord { x: max.x, y: c.y }),
        Rect::new(Coord { x: min.x, y: c.y }, Coord { x: c.x, y: max.y }),
        Rect::new(c, max),
    ];
    for q in quadrants {
        for piece in poly.intersection(&q.to_polygon()) {
            split(piece, depth - 1, out);
        }
    }
}

type PointEntry = GeomWithData<[f64; 2], u32>;

/// Point items indexed in local metres.
#[derive(Debug)]
pub(super) struct PointIndex {
    tree: RTree<PointEntry>,
}

impl PointIndex {
    pub(super) fn build(proj: &LocalProjection, positions: impl Iterator<Item = Position>) -> Self {
        let entries = positions
            .enumerate()
            .filter_map(|(i, p)| Some(GeomWithData::new(proj.to_xy(p), u32::try_from(i).ok()?)))
            .collect();
        Self {
            tree: RTree::bulk_load(entries),
        }
    }

    /// The nearest item within `radius_m`: (index, distance in metres).
    pub(super) fn nearest(&self, xy: [f64; 2], radius_m: f64) -> Option<(usize, f64)> {
        let (entry, d2) = self
            .tree
            .nearest_neighbor_iter_with_distance_2(&xy)
            .next()?;
        let d = d2.sqrt();
        (d <= radius_m).then_some((entry.data as usize, d))
    }

    /// All items within `radius_m`, nearest first.
    pub(super) fn within(&self, xy: [f64; 2], radius_m: f64) -> Vec<(usize, f64)> {
        let mut found: Vec<(usize, f64)> = self
            .tree
            .locate_within_distance(xy, radius_m * radius_m)
            .map(|e| {
                let d = ((e.geom()[0] - xy[0]).powi(2) + (e.geom()[1] - xy[1]).powi(2)).sqrt();
                (e.data as usize, d)
            })
            .collect();
        found.sort_by(|a, b| a.1.total_cmp(&b.1));
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::geo::{Contains, LineString};

    fn circle(n: usize) -> Polygon<f64> {
        let mut pts: Vec<Coord<f64>> = (0..n)
            .map(|i| {
                let a = i as f64 / n as f64 * std::f64::consts::TAU;
                Coord {
                    x: 71.45 + 0.1 * a.cos(),
                    y: 51.15 + 0.05 * a.sin(),
                }
            })
            .collect();
        pts.push(pts[0]);
        Polygon::new(LineString::new(pts), vec![])
    }

    #[test]
    fn a_large_polygon_is_split_into_small_pieces_that_answer_like_the_whole() {
        let whole = circle(1000);
        let area = MultiPolygon::new(vec![whole.clone()]);
        let index = PolygonIndex::build(std::iter::once((7, &area)));
        assert!(index.piece_count() > 16, "{} pieces", index.piece_count());
        assert!(
            index
                .pieces
                .iter()
                .all(|(_, p)| vertex_count(p) <= MAX_PIECE_VERTICES + 8)
        );
        for i in 0..400 {
            let lon = 71.33 + 0.24 * (i as f64 / 400.0);
            let lat = 51.09 + 0.12 * ((i * 37 % 400) as f64 / 400.0);
            let inside = whole.contains(&Point::new(lon, lat));
            let found = index.owners_at(Position::new(lat, lon)) == vec![7];
            assert_eq!(inside, found, "at {lat},{lon}");
        }
    }

    #[test]
    fn nearest_respects_the_radius() {
        let proj = LocalProjection::new(Position::new(51.15, 71.45));
        let pts = [Position::new(51.15, 71.45), Position::new(51.151, 71.45)];
        let index = PointIndex::build(&proj, pts.into_iter());
        let q = proj.to_xy(Position::new(51.1509, 71.45));
        let (i, d) = index.nearest(q, 50.0).expect("within 50 m");
        assert_eq!(i, 1);
        assert!(d < 12.0);
        assert!(
            index
                .nearest(proj.to_xy(Position::new(51.16, 71.45)), 50.0)
                .is_none()
        );
        assert_eq!(index.within(q, 200.0).len(), 2);
    }
}
