//! Our JSON fix schema (MQTT) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _outcome = sitcenter::telemetry::json::parse(data);
});
