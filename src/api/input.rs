//! Checks on client-given values, shared by the Open311 and appeals APIs: every text field
//! bounded and free of NUL bytes (PostgreSQL refuses NUL in `text` and `jsonb`, which would
//! otherwise surface as a 503), dates within a window of now, positions inside the city,
//! numbers within range, URLs of allowed schemes only. Each error names the field.

use chrono::{DateTime, Datelike, Duration, Utc};
use serde_json::Value;

/// `description` of an appeal or an Open311 request, in characters.
pub const MAX_DESCRIPTION: usize = 4000;
/// `address` / `address_string`.
pub const MAX_ADDRESS: usize = 500;
/// `note` of a lifecycle action.
pub const MAX_NOTE: usize = 2000;
/// Codes and ids (`category`, `body_id`, `stage`, `source_ref`, …).
pub const MAX_ID: usize = 200;
/// Names (`body_name`, `first_name`, …) and contact details.
pub const MAX_NAME: usize = 254;
/// Free-text search (`text`).
pub const MAX_SEARCH_TEXT: usize = 200;
/// URLs (`media_url`, evidence `uri`).
pub const MAX_URL: usize = 2048;
/// Evidence entries in one observation.
pub const MAX_EVIDENCE_ITEMS: usize = 10;
/// One evidence entry's `data`, serialized.
pub const MAX_EVIDENCE_DATA_BYTES: usize = 16 * 1024;
/// How far ahead of the registry clock `observed_at` may be (clock skew).
pub const OBSERVED_AHEAD: Duration = Duration::minutes(5);
/// How far back `observed_at` may be (a report older than this is no longer an observation).
pub const OBSERVED_BEHIND: Duration = Duration::days(30);
/// `uncertainty_m` at most (metres).
pub const MAX_UNCERTAINTY_M: f64 = 10_000.0;
/// `offset` of a search page at most.
pub const MAX_OFFSET: i64 = 100_000;
/// Years accepted in query dates (`registered_from`, `start_date`, …).
pub const QUERY_YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// A client-given value that is not acceptable; the message names the field.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InputError {
    #[error("`{field}` contains a NUL byte")]
    Nul { field: String },
    #[error("`{field}` is {len} characters long; at most {max}")]
    TooLong {
        field: String,
        len: usize,
        max: usize,
    },
    #[error("`{field}` {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: &str, message: impl Into<String>) -> InputError {
    InputError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// A text value: no NUL byte, at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), InputError> {
    if value.contains('\0') {
        return Err(InputError::Nul {
            field: field.to_owned(),
        });
    }
    let len = value.chars().count();
    if len > max {
        return Err(InputError::TooLong {
            field: field.to_owned(),
            len,
            max,
        });
    }
    Ok(())
}

/// [`text`] for an optional value.
pub fn opt_text(field: &str, value: Option<&str>, max: usize) -> Result<(), InputError> {
    value.map_or(Ok(()), |v| text(field, v, max))
}

/// A JSON value stored as `jsonb`: no NUL in any key or string, at most `max_bytes` once
/// serialized (nesting depth is bounded by the JSON parser's own limit).
pub fn json(field: &str, value: &Value, max_bytes: usize) -> Result<(), InputError> {
    fn has_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(list) => list.iter().any(has_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    if has_nul(value) {
        return Err(InputError::Nul {
            field: field.to_owned(),
        });
    }
    let len = value.to_string().len();
    if len > max_bytes {
        return Err(invalid(
            field,
            format!("is {len} bytes of JSON; at most {max_bytes}"),
        ));
    }
    Ok(())
}

/// When something was observed: within [`OBSERVED_BEHIND`] before and [`OBSERVED_AHEAD`]
/// after `now` (a date years ahead would bypass the duplicate join; year 1 or 9999 is a typo).
pub fn observed_at(field: &str, at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), InputError> {
    let earliest = now.checked_sub_signed(OBSERVED_BEHIND).unwrap_or(now);
    let latest = now.checked_add_signed(OBSERVED_AHEAD).unwrap_or(now);
    if at < earliest || at > latest {
        return Err(invalid(
            field,
            format!(
                "must be within {} days before and {} minutes after now ({}); got {}",
                OBSERVED_BEHIND.num_days(),
                OBSERVED_AHEAD.num_minutes(),
                now.format("%Y-%m-%dT%H:%M:%SZ"),
                at.to_rfc3339()
            ),
        ));
    }
    Ok(())
}

/// A date bounding a search: a year in [`QUERY_YEARS`].
pub fn query_date(field: &str, at: DateTime<Utc>) -> Result<(), InputError> {
    if !QUERY_YEARS.contains(&at.year()) {
        return Err(invalid(
            field,
            format!(
                "must be a date in the years {}–{}",
                QUERY_YEARS.start(),
                QUERY_YEARS.end()
            ),
        ));
    }
    Ok(())
}

/// A link to media the citizen attached: an absolute `http`/`https` URL with a host.
pub fn media_url(field: &str, value: &str) -> Result<(), InputError> {
    text(field, value, MAX_URL)?;
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(u) => Err(invalid(
            field,
            format!(
                "must be an http or https URL; `{}` is not allowed",
                u.scheme()
            ),
        )),
        Err(_) => Err(invalid(field, "is not a URL")),
    }
}

