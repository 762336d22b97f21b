//! One camera's table (and the `[defaults]` it inherits) → [`CameraConfig`],
//! every problem recorded with its span, camera id and field.

use std::time::Duration;

use geo::{Validation, coord};
use toml::Spanned;

use super::error::Collector;
use super::raw::{RawCamera, RawDefaults, RawSampling, RawSecretsFile};
use super::{
    Bounds, BuiltinPipeline, CalibrationPoint, CameraConfig, Credentials, DetectorKind,
    PipelineName, QuietHours, Sampling, SamplingMode, Transport, Zone, ZoneKind,
};
use crate::domain::NightHours;
use crate::domain::{CameraId, Position};

/// `[defaults]`, checked once and resolved to the values cameras inherit.
pub(super) struct Defaults {
    detectors: Vec<DetectorKind>,
    sampling: Sampling,
    transport: Transport,
    pipeline: Option<PipelineName>,
    /// The site's (`[site] utc_offset_minutes`), for quiet hours.
    utc_offset_minutes: i32,
}

pub(super) fn check_defaults(
    raw: &RawDefaults,
    known_pipelines: &[String],
    utc_offset_minutes: i32,
    c: &mut Collector<'_>,
) -> Defaults {
    Defaults {
        utc_offset_minutes,
        detectors: raw
            .detectors
            .as_ref()
            .map(|d| check_detectors(d, None, "defaults.detectors", c))
            .unwrap_or_default(),
        sampling: raw.sampling.as_ref().map_or_else(Sampling::default, |s| {
            check_sampling(
                s,
                Sampling::default(),
                utc_offset_minutes,
                None,
                "defaults.sampling",
                c,
            )
        }),
        transport: raw.transport.as_ref().map_or(Transport::Tcp, |t| {
            check_transport(t, None, "defaults.transport", c)
        }),
        pipeline: raw
            .pipeline
            .as_ref()
            .map(|p| check_pipeline(p, known_pipelines, None, "defaults.pipeline", c)),
    }
}

fn check_detectors(
    detectors: &[Spanned<String>],
    camera: Option<&str>,
    field: &str,
    c: &mut Collector<'_>,
) -> Vec<DetectorKind> {
    let mut out = Vec::new();
    for detector in detectors {
        match DetectorKind::parse(detector.get_ref()) {
            Ok(kind) => out.push(kind),
            Err(message) => c.push(Some(detector.span()), camera, Some(field), message),
        }
    }
    out
}

fn check_sampling(
    raw: &RawSampling,
    base: Sampling,
    utc_offset_minutes: i32,
    camera: Option<&str>,
    field: &str,
    c: &mut Collector<'_>,
) -> Sampling {
    let mut sampling = base;
    sampling.quiet = check_quiet(raw, base.quiet, utc_offset_minutes, camera, field, c);
    if let Some(mode) = &raw.mode {
        match mode.get_ref().as_str() {
            "keyframes" => sampling.mode = SamplingMode::Keyframes,
            "all" => sampling.mode = SamplingMode::All,
            other => c.push(
                Some(mode.span()),
                camera,
                Some(&format!("{field}.mode")),
                format!("unknown sampling mode `{other}` (expected `keyframes` or `all`)"),
            ),
        }
    }
    if let Some(interval) = &raw.interval_s {
        let v = *interval.get_ref();
        if v.is_finite() && v > 0.0 && v <= 3600.0 {
            sampling.interval = Duration::from_secs_f64(v);
        } else {
            c.push(
                Some(interval.span()),
                camera,
                Some(&format!("{field}.interval_s")),
                format!("must be in (0, 3600] seconds, got {v}"),
            );
        }
    }
    sampling
}

