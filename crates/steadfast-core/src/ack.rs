//! Acks and replies the server sends: recognising them in incoming
//! messages ([`AckMatcher`]), as the heartbeat recognises pongs.

use crate::Message;
use bytes::Bytes;

/// What an incoming message acknowledges, by the application keys given at
/// [`Client::send_keyed`](crate::Client::send_keyed) or
/// [`Client::request`](crate::Client::request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckMatch {
    /// The message with this key was processed: it ends
    /// [`Acked`](crate::Outcome::Acked), or, for a request, this message is
    /// its reply ([`Replied`](crate::Outcome::Replied)).
    Ack(u64),
    /// Every keyed message (not request) with a key up to this one was
    /// processed (a cumulative ack).
    UpTo(u64),
    /// The server refused the message with this key: it ends
    /// [`Refused`](crate::Outcome::Refused) with this reason.
    Nack {
        /// The refused message's key.
        key: u64,
        /// The server's reason (a slice of the incoming payload, not a copy).
        reason: Bytes,
    },
}

/// Recognises acks, cumulative acks, negative acks and replies in incoming
/// messages.
#[derive(Debug, Clone)]
pub enum AckMatcher {
    /// Text of the shape `<prefix><decimal key>[:rest]`, for each prefix
    /// given: `ack:42` acks key 42; `ack:42:{"ok":true}` too (and is the
    /// reply to request 42); `upto:42` acks every key up to 42; `nack:42:no
    /// such room` refuses key 42 with reason `no such room`.
    Prefixed {
        /// The prefix of an ack or reply, e.g. `ack:`.
        ack: Bytes,
        /// The prefix of a cumulative ack, if the server sends them.
        up_to: Option<Bytes>,
        /// The prefix of a negative ack, if the server sends them.
        nack: Option<Bytes>,
    },
    /// A function of the message.
    Fn(fn(&Message) -> Option<AckMatch>),
}

impl AckMatcher {
    /// `ack:<key>` acks and `nack:<key>:<reason>` refusals, the common shape.
    pub fn ack_nack() -> Self {
        AckMatcher::Prefixed {
            ack: Bytes::from_static(b"ack:"),
            up_to: None,
            nack: Some(Bytes::from_static(b"nack:")),
        }
    }

    /// What `msg` acknowledges, if it is an ack at all.
    ///
    /// ```
    /// use steadfast_core::{AckMatch, AckMatcher, Bytes, Message};
    /// let m = AckMatcher::ack_nack();
    /// assert_eq!(m.matches(&Message::text("ack:7")), Some(AckMatch::Ack(7)));
    /// assert_eq!(m.matches(&Message::text("ack:7:{\"ok\":1}")), Some(AckMatch::Ack(7)));
    /// assert_eq!(
    ///     m.matches(&Message::text("nack:8:full")),
    ///     Some(AckMatch::Nack { key: 8, reason: Bytes::from_static(b"full") })
    /// );
    /// assert_eq!(m.matches(&Message::text("ack:x")), None);
    /// assert_eq!(m.matches(&Message::text("chat")), None);
    /// ```
    pub fn matches(&self, msg: &Message) -> Option<AckMatch> {
        match self {
            AckMatcher::Fn(f) => f(msg),
            AckMatcher::Prefixed { ack, up_to, nack } => {
                let payload = msg.payload();
                if let Some((key, _)) = keyed(payload, ack) {
                    return Some(AckMatch::Ack(key));
                }
                if let Some((key, _)) = up_to.as_ref().and_then(|p| keyed(payload, p)) {
                    return Some(AckMatch::UpTo(key));
                }
                let (key, rest) = nack.as_ref().and_then(|p| keyed(payload, p))?;
                Some(AckMatch::Nack {
                    key,
                    reason: payload.slice(rest..),
                })
            }
        }
    }
}

/// `<prefix><digits>` followed by the end or `:`: the key, and where what
/// follows the `:` starts.
fn keyed(payload: &Bytes, prefix: &[u8]) -> Option<(u64, usize)> {
    let rest = payload.strip_prefix(prefix)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 20 {
        return None;
    }
    let key = rest[..digits].iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })?;
    let after = prefix.len() + digits;
    match payload.get(after) {
        None => Some((key, after)),
        Some(b':') => Some((key, after + 1)),
        Some(_) => None,
    }
}

/// Acks in incoming messages: how to recognise them, and whether they
/// also reach the application.
#[derive(Debug, Clone)]
pub struct AckConfig {
    /// Recognises acks, nacks and replies.
    pub matcher: AckMatcher,
    /// Whether matched acks are also delivered as
    /// [`Event::Message`](crate::Event::Message) (replies always come with
    /// their outcome). Default false.
    pub forward: bool,
}

impl AckConfig {
    /// Recognise acks with `matcher`; matched acks do not reach the
    /// application as messages.
    pub fn new(matcher: AckMatcher) -> Self {
        AckConfig {
            matcher,
            forward: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_decimal_and_end_at_a_colon_or_the_end() {
        let p = Bytes::from_static(b"ack:");
        assert_eq!(keyed(&Bytes::from_static(b"ack:0"), &p), Some((0, 5)));
        assert_eq!(keyed(&Bytes::from_static(b"ack:12:x"), &p), Some((12, 7)));
        assert_eq!(keyed(&Bytes::from_static(b"ack:12x"), &p), None);
        assert_eq!(keyed(&Bytes::from_static(b"ack:"), &p), None);
        assert_eq!(keyed(&Bytes::from_static(b"nack:1"), &p), None);
        assert_eq!(
            keyed(&Bytes::from_static(b"ack:18446744073709551615"), &p),
            Some((u64::MAX, 24))
        );
        assert_eq!(
            keyed(&Bytes::from_static(b"ack:18446744073709551616"), &p),
            None
        );
    }

    #[test]
    fn cumulative_acks_are_recognised_when_configured() {
        let m = AckMatcher::Prefixed {
            ack: Bytes::from_static(b"ack:"),
            up_to: Some(Bytes::from_static(b"upto:")),
            nack: None,
        };
        assert_eq!(m.matches(&Message::text("upto:9")), Some(AckMatch::UpTo(9)));
        assert_eq!(m.matches(&Message::text("nack:9:x")), None);
    }
}
