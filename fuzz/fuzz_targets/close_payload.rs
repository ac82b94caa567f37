//! Fuzz target: `steadfast_core::check::close_payload` (see its docs for the property).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| steadfast_core::check::close_payload(data));
