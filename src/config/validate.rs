//! Raw files → validated [`SiteConfig`], collecting every problem before giving up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use geo::{Validation, coord};
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::error::{Collector, ConfigError, ConfigErrors};
use super::raw::{RawCamera, RawDefaults, RawIngest, RawSampling, RawSecretsFile, RawSiteFile};
use super::{
    Bounds, CalibrationPoint, CameraConfig, Credentials, HttpSettings, IngestSettings,
    KNOWN_DETECTORS, Sampling, SamplingMode, SiteConfig, Transport, ZONE_KINDS, Zone,
};
use crate::domain::{CameraId, Position};

const SITE_FILE: &str = "site.toml";
const DEFAULT_CAMERAS_FILE: &str = "cameras.toml";
/// Environment variable prefix that overrides a secrets-file credential:
/// `SITCENTER_CREDENTIALS_<KEY>=user:password` (key upper-cased, `-` → `_`).
pub const CREDENTIALS_ENV_PREFIX: &str = "SITCENTER_CREDENTIALS_";

pub(super) fn load_site(dir: &Path) -> Result<SiteConfig, ConfigErrors> {
    let site_path = dir.join(SITE_FILE);
    let source = read(&site_path)?;
    let mut collector = Collector::new(&site_path, &source);
    let (table, parse_errors) = DeTable::parse_recoverable(&source);
    for error in &parse_errors {
        collector.push_toml(error, None);
    }
    if !parse_errors.is_empty() {
        return Err(ConfigErrors(collector.errors));
    }
    let raw = match RawSiteFile::deserialize(toml::de::Deserializer::from(table)) {
        Ok(raw) => raw,
        Err(error) => {
            collector.push_toml(&error, None);
            return Err(ConfigErrors(collector.errors));
        }
    };

    let name = raw.site.name.get_ref().trim().to_owned();
    if name.is_empty() {
        collector.push(
            Some(raw.site.name.span()),
            None,
            Some("site.name"),
            "is empty",
        );
    }
    let bounds_raw = raw.site.bounds.get_ref();
    let bounds = Bounds {
        south: bounds_raw.south,
        west: bounds_raw.west,
        north: bounds_raw.north,
        east: bounds_raw.east,
    };
    let bounds_ok = bounds.south < bounds.north
        && bounds.west < bounds.east
        && (-90.0..=90.0).contains(&bounds.south)
        && (-90.0..=90.0).contains(&bounds.north)
        && (-180.0..=180.0).contains(&bounds.west)
        && (-180.0..=180.0).contains(&bounds.east);
    if !bounds_ok {
        collector.push(
            Some(raw.site.bounds.span()),
            None,
            Some("site.bounds"),
            "must have south < north within -90..90 and west < east within -180..180",
        );
    }
    let ingest = ingest_settings(&raw.ingest, dir, &mut collector);
    let listen = raw.http.listen.get_ref();
    let http = match listen.parse::<SocketAddr>() {
        Ok(listen) => Some(HttpSettings { listen }),
        Err(_) => {
            collector.push(
                Some(raw.http.listen.span()),
                None,
                Some("http.listen"),
                format!("`{listen}` is not an address:port such as 127.0.0.1:8080"),
            );
            None
        }
    };
    let registry = raw
        .registry
        .as_ref()
        .map(|r| registry_settings(r, dir, &mut collector));
    let cameras_file = dir.join(
        raw.site
            .cameras_file
            .as_ref()
            .map_or(DEFAULT_CAMERAS_FILE, |f| f.get_ref().as_str()),
    );
    let secrets_file = raw
        .site
        .secrets_file
        .as_ref()
        .map(|f| dir.join(f.get_ref()));
    let mut errors = collector.errors;

    let secrets = match &secrets_file {
        Some(path) => match load_secrets(path) {
            Ok(secrets) => secrets,
            Err(mut more) => {
                errors.append(&mut more.0);
                RawSecretsFile::default()
            }
        },
        None => RawSecretsFile::default(),
    };
    // With broken bounds every camera would be "outside": say it once, above.
    let camera_bounds = bounds_ok.then_some(&bounds);
    let cameras = match load_cameras(&cameras_file, camera_bounds, &secrets, &ingest) {
        Ok(cameras) => cameras,
        Err(mut more) => {
            errors.append(&mut more.0);
            Vec::new()
        }
    };
    match http {
        Some(http) if errors.is_empty() => Ok(SiteConfig {
            name,
            city: raw.site.city,
            dir: dir.to_path_buf(),
            cameras_file,
            secrets_file,
            bounds,
            ingest,
            http,
            registry: registry.flatten(),
            cameras,
        }),
        _ => Err(ConfigErrors(errors)),
    }
}

