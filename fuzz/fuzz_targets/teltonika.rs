//! The Teltonika framing and Codec 8/8E decoder on arbitrary bytes, as a connection consumes
//! them: the IMEI greeting, then packets until the buffer is used up or broken.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sitcenter::telemetry::teltonika::{Framed, imei, packet};

fuzz_target!(|data: &[u8]| {
    let mut rest = match imei(data) {
        Ok(Framed::Unit { consumed, .. }) => &data[consumed..],
        _ => data,
    };
    loop {
        match packet(rest) {
            Ok(Framed::Unit { consumed, .. }) | Err((_, Some(consumed))) => {
                rest = &rest[consumed.min(rest.len())..];
            }
            Ok(Framed::Incomplete) | Err((_, None)) => break,
        }
    }
});
