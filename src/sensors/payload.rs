//! Topic + payload → a validated reading, or a [`Rejection`] with the sensor id (when the topic
//! or payload names one) and a reason. Pure and total: any bytes on any topic give one of the
//! two, never a panic (`fuzz/fuzz_targets/payload.rs` runs it on arbitrary input).
//!
//! Two formats (docs/sensors.md):
//! - our own JSON (`docs/sensor-payload.schema.json`) on `<topic_prefix>/<sensor id>/up`;
//! - ChirpStack v4 uplink events on `application/<app>/device/<devEUI>/event/up`, readings
//!   taken from the decoded `object` through the configured field paths.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::ChirpstackSettings;
use crate::domain::{SENSOR_PAYLOAD_VERSION, SensorId, SensorPayload, SensorReading};

/// Which format a message came in (`format` metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Own,
    Chirpstack,
    /// The topic matched no layout.
    Unknown,
}

impl Format {
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Own => "sitcenter",
            Format::Chirpstack => "chirpstack",
            Format::Unknown => "unknown",
        }
    }
}

/// Why a message was refused (`reason` metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The topic is not one of the documented layouts.
    WrongTopic,
    /// Larger than `[sensors] max_payload_bytes`; not parsed.
    TooLarge,
    /// Not UTF-8 JSON (garbage bytes, truncated).
    NotJson,
    MissingField,
    UnknownField,
    WrongType,
    /// A value of the right type that is not allowed (unknown state, bad timestamp, …).
    InvalidValue,
    /// A number outside its physical range (tilt 0–180°, battery 0–100 %, …).
    OutOfRange,
    /// The payload names another sensor than its topic.
    SensorMismatch,
    UnsupportedVersion,
}

impl RejectReason {
    pub const ALL: &'static [RejectReason] = &[
        RejectReason::WrongTopic,
        RejectReason::TooLarge,
        RejectReason::NotJson,
        RejectReason::MissingField,
        RejectReason::UnknownField,
        RejectReason::WrongType,
        RejectReason::InvalidValue,
        RejectReason::OutOfRange,
        RejectReason::SensorMismatch,
        RejectReason::UnsupportedVersion,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::WrongTopic => "wrong_topic",
            RejectReason::TooLarge => "too_large",
            RejectReason::NotJson => "not_json",
            RejectReason::MissingField => "missing_field",
            RejectReason::UnknownField => "unknown_field",
            RejectReason::WrongType => "wrong_type",
            RejectReason::InvalidValue => "invalid_value",
            RejectReason::OutOfRange => "out_of_range",
            RejectReason::SensorMismatch => "sensor_mismatch",
            RejectReason::UnsupportedVersion => "unsupported_version",
        }
    }
}

/// A refused message: counted, listed in `/api/sensors/rejected`, logged, acknowledged.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("sensor message rejected ({}){}: {detail}", reason.as_str(), sensor.as_ref().map(|s| format!(" from `{s}`")).unwrap_or_default())]
pub struct Rejection {
    /// The sensor id (own format) or `eui:<devEUI>` (ChirpStack), when it could be read.
    pub sensor: Option<String>,
    pub reason: RejectReason,
    pub detail: String,
}

/// Who sent a message, as the message says.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SensorRef {
    Id(SensorId),
    /// A LoRaWAN DevEUI, lowercase hex.
    DevEui(String),
}

impl SensorRef {
    pub fn label(&self) -> String {
        match self {
            SensorRef::Id(id) => id.to_string(),
            SensorRef::DevEui(eui) => format!("eui:{eui}"),
        }
    }
}

/// A valid message.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub format: Format,
    pub sensor: SensorRef,
    pub reading: SensorReading,
}

/// The topic layouts the subscriber listens on.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Own format: `<own_prefix>/<sensor id>/up`.
    pub own_prefix: String,
    pub chirpstack: Option<ChirpstackSettings>,
    pub max_payload_bytes: usize,
}