pub(super) fn reload_cameras(site: &SiteConfig) -> Result<Vec<CameraConfig>, ConfigErrors> {
    let secrets = match &site.secrets_file {
        Some(path) => load_secrets(path)?,
        None => RawSecretsFile::default(),
    };
    load_cameras(
        &site.cameras_file,
        Some(&site.bounds),
        &secrets,
        &site.ingest,
    )
}

fn read(path: &Path) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(path).map_err(|error| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            camera: None,
            field: None,
            message: format!("cannot read: {error}"),
        }])
    })
}

fn seconds(value: &Spanned<f64>, field: &str, min: f64, c: &mut Collector<'_>) -> Duration {
    let v = *value.get_ref();
    if !v.is_finite() || v < min {
        c.push(
            Some(value.span()),
            None,
            Some(field),
            format!("must be a number of seconds ≥ {min}, got {v}"),
        );
        return Duration::ZERO;
    }
    Duration::from_secs_f64(v)
}

fn positive(value: &Spanned<u32>, field: &str, c: &mut Collector<'_>) -> u32 {
    let v = *value.get_ref();
    if v == 0 {
        c.push(Some(value.span()), None, Some(field), "must be at least 1");
    }
    v
}

fn ingest_settings(raw: &RawIngest, dir: &Path, c: &mut Collector<'_>) -> IngestSettings {
    let settings = IngestSettings {
        max_concurrent_connects: positive(
            &raw.max_concurrent_connects,
            "ingest.max_concurrent_connects",
            c,
        ) as usize,
        connect_timeout: seconds(&raw.connect_timeout_s, "ingest.connect_timeout_s", 0.1, c),
        stall_timeout: seconds(&raw.stall_timeout_s, "ingest.stall_timeout_s", 0.1, c),
        backoff_initial: seconds(&raw.backoff_initial_s, "ingest.backoff_initial_s", 0.01, c),
        backoff_max: seconds(&raw.backoff_max_s, "ingest.backoff_max_s", 0.01, c),
        frame_queue_capacity: positive(&raw.frame_queue_capacity, "ingest.frame_queue_capacity", c)
            as usize,
        analysis_width: positive(&raw.analysis_width, "ingest.analysis_width", c),
        analysis_height: positive(&raw.analysis_height, "ingest.analysis_height", c),
        pipelines_dir: raw.pipelines_dir.as_ref().map(|d| dir.join(d.get_ref())),
        reload_poll: seconds(&raw.reload_poll_s, "ingest.reload_poll_s", 0.1, c),
    };
    if settings.backoff_max < settings.backoff_initial {
        c.push(
            Some(raw.backoff_max_s.span()),
            None,
            Some("ingest.backoff_max_s"),
            "must not be smaller than ingest.backoff_initial_s",
        );
    }
    if let Some(pipelines_dir) = &raw.pipelines_dir
        && !dir.join(pipelines_dir.get_ref()).is_dir()
    {
        c.push(
            Some(pipelines_dir.span()),
            None,
            Some("ingest.pipelines_dir"),
            format!("`{}` is not a directory", pipelines_dir.get_ref()),
        );
    }
    settings
}

