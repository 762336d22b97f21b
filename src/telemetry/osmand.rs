//! OsmAnd / Traccar Client over HTTP: one fix per request, as query parameters (`GET` or
//! `POST` with an empty body) or as an `application/x-www-form-urlencoded` body.
//!
//! Parameters (Traccar's OsmAnd protocol, what the OsmAnd app's online tracking and Traccar
//! Client send): `id` (or `deviceid`) the device identifier; `lat`, `lon` (or
//! `location=lat,lon`); `timestamp` (Unix seconds, Unix milliseconds, or RFC 3339); `speed`
//! in knots (Traccar's convention); `bearing` (or `heading`), `altitude`, `accuracy` (metres),
//! `hdop`, `batt`, `ignition` (`true`/`false`); unknown parameters are ignored, as Traccar does.
//! Pure: no I/O, never panics (fuzzed by `fuzz/fuzz_targets/osmand.rs`).

use chrono::{DateTime, Utc};

use super::fix::{Fix, RejectReason, Rejection};
use crate::domain::Position;

const KNOT_KMH: f64 = 1.852;

/// A decoded request: the device id and its fix.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub device: String,
    pub fix: Fix,
    /// Battery level in percent, when sent.
    pub battery_pct: Option<f64>,
}

/// Decodes the parameters of one request (`query` and `form` body concatenated with `&`).
/// `now` is used when the device sent no timestamp.
pub fn parse(params: &str, now: DateTime<Utc>) -> Result<Report, Rejection> {
    let mut device = None;
    let (mut lat, mut lon) = (None, None);
    let mut fix = Fix {
        at: now,
        position: Position::new(0.0, 0.0),
        speed_kmh: None,
        course_deg: None,
        altitude_m: None,
        satellites: None,
        hdop: None,
        accuracy_m: None,
        ignition: None,
        black_box: false,
    };
    let mut battery_pct = None;
    for (key, value) in url::form_urlencoded::parse(params.as_bytes()) {
        let num = |field: &str| -> Result<f64, Rejection> {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    Rejection::new(
                        RejectReason::Malformed,
                        format!("`{field}` is not a number"),
                    )
                })
        };
        match key.as_ref() {
            "id" | "deviceid" => {
                if value.is_empty()
                    || value.len() > 64
                    || !value.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(Rejection::new(
                        RejectReason::Malformed,
                        "`id` must be 1-64 printable characters",
                    ));
                }
                device = Some(value.to_string());
            }
            "lat" => lat = Some(num("lat")?),
            "lon" => lon = Some(num("lon")?),
            "location" => {
                let (a, b) = value.split_once(',').ok_or_else(|| {
                    Rejection::new(RejectReason::BadPosition, "`location` is not lat,lon")
                })?;
                let parse = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite());
                match (parse(a), parse(b)) {
                    (Some(a), Some(b)) => {
                        lat = Some(a);
                        lon = Some(b);
                    }
                    _ => {
                        return Err(Rejection::new(
                            RejectReason::BadPosition,
                            "`location` is not lat,lon",
                        ));
                    }
                }
            }
            "timestamp" => fix.at = timestamp(&value)?,
            "speed" => {
                let knots = num("speed")?;
                if !(0.0..=1100.0).contains(&knots) {
                    return Err(Rejection::new(
                        RejectReason::BadMotion,
                        "`speed` out of range",
                    ));
                }
                fix.speed_kmh = Some(knots * KNOT_KMH);
            }
            "bearing" | "heading" => {
                let c = num("bearing")?;
                if !(0.0..=360.0).contains(&c) {
                    return Err(Rejection::new(
                        RejectReason::BadMotion,
                        "`bearing` out of range",
                    ));
                }
                fix.course_deg = Some(c);
            }
            "altitude" => fix.altitude_m = Some(num("altitude")?),
            "accuracy" => fix.accuracy_m = Some(num("accuracy")?.abs()),
            "hdop" => fix.hdop = Some(num("hdop")?.abs()),
            "batt" | "battery" => battery_pct = Some(num("batt")?),
            "ignition" => fix.ignition = Some(matches!(value.as_ref(), "true" | "1")),
            _ => {}
        }
    }
    let device =
        device.ok_or_else(|| Rejection::new(RejectReason::Malformed, "no `id` parameter"))?;
    let (Some(lat), Some(lon)) = (lat, lon) else {
        return Err(Rejection::new(
            RejectReason::BadPosition,
            "no `lat`/`lon` (or `location`) parameters",
        ));
    };
    fix.position = Position::new(lat, lon);
    if !fix.position.is_valid() {
        return Err(Rejection::new(
            RejectReason::BadPosition,
            format!("lat {lat} lon {lon} out of range"),
        ));
    }
    Ok(Report {
        device,
        fix,
        battery_pct,
    })
}

