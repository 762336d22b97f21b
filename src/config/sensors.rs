//! `[sensors]` of `site.toml` and the sensor registry file it names (default `sensors.toml`)
//! → [`SensorsSettings`]: the MQTT subscription, topic layout, ChirpStack field mapping, sensor
//! types (heartbeat, thresholds) and every sensor (id → type → manhole). Every problem is
//! collected with file:line:column and field. Whether each manhole exists is checked when the
//! stage starts against the city layers (config does not read geo).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::Credentials;
use super::bounds::{number_in, seconds};
use super::error::{Collector, ConfigError};
use super::raw::RawSecretsFile;
use crate::domain::{CoverState, SensorId};

/// Default sensor registry file, relative to the site folder.
pub const DEFAULT_SENSORS_FILE: &str = "sensors.toml";
/// Default `[sensors] max_payload_bytes`: a reading is ~300 bytes; a ChirpStack uplink ~1.5 KiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: u32 = 16 * 1024;
/// Default `[sensors.mqtt] max_packet_bytes`: larger packets are dropped by an MQTT 5 broker
/// before they reach us; anything up to this size reaches the parser and is counted.
pub const DEFAULT_MAX_PACKET_BYTES: u32 = 2 * 1024 * 1024;
/// Default `[sensors.mqtt] receive_maximum`: unacknowledged QoS 1 messages the broker may have
/// in flight to us — the back-pressure window.
pub const DEFAULT_RECEIVE_MAXIMUM: u16 = 2000;
/// Default `[sensors] batch_max`: messages committed in one PostgreSQL transaction at most.
pub const DEFAULT_BATCH_MAX: u32 = 500;

/// `[sensors]`, validated. See docs/configuration.md and docs/sensors.md.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorsSettings {
    pub mqtt: SensorMqttSettings,
    /// Own-schema messages arrive on `<topic_prefix>/<sensor id>/up`.
    pub topic_prefix: String,
    /// ChirpStack v4 uplinks (`application/<id>/device/<devEUI>/event/up`), when enabled.
    pub chirpstack: Option<ChirpstackSettings>,
    pub types: BTreeMap<String, SensorTypeSettings>,
    pub sensors: Vec<SensorEntry>,
    pub sensors_file: PathBuf,
    /// Larger payloads are rejected (`too_large`) without being parsed.
    pub max_payload_bytes: usize,
    /// Messages per PostgreSQL transaction, at most.
    pub batch_max: usize,
    /// How often silence is checked.
    pub silence_check: Duration,
    /// How long applied message keys are kept for duplicate detection.
    pub message_retention: Duration,
    /// Rejected messages and unknown sensors kept for `/api/sensors/rejected|unknown`.
    pub recent_rejections: usize,
}

/// `[sensors.mqtt]`: the subscriber's connection (MQTT 5).
#[derive(Debug, Clone, PartialEq)]
pub struct SensorMqttSettings {
    pub host: String,
    pub port: u16,
    /// Stable across restarts: the broker keeps the persistent session under this id.
    pub client_id: String,
    /// User and password (from the secrets file or the environment); `Debug` is redacted.
    pub credentials: Option<Credentials>,
    /// `$share/<group>/…` subscriptions, so several nodes split the messages.
    pub share_group: Option<String>,
    pub keep_alive: Duration,
    /// How long the broker keeps the session (and queues QoS 1 messages) while we are away.
    pub session_expiry: Duration,
    pub receive_maximum: u16,
    pub max_packet_bytes: u32,
}

/// `[sensors.types.<name>]`: one kind of sensor.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorTypeSettings {
    /// How often the sensor reports when nothing happens.
    pub heartbeat: Duration,
    /// Silent past this (default 3 × heartbeat): a maintenance ticket.
    pub silent_after: Duration,
    /// A tilt at or past this angle is an open manhole, whatever `state` says.
    pub tilt_alarm_deg: f64,
    /// At or below: battery-low maintenance ticket.
    pub battery_low_pct: f64,
    /// At or above (after a battery-low alarm): cleared.
    pub battery_ok_pct: f64,
    /// A water level at or above this is flooding (the `flooding` flag also is).
    pub flood_level_cm: Option<f64>,
}