/// `quiet_hours` and `quiet_interval_s`, each inherited from `base` when not given.
fn check_quiet(
    raw: &RawSampling,
    base: Option<QuietHours>,
    utc_offset_minutes: i32,
    camera: Option<&str>,
    field: &str,
    c: &mut Collector<'_>,
) -> Option<QuietHours> {
    if raw.quiet_hours.is_none() && raw.quiet_interval_s.is_none() {
        return base;
    }
    let hours = match &raw.quiet_hours {
        Some(hours) => match hours.get_ref().as_slice() {
            &[start_hour, end_hour]
                if start_hour < 24 && end_hour < 24 && start_hour != end_hour =>
            {
                Some(NightHours {
                    start_hour,
                    end_hour,
                    utc_offset_minutes,
                })
            }
            _ => {
                c.push(
                    Some(hours.span()),
                    camera,
                    Some(&format!("{field}.quiet_hours")),
                    "must be [from, to]: two different local hours 0–23 (e.g. [22, 6] for 22:00–06:00)",
                );
                return base;
            }
        },
        None => base.map(|q| q.hours),
    };
    let interval = match &raw.quiet_interval_s {
        Some(v) if v.get_ref().is_finite() && *v.get_ref() > 0.0 && *v.get_ref() <= 3600.0 => {
            Some(Duration::from_secs_f64(*v.get_ref()))
        }
        Some(v) => {
            c.push(
                Some(v.span()),
                camera,
                Some(&format!("{field}.quiet_interval_s")),
                format!("must be in (0, 3600] seconds, got {}", v.get_ref()),
            );
            return base;
        }
        None => base.map(|q| q.interval),
    };
    // One without the other: reported at the one that was given.
    let (given, span, missing) = match (hours, interval) {
        (Some(hours), Some(interval)) => return Some(QuietHours { hours, interval }),
        (None, _) => (
            "quiet_interval_s",
            raw.quiet_interval_s.as_ref().map(|v| v.span()),
            "quiet_hours",
        ),
        (_, None) => (
            "quiet_hours",
            raw.quiet_hours.as_ref().map(|v| v.span()),
            "quiet_interval_s",
        ),
    };
    c.push(
        span,
        camera,
        Some(&format!("{field}.{given}")),
        format!("needs `{missing}` (here or in [defaults].sampling)"),
    );
    None
}

fn check_transport(
    raw: &Spanned<String>,
    camera: Option<&str>,
    field: &str,
    c: &mut Collector<'_>,
) -> Transport {
    match raw.get_ref().as_str() {
        "tcp" => Transport::Tcp,
        "udp" => Transport::Udp,
        "auto" => Transport::Auto,
        other => {
            c.push(
                Some(raw.span()),
                camera,
                Some(field),
                format!("unknown transport `{other}` (expected `tcp`, `udp` or `auto`)"),
            );
            Transport::Tcp
        }
    }
}

fn check_pipeline(
    raw: &Spanned<String>,
    known: &[String],
    camera: Option<&str>,
    field: &str,
    c: &mut Collector<'_>,
) -> PipelineName {
    let name = raw.get_ref();
    if !known.iter().any(|k| k == name) {
        c.push(
            Some(raw.span()),
            camera,
            Some(field),
            format!(
                "unknown pipeline template `{name}` (known: {})",
                known.join(", ")
            ),
        );
    }
    PipelineName::new(name)
}

pub(super) struct CameraCheck<'c, 'a> {
    pub(super) c: &'c mut Collector<'a>,
    pub(super) id: &'c str,
    pub(super) bounds: Option<&'c Bounds>,
    pub(super) secrets: &'c RawSecretsFile,
    pub(super) defaults: &'c Defaults,
    pub(super) known_pipelines: &'c [String],
}

impl CameraCheck<'_, '_> {
    fn err(&mut self, span: std::ops::Range<usize>, field: &str, message: impl Into<String>) {
        self.c.push(Some(span), Some(self.id), Some(field), message);
    }

