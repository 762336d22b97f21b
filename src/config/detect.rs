//! `[detect]` of `site.toml` → [`DetectSettings`]: model manifests (read, not run), detector
//! routes to model classes, inference, tracking and output settings, and the one check that
//! ties ingest to the model: the analysis frame size must equal the model's input size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::TrackerSettings;
use super::error::{Collector, ConfigError};
use super::raw::{RawDetect, RawIngest};
use super::{
    CameraConfig, DetectSettings, DetectorKind, DetectorRoute, IngestSettings, MqttSettings,
};
use super::{ExecutionProvider, ModelManifest};
use crate::domain::Category;
use crate::domain::NightHours;

/// Resolves a manifest path: relative to the site folder first, then to `models/`.
fn resolve_manifest(dir: &Path, path: &str) -> Option<PathBuf> {
    [dir.join(path), Path::new("models").join(path)]
        .into_iter()
        .find(|p| p.is_file())
}

fn count(v: &Option<Spanned<u32>>, default: u32, field: &str, c: &mut Collector<'_>) -> u32 {
    match v {
        Some(v) if *v.get_ref() == 0 => {
            c.push(Some(v.span()), None, Some(field), "must be at least 1");
            default
        }
        Some(v) => *v.get_ref(),
        None => default,
    }
}

fn secs(v: &Option<Spanned<f64>>, default: f64, field: &str, c: &mut Collector<'_>) -> Duration {
    match v {
        Some(v) => {
            let x = *v.get_ref();
            if x.is_finite() && (0.0..=86_400.0 * 7.0).contains(&x) {
                Duration::from_secs_f64(x)
            } else {
                c.push(
                    Some(v.span()),
                    None,
                    Some(field),
                    format!("must be a number of seconds in [0, 604800], got {x}"),
                );
                Duration::from_secs_f64(default)
            }
        }
        None => Duration::from_secs_f64(default),
    }
}

fn hour(v: &Option<Spanned<u32>>, default: u32, field: &str, c: &mut Collector<'_>) -> u32 {
    match v {
        Some(v) if *v.get_ref() > 23 => {
            c.push(Some(v.span()), None, Some(field), "must be an hour 0..=23");
            default
        }
        Some(v) => *v.get_ref(),
        None => default,
    }
}

fn category(
    v: &Option<Spanned<String>>,
    default: &str,
    field: &str,
    c: &mut Collector<'_>,
) -> Category {
    let fallback = || Category::new(default).unwrap_or_else(|_| unreachable!("built-in code"));
    match v {
        Some(v) => Category::new(v.get_ref()).unwrap_or_else(|e| {
            c.push(Some(v.span()), None, Some(field), e.to_string());
            fallback()
        }),
        None => fallback(),
    }
}

