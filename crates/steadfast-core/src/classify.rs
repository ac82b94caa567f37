//! What the client does after a connection ends: reconnect, reconnect soon,
//! wait longer, or give up. Close codes and handshake HTTP statuses each have
//! a table with RFC-based defaults that the application can override.

use crate::CloseCode;
use alloc::vec::Vec;
use core::ops::RangeInclusive;

/// How the client reacts to one way a connection can end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryClass {
    /// Reconnect with the ordinary backoff.
    Reconnect,
    /// The server is restarting: reconnect soon, spread by jitter over
    /// [`RetryConfig::restart_spread`](crate::RetryConfig::restart_spread).
    ReconnectSoon,
    /// The server is overloaded: reconnect, but not before
    /// [`RetryConfig::try_again_later_floor`](crate::RetryConfig::try_again_later_floor).
    ReconnectLater,
    /// Give up: the client ends in `Failed` with a typed [`Error`](crate::Error).
    Fatal,
}

/// Overrides over a default classification of 16-bit codes; later overrides win.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Overrides(Vec<(RangeInclusive<u16>, RetryClass)>);

impl Overrides {
    fn classify(&self, code: u16, default: fn(u16) -> RetryClass) -> RetryClass {
        self.0
            .iter()
            .rev()
            .find(|(range, _)| range.contains(&code))
            .map_or_else(|| default(code), |(_, class)| *class)
    }
}

/// Classifies close codes. The defaults follow RFC 6455 and the IANA registry;
/// any code or range can be overridden, later overrides winning.
///
/// | codes | default |
/// |---|---|
/// | 1000, 1001, 1002, 1005, 1006, 1011, 1014, 3000–4999, unknown | reconnect |
/// | 1012 service restart | reconnect soon |
/// | 1013 try again later | reconnect later |
/// | 1003, 1007, 1008, 1009, 1010, 1015 | fatal |
///
/// ```
/// use steadfast_core::{CloseCode, CloseCodeTable, RetryClass};
///
/// let table = CloseCodeTable::default().with(4001..=4001, RetryClass::Fatal);
/// assert_eq!(table.classify(CloseCode(4001)), RetryClass::Fatal);
/// assert_eq!(table.classify(CloseCode(4002)), RetryClass::Reconnect);
/// assert_eq!(table.classify(CloseCode::SERVICE_RESTART), RetryClass::ReconnectSoon);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloseCodeTable {
    overrides: Overrides,
}

impl CloseCodeTable {
    /// Classify `codes` as `class`, overriding the defaults and earlier overrides.
    pub fn with(mut self, codes: RangeInclusive<u16>, class: RetryClass) -> Self {
        self.overrides.0.push((codes, class));
        self
    }

    /// The class of `code`.
    pub fn classify(&self, code: CloseCode) -> RetryClass {
        self.overrides.classify(code.0, default_close_class)
    }
}

fn default_close_class(code: u16) -> RetryClass {
    match code {
        1012 => RetryClass::ReconnectSoon,
        1013 => RetryClass::ReconnectLater,
        1003 | 1007 | 1008 | 1009 | 1010 | 1015 => RetryClass::Fatal,
        _ => RetryClass::Reconnect,
    }
}

/// Classifies the HTTP status of a refused WebSocket handshake.
///
/// | status | default |
/// |---|---|
/// | 401, 403, 407 | fatal ([`Error::Unauthorized`](crate::Error::Unauthorized)) |
/// | 408, 500–599 | reconnect (honouring `Retry-After`) |
/// | 425, 429 | reconnect later (honouring `Retry-After`) |
/// | any other | fatal ([`Error::HandshakeRejected`](crate::Error::HandshakeRejected)) |
///
/// ```
/// use steadfast_core::{HttpStatusTable, RetryClass};
///
/// let table = HttpStatusTable::default().with(404..=404, RetryClass::Reconnect);
/// assert_eq!(table.classify(404), RetryClass::Reconnect);
/// assert_eq!(table.classify(401), RetryClass::Fatal);
/// assert_eq!(table.classify(503), RetryClass::Reconnect);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpStatusTable {
    overrides: Overrides,
}

impl HttpStatusTable {
    /// Classify `statuses` as `class`, overriding the defaults and earlier overrides.
    pub fn with(mut self, statuses: RangeInclusive<u16>, class: RetryClass) -> Self {
        self.overrides.0.push((statuses, class));
        self
    }

    /// The class of `status`.
    pub fn classify(&self, status: u16) -> RetryClass {
        self.overrides.classify(status, default_http_class)
    }
}

fn default_http_class(status: u16) -> RetryClass {
    match status {
        408 | 500..=599 => RetryClass::Reconnect,
        425 | 429 => RetryClass::ReconnectLater,
        _ => RetryClass::Fatal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_restart_and_try_again_later_ask_us_to_wait() {
        let t = CloseCodeTable::default();
        assert_eq!(t.classify(CloseCode(1012)), RetryClass::ReconnectSoon);
        assert_eq!(t.classify(CloseCode(1013)), RetryClass::ReconnectLater);
    }

    #[test]
    fn normal_abnormal_and_internal_errors_reconnect() {
        let t = CloseCodeTable::default();
        for code in [
            1000, 1001, 1002, 1005, 1006, 1011, 1014, 3000, 4000, 4999, 2999,
        ] {
            assert_eq!(t.classify(CloseCode(code)), RetryClass::Reconnect, "{code}");
        }
    }

    #[test]
    fn data_and_policy_close_codes_are_fatal() {
        let t = CloseCodeTable::default();
        for code in [1003, 1007, 1008, 1009, 1010, 1015] {
            assert_eq!(t.classify(CloseCode(code)), RetryClass::Fatal, "{code}");
        }
    }

    #[test]
    fn later_close_overrides_win_over_earlier_ones_and_defaults() {
        let t = CloseCodeTable::default()
            .with(4000..=4999, RetryClass::Fatal)
            .with(4100..=4199, RetryClass::ReconnectLater)
            .with(1009..=1009, RetryClass::Reconnect);
        assert_eq!(t.classify(CloseCode(4000)), RetryClass::Fatal);
        assert_eq!(t.classify(CloseCode(4150)), RetryClass::ReconnectLater);
        assert_eq!(t.classify(CloseCode(1009)), RetryClass::Reconnect);
    }

    #[test]
    fn auth_statuses_are_fatal_and_overload_statuses_retry() {
        let t = HttpStatusTable::default();
        for s in [401, 403, 407, 400, 404, 200, 301] {
            assert_eq!(t.classify(s), RetryClass::Fatal, "{s}");
        }
        for s in [408, 500, 502, 503, 504] {
            assert_eq!(t.classify(s), RetryClass::Reconnect, "{s}");
        }
        assert_eq!(t.classify(429), RetryClass::ReconnectLater);
    }
}