impl Layout {
    /// MQTT topic filters to subscribe to (before any `$share/<group>/`).
    pub fn filters(&self) -> Vec<String> {
        let mut filters = vec![format!("{}/+/up", self.own_prefix)];
        if let Some(cs) = &self.chirpstack {
            filters.push(format!(
                "application/{}/device/+/event/up",
                cs.application_id
            ));
        }
        filters
    }

    /// Which format `topic` carries and the sensor it names.
    pub fn route(&self, topic: &str) -> Result<(Format, SensorRef), Rejection> {
        if let Some(rest) = topic
            .strip_prefix(self.own_prefix.as_str())
            .and_then(|r| r.strip_prefix('/'))
            && let Some(id) = rest.strip_suffix("/up")
        {
            return SensorId::new(id)
                .map(|id| (Format::Own, SensorRef::Id(id)))
                .map_err(|e| Rejection {
                    sensor: None,
                    reason: RejectReason::WrongTopic,
                    detail: format!("topic `{}`: {e}", clip(topic)),
                });
        }
        if let Some(cs) = &self.chirpstack {
            let parts: Vec<&str> = topic.split('/').collect();
            if let ["application", app, "device", eui, "event", "up"] = parts.as_slice()
                && (cs.application_id == "+" || cs.application_id == *app)
            {
                let eui = eui.to_ascii_lowercase();
                if is_dev_eui(&eui) {
                    return Ok((Format::Chirpstack, SensorRef::DevEui(eui)));
                }
                return Err(Rejection {
                    sensor: None,
                    reason: RejectReason::WrongTopic,
                    detail: format!("topic `{}`: the DevEUI is not 16 hex digits", clip(topic)),
                });
            }
        }
        Err(Rejection {
            sensor: None,
            reason: RejectReason::WrongTopic,
            detail: format!("topic `{}` matches no sensor topic layout", clip(topic)),
        })
    }

    /// Parses one message.
    pub fn parse(&self, topic: &str, payload: &[u8]) -> Result<Parsed, Rejection> {
        let (format, sensor) = self.route(topic)?;
        let reject = |reason, detail: String| Rejection {
            sensor: Some(sensor.label()),
            reason,
            detail,
        };
        if payload.len() > self.max_payload_bytes {
            return Err(reject(
                RejectReason::TooLarge,
                format!(
                    "{} bytes, more than max_payload_bytes = {}",
                    payload.len(),
                    self.max_payload_bytes
                ),
            ));
        }
        let reading = match (format, &sensor, &self.chirpstack) {
            (Format::Own, SensorRef::Id(id), _) => parse_own(id, payload),
            (Format::Chirpstack, SensorRef::DevEui(eui), Some(cs)) => {
                parse_chirpstack(cs, eui, payload)
            }
            _ => Err((RejectReason::WrongTopic, "no parser for this topic".into())),
        }
        .map_err(|(reason, detail)| reject(reason, detail))?;
        check_ranges(&reading).map_err(|detail| reject(RejectReason::OutOfRange, detail))?;
        Ok(Parsed {
            format,
            sensor,
            reading,
        })
    }
}

