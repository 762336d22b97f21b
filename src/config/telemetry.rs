//! `[telemetry]` of `site.toml` and the vehicle registry it names (default `vehicles.toml`)
//! → [`TelemetrySettings`]: listen address per protocol, limits, fix filters, vehicle types
//! (reporting period, speed limit, idle and silence thresholds) and every tracker (IMEI →
//! vehicle, type, depot, route, password). Device passwords come from the site's secrets
//! file (`[credentials.<name>]`, its `password`), never from the vehicle file, and print as
//! `redacted`. The vehicle file is re-read on reload ([`reload_vehicles`]).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::{Collector, ConfigError, ConfigErrors};
use super::raw::RawSecretsFile;

/// Default vehicle registry file, relative to the site folder.
pub const DEFAULT_VEHICLES_FILE: &str = "vehicles.toml";

/// `[telemetry]`, validated. See docs/configuration.md and docs/telemetry.md.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetrySettings {
    /// Wialon IPS 2.0 over TCP (`None` = not served). Usual port 20332.
    pub wialon_listen: Option<SocketAddr>,
    /// Teltonika Codec 8/8E over TCP. Usual port 5027.
    pub teltonika_listen: Option<SocketAddr>,
    /// OsmAnd / Traccar Client over HTTP, its own port (devices identify by id). Usual 5055.
    pub osmand_listen: Option<SocketAddr>,
    /// JSON fixes over MQTT on `<prefix>/<device>/fix` (`None` = not subscribed).
    pub mqtt: Option<TelemetryMqttSettings>,
    /// Tracker connections held at once, all TCP protocols together; more wait in accept.
    pub max_connections: usize,
    /// A Wialon line or a Teltonika packet longer than this is refused (`too_long`).
    pub max_packet_bytes: usize,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// Fixes queued for PostgreSQL; when full, connections wait (TCP back-pressure).
    pub queue_capacity: usize,
    /// Fixes per INSERT at most.
    pub batch_max: usize,
    /// A fix with a worse HDOP is refused (`inaccurate`).
    pub max_hdop: f64,
    /// A fix with a worse stated accuracy (metres) is refused (`inaccurate`).
    pub max_accuracy_m: f64,
    /// A fix timestamped further ahead of our clock is refused (`bad_time`).
    pub future_tolerance: Duration,
    /// A stop counts when the vehicle stays within this radius…
    pub stop_radius_m: f64,
    /// …for at least this long.
    pub stop_min: Duration,
    /// A collection point is served by a stop of a collecting vehicle within this radius.
    pub served_radius_m: f64,
    /// …lasting at least this long.
    pub served_min: Duration,
    /// A vehicle farther than this from every point of its route is off route.
    pub off_route_m: f64,
    pub types: BTreeMap<String, VehicleTypeSettings>,
    pub routes: BTreeMap<String, RouteSettings>,
    pub vehicles: Vec<VehicleEntry>,
    pub vehicles_file: PathBuf,
    /// The site's `utc_offset_minutes` (route windows are local times of day).
    pub utc_offset_minutes: i32,
}

/// `[telemetry.mqtt]`
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryMqttSettings {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub topic_prefix: String,
}

/// `[telemetry.types.<name>]`: one kind of vehicle.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleTypeSettings {
    /// How often its trackers report while moving.
    pub period: Duration,
    /// Silent past this (default 3 × period + 30 s): the `silent` state and event.
    pub silent_after: Duration,
    /// Faster than this between two fixes is an impossible jump.
    pub max_speed_kmh: f64,
    /// Stopped with the engine on this long: `idle`.
    pub idle_after: Duration,
    /// Serves collection points (waste trucks).
    pub collects: bool,
}

/// `[telemetry.routes.<name>]`: a collection route for a day.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSettings {
    /// Collection point ids (`collection_points.geojson`), in the order they are driven.
    pub points: Vec<String>,
    /// Local time of day (seconds after midnight) the route starts and must be done by.
    pub start_s: u32,
    pub end_s: u32,
}

/// A tracker's password; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct DevicePassword(pub String);

impl std::fmt::Debug for DevicePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevicePassword(redacted)")
    }
}

