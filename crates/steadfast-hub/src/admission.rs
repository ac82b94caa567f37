//! What a handshake carried, and the application's verdict on it.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;
use steadfast_core::{CloseCode, Message};

/// The parts of a WebSocket upgrade request an application decides on:
/// path, query, headers and the offered subprotocols. The adapter fills it
/// in; the hub keeps none of it.
///
/// Its `Debug` output shows header names only for `Authorization`,
/// `Cookie` and `Sec-WebSocket-Protocol` (which often carries a token),
/// never their values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The request path, without the query (`/chat`).
    pub path: String,
    /// The raw query string, without the `?` (`id=1&room=lobby`).
    pub query: Option<String>,
    /// Header names and values, in the order received. Values that are not
    /// UTF-8 are kept lossily.
    pub headers: Vec<(String, String)>,
    /// The subprotocols the client offered, in order.
    pub protocols: Vec<String>,
}

impl Request {
    /// The first value of a query parameter, percent-decoded (`+` is a
    /// space). `None` when absent or when its escapes are not UTF-8.
    ///
    /// ```
    /// let req = steadfast_hub::Request {
    ///     query: Some("id=7&name=ann%20lee&x".into()),
    ///     ..Default::default()
    /// };
    /// assert_eq!(req.query_param("id").as_deref(), Some("7"));
    /// assert_eq!(req.query_param("name").as_deref(), Some("ann lee"));
    /// assert_eq!(req.query_param("x").as_deref(), Some(""));
    /// assert_eq!(req.query_param("y"), None);
    /// ```
    pub fn query_param(&self, key: &str) -> Option<Cow<'_, str>> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if percent_decode(k)? == key {
                percent_decode(v)
            } else {
                None
            }
        })
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The token of an `Authorization: Bearer <token>` header (the scheme
    /// matched case-insensitively).
    ///
    /// ```
    /// let req = steadfast_hub::Request {
    ///     headers: vec![("authorization".into(), "bearer s3cret".into())],
    ///     ..Default::default()
    /// };
    /// assert_eq!(req.bearer(), Some("s3cret"));
    /// ```
    pub fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?.trim();
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty())
    }

    /// Whether the client offered this subprotocol.
    pub fn offers(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p == protocol)
    }
}

struct QueryKeys<'a>(Option<&'a str>);

impl fmt::Debug for QueryKeys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self
            .0
            .into_iter()
            .flat_map(|q| q.split('&'))
            .map(|p| p.split('=').next().unwrap_or(""));
        f.debug_list().entries(keys).finish()
    }
}

fn is_secret_header(name: &str) -> bool {
    [
        "authorization",
        "cookie",
        "sec-websocket-protocol",
        "proxy-authorization",
    ]
    .iter()
    .any(|s| name.eq_ignore_ascii_case(s))
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a [(String, String)]);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(n, v)| {
                        let v = if is_secret_header(n) {
                            "<redacted>"
                        } else {
                            v.as_str()
                        };
                        (n, v)
                    }))
                    .finish()
            }
        }
        f.debug_struct("Request")
            .field("path", &self.path)
            // Keys only: `?token=` is common.
            .field("query", &QueryKeys(self.query.as_deref()))
            .field("headers", &Headers(&self.headers))
            .field("protocols", &self.protocols.len())
            .finish()
    }
}

fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| core::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// A handshake refused before the upgrade, as an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status (401, 403, 409, 429, 503, ...).
    pub status: u16,
    /// Sent as `Retry-After` (whole seconds, rounded up) when set.
    pub retry_after: Option<Duration>,
    /// The response body: a short reason for a human. Never put a token here.
    pub reason: String,
}

