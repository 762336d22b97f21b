//! The HTTP edge's parsers on arbitrary input: a request target on the first line (NUL,
//! UTF-8 and length checks), an Open311 form body after it (parameter bounds, W3C datetimes).
//! The corpus in `corpus/request_input/` has that shape. It must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _accepted = sitcenter::api::parse_client_input(data);
});
