//! City reference data and geolocation.
//!
//! Owns the layers loaded from a site folder (`camera-configs/demo/` for the demo city):
//! `districts.geojson`, `bodies.geojson` (responsible bodies and their service areas per
//! category), `manholes.geojson`, `collection_points.geojson`, and cameras (`cameras.toml`'s
//! `[[camera]]` placements when present, else `cameras.geojson`). Every layer sits in an R-tree:
//! polygons are split into pieces of at most `MAX_PIECE_VERTICES` vertices so point-in-polygon
//! stays in microseconds; point layers are indexed in local metres.
//!
//! One way in: [`CityIndex::load`] (immutable, cheap to share in an `Arc`) and [`CityHandle`]
//! for reloading while readers keep the snapshot they hold. `Homography` /
//! [`CameraPlacement`] map detections from image to ground.
//!
//! Loading is CPU work (tens of ms for the demo city): call it from `spawn_blocking`.

mod error;
mod homography;
mod index;
mod layers;
mod projection;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use ::geo::{Area, Contains, Point};

pub use error::GeoError;
pub use homography::{
    CameraPlacement, MIN_CALIBRATED_UNCERTAINTY_M, POSE_ASSUMED_RANGE_M, POSE_UNCERTAINTY_M,
    POSITION_ONLY_UNCERTAINTY_M,
};

pub use layers::{Asset, Body, Camera, District};

use crate::domain::{Category, Position};
use index::{PointIndex, PolygonIndex};
use projection::LocalProjection;

/// The file names of a site folder's layers.
pub const DISTRICTS_FILE: &str = "districts.geojson";
pub const BODIES_FILE: &str = "bodies.geojson";
pub const MANHOLES_FILE: &str = "manholes.geojson";
pub const COLLECTION_POINTS_FILE: &str = "collection_points.geojson";
pub const CAMERAS_TOML_FILE: &str = "cameras.toml";
pub const CAMERAS_GEOJSON_FILE: &str = "cameras.geojson";

/// An item found near a point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Nearby<'a, T> {
    pub item: &'a T,
    pub distance_m: f64,
}

/// All layers, indexed. Immutable once built.
#[derive(Debug)]
pub struct CityIndex {
    projection: LocalProjection,
    districts: Vec<District>,
    district_index: PolygonIndex,
    bodies: Vec<Body>,
    body_index: PolygonIndex,
    /// Area of each body's service area (square degrees; only used to rank by specificity).
    body_area: Vec<f64>,
    body_by_id: HashMap<String, usize>,
    manholes: Vec<Asset>,
    manhole_index: PointIndex,
    manhole_by_id: HashMap<String, usize>,
    collection_points: Vec<Asset>,
    collection_point_index: PointIndex,
    cameras: Vec<Camera>,
    camera_index: PointIndex,
    camera_by_id: HashMap<String, usize>,
}

/// Layer contents before indexing.
#[derive(Clone, Debug, Default)]
pub struct CityLayers {
    pub districts: Vec<District>,
    pub bodies: Vec<Body>,
    pub manholes: Vec<Asset>,
    pub collection_points: Vec<Asset>,
    pub cameras: Vec<Camera>,
}

impl CityLayers {
    /// Read every layer of a site folder. Cameras come from `cameras.toml` when it exists.
    pub fn read(dir: &Path) -> Result<Self, GeoError> {
        let cameras_toml = dir.join(CAMERAS_TOML_FILE);
        let cameras = if cameras_toml.is_file() {
            layers::read_cameras_toml(&cameras_toml)?
        } else {
            layers::read_cameras_geojson(&dir.join(CAMERAS_GEOJSON_FILE))?
        };
        Ok(Self {
            districts: layers::read_districts(&dir.join(DISTRICTS_FILE))?,
            bodies: layers::read_bodies(&dir.join(BODIES_FILE))?,
            manholes: layers::read_assets(&dir.join(MANHOLES_FILE))?,
            collection_points: layers::read_assets(&dir.join(COLLECTION_POINTS_FILE))?,
            cameras,
        })
    }
}

fn unique_ids<'a>(
    path: &Path,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, usize>, GeoError> {
    let mut map = HashMap::new();
    for (i, id) in ids.enumerate() {
        if map.insert(id.to_owned(), i).is_some() {
            return Err(GeoError::Layer {
                path: path.to_owned(),
                message: format!("id `{id}` appears more than once"),
            });
        }
    }
    Ok(map)
}

impl CityIndex {
    /// Read and index a site folder (see the module docs for the file names).
    pub fn load(dir: &Path) -> Result<Self, GeoError> {
        let layers = CityLayers::read(dir)?;
        Self::build(dir, layers)
    }