fn registry_settings(
    raw: &super::raw::RawRegistry,
    dir: &Path,
    c: &mut Collector<'_>,
) -> Option<super::RegistrySettings> {
    let before = c.errors.len();
    let url = raw.database_url.get_ref().trim();
    if url.is_empty() {
        c.push(
            Some(raw.database_url.span()),
            None,
            Some("registry.database_url"),
            "is empty",
        );
    }
    let escalation_period = seconds(
        &raw.escalation_period_s,
        "registry.escalation_period_s",
        1.0,
        c,
    );
    let incidents = match &raw.incidents_file {
        Some(file) => match crate::incidents::IncidentsConfig::load(&dir.join(file.get_ref())) {
            Ok(config) => Some(std::sync::Arc::new(config)),
            Err(error) => {
                c.push(
                    Some(file.span()),
                    None,
                    Some("registry.incidents_file"),
                    error.to_string(),
                );
                None
            }
        },
        None => None,
    };
    (c.errors.len() == before).then(|| super::RegistrySettings {
        database_url: url.to_owned(),
        incidents,
        escalation_period,
        open311: raw.open311.clone(),
    })
}

fn load_secrets(path: &Path) -> Result<RawSecretsFile, ConfigErrors> {
    let source = read(path)?;
    toml::from_str::<RawSecretsFile>(&source).map_err(|error| {
        let mut c = Collector::new(path, &source);
        c.push_toml(&error, None);
        ConfigErrors(c.errors)
    })
}

fn load_cameras(
    path: &Path,
    bounds: Option<&Bounds>,
    secrets: &RawSecretsFile,
    ingest: &IngestSettings,
) -> Result<Vec<CameraConfig>, ConfigErrors> {
    let source = read(path)?;
    let mut c = Collector::new(path, &source);
    let (root, parse_errors) = DeTable::parse_recoverable(&source);
    for error in &parse_errors {
        c.push_toml(error, None);
    }
    let known_pipelines = crate::ingest::template_names(ingest.pipelines_dir.as_deref());
    let mut raw_defaults = RawDefaults::default();
    let mut raw_cameras = Vec::new();
    for (key, value) in root.into_inner() {
        match key.get_ref().as_ref() {
            "defaults" => match RawDefaults::deserialize(ValueDeserializer::from(value)) {
                Ok(d) => raw_defaults = d,
                Err(error) => c.push_toml(&error, None),
            },
            "camera" => {
                let span = value.span();
                match value.into_inner() {
                    DeValue::Array(items) => raw_cameras.extend(items),
                    _ => c.push(
                        Some(span),
                        None,
                        Some("camera"),
                        "must be an array of tables: write each camera as [[camera]]",
                    ),
                }
            }
            other => c.push(
                Some(key.span()),
                None,
                Some(other),
                "unknown key: expected `defaults` or `camera`",
            ),
        }
    }
    let defaults = check_defaults(&raw_defaults, &known_pipelines, &mut c);

    let mut cameras = Vec::with_capacity(raw_cameras.len());
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    for item in raw_cameras {
        let span = item.span();
        let id_hint = camera_id_hint(item.get_ref());
        let raw = match RawCamera::deserialize(ValueDeserializer::from(item)) {
            Ok(raw) => raw,
            Err(error) => {
                c.push_toml(&error, id_hint.as_deref());
                continue;
            }
        };
        let line = c.line_of(span.start);
        let id = raw.id.get_ref().clone();
        if let Some(first_line) = first_seen.get(&id) {
            c.push(
                Some(raw.id.span()),
                Some(&id),
                Some("id"),
                format!("duplicate camera id (first defined at line {first_line})"),
            );
            continue;
        }
        first_seen.insert(id.clone(), line);
        let camera = CameraCheck {
            c: &mut c,
            id: &id,
            bounds,
            secrets,
            defaults: &defaults,
            known_pipelines: &known_pipelines,
        }
        .check(raw, format!("{}:{line}", path.display()));
        if let Some(camera) = camera {
            cameras.push(camera);
        }
    }
    if c.errors.is_empty() {
        Ok(cameras)
    } else {
        Err(ConfigErrors(c.errors))
    }
}