    pub(super) fn check(mut self, raw: RawCamera, defined_at: String) -> Option<CameraConfig> {
        let before = self.c.errors.len();
        let id = raw.id.get_ref();
        if id.is_empty()
            || !id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
        {
            self.err(
                raw.id.span(),
                "id",
                "must be non-empty and use only letters, digits, `-`, `_` and `.`",
            );
        }
        if raw.name.get_ref().trim().is_empty() {
            self.err(raw.name.span(), "name", "is empty");
        }
        let url = self.check_url(&raw.url);
        let credentials = raw
            .credentials
            .as_ref()
            .and_then(|key| self.credentials(key));
        let (lat, lon) = (*raw.lat.get_ref(), *raw.lon.get_ref());
        if let Some(b) = self.bounds
            && !b.contains(lat, lon)
        {
            self.err(
                raw.lat.span().start.min(raw.lon.span().start)..raw.lon.span().end,
                "lat/lon",
                format!(
                    "({lat}, {lon}) lies outside the site (lat {}..{}, lon {}..{})",
                    b.south, b.north, b.west, b.east
                ),
            );
        }
        if let Some(heading) = &raw.heading_deg {
            let h = *heading.get_ref();
            if !(0.0..360.0).contains(&h) {
                self.err(
                    heading.span(),
                    "heading_deg",
                    format!("must be in [0, 360), got {h}"),
                );
            }
        }
        let detectors = match &raw.detectors {
            Some(list) => check_detectors(list, Some(self.id), "detectors", self.c),
            None => self.defaults.detectors.clone(),
        };
        let sampling = match &raw.sampling {
            Some(s) => check_sampling(
                s,
                self.defaults.sampling,
                self.defaults.utc_offset_minutes,
                Some(self.id),
                "sampling",
                self.c,
            ),
            None => self.defaults.sampling,
        };
        let transport = match &raw.transport {
            Some(t) => check_transport(t, Some(self.id), "transport", self.c),
            None => self.defaults.transport,
        };
        let pipeline = match (&raw.pipeline, &self.defaults.pipeline) {
            (Some(p), _) => {
                check_pipeline(p, self.known_pipelines, Some(self.id), "pipeline", self.c)
            }
            (None, Some(p)) => p.clone(),
            (None, None) => default_pipeline(&url),
        };
        let mut zones = Vec::new();
        for (i, zone) in raw.zone.iter().enumerate() {
            let field = format!("zone[{i}]");
            let kind = match ZoneKind::parse(zone.kind.get_ref()) {
                Ok(kind) => Some(kind),
                Err(message) => {
                    self.err(zone.kind.span(), &format!("{field}.kind"), message);
                    None
                }
            };
            self.check_polygon(&zone.polygon, &format!("{field}.polygon"));
            let named = zone.kind.get_ref();
            let mut max_dwell = Zone::DEFAULT_MAX_DWELL;
            if let Some(dwell) = &zone.max_dwell_s {
                let v = *dwell.get_ref();
                if kind.is_some_and(|k| k != ZoneKind::NoParking) {
                    self.err(
                        dwell.span(),
                        &format!("{field}.max_dwell_s"),
                        format!("applies to `no_parking` zones only, this zone is `{named}`"),
                    );
                } else if v.is_finite() && v > 0.0 && v <= 86_400.0 {
                    max_dwell = Duration::from_secs_f64(v);
                } else {
                    self.err(
                        dwell.span(),
                        &format!("{field}.max_dwell_s"),
                        format!("must be in (0, 86400] seconds, got {v}"),
                    );
                }
            }
            let mut night_only = true;
            if let Some(night) = &zone.night_only {
                if kind.is_none_or(|k| k == ZoneKind::Restricted) {
                    night_only = *night.get_ref();
                } else {
                    self.err(
                        night.span(),
                        &format!("{field}.night_only"),
                        format!("applies to `restricted` zones only, this zone is `{named}`"),
                    );
                }
            }
            let Some(kind) = kind else { continue };
            zones.push(Zone {
                name: zone.name.get_ref().clone(),
                kind,
                polygon: zone.polygon.get_ref().clone(),
                max_dwell,
                night_only,
            });
        }
        let mut masks = Vec::new();
        for (i, mask) in raw.mask.iter().enumerate() {
            self.check_polygon(&mask.polygon, &format!("mask[{i}].polygon"));
            masks.push(mask.polygon.get_ref().clone());
        }
        let calibration = self.check_calibration(&raw);
        if self.c.errors.len() != before {
            return None;
        }
        Some(CameraConfig {
            id: CameraId::new(id),
            name: raw.name.into_inner(),
            url: url?,
            credentials,
            location: Position { lat, lon },
            address: raw.address.into_inner(),
            district: raw.district,
            heading_deg: raw.heading_deg.map(Spanned::into_inner),
            detectors,
            sampling,
            transport,
            pipeline,
            zones,
            masks,
            calibration,
            defined_at,
        })
    }

