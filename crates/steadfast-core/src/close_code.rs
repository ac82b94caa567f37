//! WebSocket close codes (RFC 6455 §7.4 and the IANA registry) and the
//! close-frame payload parser. How each code is acted upon lives in
//! [`classify`](crate::classify).

use core::fmt;

/// A WebSocket close code.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error.
    pub const PROTOCOL: CloseCode = CloseCode(1002);
    /// 1003: data of a type the endpoint cannot accept.
    pub const UNSUPPORTED: CloseCode = CloseCode(1003);
    /// 1005: no status code was present (never sent on the wire).
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection dropped without a close frame (never sent on the wire).
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: payload inconsistent with the message type (e.g. invalid UTF-8).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: policy violation.
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: message too big.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: internal server error.
    pub const INTERNAL: CloseCode = CloseCode(1011);
    /// 1012: service restart; reconnect soon.
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later.
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: bad gateway.
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: TLS handshake failure (never sent on the wire).
    pub const TLS: CloseCode = CloseCode(1015);

    /// Whether an endpoint may put this code in a close frame
    /// (1000–1003, 1007–1014, 3000–4999).
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

/// Parses the payload of a close frame: a big-endian code and a UTF-8 reason.
/// An empty payload means 1005 (no status). Returns `None` for a malformed
/// payload (one byte, a code that may not be sent, or a reason that is not UTF-8).
///
/// ```
/// use steadfast_core::{parse_close_payload, CloseCode};
/// assert_eq!(parse_close_payload(b"\x03\xf4bye"), Some((CloseCode(1012), "bye")));
/// assert_eq!(parse_close_payload(b""), Some((CloseCode::NO_STATUS, "")));
/// assert_eq!(parse_close_payload(b"\x03"), None);
/// ```
pub fn parse_close_payload(payload: &[u8]) -> Option<(CloseCode, &str)> {
    match payload {
        [] => Some((CloseCode::NO_STATUS, "")),
        [_] => None,
        [hi, lo, rest @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_sendable() {
                return None;
            }
            core::str::from_utf8(rest).ok().map(|reason| (code, reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_payload_rejects_reserved_codes_and_bad_utf8() {
        assert_eq!(parse_close_payload(b"\x03\xed"), None); // 1005 may not be sent
        assert_eq!(parse_close_payload(b"\x03\xe8\xff"), None);
        assert_eq!(
            parse_close_payload(b"\x03\xe8ok"),
            Some((CloseCode::NORMAL, "ok"))
        );
    }
}