/// One tracker of the vehicle file.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleEntry {
    /// The vehicle's id (API, tracks).
    pub id: String,
    /// What the tracker logs in with: its IMEI (Wialon, Teltonika) or OsmAnd/MQTT id.
    pub imei: String,
    /// A key of `[telemetry.types]`.
    pub kind: String,
    pub depot: Option<String>,
    /// A key of `[telemetry.routes]`.
    pub route: Option<String>,
    pub password: Option<DevicePassword>,
    /// `file:line`, for messages.
    pub defined_at: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelemetry {
    #[serde(default)]
    vehicles_file: Option<Spanned<String>>,
    #[serde(default)]
    wialon_listen: Option<Spanned<String>>,
    #[serde(default)]
    teltonika_listen: Option<Spanned<String>>,
    #[serde(default)]
    osmand_listen: Option<Spanned<String>>,
    #[serde(default)]
    max_connections: Option<Spanned<u32>>,
    #[serde(default)]
    max_packet_bytes: Option<Spanned<u32>>,
    #[serde(default)]
    idle_timeout_s: Option<Spanned<f64>>,
    #[serde(default)]
    queue_capacity: Option<Spanned<u32>>,
    #[serde(default)]
    batch_max: Option<Spanned<u32>>,
    #[serde(default)]
    max_hdop: Option<Spanned<f64>>,
    #[serde(default)]
    max_accuracy_m: Option<Spanned<f64>>,
    #[serde(default)]
    future_tolerance_s: Option<Spanned<f64>>,
    #[serde(default)]
    stop_radius_m: Option<Spanned<f64>>,
    #[serde(default)]
    stop_min_s: Option<Spanned<f64>>,
    #[serde(default)]
    served_radius_m: Option<Spanned<f64>>,
    #[serde(default)]
    served_min_s: Option<Spanned<f64>>,
    #[serde(default)]
    off_route_m: Option<Spanned<f64>>,
    #[serde(default)]
    mqtt: Option<RawTelemetryMqtt>,
    types: Spanned<BTreeMap<String, Spanned<RawVehicleType>>>,
    #[serde(default)]
    routes: BTreeMap<String, Spanned<RawRoute>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTelemetryMqtt {
    #[serde(default)]
    host: Option<Spanned<String>>,
    #[serde(default)]
    port: Option<Spanned<u16>>,
    #[serde(default)]
    client_id: Option<Spanned<String>>,
    #[serde(default)]
    topic_prefix: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVehicleType {
    period_s: Spanned<f64>,
    #[serde(default)]
    silent_after_s: Option<Spanned<f64>>,
    #[serde(default)]
    max_speed_kmh: Option<Spanned<f64>>,
    #[serde(default)]
    idle_after_s: Option<Spanned<f64>>,
    #[serde(default)]
    collects: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    points: Vec<Spanned<String>>,
    start: Spanned<String>,
    end: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVehiclesFile {
    #[serde(default)]
    vehicle: Vec<Spanned<RawVehicle>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVehicle {
    id: Spanned<String>,
    imei: Spanned<String>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    #[serde(default)]
    depot: Option<Spanned<String>>,
    #[serde(default)]
    route: Option<Spanned<String>>,
    /// A `[credentials.<name>]` entry of the secrets file; its `password` is the tracker's.
    #[serde(default)]
    password: Option<Spanned<String>>,
}

fn seconds(
    v: &Option<Spanned<f64>>,
    default: f64,
    field: &str,
    min: f64,
    c: &mut Collector<'_>,
) -> Duration {
    v.as_ref()
        .and_then(|v| super::bounds::seconds(v, field, min, c))
        .unwrap_or_else(|| Duration::from_secs_f64(default))
}

fn count(
    v: &Option<Spanned<u32>>,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
    field: &str,
    c: &mut Collector<'_>,
) -> usize {
    match v {
        Some(v) if !range.contains(v.get_ref()) => {
            c.push(
                Some(v.span()),
                None,
                Some(field),
                format!("must be within {}..={}", range.start(), range.end()),
            );
            default as usize
        }
        Some(v) => *v.get_ref() as usize,
        None => default as usize,
    }
}

fn listen(
    v: &Option<Spanned<String>>,
    default: &str,
    field: &str,
    c: &mut Collector<'_>,
) -> Option<SocketAddr> {
    let text = v.as_ref().map_or(default, |v| v.get_ref().as_str());
    if text == "off" {
        return None;
    }
    match text.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            c.push(
                v.as_ref().map(Spanned::span),
                None,
                Some(field),
                format!("`{text}` is not `host:port` (an IP address and port) or `off`"),
            );
            None
        }
    }
}

/// `HH:MM` → seconds after midnight.
fn time_of_day(v: &Spanned<String>, field: &str, c: &mut Collector<'_>) -> u32 {
    let parsed = v.get_ref().split_once(':').and_then(|(h, m)| {
        let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
        (h < 24 && m < 60).then_some(h * 3600 + m * 60)
    });
    parsed.unwrap_or_else(|| {
        c.push(
            Some(v.span()),
            None,
            Some(field),
            format!("`{}` is not a time of day `HH:MM`", v.get_ref()),
        );
        0
    })
}

/// `[telemetry]` → settings (with its vehicle file); errors from both files are returned.
pub(crate) fn load(
    raw: Option<&RawTelemetry>,
    site_path: &Path,
    source: &str,
    dir: &Path,
    site: &str,
    secrets: &RawSecretsFile,
) -> (Option<TelemetrySettings>, Vec<ConfigError>) {
    let Some(raw) = raw else {
        return (None, Vec::new());
    };
    let mut c = Collector::new(site_path, source);
    let mut types = BTreeMap::new();
    if raw.types.get_ref().is_empty() {
        c.push(
            Some(raw.types.span()),
            None,
            Some("telemetry.types"),
            "needs at least one vehicle type",
        );
    }
    for (name, t) in raw.types.get_ref() {
        let at = |f: &str| format!("telemetry.types.{name}.{f}");
        let t = t.get_ref();
        let period = seconds(&Some(t.period_s.clone()), 5.0, &at("period_s"), 1.0, &mut c);
        let silent_default = period.as_secs_f64() * 3.0 + 30.0;
        let silent_after = seconds(
            &t.silent_after_s,
            silent_default,
            &at("silent_after_s"),
            1.0,
            &mut c,
        );
        if silent_after <= period
            && let Some(v) = &t.silent_after_s
        {
            c.push(
                Some(v.span()),
                None,
                Some(&at("silent_after_s")),
                format!("must be longer than period_s ({} s)", period.as_secs_f64()),
            );
        }
        types.insert(
            name.clone(),
            VehicleTypeSettings {
                period,
                silent_after,
                max_speed_kmh: super::bounds::number_in(
                    &t.max_speed_kmh,
                    150.0,
                    1.0..=1000.0,
                    &at("max_speed_kmh"),
                    &mut c,
                ),
                idle_after: seconds(&t.idle_after_s, 600.0, &at("idle_after_s"), 1.0, &mut c),
                collects: t.collects,
            },
        );
    }
    let mut routes = BTreeMap::new();
    for (name, r) in &raw.routes {
        let at = |f: &str| format!("telemetry.routes.{name}.{f}");
        let r = r.get_ref();
        let start_s = time_of_day(&r.start, &at("start"), &mut c);
        let end_s = time_of_day(&r.end, &at("end"), &mut c);
        if end_s <= start_s {
            c.push(
                Some(r.end.span()),
                None,
                Some(&at("end")),
                "must be after `start` (routes end the day they start)",
            );
        }
        let mut seen = HashSet::new();
        for p in &r.points {
            if p.get_ref().trim().is_empty() || !seen.insert(p.get_ref().clone()) {
                c.push(
                    Some(p.span()),
                    None,
                    Some(&at("points")),
                    format!("point `{}` is empty or listed twice", p.get_ref()),
                );
            }
        }
        routes.insert(
            name.clone(),
            RouteSettings {
                points: r.points.iter().map(|p| p.get_ref().clone()).collect(),
                start_s,
                end_s,
            },
        );
    }
    let mqtt = raw.mqtt.as_ref().map(|m| {
        let prefix = m
            .topic_prefix
            .as_ref()
            .map_or_else(|| "sitcenter/gps".to_owned(), |p| p.get_ref().clone());
        if prefix.is_empty() || prefix.contains(['+', '#']) || prefix.ends_with('/') {
            c.push(
                m.topic_prefix.as_ref().map(Spanned::span),
                None,
                Some("telemetry.mqtt.topic_prefix"),
                "must be topic levels without `+`, `#` or a trailing `/`",
            );
        }
        TelemetryMqttSettings {
            host: m
                .host
                .as_ref()
                .map_or_else(|| "127.0.0.1".to_owned(), |h| h.get_ref().clone()),
            port: m.port.as_ref().map_or(1883, |p| *p.get_ref()),
            client_id: m.client_id.as_ref().map_or_else(
                || format!("sitcenter-{site}-telemetry"),
                |i| i.get_ref().clone(),
            ),
            topic_prefix: prefix,
        }
    });
    let vehicles_file = dir.join(
        raw.vehicles_file
            .as_ref()
            .map_or(DEFAULT_VEHICLES_FILE, |f| f.get_ref().as_str()),
    );
    let mut settings = TelemetrySettings {
        wialon_listen: listen(
            &raw.wialon_listen,
            "0.0.0.0:20332",
            "telemetry.wialon_listen",
            &mut c,
        ),
        teltonika_listen: listen(
            &raw.teltonika_listen,
            "0.0.0.0:5027",
            "telemetry.teltonika_listen",
            &mut c,
        ),
        osmand_listen: listen(
            &raw.osmand_listen,
            "0.0.0.0:5055",
            "telemetry.osmand_listen",
            &mut c,
        ),
        mqtt,
        max_connections: count(
            &raw.max_connections,
            20_000,
            1..=1_000_000,
            "telemetry.max_connections",
            &mut c,
        ),
        max_packet_bytes: count(
            &raw.max_packet_bytes,
            64 * 1024,
            256..=1024 * 1024,
            "telemetry.max_packet_bytes",
            &mut c,
        ),
        idle_timeout: seconds(
            &raw.idle_timeout_s,
            900.0,
            "telemetry.idle_timeout_s",
            5.0,
            &mut c,
        ),
        queue_capacity: count(
            &raw.queue_capacity,
            50_000,
            100..=10_000_000,
            "telemetry.queue_capacity",
            &mut c,
        ),
        batch_max: count(
            &raw.batch_max,
            5_000,
            1..=100_000,
            "telemetry.batch_max",
            &mut c,
        ),
        max_hdop: super::bounds::number_in(
            &raw.max_hdop,
            10.0,
            0.5..=100.0,
            "telemetry.max_hdop",
            &mut c,
        ),
        max_accuracy_m: super::bounds::number_in(
            &raw.max_accuracy_m,
            100.0,
            1.0..=100_000.0,
            "telemetry.max_accuracy_m",
            &mut c,
        ),
        future_tolerance: seconds(
            &raw.future_tolerance_s,
            300.0,
            "telemetry.future_tolerance_s",
            0.0,
            &mut c,
        ),
        stop_radius_m: super::bounds::number_in(
            &raw.stop_radius_m,
            30.0,
            1.0..=1000.0,
            "telemetry.stop_radius_m",
            &mut c,
        ),
        stop_min: seconds(&raw.stop_min_s, 60.0, "telemetry.stop_min_s", 1.0, &mut c),
        served_radius_m: super::bounds::number_in(
            &raw.served_radius_m,
            30.0,
            1.0..=1000.0,
            "telemetry.served_radius_m",
            &mut c,
        ),
        served_min: seconds(
            &raw.served_min_s,
            60.0,
            "telemetry.served_min_s",
            1.0,
            &mut c,
        ),
        off_route_m: super::bounds::number_in(
            &raw.off_route_m,
            500.0,
            10.0..=100_000.0,
            "telemetry.off_route_m",
            &mut c,
        ),
        types,
        routes,
        vehicles: Vec::new(),
        vehicles_file,
        utc_offset_minutes: 0,
    };
    let mut errors = c.errors;
    match load_vehicles(&settings, secrets) {
        Ok(vehicles) => settings.vehicles = vehicles,
        Err(mut more) => errors.append(&mut more.0),
    }
    (Some(settings), errors)
}

/// Re-reads the vehicle file (and the secrets file) for a reload; the running registry stays
/// when this fails.
pub fn reload_vehicles(
    settings: &TelemetrySettings,
    secrets_file: Option<&Path>,
) -> Result<Vec<VehicleEntry>, ConfigErrors> {
    let secrets = match secrets_file {
        Some(path) => super::validate::load_secrets(path)?,
        None => RawSecretsFile::default(),
    };
    load_vehicles(settings, &secrets)
}

fn load_vehicles(
    settings: &TelemetrySettings,
    secrets: &RawSecretsFile,
) -> Result<Vec<VehicleEntry>, ConfigErrors> {
    let path = &settings.vehicles_file;
    let source = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.clone(),
            line: 0,
            column: 0,
            camera: None,
            field: None,
            message: format!("cannot read the vehicle registry: {e}"),
        }])
    })?;
    let mut c = Collector::new(path, &source);
    let raw: RawVehiclesFile = match toml::from_str(&source) {
        Ok(raw) => raw,
        Err(error) => {
            c.push_toml(&error, None);
            return Err(ConfigErrors(c.errors));
        }
    };
    let (mut ids, mut imeis) = (HashSet::new(), HashSet::new());
    let mut out = Vec::with_capacity(raw.vehicle.len());
    for entry in &raw.vehicle {
        let line = c.line_of(entry.span().start);
        let v = entry.get_ref();
        let id = v.id.get_ref();
        if id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            c.push(
                Some(v.id.span()),
                None,
                Some("vehicle.id"),
                "must be 1-64 of A-Z a-z 0-9 - _ .",
            );
        } else if !ids.insert(id.clone()) {
            c.push(
                Some(v.id.span()),
                None,
                Some("vehicle.id"),
                format!("`{id}` appears more than once"),
            );
        }
        let imei = v.imei.get_ref();
        if imei.is_empty() || imei.len() > 32 || !imei.bytes().all(|b| b.is_ascii_graphic()) {
            c.push(
                Some(v.imei.span()),
                None,
                Some("vehicle.imei"),
                "must be 1-32 printable characters",
            );
        } else if !imeis.insert(imei.clone()) {
            c.push(
                Some(v.imei.span()),
                None,
                Some("vehicle.imei"),
                format!("`{imei}` appears more than once"),
            );
        }
        if !settings.types.contains_key(v.kind.get_ref()) {
            let known: Vec<&str> = settings.types.keys().map(String::as_str).collect();
            c.push(
                Some(v.kind.span()),
                None,
                Some("vehicle.type"),
                format!(
                    "`{}` is not a [telemetry.types] entry (known: {})",
                    v.kind.get_ref(),
                    known.join(", ")
                ),
            );
        }
        if let Some(route) = &v.route
            && !settings.routes.contains_key(route.get_ref())
        {
            c.push(
                Some(route.span()),
                None,
                Some("vehicle.route"),
                format!("`{}` is not a [telemetry.routes] entry", route.get_ref()),
            );
        }
        let password =
            v.password
                .as_ref()
                .and_then(|name| match secrets.credentials.get(name.get_ref()) {
                    Some(found) => Some(DevicePassword(found.password.clone())),
                    None => {
                        c.push(
                            Some(name.span()),
                            None,
                            Some("vehicle.password"),
                            format!("no credentials `{}` in the secrets file", name.get_ref()),
                        );
                        None
                    }
                });
        out.push(VehicleEntry {
            id: id.clone(),
            imei: imei.clone(),
            kind: v.kind.get_ref().clone(),
            depot: v.depot.as_ref().map(|d| d.get_ref().clone()),
            route: v.route.as_ref().map(|r| r.get_ref().clone()),
            password,
            defined_at: format!("{}:{line}", path.display()),
        });
    }
    if c.errors.is_empty() {
        Ok(out)
    } else {
        Err(ConfigErrors(c.errors))
    }
}