    /// Index layers; `dir` only names the source in errors.
    pub fn build(dir: &Path, layers: CityLayers) -> Result<Self, GeoError> {
        let body_by_id = unique_ids(
            &dir.join(BODIES_FILE),
            layers.bodies.iter().map(|b| b.id.as_str()),
        )?;
        let camera_by_id = unique_ids(dir, layers.cameras.iter().map(|c| c.id.as_str()))?;
        let manhole_by_id = unique_ids(
            &dir.join(MANHOLES_FILE),
            layers.manholes.iter().map(|m| m.id.as_str()),
        )?;
        for (file, assets) in [
            (MANHOLES_FILE, &layers.manholes),
            (COLLECTION_POINTS_FILE, &layers.collection_points),
        ] {
            if let Some(a) = assets.iter().find(|a| !body_by_id.contains_key(&a.owner)) {
                return Err(GeoError::Layer {
                    path: dir.join(file),
                    message: format!(
                        "`{}` names owner `{}`, which is not in {BODIES_FILE}",
                        a.id, a.owner
                    ),
                });
            }
        }
        let origin = layers
            .districts
            .iter()
            .flat_map(|d| d.area.iter())
            .flat_map(|p| p.exterior().0.iter())
            .fold(None::<(f64, f64, f64, f64)>, |acc, c| {
                Some(match acc {
                    None => (c.y, c.y, c.x, c.x),
                    Some((a, b, d, e)) => (a.min(c.y), b.max(c.y), d.min(c.x), e.max(c.x)),
                })
            })
            .map_or(Position::new(51.15, 71.45), |(lat0, lat1, lon0, lon1)| {
                Position::new((lat0 + lat1) / 2.0, (lon0 + lon1) / 2.0)
            });
        let projection = LocalProjection::new(origin);
        let to_u32 = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        let district_index = PolygonIndex::build(
            layers
                .districts
                .iter()
                .enumerate()
                .map(|(i, d)| (to_u32(i), &d.area)),
        );
        let body_index = PolygonIndex::build(
            layers
                .bodies
                .iter()
                .enumerate()
                .map(|(i, b)| (to_u32(i), &b.area)),
        );
        let body_area = layers
            .bodies
            .iter()
            .map(|b| b.area.unsigned_area())
            .collect();
        let manhole_index =
            PointIndex::build(&projection, layers.manholes.iter().map(|a| a.position));
        let collection_point_index = PointIndex::build(
            &projection,
            layers.collection_points.iter().map(|a| a.position),
        );
        let camera_index =
            PointIndex::build(&projection, layers.cameras.iter().map(|c| c.position));
        Ok(Self {
            projection,
            districts: layers.districts,
            district_index,
            bodies: layers.bodies,
            body_index,
            body_area,
            body_by_id,
            manholes: layers.manholes,
            manhole_index,
            manhole_by_id,
            collection_points: layers.collection_points,
            collection_point_index,
            cameras: layers.cameras,
            camera_index,
            camera_by_id,
        })
    }

    pub fn projection(&self) -> &LocalProjection {
        &self.projection
    }

    pub fn districts(&self) -> &[District] {
        &self.districts
    }

    pub fn bodies(&self) -> &[Body] {
        &self.bodies
    }

    pub fn manholes(&self) -> &[Asset] {
        &self.manholes
    }

    pub fn collection_points(&self) -> &[Asset] {
        &self.collection_points
    }

    pub fn cameras(&self) -> &[Camera] {
        &self.cameras
    }

    /// Number of indexed polygon pieces (districts + service areas) after splitting.
    pub fn polygon_piece_count(&self) -> usize {
        self.district_index.piece_count() + self.body_index.piece_count()
    }

    pub fn body(&self, id: &str) -> Option<&Body> {
        self.body_by_id.get(id).and_then(|&i| self.bodies.get(i))
    }

    /// A manhole by id (a cover sensor names its manhole).
    pub fn manhole(&self, id: &str) -> Option<&Asset> {
        self.manhole_by_id
            .get(id)
            .and_then(|&i| self.manholes.get(i))
    }

    pub fn camera(&self, id: &str) -> Option<&Camera> {
        self.camera_by_id.get(id).and_then(|&i| self.cameras.get(i))
    }

    /// The district containing `pos`.
    pub fn district_at(&self, pos: Position) -> Option<&District> {
        self.district_index
            .owners_at(pos)
            .first()
            .and_then(|&i| self.districts.get(i as usize))
    }

