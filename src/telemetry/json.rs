//! Our JSON fix schema (MQTT topic `<topic_prefix>/<device>/fix`, docs/telemetry.md):
//! `{"time": RFC 3339 | Unix ms, "lat": f, "lon": f, "speed_kmh"?: f, "course_deg"?: f,
//! "altitude_m"?: f, "satellites"?: u8, "hdop"?: f, "accuracy_m"?: f, "ignition"?: bool}`;
//! unknown fields are refused (a typo must not silently drop a value).
//! Pure: no I/O, never panics (fuzzed by `fuzz/fuzz_targets/json.rs`).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::fix::{Fix, RejectReason, Rejection};
use crate::domain::Position;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFix {
    time: RawTime,
    lat: f64,
    lon: f64,
    speed_kmh: Option<f64>,
    course_deg: Option<f64>,
    altitude_m: Option<f64>,
    satellites: Option<u8>,
    hdop: Option<f64>,
    accuracy_m: Option<f64>,
    ignition: Option<bool>,
    #[serde(default)]
    black_box: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawTime {
    Millis(i64),
    Text(String),
}

/// The device id from a topic `<prefix>/<device>/fix`.
pub fn device_of<'a>(prefix: &str, topic: &'a str) -> Option<&'a str> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let device = rest.strip_suffix("/fix")?;
    (!device.is_empty() && !device.contains('/')).then_some(device)
}

/// Decodes one payload.
pub fn parse(payload: &[u8]) -> Result<Fix, Rejection> {
    let raw: RawFix = serde_json::from_slice(payload).map_err(|e| {
        Rejection::new(
            RejectReason::Malformed,
            format!("line {} column {}: {e}", e.line(), e.column()),
        )
    })?;
    let at = match &raw.time {
        RawTime::Millis(ms) => DateTime::from_timestamp_millis(*ms),
        RawTime::Text(t) => DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
    }
    .ok_or_else(|| Rejection::new(RejectReason::BadTime, "`time` is not RFC 3339 or Unix ms"))?;
    let position = Position::new(raw.lat, raw.lon);
    if !position.is_valid() {
        return Err(Rejection::new(
            RejectReason::BadPosition,
            "`lat`/`lon` out of range",
        ));
    }
    let finite = |v: Option<f64>, field: &str, range: std::ops::RangeInclusive<f64>| match v {
        Some(x) if !(x.is_finite() && range.contains(&x)) => Err(Rejection::new(
            RejectReason::BadMotion,
            format!("`{field}` out of range"),
        )),
        other => Ok(other),
    };
    Ok(Fix {
        at,
        position,
        speed_kmh: finite(raw.speed_kmh, "speed_kmh", 0.0..=2000.0)?,
        course_deg: finite(raw.course_deg, "course_deg", 0.0..=360.0)?,
        altitude_m: finite(raw.altitude_m, "altitude_m", -1000.0..=20_000.0)?,
        satellites: raw.satellites,
        hdop: finite(raw.hdop, "hdop", 0.0..=100.0)?,
        accuracy_m: finite(raw.accuracy_m, "accuracy_m", 0.0..=100_000.0)?,
        ignition: raw.ignition,
        black_box: raw.black_box,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_decodes_and_typos_are_refused() {
        let fix = parse(
            br#"{"time":"2025-11-01T10:00:00Z","lat":51.128,"lon":71.43,"speed_kmh":12.5,"ignition":true}"#,
        )
        .expect("valid");
        assert_eq!(fix.ignition, Some(true));
        assert_eq!(
            parse(br#"{"time":1,"lat":1,"lon":1,"sped_kmh":1}"#)
                .expect_err("refused")
                .reason,
            RejectReason::Malformed
        );
        assert_eq!(
            parse(br#"{"time":1,"lat":100,"lon":1}"#)
                .expect_err("refused")
                .reason,
            RejectReason::BadPosition
        );
        assert_eq!(
            device_of("sitcenter/gps", "sitcenter/gps/t-1/fix"),
            Some("t-1")
        );
        assert_eq!(device_of("sitcenter/gps", "sitcenter/gps/a/b/fix"), None);
    }
}
