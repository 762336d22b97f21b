//! Bounded numbers of the settings files, each error at its line: shared by `[sensors]` and
//! `[telemetry]`.

use std::time::Duration;

use toml::Spanned;

use super::error::Collector;

pub(super) fn seconds(
    v: &Spanned<f64>,
    field: &str,
    min: f64,
    c: &mut Collector<'_>,
) -> Option<Duration> {
    let x = *v.get_ref();
    if x.is_finite() && x >= min && x <= 86_400.0 * 30.0 {
        Some(Duration::from_secs_f64(x))
    } else {
        c.push(
            Some(v.span()),
            None,
            Some(field),
            format!("must be a number of seconds in [{min}, 2592000], got {x}"),
        );
        None
    }
}

pub(super) fn number_in(
    v: &Option<Spanned<f64>>,
    default: f64,
    range: std::ops::RangeInclusive<f64>,
    field: &str,
    c: &mut Collector<'_>,
) -> f64 {
    match v {
        Some(v) if !(v.get_ref().is_finite() && range.contains(v.get_ref())) => {
            c.push(
                Some(v.span()),
                None,
                Some(field),
                format!(
                    "must be within {}..={}, got {}",
                    range.start(),
                    range.end(),
                    v.get_ref()
                ),
            );
            default
        }
        Some(v) => *v.get_ref(),
        None => default,
    }
}