fn is_dev_eui(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A topic or value for a message: at most 120 characters.
fn clip(text: &str) -> String {
    let mut out: String = text.chars().take(120).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

fn classify(e: &serde_json::Error) -> RejectReason {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => RejectReason::NotJson,
        Category::Data => {
            let text = e.to_string();
            if text.starts_with("missing field") {
                RejectReason::MissingField
            } else if text.starts_with("unknown field") {
                RejectReason::UnknownField
            } else if text.starts_with("invalid type") {
                RejectReason::WrongType
            } else {
                RejectReason::InvalidValue
            }
        }
    }
}

type Refusal = (RejectReason, String);

fn parse_own(id: &SensorId, payload: &[u8]) -> Result<SensorReading, Refusal> {
    let message: SensorPayload =
        serde_json::from_slice(payload).map_err(|e| (classify(&e), e.to_string()))?;
    if let Some(v) = message.v
        && v != SENSOR_PAYLOAD_VERSION
    {
        return Err((
            RejectReason::UnsupportedVersion,
            format!("`v` is {v}; this build reads version {SENSOR_PAYLOAD_VERSION}"),
        ));
    }
    if let Some(named) = &message.sensor
        && named != id.as_str()
    {
        return Err((
            RejectReason::SensorMismatch,
            format!("payload names `{}` but the topic names `{id}`", clip(named)),
        ));
    }
    Ok(message.into_reading())
}

/// A value at a dotted path (`a.b.c`) inside `root`.
fn at_path<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(root, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

fn number(root: &Value, path: &Option<String>, field: &str) -> Result<Option<f64>, Refusal> {
    let Some(path) = path else { return Ok(None) };
    match at_path(root, path) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| {
            (
                RejectReason::InvalidValue,
                format!("object.{path} ({field}) is not a finite number"),
            )
        }),
        Some(other) => Err((
            RejectReason::WrongType,
            format!(
                "object.{path} ({field}) must be a number, got {}",
                kind(other)
            ),
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn required<'v>(root: &'v Value, path: &str) -> Result<&'v Value, Refusal> {
    at_path(root, path).ok_or_else(|| (RejectReason::MissingField, format!("`{path}` is missing")))
}

fn parse_chirpstack(
    cs: &ChirpstackSettings,
    eui: &str,
    payload: &[u8],
) -> Result<SensorReading, Refusal> {
    let root: Value = serde_json::from_slice(payload).map_err(|e| (classify(&e), e.to_string()))?;
    if !root.is_object() {
        return Err((
            RejectReason::WrongType,
            format!("an uplink is a JSON object, got {}", kind(&root)),
        ));
    }
    let named = match required(&root, "deviceInfo.devEui")? {
        Value::String(s) => s.to_ascii_lowercase(),
        other => {
            return Err((
                RejectReason::WrongType,
                format!("deviceInfo.devEui must be a string, got {}", kind(other)),
            ));
        }
    };
    if named != eui {
        return Err((
            RejectReason::SensorMismatch,
            format!(
                "deviceInfo.devEui is `{}` but the topic names `{eui}`",
                clip(&named)
            ),
        ));
    }
    // Protobuf JSON leaves out zero values: a missing fCnt is frame 0.
    let seq = match at_path(&root, "fCnt") {
        None => 0,
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            (
                RejectReason::InvalidValue,
                "fCnt must be a non-negative integer".to_owned(),
            )
        })?,
        Some(other) => {
            return Err((
                RejectReason::WrongType,
                format!("fCnt must be a number, got {}", kind(other)),
            ));
        }
    };
    let ts = match required(&root, "time")? {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                (
                    RejectReason::InvalidValue,
                    format!("time `{}` is not RFC 3339: {e}", clip(s)),
                )
            })?,
        other => {
            return Err((
                RejectReason::WrongType,
                format!("time must be a string, got {}", kind(other)),
            ));
        }
    };
    let object = required(&root, "object")?;
    if !object.is_object() {
        return Err((
            RejectReason::WrongType,
            format!("object must be a JSON object, got {}", kind(object)),
        ));
    }
    let f = &cs.fields;
    let state_value = at_path(object, &f.state).ok_or_else(|| {
        (
            RejectReason::MissingField,
            format!("object.{} (state) is missing", f.state),
        )
    })?;
    let state_text = match state_value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => {
            return Err((
                RejectReason::WrongType,
                format!(
                    "object.{} (state) must be a string, number or boolean, got {}",
                    f.state,
                    kind(other)
                ),
            ));
        }
    };
    let state = *cs.state_values.get(&state_text).ok_or_else(|| {
        (
            RejectReason::InvalidValue,
            format!(
                "object.{} = `{}` is not in [sensors.chirpstack] state_values",
                f.state,
                clip(&state_text)
            ),
        )
    })?;
    let flooding = match f.flooding.as_deref().and_then(|p| at_path(object, p)) {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::Number(n)) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => {
            Some(n.as_u64() == Some(1))
        }
        Some(other) => {
            return Err((
                RejectReason::WrongType,
                format!("flooding must be a boolean (or 0/1), got {}", kind(other)),
            ));
        }
    };
    let firmware = match f.firmware.as_deref().and_then(|p| at_path(object, p)) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err((
                RejectReason::WrongType,
                format!("firmware must be a string, got {}", kind(other)),
            ));
        }
    };
    let rx = root.get("rxInfo").and_then(|r| r.get(0));
    let rx_number = |key: &str| rx.and_then(|r| r.get(key)).and_then(Value::as_f64);
    Ok(SensorReading {
        seq,
        ts,
        state,
        tilt_deg: number(object, &f.tilt_deg, "tilt_deg")?,
        water_level_cm: number(object, &f.water_level_cm, "water_level_cm")?,
        flooding,
        temperature_c: number(object, &f.temperature_c, "temperature_c")?,
        battery_pct: number(object, &f.battery_pct, "battery_pct")?,
        rssi_dbm: rx_number("rssi"),
        snr_db: rx_number("snr"),
        firmware,
    })
}