/// One sensor of the registry file.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorEntry {
    pub id: SensorId,
    /// A key of `[sensors.types]`.
    pub kind: String,
    /// The manhole asset id in the city layers (`manholes.geojson`).
    pub manhole: String,
    /// LoRaWAN DevEUI (16 lowercase hex digits), for ChirpStack uplinks.
    pub dev_eui: Option<String>,
    /// `file:line`, for messages.
    pub defined_at: String,
}

/// `[sensors.chirpstack]`: which decoded-`object` fields carry our readings.
#[derive(Debug, Clone, PartialEq)]
pub struct ChirpstackSettings {
    /// `+` for every application.
    pub application_id: String,
    pub fields: ChirpstackFields,
    /// Decoded state value (as text: `"1"`, `"true"`, `"open"`) → cover state.
    pub state_values: BTreeMap<String, CoverState>,
}

/// Dotted paths into the uplink's `object` (e.g. `cover.state`).
#[derive(Debug, Clone, PartialEq)]
pub struct ChirpstackFields {
    pub state: String,
    pub tilt_deg: Option<String>,
    pub water_level_cm: Option<String>,
    pub flooding: Option<String>,
    pub temperature_c: Option<String>,
    pub battery_pct: Option<String>,
    pub firmware: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSensors {
    #[serde(default)]
    sensors_file: Option<Spanned<String>>,
    #[serde(default)]
    topic_prefix: Option<Spanned<String>>,
    #[serde(default)]
    max_payload_bytes: Option<Spanned<u32>>,
    #[serde(default)]
    batch_max: Option<Spanned<u32>>,
    #[serde(default)]
    silence_check_s: Option<Spanned<f64>>,
    #[serde(default)]
    message_retention_h: Option<Spanned<f64>>,
    #[serde(default)]
    recent_rejections: Option<Spanned<u32>>,
    #[serde(default)]
    mqtt: RawSensorMqtt,
    types: Spanned<BTreeMap<String, Spanned<RawSensorType>>>,
    #[serde(default)]
    chirpstack: Option<RawChirpstack>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSensorMqtt {
    #[serde(default)]
    host: Option<Spanned<String>>,
    #[serde(default)]
    port: Option<Spanned<u16>>,
    #[serde(default)]
    client_id: Option<Spanned<String>>,
    #[serde(default)]
    credentials: Option<Spanned<String>>,
    #[serde(default)]
    share_group: Option<Spanned<String>>,
    #[serde(default)]
    keep_alive_s: Option<Spanned<u32>>,
    #[serde(default)]
    session_expiry_s: Option<Spanned<u32>>,
    #[serde(default)]
    receive_maximum: Option<Spanned<u16>>,
    #[serde(default)]
    max_packet_bytes: Option<Spanned<u32>>,
    #[serde(default)]
    tls: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSensorType {
    heartbeat_s: Spanned<f64>,
    #[serde(default)]
    silent_after_s: Option<Spanned<f64>>,
    #[serde(default)]
    tilt_alarm_deg: Option<Spanned<f64>>,
    #[serde(default)]
    battery_low_pct: Option<Spanned<f64>>,
    #[serde(default)]
    battery_ok_pct: Option<Spanned<f64>>,
    #[serde(default)]
    flood_level_cm: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChirpstack {
    #[serde(default)]
    application_id: Option<Spanned<String>>,
    fields: RawChirpstackFields,
    #[serde(default)]
    state_values: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChirpstackFields {
    state: Spanned<String>,
    #[serde(default)]
    tilt_deg: Option<Spanned<String>>,
    #[serde(default)]
    water_level_cm: Option<Spanned<String>>,
    #[serde(default)]
    flooding: Option<Spanned<String>>,
    #[serde(default)]
    temperature_c: Option<Spanned<String>>,
    #[serde(default)]
    battery_pct: Option<Spanned<String>>,
    #[serde(default)]
    firmware: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSensorsFile {
    #[serde(default)]
    sensor: Vec<Spanned<RawSensor>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSensor {
    id: Spanned<String>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    manhole: Spanned<String>,
    #[serde(default)]
    dev_eui: Option<Spanned<String>>,
}

/// A topic level: no wildcards, no `/`, not empty.
fn topic_level_ok(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '+', '#']) && !s.contains('\0')
}

fn topic_prefix_ok(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('$') && s.split('/').all(topic_level_ok)
}

fn resolve_credentials(
    key: &Spanned<String>,
    secrets: &RawSecretsFile,
    c: &mut Collector<'_>,
) -> Option<Credentials> {
    match super::credentials::lookup(key.get_ref(), secrets) {
        Ok(found) => Some(found),
        Err(message) => {
            c.push(
                Some(key.span()),
                None,
                Some("sensors.mqtt.credentials"),
                message,
            );
            None
        }
    }
}

fn mqtt_settings(
    raw: &RawSensorMqtt,
    site: &str,
    secrets: &RawSecretsFile,
    c: &mut Collector<'_>,
) -> SensorMqttSettings {
    let text = |v: &Option<Spanned<String>>, default: &str| {
        v.as_ref()
            .map_or_else(|| default.to_owned(), |v| v.get_ref().clone())
    };
    let host = text(&raw.host, "127.0.0.1");
    if host.trim().is_empty()
        && let Some(v) = &raw.host
    {
        c.push(Some(v.span()), None, Some("sensors.mqtt.host"), "is empty");
    }
    let client_id = text(&raw.client_id, &format!("sitcenter-{site}-sensors"));
    if let Some(v) = &raw.client_id
        && (v.get_ref().is_empty() || v.get_ref().len() > 128)
    {
        c.push(
            Some(v.span()),
            None,
            Some("sensors.mqtt.client_id"),
            "must be 1-128 characters (stable across restarts: it names the persistent session)",
        );
    }
    let share_group = raw.share_group.as_ref().and_then(|g| {
        if topic_level_ok(g.get_ref()) {
            Some(g.get_ref().clone())
        } else {
            c.push(
                Some(g.span()),
                None,
                Some("sensors.mqtt.share_group"),
                "must be one topic level: not empty, no `/`, `+` or `#`",
            );
            None
        }
    });
    let keep_alive_s = raw.keep_alive_s.as_ref().map_or(30, |v| {
        if (5..=3600).contains(v.get_ref()) {
            *v.get_ref()
        } else {
            c.push(
                Some(v.span()),
                None,
                Some("sensors.mqtt.keep_alive_s"),
                "must be within 5..=3600",
            );
            30
        }
    });
    let session_expiry_s = raw.session_expiry_s.as_ref().map_or(86_400, |v| {
        if *v.get_ref() == 0 {
            c.push(
                Some(v.span()),
                None,
                Some("sensors.mqtt.session_expiry_s"),
                "must be at least 1: with 0 the broker forgets the session (and every message sent meanwhile) when we disconnect",
            );
            86_400
        } else {
            *v.get_ref()
        }
    });
    let receive_maximum = raw
        .receive_maximum
        .as_ref()
        .map_or(DEFAULT_RECEIVE_MAXIMUM, |v| {
            if *v.get_ref() == 0 {
                c.push(
                    Some(v.span()),
                    None,
                    Some("sensors.mqtt.receive_maximum"),
                    "must be within 1..=65535",
                );
                DEFAULT_RECEIVE_MAXIMUM
            } else {
                *v.get_ref()
            }
        });
    let max_packet_bytes = raw
        .max_packet_bytes
        .as_ref()
        .map_or(DEFAULT_MAX_PACKET_BYTES, |v| {
            if (1024..=256 * 1024 * 1024).contains(v.get_ref()) {
                *v.get_ref()
            } else {
                c.push(
                    Some(v.span()),
                    None,
                    Some("sensors.mqtt.max_packet_bytes"),
                    "must be within 1024..=268435456",
                );
                DEFAULT_MAX_PACKET_BYTES
            }
        });
    if let Some(tls) = &raw.tls
        && *tls.get_ref()
    {
        c.push(
            Some(tls.span()),
            None,
            Some("sensors.mqtt.tls"),
            "TLS is not available in this build: rumqttc is compiled without a TLS backend \
             (docs/sensors.md, \"TLS\"); terminate TLS in front of the broker or on a local bridge",
        );
    }
    SensorMqttSettings {
        host,
        port: raw.port.as_ref().map_or(1883, |p| *p.get_ref()),
        client_id,
        credentials: raw
            .credentials
            .as_ref()
            .and_then(|key| resolve_credentials(key, secrets, c)),
        share_group,
        keep_alive: Duration::from_secs(keep_alive_s.into()),
        session_expiry: Duration::from_secs(session_expiry_s.into()),
        receive_maximum,
        max_packet_bytes,
    }
}

fn type_settings(name: &str, raw: &RawSensorType, c: &mut Collector<'_>) -> SensorTypeSettings {
    let at = |f: &str| format!("sensors.types.{name}.{f}");
    let heartbeat =
        seconds(&raw.heartbeat_s, &at("heartbeat_s"), 1.0, c).unwrap_or(Duration::from_secs(3600));
    let silent_after = match &raw.silent_after_s {
        Some(v) => match seconds(v, &at("silent_after_s"), 1.0, c) {
            Some(d) if d <= heartbeat => {
                c.push(
                    Some(v.span()),
                    None,
                    Some(&at("silent_after_s")),
                    format!(
                        "must be longer than heartbeat_s ({} s)",
                        heartbeat.as_secs_f64()
                    ),
                );
                heartbeat * 3
            }
            Some(d) => d,
            None => heartbeat * 3,
        },
        None => heartbeat * 3,
    };
    let battery_low_pct = number_in(
        &raw.battery_low_pct,
        20.0,
        0.0..=100.0,
        &at("battery_low_pct"),
        c,
    );
    let battery_ok_pct = number_in(
        &raw.battery_ok_pct,
        (battery_low_pct + 10.0).min(100.0),
        0.0..=100.0,
        &at("battery_ok_pct"),
        c,
    );
    if battery_ok_pct <= battery_low_pct
        && let Some(v) = raw.battery_ok_pct.as_ref().or(raw.battery_low_pct.as_ref())
    {
        c.push(
            Some(v.span()),
            None,
            Some(&at("battery_ok_pct")),
            format!("must be above battery_low_pct ({battery_low_pct})"),
        );
    }
    let flood_level_cm = raw.flood_level_cm.as_ref().map(|_| {
        number_in(
            &raw.flood_level_cm,
            0.0,
            0.0..=10_000.0,
            &at("flood_level_cm"),
            c,
        )
    });
    SensorTypeSettings {
        heartbeat,
        silent_after,
        tilt_alarm_deg: number_in(
            &raw.tilt_alarm_deg,
            15.0,
            0.1..=180.0,
            &at("tilt_alarm_deg"),
            c,
        ),
        battery_low_pct,
        battery_ok_pct,
        flood_level_cm,
    }
}

fn path_ok(path: &str) -> bool {
    !path.is_empty() && path.split('.').all(|p| !p.is_empty())
}

fn chirpstack_settings(raw: &RawChirpstack, c: &mut Collector<'_>) -> ChirpstackSettings {
    let application_id = raw
        .application_id
        .as_ref()
        .map_or_else(|| "+".to_owned(), |a| a.get_ref().clone());
    if let Some(a) = &raw.application_id
        && a.get_ref() != "+"
        && !topic_level_ok(a.get_ref())
    {
        c.push(
            Some(a.span()),
            None,
            Some("sensors.chirpstack.application_id"),
            "must be `+` or one topic level (no `/` or `#`)",
        );
    }
    let mut path = |v: &Option<Spanned<String>>, field: &str| {
        v.as_ref().and_then(|p| {
            if path_ok(p.get_ref()) {
                Some(p.get_ref().clone())
            } else {
                c.push(
                    Some(p.span()),
                    None,
                    Some(&format!("sensors.chirpstack.fields.{field}")),
                    "must be a dotted path into the decoded object, e.g. `cover.state`",
                );
                None
            }
        })
    };
    let f = &raw.fields;
    let fields = ChirpstackFields {
        state: path(&Some(f.state.clone()), "state").unwrap_or_else(|| "state".into()),
        tilt_deg: path(&f.tilt_deg, "tilt_deg"),
        water_level_cm: path(&f.water_level_cm, "water_level_cm"),
        flooding: path(&f.flooding, "flooding"),
        temperature_c: path(&f.temperature_c, "temperature_c"),
        battery_pct: path(&f.battery_pct, "battery_pct"),
        firmware: path(&f.firmware, "firmware"),
    };
    let mut state_values = BTreeMap::new();
    match &raw.state_values {
        Some(values) => {
            for (key, value) in values.get_ref() {
                match CoverState::parse(value.get_ref()) {
                    Some(state) => {
                        state_values.insert(key.clone(), state);
                    }
                    None => c.push(
                        Some(value.span()),
                        None,
                        Some(&format!("sensors.chirpstack.state_values.{key}")),
                        "must be `closed`, `open` or `tilted`",
                    ),
                }
            }
        }
        None => {
            for state in [CoverState::Closed, CoverState::Open, CoverState::Tilted] {
                state_values.insert(state.as_str().to_owned(), state);
            }
        }
    }
    ChirpstackSettings {
        application_id,
        fields,
        state_values,
    }
}

fn dev_eui_ok(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn load_sensors_file(
    path: &Path,
    types: &BTreeMap<String, SensorTypeSettings>,
) -> Result<Vec<SensorEntry>, Vec<ConfigError>> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            camera: None,
            field: None,
            message: format!("cannot read the sensor registry: {e}"),
        }]
    })?;
    let mut c = Collector::new(path, &source);
    let raw: RawSensorsFile = match toml::from_str(&source) {
        Ok(raw) => raw,
        Err(error) => {
            c.push_toml(&error, None);
            return Err(c.errors);
        }
    };
    let mut ids = HashSet::new();
    let mut euis = HashSet::new();
    let mut out = Vec::with_capacity(raw.sensor.len());
    for entry in &raw.sensor {
        let line = c.line_of(entry.span().start);
        let e = entry.get_ref();
        let id = match SensorId::new(e.id.get_ref()) {
            Ok(id) => id,
            Err(err) => {
                c.push(Some(e.id.span()), None, Some("sensor.id"), err.to_string());
                continue;
            }
        };
        if !ids.insert(id.clone()) {
            c.push(
                Some(e.id.span()),
                None,
                Some("sensor.id"),
                format!("`{id}` appears more than once"),
            );
        }
        if !types.contains_key(e.kind.get_ref()) {
            let known: Vec<&str> = types.keys().map(String::as_str).collect();
            c.push(
                Some(e.kind.span()),
                None,
                Some("sensor.type"),
                format!(
                    "`{}` is not a [sensors.types] entry (known: {})",
                    e.kind.get_ref(),
                    known.join(", ")
                ),
            );
        }
        if e.manhole.get_ref().trim().is_empty() {
            c.push(
                Some(e.manhole.span()),
                None,
                Some("sensor.manhole"),
                "is empty",
            );
        }
        let dev_eui = e.dev_eui.as_ref().and_then(|d| {
            let eui = d.get_ref().to_ascii_lowercase();
            if !dev_eui_ok(&eui) {
                c.push(
                    Some(d.span()),
                    None,
                    Some("sensor.dev_eui"),
                    "must be 16 hexadecimal digits",
                );
                None
            } else if !euis.insert(eui.clone()) {
                c.push(
                    Some(d.span()),
                    None,
                    Some("sensor.dev_eui"),
                    format!("`{eui}` appears more than once"),
                );
                None
            } else {
                Some(eui)
            }
        });
        out.push(SensorEntry {
            id,
            kind: e.kind.get_ref().clone(),
            manhole: e.manhole.get_ref().trim().to_owned(),
            dev_eui,
            defined_at: format!("{}:{line}", path.display()),
        });
    }
    if c.errors.is_empty() {
        Ok(out)
    } else {
        Err(c.errors)
    }
}

/// Validates `[sensors]` (`c` collects `site.toml` problems) and reads the sensor registry
/// file; problems in that file are returned as errors of their own.
pub(crate) fn sensors_settings(
    raw: &RawSensors,
    dir: &Path,
    site: &str,
    secrets: &RawSecretsFile,
    c: &mut Collector<'_>,
) -> (Option<SensorsSettings>, Vec<ConfigError>) {
    let before = c.errors.len();
    let topic_prefix = match &raw.topic_prefix {
        Some(p) if !topic_prefix_ok(p.get_ref()) => {
            c.push(
                Some(p.span()),
                None,
                Some("sensors.topic_prefix"),
                "must be topic levels separated by `/`, without wildcards, not starting with `$`",
            );
            String::new()
        }
        Some(p) => p.get_ref().trim_end_matches('/').to_owned(),
        None => format!("sitcenter/{site}/sensors"),
    };
    let mut types = BTreeMap::new();
    if raw.types.get_ref().is_empty() {
        c.push(
            Some(raw.types.span()),
            None,
            Some("sensors.types"),
            "needs at least one sensor type",
        );
    }
    for (name, t) in raw.types.get_ref() {
        if !topic_level_ok(name) {
            c.push(
                Some(t.span()),
                None,
                Some("sensors.types"),
                format!("type name `{name}` must not contain `/`, `+` or `#`"),
            );
        }
        types.insert(name.clone(), type_settings(name, t.get_ref(), c));
    }
    let count =
        |v: &Option<Spanned<u32>>, default: u32, max: u32, field: &str, c: &mut Collector<'_>| {
            match v {
                Some(v) if *v.get_ref() == 0 || *v.get_ref() > max => {
                    c.push(
                        Some(v.span()),
                        None,
                        Some(field),
                        format!("must be within 1..={max}"),
                    );
                    default as usize
                }
                Some(v) => *v.get_ref() as usize,
                None => default as usize,
            }
        };
    let max_payload_bytes = count(
        &raw.max_payload_bytes,
        DEFAULT_MAX_PAYLOAD_BYTES,
        16 * 1024 * 1024,
        "sensors.max_payload_bytes",
        c,
    );
    let batch_max = count(
        &raw.batch_max,
        DEFAULT_BATCH_MAX,
        10_000,
        "sensors.batch_max",
        c,
    );
    let recent_rejections = count(
        &raw.recent_rejections,
        200,
        100_000,
        "sensors.recent_rejections",
        c,
    );
    let silence_check = raw
        .silence_check_s
        .as_ref()
        .and_then(|v| seconds(v, "sensors.silence_check_s", 0.1, c))
        .unwrap_or(Duration::from_secs(10));
    let message_retention = raw
        .message_retention_h
        .as_ref()
        .and_then(|v| seconds(v, "sensors.message_retention_h", 1.0 / 3600.0, c).map(|d| d * 3600))
        .unwrap_or(Duration::from_secs(48 * 3600));
    let mqtt = mqtt_settings(&raw.mqtt, site, secrets, c);
    let chirpstack = raw.chirpstack.as_ref().map(|r| chirpstack_settings(r, c));
    let sensors_file = dir.join(
        raw.sensors_file
            .as_ref()
            .map_or(DEFAULT_SENSORS_FILE, |f| f.get_ref().as_str()),
    );
    let (sensors, file_errors) = match load_sensors_file(&sensors_file, &types) {
        Ok(sensors) => (sensors, Vec::new()),
        Err(errors) => (Vec::new(), errors),
    };
    if c.errors.len() > before || !file_errors.is_empty() {
        return (None, file_errors);
    }
    (
        Some(SensorsSettings {
            mqtt,
            topic_prefix,
            chirpstack,
            types,
            sensors,
            sensors_file,
            max_payload_bytes,
            batch_max,
            silence_check,
            message_retention,
            recent_rejections,
        }),
        Vec::new(),
    )
}

