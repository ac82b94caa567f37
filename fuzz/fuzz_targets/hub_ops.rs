//! Fuzz target: `steadfast_hub::check::hub_ops` (see its docs for the property).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| steadfast_hub::check::hub_ops(data));
