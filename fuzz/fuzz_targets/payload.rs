//! The sensor payload parser on arbitrary input: topic up to the first newline, payload after
//! it (the corpus in `corpus/payload/` has that shape). It must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static LAYOUT: OnceLock<sitcenter::sensors::Layout> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let layout = LAYOUT.get_or_init(sitcenter::sensors::payload::example_layout);
    let _outcome = sitcenter::sensors::payload::parse_framed(layout, data);
});
