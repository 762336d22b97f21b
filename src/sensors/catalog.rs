//! The sensor registry: sensor id (or DevEUI) → type settings and manhole → position, owner,
//! district, responsible body, from the config's sensor list and the city layers (`geo`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{SensorTypeSettings, SensorsSettings};
use crate::domain::{Position, SensorId};
use crate::geo::CityIndex;

use super::SensorsError;
use super::payload::SensorRef;

/// One known sensor, resolved on the city layers.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorInfo {
    pub id: SensorId,
    pub kind: String,
    pub settings: SensorTypeSettings,
    pub manhole: String,
    pub position: Position,
    /// The manhole's owner (a body id of the city layers).
    pub owner: String,
    pub owner_name: Option<String>,
    pub district: Option<String>,
}

/// Every known sensor, by id and by DevEUI.
#[derive(Debug, Default)]
pub struct Catalog {
    by_id: HashMap<SensorId, Arc<SensorInfo>>,
    by_eui: HashMap<String, Arc<SensorInfo>>,
}

impl Catalog {
    /// Resolves every sensor's manhole; all unknown manholes are reported at once.
    pub fn build(settings: &SensorsSettings, city: &CityIndex) -> Result<Self, SensorsError> {
        let mut catalog = Catalog::default();
        let mut problems = Vec::new();
        for entry in &settings.sensors {
            let Some(manhole) = city.manhole(&entry.manhole) else {
                problems.push(format!(
                    "{}: sensor `{}`: manhole `{}` is not in the city layers (manholes.geojson)",
                    entry.defined_at, entry.id, entry.manhole
                ));
                continue;
            };
            let Some(kind) = settings.types.get(&entry.kind) else {
                problems.push(format!(
                    "{}: sensor `{}`: unknown type `{}`",
                    entry.defined_at, entry.id, entry.kind
                ));
                continue;
            };
            let info = Arc::new(SensorInfo {
                id: entry.id.clone(),
                kind: entry.kind.clone(),
                settings: kind.clone(),
                manhole: manhole.id.clone(),
                position: manhole.position,
                owner: manhole.owner.clone(),
                owner_name: city.body(&manhole.owner).map(|b| b.name.clone()),
                district: city.district_at(manhole.position).map(|d| d.id.clone()),
            });
            if let Some(eui) = &entry.dev_eui {
                catalog.by_eui.insert(eui.clone(), info.clone());
            }
            catalog.by_id.insert(entry.id.clone(), info);
        }
        if problems.is_empty() {
            Ok(catalog)
        } else {
            Err(SensorsError::Catalog(problems))
        }
    }

    pub fn lookup(&self, sensor: &SensorRef) -> Option<&Arc<SensorInfo>> {
        match sensor {
            SensorRef::Id(id) => self.by_id.get(id),
            SensorRef::DevEui(eui) => self.by_eui.get(eui),
        }
    }

    pub fn get(&self, id: &SensorId) -> Option<&Arc<SensorInfo>> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<SensorInfo>> {
        self.by_id.values()
    }
}
