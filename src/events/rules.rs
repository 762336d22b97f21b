//! What each camera's detections mean: its hazard classes, vehicle and person classes and zone
//! rules, built from the camera config and `[detect]`. Shared between the frame consumer (which
//! cameras go to the detector at all) and the event stage; replaced on config reload.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;

use super::zones::{ZoneRule, ZoneSpec};
use crate::config::{CameraConfig, DetectSettings, ZoneKind};
use crate::domain::{CameraId, Category, Position};

/// One camera's analysis plan.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraRules {
    pub camera: CameraId,
    pub position: Position,
    pub address: String,
    /// Classes confirmed over time into hazard events.
    pub hazards: HashSet<String>,
    pub vehicles: HashSet<String>,
    pub persons: HashSet<String>,
    pub zones: Vec<ZoneSpec>,
    /// Image regions whose detections are ignored (box centre inside), normalised.
    pub masks: Vec<Vec<[f64; 2]>>,
    pub parking_category: Category,
    pub restricted_category: Category,
}

impl CameraRules {
    /// `None` for a camera without detectors (its frames are not sent to the detector).
    pub fn build(camera: &CameraConfig, detect: &DetectSettings) -> Option<Self> {
        let mut rules = Self {
            camera: camera.id.clone(),
            position: camera.location,
            address: camera.address.clone(),
            hazards: HashSet::new(),
            vehicles: HashSet::new(),
            persons: HashSet::new(),
            zones: Vec::new(),
            masks: camera.masks.clone(),
            parking_category: detect.parking_category.clone(),
            restricted_category: detect.restricted_category.clone(),
        };
        for name in &camera.detectors {
            let Some(route) = detect.detectors.get(name) else {
                continue;
            };
            rules.hazards.extend(route.classes.iter().cloned());
            rules.vehicles.extend(route.vehicle_classes.iter().cloned());
            rules.persons.extend(route.person_classes.iter().cloned());
        }
        if !rules.vehicles.is_empty() || !rules.persons.is_empty() {
            rules.zones = camera
                .zones
                .iter()
                .map(|z| ZoneSpec {
                    name: z.name.clone(),
                    rule: match z.kind {
                        ZoneKind::NoParking => ZoneRule::NoParking {
                            max_dwell: z.max_dwell,
                        },
                        ZoneKind::Restricted => ZoneRule::Restricted {
                            night_only: z.night_only,
                        },
                    },
                    polygon: z.polygon.clone(),
                })
                .collect();
        }
        let any =
            !(rules.hazards.is_empty() && rules.vehicles.is_empty() && rules.persons.is_empty());
        any.then_some(rules)
    }

    /// Whether detections of `class` matter on this camera.
    pub fn wants(&self, class: &str) -> bool {
        self.hazards.contains(class)
            || self.vehicles.contains(class)
            || self.persons.contains(class)
    }

    /// Whether a box (source pixels) has its centre in one of the camera's masks.
    pub fn masked(&self, bbox: &crate::domain::BBox, source: (u32, u32)) -> bool {
        if self.masks.is_empty() {
            return false;
        }
        let x = f64::from((bbox.x1 + bbox.x2) / 2.0) / f64::from(source.0.max(1));
        let y = f64::from((bbox.y1 + bbox.y2) / 2.0) / f64::from(source.1.max(1));
        self.masks.iter().any(|m| super::zones::contains(m, x, y))
    }
}

/// Every camera's rules, swapped as a whole on reload.
#[derive(Debug, Default)]
pub struct RuleBook {
    cameras: RwLock<Arc<HashMap<CameraId, Arc<CameraRules>>>>,
}

impl RuleBook {
    pub fn new(cameras: &[CameraConfig], detect: &DetectSettings) -> Self {
        let book = Self::default();
        book.replace(cameras, detect);
        book
    }

    /// Replaces the rules (config reload). Tracks of unchanged cameras carry on.
    pub fn replace(&self, cameras: &[CameraConfig], detect: &DetectSettings) {
        let map = cameras
            .iter()
            .filter_map(|c| CameraRules::build(c, detect).map(|r| (c.id.clone(), Arc::new(r))))
            .collect();
        *self.cameras.write() = Arc::new(map);
    }

    pub fn get(&self, camera: &CameraId) -> Option<Arc<CameraRules>> {
        self.cameras.read().get(camera).cloned()
    }

    /// Whether frames of `camera` go to the detector.
    pub fn analyses(&self, camera: &CameraId) -> bool {
        self.cameras.read().contains_key(camera)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectorRoute;

    fn detect() -> DetectSettings {
        let manifest =
            crate::config::ModelManifest::load(std::path::Path::new("models/tiny/model.toml"))
                .expect("tiny manifest");
        let mut detectors = std::collections::BTreeMap::new();
        detectors.insert(
            crate::config::DetectorKind::Manholes,
            DetectorRoute {
                model: "tiny".into(),
                classes: vec!["red_square".into()],
                vehicle_classes: vec![],
                person_classes: vec![],
            },
        );
        DetectSettings {
            model_name: "tiny".into(),
            manifest,
            detectors,
            provider: crate::config::ExecutionProvider::Cpu,
            max_batch: 1,
            max_wait: std::time::Duration::ZERO,
            workers: 1,
            intra_threads: 1,
            queue_capacity: 1,
            tracking: crate::config::TrackerSettings::default(),
            night: crate::domain::NightHours::default(),
            evidence_dir: "unused".into(),
            parking_category: Category::new("parking_violation").expect("code"),
            restricted_category: Category::new("restricted_area").expect("code"),
            recent_events: 1,
            mqtt: None,
        }
    }

    #[test]
    fn only_cameras_with_detectors_are_analysed_and_reload_replaces_the_set() {
        let with = crate::test_util::camera("with", "rtsp://127.0.0.1:9/a");
        let mut without = crate::test_util::camera("without", "rtsp://127.0.0.1:9/b");
        without.detectors.clear();
        let book = RuleBook::new(&[with.clone(), without.clone()], &detect());
        assert!(book.analyses(&with.id));
        assert!(
            !book.analyses(&without.id),
            "no detectors: never sent to the detector"
        );
        assert!(!book.analyses(&CameraId::new("unknown")));
        let rules = book.get(&with.id).expect("rules");
        assert!(rules.wants("red_square") && !rules.wants("blue_square"));
        book.replace(&[without.clone()], &detect());
        assert!(!book.analyses(&with.id), "removed on reload");
    }
}