/// A position's uncertainty: finite, 0–[`MAX_UNCERTAINTY_M`] metres.
pub fn uncertainty(field: &str, metres: f64) -> Result<(), InputError> {
    if !(0.0..=MAX_UNCERTAINTY_M).contains(&metres) {
        return Err(invalid(
            field,
            format!("must be 0–{MAX_UNCERTAINTY_M} metres; got {metres}"),
        ));
    }
    Ok(())
}

/// A page: `limit` 1–`max_limit`, `offset` 0–[`MAX_OFFSET`].
pub fn page(limit: Option<i64>, offset: Option<i64>, max_limit: i64) -> Result<(), InputError> {
    if let Some(l) = limit
        && !(1..=max_limit).contains(&l)
    {
        return Err(invalid("limit", format!("must be 1–{max_limit}; got {l}")));
    }
    if let Some(o) = offset
        && !(0..=MAX_OFFSET).contains(&o)
    {
        return Err(invalid(
            "offset",
            format!("must be 0–{MAX_OFFSET}; got {o}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_refuses_nul_and_counts_characters_not_bytes() {
        assert!(text("note", "ашық құдық", 10).is_ok());
        assert_eq!(
            text("note", "a\0b", 10),
            Err(InputError::Nul {
                field: "note".into()
            })
        );
        let error = text("description", &"я".repeat(11), 10).expect_err("too long");
        assert_eq!(
            error.to_string(),
            "`description` is 11 characters long; at most 10"
        );
    }

    #[test]
    fn json_refuses_nul_in_keys_and_nested_strings_and_large_values() {
        assert!(json("evidence[0].data", &serde_json::json!({"a": [1, "b"]}), 100).is_ok());
        assert!(json("d", &serde_json::json!({"a": [{"b": "x\u{0}"}]}), 100).is_err());
        assert!(json("d", &serde_json::json!({"k\u{0}": 1}), 100).is_err());
        assert!(json("d", &serde_json::json!({"a": "x".repeat(200)}), 100).is_err());
    }

    #[test]
    fn observed_at_is_bounded_around_now_even_at_the_representable_limits() {
        let now = Utc::now();
        assert!(observed_at("observed_at", now - Duration::days(1), now).is_ok());
        assert!(observed_at("observed_at", now + Duration::days(365), now).is_err());
        assert!(observed_at("observed_at", DateTime::<Utc>::MIN_UTC, now).is_err());
        assert!(observed_at("observed_at", DateTime::<Utc>::MAX_UTC, now).is_err());
        let max = DateTime::<Utc>::MAX_UTC;
        assert!(observed_at("observed_at", max, max).is_ok());
        assert!(observed_at("observed_at", now, DateTime::<Utc>::MIN_UTC).is_err());
    }

    #[test]
    fn media_urls_must_be_http_or_https_with_a_host() {
        assert!(media_url("media_url", "https://photos.example/a.jpg").is_ok());
        for bad in [
            "javascript:alert(1)",
            "file:///etc/passwd",
            "data:,x",
            "ftp://h/x",
            "x",
        ] {
            assert!(media_url("media_url", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pages_and_uncertainty_are_bounded() {
        assert!(page(Some(1), Some(0), 500).is_ok());
        assert!(page(Some(-1), None, 500).is_err());
        assert!(page(Some(501), None, 500).is_err());
        assert!(page(None, Some(-5), 500).is_err());
        assert!(uncertainty("uncertainty_m", 15.0).is_ok());
        assert!(uncertainty("uncertainty_m", -1.0).is_err());
        assert!(uncertainty("uncertainty_m", 1e300).is_err());
        assert!(uncertainty("uncertainty_m", f64::NAN).is_err());
    }
}
