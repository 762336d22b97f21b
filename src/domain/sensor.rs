//! Manhole-cover sensor values: ids, cover states, one reading, and the project's own wire
//! payload (`docs/sensor-payload.schema.json`), shared by the sensors stage (parsing) and the
//! demo simulator (publishing).

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A sensor's id as the sensor registry (`sensors.toml`) names it, e.g. `MHS-000017`.
/// 1–64 characters of `A–Z a–z 0–9 _ - . :`; cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SensorId(Arc<str>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("sensor id `{0}` is not valid: use 1-64 letters, digits, `_`, `-`, `.` or `:`")]
pub struct SensorIdError(pub String);

impl SensorId {
    pub fn new(id: &str) -> Result<Self, SensorIdError> {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
        if ok {
            Ok(Self(Arc::from(id)))
        } else {
            Err(SensorIdError(id.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SensorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SensorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SensorId({})", &self.0)
    }
}

impl Serialize for SensorId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// What the cover reports about itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoverState {
    #[default]
    Closed,
    Open,
    Tilted,
}

impl CoverState {
    pub const fn as_str(self) -> &'static str {
        match self {
            CoverState::Closed => "closed",
            CoverState::Open => "open",
            CoverState::Tilted => "tilted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "closed" => Some(CoverState::Closed),
            "open" => Some(CoverState::Open),
            "tilted" => Some(CoverState::Tilted),
            _ => None,
        }
    }
}

/// One validated reading of one sensor, whatever format it arrived in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SensorReading {
    /// The sensor's own sequence number (our schema: `seq`; ChirpStack: `fCnt`).
    pub seq: u64,
    /// The sensor's own timestamp (our schema: `ts`; ChirpStack: `time`).
    pub ts: DateTime<Utc>,
    pub state: CoverState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tilt_deg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub water_level_cm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flooding: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rssi_dbm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snr_db: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
}

/// The version of [`SensorPayload`] this build reads and writes (`"v": 1`).
pub const SENSOR_PAYLOAD_VERSION: u32 = 1;

/// The project's own sensor payload, exactly as on the wire (see
/// `docs/sensor-payload.schema.json`). Unknown fields are refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorPayload {
    /// Schema version; when present it must be 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<u32>,
    /// The sensor id; when present it must equal the id in the topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub state: CoverState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tilt_deg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub water_level_cm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flooding: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rssi_dbm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snr_db: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
}

impl SensorPayload {
    /// The wire form of `reading` from `sensor`.
    pub fn from_reading(sensor: &SensorId, reading: &SensorReading) -> Self {
        Self {
            v: Some(SENSOR_PAYLOAD_VERSION),
            sensor: Some(sensor.to_string()),
            seq: reading.seq,
            ts: reading.ts,
            state: reading.state,
            tilt_deg: reading.tilt_deg,
            water_level_cm: reading.water_level_cm,
            flooding: reading.flooding,
            temperature_c: reading.temperature_c,
            battery_pct: reading.battery_pct,
            rssi_dbm: reading.rssi_dbm,
            snr_db: reading.snr_db,
            firmware: reading.firmware.clone(),
        }
    }

    pub fn into_reading(self) -> SensorReading {
        SensorReading {
            seq: self.seq,
            ts: self.ts,
            state: self.state,
            tilt_deg: self.tilt_deg,
            water_level_cm: self.water_level_cm,
            flooding: self.flooding,
            temperature_c: self.temperature_c,
            battery_pct: self.battery_pct,
            rssi_dbm: self.rssi_dbm,
            snr_db: self.snr_db,
            firmware: self.firmware,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_ids_refuse_spaces_slashes_and_wildcards() {
        assert!(SensorId::new("MHS-000017").is_ok());
        assert!(SensorId::new("eui:0004a30b001c1234").is_ok());
        for bad in ["", "a b", "a/b", "+", "#", &"x".repeat(65)] {
            assert!(SensorId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_reading_round_trips_through_the_wire_payload() {
        let id = SensorId::new("MHS-1").expect("id");
        let reading = SensorReading {
            seq: 7,
            ts: DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z")
                .expect("ts")
                .with_timezone(&Utc),
            state: CoverState::Tilted,
            tilt_deg: Some(22.5),
            water_level_cm: None,
            flooding: Some(false),
            temperature_c: Some(-4.0),
            battery_pct: Some(81.0),
            rssi_dbm: None,
            snr_db: None,
            firmware: Some("2.3.1".into()),
        };
        let payload = SensorPayload::from_reading(&id, &reading);
        let text = serde_json::to_string(&payload).expect("json");
        let back: SensorPayload = serde_json::from_str(&text).expect("parse");
        assert_eq!(back.sensor.as_deref(), Some("MHS-1"));
        assert_eq!(back.into_reading(), reading);
    }
}
