//! The Wialon IPS 2.0 line parser on arbitrary bytes, line by line as the server splits them.
//! It must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for line in data.split(|b| *b == b'\n') {
        let _outcome = sitcenter::telemetry::wialon::parse(line);
    }
});
