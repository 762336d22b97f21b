//! The OsmAnd / Traccar Client parameter parser on arbitrary bytes (lossy UTF-8, as a query).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let now = chrono::DateTime::from_timestamp(1_764_590_400, 0).unwrap_or_default();
    let _outcome = sitcenter::telemetry::osmand::parse(&text, now);
});