pub(super) fn detect_settings(
    raw: &RawDetect,
    dir: &Path,
    ingest: &IngestSettings,
    raw_ingest: &RawIngest,
    utc_offset_minutes: i32,
    c: &mut Collector<'_>,
) -> Option<DetectSettings> {
    let before = c.errors.len();
    // Models: every manifest must read and validate (no ONNX Runtime here).
    let mut manifests: BTreeMap<String, ModelManifest> = BTreeMap::new();
    for (name, path) in raw.models.get_ref() {
        let field = format!("detect.models.{name}");
        let Some(resolved) = resolve_manifest(dir, path.get_ref()) else {
            c.push(
                Some(path.span()),
                None,
                Some(&field),
                format!(
                    "no manifest `{}` in the site folder `{}` nor in `models/`",
                    path.get_ref(),
                    dir.display()
                ),
            );
            continue;
        };
        match ModelManifest::load(&resolved) {
            Ok(m) => {
                manifests.insert(name.clone(), m);
            }
            Err(error) => c.push(Some(path.span()), None, Some(&field), error.to_string()),
        }
    }
    if raw.models.get_ref().is_empty() {
        c.push(
            Some(raw.models.span()),
            None,
            Some("detect.models"),
            "names no model",
        );
    }
    // Detector routes.
    let mut detectors = BTreeMap::new();
    let mut used_model: Option<(String, std::ops::Range<usize>)> = None;
    for (name, route) in raw.detectors.get_ref() {
        let field = format!("detect.detectors.{name}");
        let kind = match DetectorKind::parse(name) {
            Ok(kind) => kind,
            Err(message) => {
                c.push(Some(route.span()), None, Some(&field), message);
                continue;
            }
        };
        let r = route.get_ref();
        let model = r.model.get_ref();
        match &used_model {
            Some((first, _)) if first != model => c.push(
                Some(r.model.span()),
                None,
                Some(&format!("{field}.model")),
                format!(
                    "every detector must use the same model for now (one model per node; `{first}` is already used)"
                ),
            ),
            Some(_) => {}
            None => used_model = Some((model.clone(), r.model.span())),
        }
        let offences = kind == DetectorKind::Offences;
        if offences && !r.classes.is_empty() {
            c.push(
                Some(r.classes[0].span()),
                None,
                Some(&format!("{field}.classes")),
                "`offences` takes `vehicle_classes` and `person_classes`, not `classes`",
            );
        }
        if !offences && (!r.vehicle_classes.is_empty() || !r.person_classes.is_empty()) {
            c.push(
                Some(route.span()),
                None,
                Some(&field),
                "`vehicle_classes`/`person_classes` belong to `offences`; hazard detectors take `classes`",
            );
        }
        let all: Vec<&Spanned<String>> = r
            .classes
            .iter()
            .chain(&r.vehicle_classes)
            .chain(&r.person_classes)
            .collect();
        if all.is_empty() {
            c.push(Some(route.span()), None, Some(&field), "names no class");
        }
        match manifests.get(model) {
            Some(m) => {
                for class in all {
                    if !m.classes.iter().any(|k| k.name == *class.get_ref()) {
                        c.push(
                            Some(class.span()),
                            None,
                            Some(&field),
                            format!(
                                "model `{model}` ({}) has no class `{}` (its classes: {})",
                                m.manifest_path.display(),
                                class.get_ref(),
                                m.classes
                                    .iter()
                                    .map(|k| k.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        );
                    }
                }
                for class in &r.classes {
                    let spec = m.classes.iter().find(|k| k.name == *class.get_ref());
                    if spec.is_some_and(|k| k.category.is_none()) {
                        c.push(
                            Some(class.span()),
                            None,
                            Some(&field),
                            format!(
                                "class `{}` has no `category` in {}: a hazard detector's classes must raise one",
                                class.get_ref(),
                                m.manifest_path.display()
                            ),
                        );
                    }
                }
            }
            None if raw.models.get_ref().contains_key(model) => {} // reported above
            None => c.push(
                Some(r.model.span()),
                None,
                Some(&format!("{field}.model")),
                format!("no model `{model}` in [detect.models]"),
            ),
        }
        let names = |v: &[Spanned<String>]| v.iter().map(|s| s.get_ref().clone()).collect();
        detectors.insert(
            kind,
            DetectorRoute {
                model: model.clone(),
                classes: names(&r.classes),
                vehicle_classes: names(&r.vehicle_classes),
                person_classes: names(&r.person_classes),
            },
        );
    }
    let provider = match &raw.provider {
        Some(p) => match p.get_ref().parse::<ExecutionProvider>() {
            Ok(p) => p,
            Err(message) => {
                c.push(Some(p.span()), None, Some("detect.provider"), message);
                ExecutionProvider::Cpu
            }
        },
        None => ExecutionProvider::Cpu,
    };
    // The analysis frame size of ingest must equal the model's input size.
    let model = used_model.as_ref().and_then(|(name, span)| {
        manifests
            .get(name)
            .map(|m| (name.clone(), span.clone(), m.clone()))
    });
    if let Some((name, span, m)) = &model
        && (ingest.analysis_width, ingest.analysis_height) != (m.input_width, m.input_height)
    {
        let at = if raw_ingest.analysis_width.span().is_empty() {
            span.clone()
        } else {
            raw_ingest.analysis_width.span()
        };
        c.push(
            Some(at),
            None,
            Some("ingest.analysis_width"),
            format!(
                "the analysis frame size {}×{} must equal the input size {}×{} of model `{name}` ({}): set [ingest] analysis_width = {} and analysis_height = {}",
                ingest.analysis_width,
                ingest.analysis_height,
                m.input_width,
                m.input_height,
                m.manifest_path.display(),
                m.input_width,
                m.input_height
            ),
        );
    }
    let tracking = TrackerSettings {
        confirm: secs(&raw.confirm_s, 6.0, "detect.confirm_s", c),
        min_hits: count(&raw.confirm_min_samples, 3, "detect.confirm_min_samples", c),
        max_gap: secs(&raw.max_gap_s, 10.0, "detect.max_gap_s", c),
        forget: secs(&raw.forget_s, 600.0, "detect.forget_s", c),
        realert: raw.realert.unwrap_or(true),
        iou_match: match &raw.iou_match {
            Some(v) if !(v.get_ref() > &0.0 && v.get_ref() <= &1.0) => {
                c.push(
                    Some(v.span()),
                    None,
                    Some("detect.iou_match"),
                    "must be in (0, 1]",
                );
                0.3
            }
            Some(v) => *v.get_ref(),
            None => 0.3,
        },
        centre_match: 0.5,
    };
    let night = NightHours {
        start_hour: hour(&raw.night_start_hour, 22, "detect.night_start_hour", c),
        end_hour: hour(&raw.night_end_hour, 6, "detect.night_end_hour", c),
        utc_offset_minutes,
    };
    let mqtt = raw.mqtt.as_ref().map(|m| MqttSettings {
        host: m.host.clone().unwrap_or_else(|| "127.0.0.1".to_owned()),
        port: m.port.unwrap_or(1883),
        topic_prefix: m.topic_prefix.as_ref().map_or_else(
            || "sitcenter".to_owned(),
            |t| t.get_ref().trim_end_matches('/').to_owned(),
        ),
        client_id: m.client_id.clone(),
    });
    if let Some(t) = raw.mqtt.as_ref().and_then(|m| m.topic_prefix.as_ref())
        && (t.get_ref().is_empty() || t.get_ref().contains(['+', '#']))
    {
        c.push(
            Some(t.span()),
            None,
            Some("detect.mqtt.topic_prefix"),
            "must be a non-empty topic without wildcards (`+`, `#`)",
        );
    }
    let settings = DetectSettings {
        model_name: model.as_ref().map(|m| m.0.clone()).unwrap_or_default(),
        manifest: model.map(|m| m.2)?,
        detectors,
        provider,
        max_batch: count(&raw.max_batch, 8, "detect.max_batch", c) as usize,
        max_wait: Duration::from_millis(u64::from(
            raw.max_wait_ms.as_ref().map_or(20, |v| *v.get_ref()),
        )),
        workers: count(&raw.workers, 1, "detect.workers", c) as usize,
        intra_threads: count(&raw.intra_threads, 1, "detect.intra_threads", c) as usize,
        queue_capacity: count(&raw.queue_capacity, 64, "detect.queue_capacity", c) as usize,
        tracking,
        night,
        evidence_dir: dir.join(
            raw.evidence_dir
                .as_ref()
                .map_or("evidence", |d| d.get_ref().as_str()),
        ),
        parking_category: category(
            &raw.parking_category,
            "parking_violation",
            "detect.parking_category",
            c,
        ),
        restricted_category: category(
            &raw.restricted_category,
            "restricted_area",
            "detect.restricted_category",
            c,
        ),
        recent_events: count(&raw.recent_events, 200, "detect.recent_events", c) as usize,
        mqtt,
    };
    (c.errors.len() == before).then_some(settings)
}

/// Every detector a camera lists must be routed in `[detect.detectors]`.
pub(super) fn check_camera_detectors(
    cameras: &[CameraConfig],
    detect: &DetectSettings,
    cameras_file: &Path,
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for camera in cameras {
        for name in &camera.detectors {
            if !detect.detectors.contains_key(name) {
                let line = camera
                    .defined_at
                    .rsplit(':')
                    .next()
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                errors.push(ConfigError {
                    file: cameras_file.to_path_buf(),
                    line,
                    column: 1,
                    camera: Some(camera.id.to_string()),
                    field: Some("detectors".to_owned()),
                    message: format!(
                        "detector `{name}` has no [detect.detectors.{name}] in site.toml (no model serves it)"
                    ),
                });
            }
        }
    }
    errors
}

/// With a registry, every category the detectors can raise must be one of its incident
/// categories (else confirmed events could never become appeals).
pub(super) fn check_categories(
    detect: &DetectSettings,
    incidents: &crate::config::IncidentsConfig,
    site_file: &Path,
) -> Vec<ConfigError> {
    let mut needed: Vec<(String, String)> = Vec::new();
    for (name, route) in &detect.detectors {
        for class in &route.classes {
            if let Some(category) = detect
                .manifest
                .classes
                .iter()
                .find(|c| c.name == *class)
                .and_then(|c| c.category.as_ref())
            {
                needed.push((
                    format!("detect.detectors.{name}"),
                    category.as_str().to_owned(),
                ));
            }
        }
        if !route.vehicle_classes.is_empty() {
            needed.push((
                "detect.parking_category".to_owned(),
                detect.parking_category.as_str().to_owned(),
            ));
        }
        if !route.person_classes.is_empty() {
            needed.push((
                "detect.restricted_category".to_owned(),
                detect.restricted_category.as_str().to_owned(),
            ));
        }
    }
    needed
        .into_iter()
        .filter(|(_, code)| incidents.category(code).is_none())
        .map(|(field, code)| ConfigError {
            file: site_file.to_path_buf(),
            line: 0,
            column: 0,
            camera: None,
            field: Some(field),
            message: format!(
                "raises category `{code}`, which the registry's incident rules do not have (add it to the incidents file)"
            ),
        })
        .collect()
}
