//! Observations → appeal plans: which category rules apply, who is responsible, which SLA stages
//! and which deduplication window. Pure policy, no I/O: the registry stores what this decides.
//!
//! One way in: [`Intake`] (config + city layers) and its [`Intake::plan`]. Categories, deadlines
//! and dedup rules come from TOML ([`IncidentsConfig`], loaded by `config`; default in
//! `src/config/incidents.toml`).

use std::sync::Arc;

use serde::Serialize;

use crate::config::{AssetKind, CategoryConfig, IncidentsConfig};
use crate::domain::{Observation, Position};
use crate::geo::{CityHandle, CityIndex};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IncidentsError {
    #[error("unknown category `{0}`")]
    UnknownCategory(String),
    #[error("position {lat},{lon} is not a valid WGS84 point")]
    InvalidPosition { lat: f64, lon: f64 },
}

/// Who is responsible for an appeal at a place.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Routing {
    pub district: Option<String>,
    pub body_id: Option<String>,
    pub body_name: Option<String>,
    /// The asset (manhole, collection point) that decided the body, when one did.
    pub asset_id: Option<String>,
}

/// What the registry needs to store an observation.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub category: CategoryConfig,
    pub routing: Routing,
}

/// Decide routing for `category` at `pos` on the current layers.
pub fn route(city: &CityIndex, category: &CategoryConfig, pos: Position) -> Routing {
    let district = city.district_at(pos).map(|d| d.id.clone());
    let asset = match category.asset {
        Some(AssetKind::Manhole) => city.nearest_manhole(pos, category.asset_radius_m),
        Some(AssetKind::CollectionPoint) => {
            city.nearest_collection_point(pos, category.asset_radius_m)
        }
        None => None,
    };
    if let Some(near) = asset
        && let Some(body) = city.body(&near.item.owner)
    {
        return Routing {
            district,
            body_id: Some(body.id.clone()),
            body_name: Some(body.name.clone()),
            asset_id: Some(near.item.id.clone()),
        };
    }
    let body = city.responsible_body(&category.code, pos);
    Routing {
        district,
        body_id: body.map(|b| b.id.clone()),
        body_name: body.map(|b| b.name.clone()),
        asset_id: None,
    }
}

/// Category rules + city layers: turns observations into plans.
#[derive(Clone, Debug)]
pub struct Intake {
    config: Arc<IncidentsConfig>,
    city: Arc<CityHandle>,
}

impl Intake {
    pub fn new(config: Arc<IncidentsConfig>, city: Arc<CityHandle>) -> Self {
        Self { config, city }
    }

    pub fn config(&self) -> &IncidentsConfig {
        &self.config
    }

    pub fn city(&self) -> Arc<CityIndex> {
        self.city.current()
    }

    pub fn plan(&self, obs: &Observation) -> Result<Plan, IncidentsError> {
        let category = self
            .config
            .category(obs.category.as_str())
            .ok_or_else(|| IncidentsError::UnknownCategory(obs.category.to_string()))?;
        if !obs.position.is_valid() {
            return Err(IncidentsError::InvalidPosition {
                lat: obs.position.lat,
                lon: obs.position.lon,
            });
        }
        Ok(Plan {
            category: category.clone(),
            routing: route(&self.city.current(), category, obs.position),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn city() -> CityIndex {
        CityIndex::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo"))
            .expect("demo city")
    }

    #[test]
    fn an_open_manhole_goes_to_the_owner_of_the_nearest_manhole() {
        let city = city();
        let cfg = IncidentsConfig::default();
        let cat = cfg.category("open_manhole").expect("category");
        let heating = city
            .manholes()
            .iter()
            .find(|m| m.owner == "astana-teplotranzit")
            .expect("a heating manhole");
        let near = Position::new(heating.position.lat + 0.00005, heating.position.lon);
        let r = route(&city, cat, near);
        assert_eq!(r.body_id.as_deref(), Some("astana-teplotranzit"));
        assert_eq!(r.asset_id.as_deref(), Some(heating.id.as_str()));
        assert!(r.district.is_some());
    }

    #[test]
    fn an_open_manhole_far_from_any_known_manhole_goes_to_the_water_utility() {
        let city = city();
        let cfg = IncidentsConfig::default();
        let cat = cfg.category("open_manhole").expect("category");
        // Search a point with no manhole within the asset radius.
        let pos = (0..400)
            .map(|i| Position::new(51.06 + 0.00045 * i as f64, 71.32 + 0.0007 * i as f64))
            .find(|p| city.nearest_manhole(*p, cat.asset_radius_m).is_none())
            .expect("an empty spot");
        let r = route(&city, cat, pos);
        assert_eq!(r.body_id.as_deref(), Some("astana-su-arnasy"));
        assert_eq!(r.asset_id, None);
    }
}