/// Physical ranges, and timestamps a city sensor can have.
fn check_ranges(r: &SensorReading) -> Result<(), String> {
    let checks: [(&str, Option<f64>, f64, f64); 6] = [
        ("tilt_deg", r.tilt_deg, 0.0, 180.0),
        ("water_level_cm", r.water_level_cm, -1000.0, 100_000.0),
        ("temperature_c", r.temperature_c, -80.0, 150.0),
        ("battery_pct", r.battery_pct, 0.0, 100.0),
        ("rssi_dbm", r.rssi_dbm, -200.0, 20.0),
        ("snr_db", r.snr_db, -50.0, 50.0),
    ];
    for (name, value, lo, hi) in checks {
        if let Some(v) = value
            && !(v.is_finite() && (lo..=hi).contains(&v))
        {
            return Err(format!("{name} = {v} is outside {lo}..={hi}"));
        }
    }
    let year = chrono::Datelike::year(&r.ts);
    if !(2000..=2100).contains(&year) {
        return Err(format!("ts {} is outside the years 2000-2100", r.ts));
    }
    if let Some(fw) = &r.firmware
        && (fw.is_empty() || fw.len() > 64 || fw.chars().any(char::is_control))
    {
        return Err("firmware must be 1-64 printable characters".to_owned());
    }
    if r.seq > (1 << 53) {
        return Err(format!("seq {} is above 2^53", r.seq));
    }
    Ok(())
}

/// The idempotency key of a reading: `<sensor>:<seq>:<sensor time in ms>`. The same message
/// delivered twice has the same key; a sensor that restarts its sequence gets new keys
/// because its clock has moved on.
pub fn message_key(sensor: &SensorId, reading: &SensorReading) -> String {
    format!("{sensor}:{}:{}", reading.seq, reading.ts.timestamp_millis())
}

