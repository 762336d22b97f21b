//! GeoJSON (and the lead's cameras.toml) → typed layer records. Strict: a malformed feature is an
//! error naming the file and the feature index, never skipped silently.

use std::path::Path;

use ::geo::{Coord, LineString, MultiPolygon, Polygon};
use serde_json::{Map, Value};

use super::GeoError;
use crate::domain::{BodyKind, Category, Position};

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct District {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub area: MultiPolygon<f64>,
}

/// A responsible body and its service area for the listed categories.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Body {
    pub id: String,
    pub name: String,
    pub kind: BodyKind,
    pub categories: Vec<Category>,
    #[serde(skip)]
    pub area: MultiPolygon<f64>,
}

/// A point asset (manhole, collection point) with its owner body id.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Asset {
    pub id: String,
    pub position: Position,
    pub owner: String,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Camera {
    pub id: String,
    pub name: String,
    pub position: Position,
    /// Compass heading of the optical axis, degrees clockwise from north, when known.
    pub heading_deg: Option<f64>,
}

struct Reader<'a> {
    path: &'a Path,
}

impl Reader<'_> {
    fn features(&self) -> Result<Vec<Map<String, Value>>, GeoError> {
        let text = std::fs::read_to_string(self.path).map_err(|source| GeoError::Read {
            path: self.path.to_owned(),
            source,
        })?;
        let root: Value = serde_json::from_str(&text).map_err(|source| GeoError::Json {
            path: self.path.to_owned(),
            source,
        })?;
        let features = root
            .get("features")
            .and_then(Value::as_array)
            .ok_or_else(|| GeoError::Layer {
                path: self.path.to_owned(),
                message: "not a GeoJSON FeatureCollection (no `features` array)".into(),
            })?;
        features
            .iter()
            .enumerate()
            .map(|(index, f)| {
                f.as_object()
                    .cloned()
                    .ok_or_else(|| self.err(index, "feature is not an object"))
            })
            .collect()
    }

    fn err(&self, index: usize, message: impl Into<String>) -> GeoError {
        GeoError::Feature {
            path: self.path.to_owned(),
            index,
            message: message.into(),
        }
    }

    fn prop_str(&self, f: &Map<String, Value>, i: usize, key: &str) -> Result<String, GeoError> {
        f.get("properties")
            .and_then(|p| p.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| self.err(i, format!("property `{key}` (string) is missing")))
    }

    fn geometry<'v>(
        &self,
        f: &'v Map<String, Value>,
        i: usize,
    ) -> Result<(&'v str, &'v Value), GeoError> {
        let g = f
            .get("geometry")
            .ok_or_else(|| self.err(i, "no geometry"))?;
        let kind = g
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| self.err(i, "geometry has no type"))?;
        let coords = g
            .get("coordinates")
            .ok_or_else(|| self.err(i, "geometry has no coordinates"))?;
        Ok((kind, coords))
    }

    fn point(&self, f: &Map<String, Value>, i: usize) -> Result<Position, GeoError> {
        match self.geometry(f, i)? {
            ("Point", c) => self.position(c, i),
            (other, _) => Err(self.err(i, format!("expected a Point geometry, got {other}"))),
        }
    }

    fn position(&self, c: &Value, i: usize) -> Result<Position, GeoError> {
        let pair = c
            .as_array()
            .filter(|a| a.len() >= 2)
            .ok_or_else(|| self.err(i, "a position must be [lon, lat]"))?;
        let lon = pair[0].as_f64();
        let lat = pair[1].as_f64();
        match (lon, lat) {
            (Some(lon), Some(lat)) if Position::new(lat, lon).is_valid() => {
                Ok(Position::new(lat, lon))
            }
            _ => Err(self.err(i, format!("position {c} is not a valid [lon, lat]"))),
        }
    }

    fn ring(&self, c: &Value, i: usize) -> Result<LineString<f64>, GeoError> {
        let points = c
            .as_array()
            .ok_or_else(|| self.err(i, "a ring must be an array of positions"))?;
        if points.len() < 4 {
            return Err(self.err(i, "a ring needs at least 4 positions"));
        }
        let coords = points
            .iter()
            .map(|p| {
                self.position(p, i).map(|pos| Coord {
                    x: pos.lon,
                    y: pos.lat,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LineString::new(coords))
    }

    fn polygon(&self, c: &Value, i: usize) -> Result<Polygon<f64>, GeoError> {
        let rings = c
            .as_array()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| self.err(i, "a polygon must be a non-empty array of rings"))?;
        let exterior = self.ring(&rings[0], i)?;
        let holes = rings[1..]
            .iter()
            .map(|r| self.ring(r, i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Polygon::new(exterior, holes))
    }

    fn area(&self, f: &Map<String, Value>, i: usize) -> Result<MultiPolygon<f64>, GeoError> {
        match self.geometry(f, i)? {
            ("Polygon", c) => Ok(MultiPolygon::new(vec![self.polygon(c, i)?])),
            ("MultiPolygon", c) => {
                let polys = c
                    .as_array()
                    .ok_or_else(|| self.err(i, "a MultiPolygon must be an array of polygons"))?;
                Ok(MultiPolygon::new(
                    polys
                        .iter()
                        .map(|p| self.polygon(p, i))
                        .collect::<Result<_, _>>()?,
                ))
            }
            (other, _) => Err(self.err(
                i,
                format!("expected a Polygon or MultiPolygon geometry, got {other}"),
            )),
        }
    }
}

pub(super) fn read_districts(path: &Path) -> Result<Vec<District>, GeoError> {
    let r = Reader { path };
    r.features()?
        .iter()
        .enumerate()
        .map(|(i, f)| {
            Ok(District {
                id: r.prop_str(f, i, "id")?,
                name: r.prop_str(f, i, "name")?,
                area: r.area(f, i)?,
            })
        })
        .collect()
}

pub(super) fn read_bodies(path: &Path) -> Result<Vec<Body>, GeoError> {
    let r = Reader { path };
    r.features()?
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let props = f.get("properties");
            let kind_value = props
                .and_then(|p| p.get("kind"))
                .cloned()
                .unwrap_or(Value::Null);
            let kind: BodyKind = serde_json::from_value(kind_value)
                .map_err(|e| r.err(i, format!("property `kind`: {e}")))?;
            let categories = props
                .and_then(|p| p.get("categories"))
                .and_then(Value::as_array)
                .ok_or_else(|| r.err(i, "property `categories` (array) is missing"))?
                .iter()
                .map(|c| {
                    c.as_str()
                        .ok_or_else(|| r.err(i, "a category must be a string"))
                        .and_then(|s| Category::new(s).map_err(|e| r.err(i, e.to_string())))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Body {
                id: r.prop_str(f, i, "id")?,
                name: r.prop_str(f, i, "name")?,
                kind,
                categories,
                area: r.area(f, i)?,
            })
        })
        .collect()
}

pub(super) fn read_assets(path: &Path) -> Result<Vec<Asset>, GeoError> {
    let r = Reader { path };
    r.features()?
        .iter()
        .enumerate()
        .map(|(i, f)| {
            Ok(Asset {
                id: r.prop_str(f, i, "id")?,
                owner: r.prop_str(f, i, "owner")?,
                position: r.point(f, i)?,
            })
        })
        .collect()
}

pub(super) fn read_cameras_geojson(path: &Path) -> Result<Vec<Camera>, GeoError> {
    let r = Reader { path };
    r.features()?
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let id = r.prop_str(f, i, "id")?;
            Ok(Camera {
                name: r.prop_str(f, i, "name").unwrap_or_else(|_| id.clone()),
                id,
                position: r.point(f, i)?,
                heading_deg: f
                    .get("properties")
                    .and_then(|p| p.get("heading_deg"))
                    .and_then(Value::as_f64),
            })
        })
        .collect()
}

/// Reads only the placement fields of the camera config (`[[camera]]` tables); everything else in
/// that file belongs to the config module and is ignored here.
pub(super) fn read_cameras_toml(path: &Path) -> Result<Vec<Camera>, GeoError> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        camera: Vec<RawCamera>,
    }
    #[derive(serde::Deserialize)]
    struct RawCamera {
        id: String,
        name: Option<String>,
        lat: f64,
        lon: f64,
        heading_deg: Option<f64>,
    }
    let text = std::fs::read_to_string(path).map_err(|source| GeoError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file: File = toml::from_str(&text).map_err(|source| GeoError::Toml {
        path: path.to_owned(),
        source,
    })?;
    file.camera
        .into_iter()
        .enumerate()
        .map(|(index, c)| {
            let position = Position::new(c.lat, c.lon);
            if !position.is_valid() {
                return Err(GeoError::Feature {
                    path: path.to_owned(),
                    index,
                    message: format!("camera `{}` has an invalid lat/lon", c.id),
                });
            }
            Ok(Camera {
                name: c.name.unwrap_or_else(|| c.id.clone()),
                id: c.id,
                position,
                heading_deg: c.heading_deg,
            })
        })
        .collect()
}