impl Rejection {
    /// A rejection with this status and reason. A status outside
    /// 400–599 is sent as 500: a rejection is an error response.
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Rejection {
            status,
            retry_after: None,
            reason: reason.into(),
        }
    }

    /// The status the response carries: [`status`](Self::status), or 500
    /// if that is not an error status (400–599).
    ///
    /// ```
    /// use steadfast_hub::Rejection;
    ///
    /// assert_eq!(Rejection::forbidden().sent_status(), 403);
    /// assert_eq!(Rejection::new(200, "not an error").sent_status(), 500);
    /// ```
    pub fn sent_status(&self) -> u16 {
        if (400..600).contains(&self.status) {
            self.status
        } else {
            500
        }
    }

    /// Whether the refusal is the server's own failure (it is sent as 500):
    /// worth a warning in the server's log, where a client's bad
    /// credentials or a shed load are not.
    ///
    /// ```
    /// use std::time::Duration;
    /// use steadfast_hub::Rejection;
    ///
    /// assert!(Rejection::new(500, "store down").is_internal_error());
    /// assert!(Rejection::new(99, "no such status").is_internal_error());
    /// assert!(!Rejection::unauthorized().is_internal_error());
    /// assert!(!Rejection::unavailable(Duration::from_secs(1)).is_internal_error());
    /// ```
    pub fn is_internal_error(&self) -> bool {
        self.sent_status() == 500
    }

    /// `401 Unauthorized`: no or bad credentials. A steadfast client does
    /// not retry it.
    pub fn unauthorized() -> Self {
        Rejection::new(401, "unauthorized")
    }

    /// `403 Forbidden`: credentials fine, access not.
    pub fn forbidden() -> Self {
        Rejection::new(403, "forbidden")
    }

    /// `429 Too Many Requests` with a `Retry-After`, which a steadfast
    /// client honours.
    pub fn too_many_requests(retry_after: Duration) -> Self {
        Rejection {
            retry_after: Some(retry_after),
            ..Rejection::new(429, "too many requests")
        }
    }

    /// `503 Service Unavailable` with a `Retry-After`.
    pub fn unavailable(retry_after: Duration) -> Self {
        Rejection {
            retry_after: Some(retry_after),
            ..Rejection::new(503, "unavailable")
        }
    }

    /// `Retry-After` as whole seconds, rounded up.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
            .map(|d| d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0)))
    }
}

/// The application's decision on a handshake, made from a [`Request`] by
/// its own verifier (token check, user lookup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<U> {
    /// Upgrade, as this user, echoing this subprotocol (browsers that offer
    /// subprotocols insist that one is echoed).
    Accept {
        /// Who the session belongs to.
        user: U,
        /// The subprotocol to echo; must be one the client offered.
        protocol: Option<String>,
    },
    /// Refuse before the upgrade with an HTTP status.
    Reject(Rejection),
    /// Upgrade, write `message` (if any), then close with `code` and
    /// `reason`: the session never joins the pool. This is how a server
    /// tells a browser *why* (browsers do not expose HTTP statuses of a
    /// failed upgrade), e.g. `{"type":"error"}` then 1008.
    Refuse {
        /// Written before the close frame.
        message: Option<Message>,
        /// The close code.
        code: CloseCode,
        /// The close reason (at most 123 bytes are sent).
        reason: String,
        /// The subprotocol to echo, as for `Accept`.
        protocol: Option<String>,
    },
}

impl<U> Verdict<U> {
    /// Accept as `user`, echoing no subprotocol.
    pub fn accept(user: U) -> Self {
        Verdict::Accept {
            user,
            protocol: None,
        }
    }

    /// The subprotocol the adapter echoes in the upgrade response.
    pub fn protocol(&self) -> Option<&str> {
        match self {
            Verdict::Accept { protocol, .. } | Verdict::Refuse { protocol, .. } => {
                protocol.as_deref()
            }
            Verdict::Reject(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;

    #[test]
    fn debug_output_never_shows_credentials() {
        let req = Request {
            path: "/".into(),
            query: Some("id=1&token=s3cret".into()),
            headers: vec![
                ("Authorization".into(), "Bearer s3cret".into()),
                ("Sec-WebSocket-Protocol".into(), "chat, token.s3cret".into()),
                ("Host".into(), "example".into()),
            ],
            protocols: vec!["chat".into(), "token.s3cret".into()],
        };
        let shown = format!("{req:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("\"token\""),
            "the query's keys are shown: {shown}"
        );
        assert!(shown.contains("example"), "{shown}");
    }

    #[test]
    fn malformed_escapes_are_kept_and_bad_utf8_is_absent() {
        let req = Request {
            query: Some("a=%zz&b=%ff&c=%4".into()),
            ..Request::default()
        };
        assert_eq!(req.query_param("a").as_deref(), Some("%zz"));
        assert_eq!(req.query_param("b"), None);
        assert_eq!(req.query_param("c").as_deref(), Some("%4"));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(
            Rejection::unavailable(Duration::from_millis(1500)).retry_after_secs(),
            Some(2)
        );
        assert_eq!(
            Rejection::too_many_requests(Duration::from_secs(3)).retry_after_secs(),
            Some(3)
        );
        assert_eq!(Rejection::unauthorized().retry_after_secs(), None);
    }
}
