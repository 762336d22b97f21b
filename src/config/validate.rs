//! Raw files → validated [`SiteConfig`], collecting every problem before giving up.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::camera::{CameraCheck, check_defaults};
use super::error::{Collector, ConfigError, ConfigErrors};
use super::raw::{RawCamera, RawDefaults, RawIngest, RawSecretsFile, RawSiteFile};
use super::{Bounds, CameraConfig, HttpSettings, IngestSettings, SiteConfig};

const SITE_FILE: &str = "site.toml";
const DEFAULT_CAMERAS_FILE: &str = "cameras.toml";

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
    let utc_offset_minutes = match &raw.site.utc_offset_minutes {
        Some(v) if v.get_ref().abs() > 14 * 60 => {
            collector.push(
                Some(v.span()),
                None,
                Some("site.utc_offset_minutes"),
                "must be within ±840",
            );
            0
        }
        Some(v) => *v.get_ref(),
        None => super::DEFAULT_UTC_OFFSET_MINUTES,
    };
    let ingest = ingest_settings(&raw.ingest, dir, &mut collector);
    let http = http_settings(&raw.http, &mut collector);
    let detect = raw.detect.as_ref().and_then(|d| {
        super::detect::detect_settings(
            d,
            dir,
            &ingest,
            &raw.ingest,
            utc_offset_minutes,
            &mut collector,
        )
    });
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
    let mut secret_errors = Vec::new();
    let secrets = match &secrets_file {
        Some(path) => match load_secrets(path) {
            Ok(secrets) => secrets,
            Err(mut more) => {
                secret_errors.append(&mut more.0);
                RawSecretsFile::default()
            }
        },
        None => RawSecretsFile::default(),
    };
    let registry = raw
        .registry
        .as_ref()
        .map(|r| registry_settings(r, dir, &secrets, &mut collector));
    let mut errors = collector.errors;
    errors.append(&mut secret_errors);
    let (sensors, mut sensor_errors) = super::sensors::load(
        raw.sensors.as_ref(),
        raw.registry.is_some(),
        &site_path,
        &source,
        dir,
        &name,
        &secrets,
    );
    errors.append(&mut sensor_errors);
    let (telemetry, mut telemetry_errors) = super::telemetry::load(
        raw.telemetry.as_ref(),
        &site_path,
        &source,
        dir,
        &name,
        &secrets,
    );
    errors.append(&mut telemetry_errors);
    let telemetry = telemetry.map(|mut t| {
        t.utc_offset_minutes = utc_offset_minutes;
        t
    });
    if telemetry.is_some() && raw.registry.is_none() {
        errors.push(ConfigError {
            file: site_path.clone(),
            line: 0,
            column: 0,
            camera: None,
            field: Some("telemetry".into()),
            message: "[telemetry] needs [registry]: tracks are kept in its database".into(),
        });
    }
    // With broken bounds every camera would be "outside": say it once, above.
    let camera_bounds = bounds_ok.then_some(&bounds);
    let cameras = match load_cameras(
        &cameras_file,
        camera_bounds,
        &secrets,
        &ingest,
        utc_offset_minutes,
    ) {
        Ok(cameras) => cameras,
        Err(mut more) => {
            errors.append(&mut more.0);
            Vec::new()
        }
    };
    if let (Some(detect), Some(Some(registry))) = (&detect, &registry) {
        let defaults;
        let incidents = match &registry.incidents {
            Some(config) => config.as_ref(),
            None => {
                defaults = crate::config::IncidentsConfig::default();
                &defaults
            }
        };
        errors.extend(super::detect::check_categories(
            detect, incidents, &site_path,
        ));
    }
    if let Some(detect) = &detect {
        errors.extend(super::detect::check_camera_detectors(
            &cameras,
            detect,
            &cameras_file,
        ));
    }
    match http {
        Some(http) if errors.is_empty() => Ok(SiteConfig {
            name,
            city: raw.site.city,
            dir: dir.to_path_buf(),
            cameras_file,
            secrets_file,
            bounds,
            utc_offset_minutes,
            ingest,
            http,
            registry: registry.flatten(),
            detect,
            sensors,
            telemetry,
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
    let cameras = load_cameras(
        &site.cameras_file,
        Some(&site.bounds),
        &secrets,
        &site.ingest,
        site.utc_offset_minutes,
    )?;
    if let Some(detect) = &site.detect {
        let errors = super::detect::check_camera_detectors(&cameras, detect, &site.cameras_file);
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
    }
    Ok(cameras)
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

/// Longest `[ingest] receive_batch_ms`: beyond it what a high-bitrate stream sends in the
/// meantime can outgrow the socket's receive buffer and stall the camera's sender.
const RECEIVE_BATCH_MAX_MS: u32 = 500;
/// Longest `[ingest] receive_tick_ms`: every wake-up of a camera session waits up to a tick.
const RECEIVE_TICK_MAX_MS: u32 = 100;

fn at_most_ms(value: &Spanned<u32>, max: u32, field: &str, c: &mut Collector<'_>) -> Duration {
    let v = *value.get_ref();
    if v > max {
        c.push(
            Some(value.span()),
            None,
            Some(field),
            format!("must be 0–{max} milliseconds, got {v}"),
        );
        return Duration::ZERO;
    }
    Duration::from_millis(v.into())
}

fn positive(value: &Spanned<u32>, field: &str, c: &mut Collector<'_>) -> u32 {
    let v = *value.get_ref();
    if v == 0 {
        c.push(Some(value.span()), None, Some(field), "must be at least 1");
    }
    v
}

fn rtsp_backend(raw: &Spanned<String>, c: &mut Collector<'_>) -> super::RtspBackend {
    match raw.get_ref().as_str() {
        "shared-decoder" => super::RtspBackend::SharedDecoder,
        "pipeline" => super::RtspBackend::Pipeline,
        other => {
            c.push(
                Some(raw.span()),
                None,
                Some("ingest.rtsp_backend"),
                format!("unknown backend `{other}` (expected `shared-decoder` or `pipeline`)"),
            );
            super::RtspBackend::SharedDecoder
        }
    }
}

fn positive_number(value: &Spanned<f64>, field: &str, c: &mut Collector<'_>) -> f64 {
    let v = *value.get_ref();
    if !v.is_finite() || v <= 0.0 {
        c.push(
            Some(value.span()),
            None,
            Some(field),
            format!("must be a number > 0, got {v}"),
        );
        return 1.0;
    }
    v
}

fn ingest_settings(raw: &RawIngest, dir: &Path, c: &mut Collector<'_>) -> IngestSettings {
    let decoder_workers = match &raw.decoder_workers {
        Some(v) => positive(v, "ingest.decoder_workers", c).clamp(1, 64) as usize,
        None => super::default_decoder_workers(),
    };
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
        rtsp_backend: rtsp_backend(&raw.rtsp_backend, c),
        decoder_workers,
        decoder_queue_capacity: positive(
            &raw.decoder_queue_capacity,
            "ingest.decoder_queue_capacity",
            c,
        ) as usize,
        decode_budget_ms_per_s: match &raw.decode_budget_ms_per_s {
            Some(v) => positive_number(v, "ingest.decode_budget_ms_per_s", c),
            None => super::default_decode_budget_ms_per_s(decoder_workers),
        },
        keyframe_decode_ms: positive_number(
            &raw.keyframe_decode_ms,
            "ingest.keyframe_decode_ms",
            c,
        ),
        receive_batch: at_most_ms(
            &raw.receive_batch_ms,
            RECEIVE_BATCH_MAX_MS,
            "ingest.receive_batch_ms",
            c,
        ),
        receive_tick: at_most_ms(
            &raw.receive_tick_ms,
            RECEIVE_TICK_MAX_MS,
            "ingest.receive_tick_ms",
            c,
        ),
        receive_threads: match &raw.receive_threads {
            Some(v) => positive(v, "ingest.receive_threads", c).clamp(1, 64) as usize,
            None => super::default_receive_threads(),
        },
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
    secrets: &RawSecretsFile,
    c: &mut Collector<'_>,
) -> Option<super::RegistrySettings> {
    let before = c.errors.len();
    let database = super::database::database_settings(raw, secrets, c);
    let escalation_period = seconds(
        &raw.escalation_period_s,
        "registry.escalation_period_s",
        1.0,
        c,
    );
    let incidents = match &raw.incidents_file {
        Some(file) => match crate::config::IncidentsConfig::load(&dir.join(file.get_ref())) {
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
    let auth = super::auth::auth_settings(&raw.auth, c);
    (c.errors.len() == before).then(|| super::RegistrySettings {
        database,
        incidents,
        escalation_period,
        open311: raw.open311.clone(),
        auth,
    })
}

pub(super) fn load_secrets(path: &Path) -> Result<RawSecretsFile, ConfigErrors> {
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
    utc_offset_minutes: i32,
) -> Result<Vec<CameraConfig>, ConfigErrors> {
    let source = read(path)?;
    let mut c = Collector::new(path, &source);
    let (root, parse_errors) = DeTable::parse_recoverable(&source);
    for error in &parse_errors {
        c.push_toml(error, None);
    }
    let known_pipelines = super::PipelineTemplates::names_in(ingest.pipelines_dir.as_deref());
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
    let defaults = check_defaults(&raw_defaults, &known_pipelines, utc_offset_minutes, &mut c);

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

/// `[http]`: the listen address and the edge's limits, each within its documented range.
fn http_settings(raw: &super::raw::RawHttp, collector: &mut Collector) -> Option<HttpSettings> {
    let listen = raw.http_listen(collector)?;
    let mut http = HttpSettings::new(listen);
    let mut ranged =
        |value: &Option<Spanned<u32>>, field: &str, range: std::ops::RangeInclusive<u32>| {
            let v = value.as_ref()?;
            if range.contains(v.get_ref()) {
                Some(*v.get_ref())
            } else {
                collector.push(
                    Some(v.span()),
                    None,
                    Some(field),
                    format!(
                        "{} is out of range: {}–{}",
                        v.get_ref(),
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        };
    if let Some(s) = ranged(
        &raw.header_read_timeout_s,
        "http.header_read_timeout_s",
        1..=300,
    ) {
        http.header_read_timeout = Duration::from_secs(s.into());
    }
    if let Some(n) = ranged(&raw.max_connections, "http.max_connections", 1..=65_536) {
        http.max_connections = n as usize;
    }
    if let Some(n) = ranged(
        &raw.max_connections_per_address,
        "http.max_connections_per_address",
        1..=65_536,
    ) {
        http.max_connections_per_address = n as usize;
    }
    if let Some(n) = ranged(
        &raw.writes_per_minute_per_address,
        "http.writes_per_minute_per_address",
        1..=1_000_000,
    ) {
        http.writes_per_minute_per_address = n;
    }
    if let Some(n) = ranged(
        &raw.writes_per_minute_per_key,
        "http.writes_per_minute_per_key",
        1..=1_000_000,
    ) {
        http.writes_per_minute_per_key = n;
    }
    http.map_tiles_url = raw.map_tiles_url.as_ref().and_then(|raw_url| {
        let text = raw_url.get_ref();
        let parsed = url::Url::parse(text).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https")
                && ["{z}", "{x}", "{y}"].iter().all(|p| text.contains(p))
        });
        if parsed.is_none() {
            collector.push(
                Some(raw_url.span()),
                None,
                Some("http.map_tiles_url"),
                format!(
                    "`{text}` is not an http(s) tile URL with {{z}}, {{x}} and {{y}}, such as https://tiles.example/{{z}}/{{x}}/{{y}}.png"
                ),
            );
        }
        parsed
    });
    if let Some(hosts) = &raw.allowed_hosts {
        for host in hosts.get_ref() {
            let name = host.trim().to_ascii_lowercase();
            let valid = !name.is_empty()
                && name.len() <= 253
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
            if valid {
                http.allowed_hosts.push(name);
            } else {
                collector.push(
                    Some(hosts.span()),
                    None,
                    Some("http.allowed_hosts"),
                    format!("`{host}` is not a host name such as sitcenter.astana.kz (no port, no scheme)"),
                );
            }
        }
    }
    Some(http)
}