    fn check_url(&mut self, raw: &Spanned<String>) -> Option<url::Url> {
        let text = raw.get_ref();
        let url = match url::Url::parse(text) {
            Ok(url) => url,
            Err(error) => {
                self.err(raw.span(), "url", format!("not a valid URL: {error}"));
                return None;
            }
        };
        if !matches!(url.scheme(), "rtsp" | "rtsps" | "rtspt" | "file") {
            self.err(
                raw.span(),
                "url",
                format!(
                    "scheme `{}` is not supported (expected rtsp, rtsps, rtspt or file)",
                    url.scheme()
                ),
            );
            return None;
        }
        if url.scheme() != "file" && url.host_str().is_none_or(str::is_empty) {
            self.err(raw.span(), "url", "has no host");
            return None;
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Never echo the URL here: it holds a secret.
            self.err(
                raw.span(),
                "url",
                "must not contain credentials; name them with `credentials = \"<key>\"` and put them in the secrets file or the environment",
            );
            return None;
        }
        Some(url)
    }

    fn credentials(&mut self, key: &Spanned<String>) -> Option<Credentials> {
        match super::credentials::lookup(key.get_ref(), self.secrets) {
            Ok(found) => Some(found),
            Err(message) => {
                self.err(key.span(), "credentials", message);
                None
            }
        }
    }

    fn check_polygon(&mut self, raw: &Spanned<Vec<[f64; 2]>>, field: &str) {
        let points = raw.get_ref();
        if points.len() < 3 {
            self.err(
                raw.span(),
                field,
                format!("needs at least 3 points, got {}", points.len()),
            );
            return;
        }
        if let Some(p) = points
            .iter()
            .find(|p| !(0.0..=1.0).contains(&p[0]) || !(0.0..=1.0).contains(&p[1]))
        {
            self.err(
                raw.span(),
                field,
                format!(
                    "point [{}, {}] is outside the image (coordinates are normalised 0..1)",
                    p[0], p[1]
                ),
            );
            return;
        }
        let ring: Vec<_> = points.iter().map(|p| coord! { x: p[0], y: p[1] }).collect();
        let polygon = geo::Polygon::new(geo::LineString::new(ring), vec![]);
        if let Err(problem) = polygon.check_validation() {
            self.err(raw.span(), field, format!("invalid polygon: {problem}"));
        }
    }

    fn check_calibration(&mut self, raw: &RawCamera) -> Vec<CalibrationPoint> {
        if raw.calibration.is_empty() {
            return Vec::new();
        }
        if raw.calibration.len() < 4 {
            let span = raw.calibration[0].image.span();
            self.err(
                span,
                "calibration",
                format!(
                    "needs at least 4 image↔map pairs, got {}",
                    raw.calibration.len()
                ),
            );
        }
        raw.calibration
            .iter()
            .map(|p| {
                let image = *p.image.get_ref();
                let map = *p.map.get_ref();
                if !(0.0..=1.0).contains(&image[0]) || !(0.0..=1.0).contains(&image[1]) {
                    self.err(
                        p.image.span(),
                        "calibration.image",
                        "image points are normalised 0..1",
                    );
                }
                if self.bounds.is_some_and(|b| !b.contains(map[0], map[1])) {
                    self.err(
                        p.map.span(),
                        "calibration.map",
                        "map point lies outside the site",
                    );
                }
                CalibrationPoint { image, map }
            })
            .collect()
    }
}

fn default_pipeline(url: &Option<url::Url>) -> PipelineName {
    match url {
        Some(url) if url.scheme() == "file" => BuiltinPipeline::FileH264.into(),
        _ => BuiltinPipeline::RtspH264.into(),
    }
}