fn timestamp(value: &str) -> Result<DateTime<Utc>, Rejection> {
    let bad = || {
        Rejection::new(
            RejectReason::BadTime,
            "`timestamp` is not Unix time or RFC 3339",
        )
    };
    if let Ok(n) = value.parse::<i64>() {
        // Seconds until the year 5138; milliseconds after.
        let at = if n.abs() < 100_000_000_000 {
            DateTime::from_timestamp(n, 0)
        } else {
            DateTime::from_timestamp_millis(n)
        };
        return at.ok_or_else(bad);
    }
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs.abs() < 1e11
    {
        return DateTime::from_timestamp_millis((secs * 1000.0) as i64).ok_or_else(bad);
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_590_400, 0).expect("valid")
    }

    #[test]
    fn a_traccar_client_request_decodes_with_speed_in_knots() {
        // Traccar Client (Android) query, as on traccar.org's OsmAnd protocol page.
        let r = parse(
            "id=123456&lat=51.1283&lon=71.4305&timestamp=1764590300&hdop=1.2&altitude=347.5&speed=10.0&bearing=45.0&batt=87.0",
            now(),
        )
        .expect("valid");
        assert_eq!(r.device, "123456");
        assert!((r.fix.speed_kmh.expect("valid") - 18.52).abs() < 1e-9);
        assert_eq!(r.fix.at.timestamp(), 1_764_590_300);
        assert_eq!(r.battery_pct, Some(87.0));
    }

    #[test]
    fn an_osmand_request_with_location_and_millisecond_time_decodes() {
        let r = parse(
            "deviceid=truck-7&location=51.1%2C71.4&timestamp=1764590300123&accuracy=8",
            now(),
        )
        .expect("valid");
        assert_eq!(r.device, "truck-7");
        assert_eq!(r.fix.at.timestamp_millis(), 1_764_590_300_123);
        assert_eq!(r.fix.accuracy_m, Some(8.0));
        assert_eq!(r.fix.position, Position::new(51.1, 71.4));
    }

    #[test]
    fn missing_or_broken_parameters_are_refused_with_a_reason() {
        let cases = [
            ("lat=1&lon=2", RejectReason::Malformed),
            ("id=a&lat=1", RejectReason::BadPosition),
            ("id=a&lat=91&lon=0", RejectReason::BadPosition),
            ("id=a&lat=x&lon=0", RejectReason::Malformed),
            (
                "id=a&lat=1&lon=1&timestamp=yesterday",
                RejectReason::BadTime,
            ),
            ("id=a&lat=1&lon=1&speed=-3", RejectReason::BadMotion),
        ];
        for (params, reason) in cases {
            assert_eq!(
                parse(params, now()).expect_err("refused").reason,
                reason,
                "{params}"
            );
        }
        let r = parse("id=a&lat=1&lon=1&timestamp=2025-11-01T10:00:00Z", now()).expect("valid");
        assert_eq!(r.fix.at.to_rfc3339(), "2025-11-01T10:00:00+00:00");
    }
}