    /// Every body whose service area contains `pos`, whatever its categories.
    pub fn bodies_at(&self, pos: Position) -> Vec<&Body> {
        self.body_index
            .owners_at(pos)
            .into_iter()
            .filter_map(|i| self.bodies.get(i as usize))
            .collect()
    }

    /// The body responsible for `category` at `pos`: among service areas containing the point
    /// that list the category, the most specific (smallest) one.
    pub fn responsible_body(&self, category: &Category, pos: Position) -> Option<&Body> {
        self.body_index
            .owners_at(pos)
            .into_iter()
            .map(|i| i as usize)
            .filter(|&i| {
                self.bodies
                    .get(i)
                    .is_some_and(|b| b.categories.contains(category))
            })
            .min_by(|&a, &b| self.body_area[a].total_cmp(&self.body_area[b]))
            .and_then(|i| self.bodies.get(i))
    }

    fn nearest<'a, T>(
        &self,
        index: &PointIndex,
        items: &'a [T],
        pos: Position,
        radius_m: f64,
    ) -> Option<Nearby<'a, T>> {
        let (i, distance_m) = index.nearest(self.projection.to_xy(pos), radius_m)?;
        items.get(i).map(|item| Nearby { item, distance_m })
    }

    /// The nearest manhole within `radius_m` metres.
    pub fn nearest_manhole(&self, pos: Position, radius_m: f64) -> Option<Nearby<'_, Asset>> {
        self.nearest(&self.manhole_index, &self.manholes, pos, radius_m)
    }

    /// The nearest waste collection point within `radius_m` metres.
    pub fn nearest_collection_point(
        &self,
        pos: Position,
        radius_m: f64,
    ) -> Option<Nearby<'_, Asset>> {
        self.nearest(
            &self.collection_point_index,
            &self.collection_points,
            pos,
            radius_m,
        )
    }

    /// Cameras within `radius_m` metres, nearest first.
    pub fn cameras_near(&self, pos: Position, radius_m: f64) -> Vec<Nearby<'_, Camera>> {
        self.camera_index
            .within(self.projection.to_xy(pos), radius_m)
            .into_iter()
            .filter_map(|(i, distance_m)| {
                self.cameras.get(i).map(|item| Nearby { item, distance_m })
            })
            .collect()
    }

    /// Baseline for benchmarks and tests: the district by scanning every whole polygon.
    pub fn district_at_by_scan(&self, pos: Position) -> Option<&District> {
        let p = Point::new(pos.lon, pos.lat);
        self.districts.iter().find(|d| d.area.contains(&p))
    }

    /// Baseline for benchmarks and tests: the responsible body by scanning every service area.
    pub fn responsible_body_by_scan(&self, category: &Category, pos: Position) -> Option<&Body> {
        let p = Point::new(pos.lon, pos.lat);
        self.bodies
            .iter()
            .enumerate()
            .filter(|(_, b)| b.categories.contains(category) && b.area.contains(&p))
            .min_by(|a, b| self.body_area[a.0].total_cmp(&self.body_area[b.0]))
            .map(|(_, b)| b)
    }

    /// Baseline for benchmarks and tests: the nearest manhole by scanning them all.
    pub fn nearest_manhole_by_scan(
        &self,
        pos: Position,
        radius_m: f64,
    ) -> Option<Nearby<'_, Asset>> {
        let q = self.projection.to_xy(pos);
        self.manholes
            .iter()
            .map(|m| {
                let p = self.projection.to_xy(m.position);
                (m, ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt())
            })
            .filter(|(_, d)| *d <= radius_m)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(item, distance_m)| Nearby { item, distance_m })
    }
}

/// A reloadable [`CityIndex`]: readers take a snapshot (`Arc`), reload swaps it atomically and
/// keeps the old one when the new files do not load.
#[derive(Debug)]
pub struct CityHandle {
    dir: PathBuf,
    current: RwLock<Arc<CityIndex>>,
}

impl CityHandle {
    pub fn load(dir: &Path) -> Result<Self, GeoError> {
        Ok(Self {
            dir: dir.to_owned(),
            current: RwLock::new(Arc::new(CityIndex::load(dir)?)),
        })
    }

    pub fn from_index(dir: &Path, index: CityIndex) -> Self {
        Self {
            dir: dir.to_owned(),
            current: RwLock::new(Arc::new(index)),
        }
    }

    /// The current snapshot.
    pub fn current(&self) -> Arc<CityIndex> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Re-read the folder; on error the previous snapshot stays in place.
    pub fn reload(&self) -> Result<(), GeoError> {
        let fresh = Arc::new(CityIndex::load(&self.dir)?);
        match self.current.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        tracing::info!(dir = %self.dir.display(), "city layers reloaded");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