/// The layout the documentation's examples, the fuzz target and the corpus test use:
/// own prefix `sitcenter/demo/sensors`, ChirpStack for every application with the field
/// mapping of `camera-configs/demo/site.toml`.
pub fn example_layout() -> Layout {
    use crate::config::ChirpstackFields;
    use crate::domain::CoverState;
    Layout {
        own_prefix: "sitcenter/demo/sensors".to_owned(),
        chirpstack: Some(ChirpstackSettings {
            application_id: "+".to_owned(),
            fields: ChirpstackFields {
                state: "cover.state".to_owned(),
                tilt_deg: Some("cover.tilt".to_owned()),
                water_level_cm: Some("water.level".to_owned()),
                flooding: Some("water.flood".to_owned()),
                temperature_c: Some("temperature".to_owned()),
                battery_pct: Some("battery".to_owned()),
                firmware: Some("fw".to_owned()),
            },
            state_values: [
                ("0", CoverState::Closed),
                ("1", CoverState::Open),
                ("2", CoverState::Tilted),
                ("closed", CoverState::Closed),
                ("open", CoverState::Open),
                ("tilted", CoverState::Tilted),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        }),
        max_payload_bytes: 16 * 1024,
    }
}

/// A fuzz or corpus input: the topic up to the first newline, the payload after it.
pub fn parse_framed(layout: &Layout, input: &[u8]) -> Result<Parsed, Rejection> {
    let (topic, payload) = match input.iter().position(|b| *b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[][..]),
    };
    match std::str::from_utf8(topic) {
        Ok(topic) => layout.parse(topic, payload),
        Err(_) => Err(Rejection {
            sensor: None,
            reason: RejectReason::WrongTopic,
            detail: "the topic is not UTF-8".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/payload")
    }

    /// Every corpus file runs through the parser; its name says what must come out:
    /// `ok-…` parses, `reject-<reason>-…` is refused for that reason.
    #[test]
    fn the_fuzz_corpus_gives_the_outcome_each_file_is_named_for() {
        let layout = example_layout();
        let mut seen = 0;
        for entry in std::fs::read_dir(corpus_dir()).expect("fuzz/corpus/payload") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .to_owned();
            let input = std::fs::read(&path).expect("read");
            let result = parse_framed(&layout, &input);
            if name.starts_with("ok-") {
                assert!(result.is_ok(), "{name}: {result:?}");
            } else if let Some(rest) = name.strip_prefix("reject-") {
                let err = result.expect_err(&name);
                assert!(rest.starts_with(err.reason.as_str()), "{name}: {err}");
            } else {
                panic!("corpus file {name} must start with ok- or reject-<reason>-");
            }
            seen += 1;
        }
        assert!(seen >= 20, "corpus has {seen} files");
    }

    #[test]
    fn the_documented_examples_parse_and_match_the_schema_fields() {
        let schema: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("docs/sensor-payload.schema.json"),
            )
            .expect("schema"),
        )
        .expect("schema is JSON");
        let layout = example_layout();
        let examples = schema["examples"].as_array().expect("examples");
        assert!(examples.len() >= 3);
        for example in examples {
            let id = example["sensor"]
                .as_str()
                .expect("examples name their sensor");
            let topic = format!("sitcenter/demo/sensors/{id}/up");
            let payload = example.to_string();
            let parsed = layout.parse(&topic, payload.as_bytes());
            assert!(parsed.is_ok(), "{payload}: {parsed:?}");
        }
        // The schema's properties are exactly the payload struct's fields.
        let mut props: Vec<String> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        props.sort();
        let full = crate::domain::SensorPayload {
            v: Some(1),
            sensor: Some("x".into()),
            seq: 1,
            ts: chrono::Utc::now(),
            state: crate::domain::CoverState::Open,
            tilt_deg: Some(1.0),
            water_level_cm: Some(1.0),
            flooding: Some(true),
            temperature_c: Some(1.0),
            battery_pct: Some(1.0),
            rssi_dbm: Some(-1.0),
            snr_db: Some(1.0),
            firmware: Some("1".into()),
        };
        let mut fields: Vec<String> = serde_json::to_value(&full)
            .expect("json")
            .as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect();
        fields.sort();
        assert_eq!(props, fields);
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        required.sort_unstable();
        assert_eq!(required, vec!["seq", "state", "ts"]);
    }

    #[test]
    fn a_megabyte_is_refused_before_it_is_parsed_and_names_the_sensor() {
        let layout = example_layout();
        let big = vec![b'{'; 1024 * 1024];
        let err = layout
            .parse("sitcenter/demo/sensors/MHS-1/up", &big)
            .expect_err("too large");
        assert_eq!(err.reason, RejectReason::TooLarge);
        assert_eq!(err.sensor.as_deref(), Some("MHS-1"));
    }

    #[test]
    fn keys_differ_when_a_restarted_sensor_reuses_a_sequence_number() {
        let id = SensorId::new("MHS-1").expect("id");
        let layout = example_layout();
        let a = layout
            .parse(
                "sitcenter/demo/sensors/MHS-1/up",
                br#"{"seq":5,"ts":"2026-11-29T10:00:00Z","state":"closed"}"#,
            )
            .expect("a");
        let b = layout
            .parse(
                "sitcenter/demo/sensors/MHS-1/up",
                br#"{"seq":5,"ts":"2026-11-29T11:00:00Z","state":"closed"}"#,
            )
            .expect("b");
        assert_ne!(message_key(&id, &a.reading), message_key(&id, &b.reading));
        assert_eq!(message_key(&id, &a.reading), "MHS-1:5:1795946400000");
    }
}