fn camera_id_hint(value: &DeValue<'_>) -> Option<String> {
    let DeValue::Table(table) = value else {
        return None;
    };
    table
        .iter()
        .find_map(|(k, v)| match (k.get_ref().as_ref(), v.get_ref()) {
            ("id", DeValue::String(s)) => Some(s.to_string()),
            _ => None,
        })
}

/// `[defaults]`, checked once and resolved to the values cameras inherit.
struct Defaults {
    detectors: Vec<String>,
    sampling: Sampling,
    transport: Transport,
    pipeline: Option<String>,
}

fn check_defaults(
    raw: &RawDefaults,
    known_pipelines: &[String],
    c: &mut Collector<'_>,
) -> Defaults {
    Defaults {
        detectors: raw
            .detectors
            .as_ref()
            .map(|d| check_detectors(d, None, "defaults.detectors", c))
            .unwrap_or_default(),
        sampling: raw.sampling.as_ref().map_or_else(Sampling::default, |s| {
            check_sampling(s, Sampling::default(), None, "defaults.sampling", c)
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
) -> Vec<String> {
    let mut out = Vec::new();
    for detector in detectors {
        let name = detector.get_ref();
        if KNOWN_DETECTORS.contains(&name.as_str()) {
            out.push(name.clone());
        } else {
            c.push(
                Some(detector.span()),
                camera,
                Some(field),
                format!(
                    "unknown detector `{name}` (known: {})",
                    KNOWN_DETECTORS.join(", ")
                ),
            );
        }
    }
    out
}

fn check_sampling(
    raw: &RawSampling,
    base: Sampling,
    camera: Option<&str>,
    field: &str,
    c: &mut Collector<'_>,
) -> Sampling {
    let mut sampling = base;
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
) -> String {
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
    name.clone()
}

struct CameraCheck<'c, 'a> {
    c: &'c mut Collector<'a>,
    id: &'c str,
    bounds: Option<&'c Bounds>,
    secrets: &'c RawSecretsFile,
    defaults: &'c Defaults,
    known_pipelines: &'c [String],
}

impl CameraCheck<'_, '_> {
    fn err(&mut self, span: std::ops::Range<usize>, field: &str, message: impl Into<String>) {
        self.c.push(Some(span), Some(self.id), Some(field), message);
    }

    fn check(mut self, raw: RawCamera, defined_at: String) -> Option<CameraConfig> {
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
            Some(s) => check_sampling(s, self.defaults.sampling, Some(self.id), "sampling", self.c),
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
            if !ZONE_KINDS.contains(&zone.kind.get_ref().as_str()) {
                self.err(
                    zone.kind.span(),
                    &format!("{field}.kind"),
                    format!(
                        "unknown zone kind `{}` (known: {})",
                        zone.kind.get_ref(),
                        ZONE_KINDS.join(", ")
                    ),
                );
            }
            self.check_polygon(&zone.polygon, &format!("{field}.polygon"));
            zones.push(Zone {
                name: zone.name.get_ref().clone(),
                kind: zone.kind.get_ref().clone(),
                polygon: zone.polygon.get_ref().clone(),
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
        let name = key.get_ref();
        let env_name = format!(
            "{CREDENTIALS_ENV_PREFIX}{}",
            name.to_ascii_uppercase().replace(['-', '.'], "_")
        );
        if let Ok(value) = std::env::var(&env_name) {
            return match value.split_once(':') {
                Some((user, password)) => Some(Credentials {
                    user: user.to_owned(),
                    password: password.to_owned(),
                }),
                None => {
                    self.err(
                        key.span(),
                        "credentials",
                        format!("environment variable {env_name} must be `user:password`"),
                    );
                    None
                }
            };
        }
        match self.secrets.credentials.get(name) {
            Some(c) => Some(Credentials {
                user: c.user.clone(),
                password: c.password.clone(),
            }),
            None => {
                self.err(
                    key.span(),
                    "credentials",
                    format!("no credentials `{name}` in the secrets file or in {env_name}"),
                );
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

fn default_pipeline(url: &Option<url::Url>) -> String {
    match url {
        Some(url) if url.scheme() == "file" => "file-h264".to_owned(),
        _ => "rtsp-h264".to_owned(),
    }
}