/// The hook `validate.rs` calls: `[sensors]` of `site.toml` (when present) with its errors.
pub(crate) fn load(
    raw: Option<&RawSensors>,
    has_registry: bool,
    site_path: &Path,
    source: &str,
    dir: &Path,
    site: &str,
    secrets: &RawSecretsFile,
) -> (Option<SensorsSettings>, Vec<ConfigError>) {
    let Some(raw) = raw else {
        return (None, Vec::new());
    };
    let mut c = Collector::new(site_path, source);
    if !has_registry {
        c.push(
            Some(raw.types.span()),
            None,
            Some("sensors"),
            "[sensors] needs [registry]: alarms become appeals and sensor state is kept there",
        );
    }
    let (settings, mut file_errors) = sensors_settings(raw, dir, site, secrets, &mut c);
    let mut errors = c.errors;
    errors.append(&mut file_errors);
    (settings, errors)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn site(dir: &Path, sensors_section: &str, sensors_file: &str) {
        std::fs::write(
            dir.join("site.toml"),
            format!(
                "[site]\nname = \"t\"\nbounds = {{ south = 51.0, west = 71.0, north = 51.3, east = 71.6 }}\n\
                 [registry]\ndatabase_url = \"host=127.0.0.1\"\n{sensors_section}"
            ),
        )
        .expect("site.toml");
        std::fs::write(dir.join("cameras.toml"), "").expect("cameras.toml");
        std::fs::write(dir.join("sensors.toml"), sensors_file).expect("sensors.toml");
    }

    #[test]
    fn every_sensor_setting_problem_is_reported_at_its_line() {
        let dir = tempfile::tempdir().expect("tmp");
        site(
            dir.path(),
            "[sensors]\ntopic_prefix = \"a/+/b\"\n[sensors.mqtt]\nsession_expiry_s = 0\nshare_group = \"x/y\"\ncredentials = \"nope\"\ntls = true\n\
             [sensors.types.cover]\nheartbeat_s = 60\nsilent_after_s = 30\n",
            "[[sensor]]\nid = \"S-1\"\ntype = \"cover\"\nmanhole = \"MH-000001\"\n\n\
             [[sensor]]\nid = \"S-1\"\ntype = \"lamp\"\nmanhole = \"MH-000002\"\ndev_eui = \"xyz\"\n",
        );
        let errors = crate::config::load_site(dir.path()).expect_err("invalid").0;
        let at = |field: &str| {
            errors
                .iter()
                .find(|e| e.field.as_deref() == Some(field))
                .map(|e| {
                    (
                        e.file
                            .file_name()
                            .and_then(|n| n.to_str())
                            .unwrap_or("")
                            .to_owned(),
                        e.line,
                    )
                })
        };
        assert_eq!(
            at("sensors.topic_prefix"),
            Some(("site.toml".into(), 7)),
            "{errors:?}"
        );
        assert_eq!(
            at("sensors.mqtt.session_expiry_s"),
            Some(("site.toml".into(), 9))
        );
        assert_eq!(
            at("sensors.mqtt.share_group"),
            Some(("site.toml".into(), 10))
        );
        assert_eq!(
            at("sensors.mqtt.credentials"),
            Some(("site.toml".into(), 11))
        );
        assert_eq!(at("sensors.mqtt.tls"), Some(("site.toml".into(), 12)));
        assert_eq!(
            at("sensors.types.cover.silent_after_s"),
            Some(("site.toml".into(), 15))
        );
        assert_eq!(at("sensor.id"), Some(("sensors.toml".into(), 7)));
        assert_eq!(at("sensor.type"), Some(("sensors.toml".into(), 8)));
        assert_eq!(at("sensor.dev_eui"), Some(("sensors.toml".into(), 10)));
        assert_eq!(errors.len(), 9, "{errors:?}");
    }

    #[test]
    fn the_demo_site_sensors_load_with_their_types() {
        let site = crate::config::load_site(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo"),
        )
        .expect("demo site");
        let sensors = site.sensors.expect("[sensors]");
        assert_eq!(sensors.sensors.len(), 3000);
        assert_eq!(sensors.types["cover-nbiot"].silent_after.as_secs(), 60);
        assert_eq!(sensors.types["cover-lora"].silent_after.as_secs(), 180);
        assert!(sensors.chirpstack.is_some());
    }
}
