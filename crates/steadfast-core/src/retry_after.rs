//! Parsing of the HTTP `Retry-After` header's delta-seconds form.
//!
//! The HTTP-date form needs a wall clock, which the core does not have:
//! adapters convert it to a delay themselves and hand the core a `Duration`.

use core::time::Duration;

/// Longest delay a `Retry-After` value is taken at (one day); larger values
/// are clamped so arithmetic on them cannot overflow.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// Parses `Retry-After: <delta-seconds>` (RFC 9110 §10.2.3), allowing
/// surrounding whitespace. Returns `None` for anything else, including the
/// HTTP-date form. Values beyond [`MAX_RETRY_AFTER`] are clamped to it.
///
/// ```
/// use core::time::Duration;
/// use steadfast_core::parse_retry_after_seconds;
///
/// assert_eq!(parse_retry_after_seconds(b" 120 "), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after_seconds(b"Wed, 21 Oct 2015 07:28:00 GMT"), None);
/// assert_eq!(parse_retry_after_seconds(b"-5"), None);
/// ```
pub fn parse_retry_after_seconds(value: &[u8]) -> Option<Duration> {
    let trimmed = value.trim_ascii();
    if trimmed.is_empty() || !trimmed.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut secs: u64 = 0;
    for digit in trimmed {
        secs = secs
            .saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'));
    }
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_values_clamp_instead_of_overflowing() {
        assert_eq!(
            parse_retry_after_seconds(b"99999999999999999999999999"),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn non_digits_and_empty_values_are_rejected() {
        for v in [&b""[..], b"  ", b"1.5", b"+3", b"3s", b"\xff"] {
            assert_eq!(parse_retry_after_seconds(v), None, "{v:?}");
        }
        assert_eq!(parse_retry_after_seconds(b"0"), Some(Duration::ZERO));
    }
}
