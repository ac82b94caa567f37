//! Fuzz target: Retry-After parsing, the core's delta-seconds form and the
//! tokio adapter's full parser (delta-seconds or HTTP-date).
#![no_main]

use std::time::{Duration, SystemTime};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    steadfast_core::check::retry_after(data);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if let Some(delay) = steadfast_tokio::retry_after(data, now) {
        assert!(delay <= steadfast_core::MAX_RETRY_AFTER);
    }
});
