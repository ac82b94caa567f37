//! Application messages and the identifiers the core hands out.

use bytes::Bytes;
use core::fmt;

/// Whether a message travels as a WebSocket text or binary frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A text frame; the payload is valid UTF-8.
    Text,
    /// A binary frame.
    Binary,
}

/// One application message. The payload is reference-counted, so queueing,
/// replaying and handing it back never copy it.
///
/// It converts from what applications hold: `&str` and `String` become text,
/// `Vec<u8>`, `&'static [u8]` and [`Bytes`] binary.
///
/// ```
/// use steadfast_core::{Bytes, Message, MessageKind};
/// assert_eq!(Message::from("hi"), Message::text("hi"));
/// assert_eq!(Message::from(String::from("hi")).kind(), MessageKind::Text);
/// assert_eq!(Message::from(vec![1u8, 2]).kind(), MessageKind::Binary);
/// assert_eq!(Message::from(Bytes::from_static(b"\x01")).len(), 1);
/// ```
#[derive(Clone)]
pub struct Message {
    kind: MessageKind,
    payload: Bytes,
    /// A text payload taken on trust ([`Message::text_from_validated`]):
    /// [`Client::send`](crate::Client::send) checks it before accepting it.
    unchecked: bool,
}

impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.payload == other.payload
    }
}

impl Eq for Message {}

impl core::hash::Hash for Message {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.payload.hash(state);
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::text(s)
    }
}

impl From<alloc::string::String> for Message {
    fn from(s: alloc::string::String) -> Self {
        Message::text(s)
    }
}

impl From<alloc::vec::Vec<u8>> for Message {
    fn from(b: alloc::vec::Vec<u8>) -> Self {
        Message::binary(b)
    }
}

impl From<&'static [u8]> for Message {
    fn from(b: &'static [u8]) -> Self {
        Message::binary(Bytes::from_static(b))
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Message::binary(b)
    }
}

/// A text payload was not valid UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("text message payload is not valid UTF-8 (valid up to byte {valid_up_to})")]
pub struct InvalidUtf8 {
    /// Length of the longest valid prefix.
    pub valid_up_to: usize,
}

impl Message {
    /// A text message.
    ///
    /// ```
    /// let m = steadfast_core::Message::text("hello");
    /// assert_eq!(m.as_text(), Some("hello"));
    /// ```
    pub fn text(s: impl Into<alloc::string::String>) -> Self {
        Message {
            kind: MessageKind::Text,
            payload: Bytes::from(s.into()),
            unchecked: false,
        }
    }

    /// A text message from a static string, without allocating.
    pub const fn static_text(s: &'static str) -> Self {
        Message {
            kind: MessageKind::Text,
            payload: Bytes::from_static(s.as_bytes()),
            unchecked: false,
        }
    }

    /// A text message from bytes, checked to be UTF-8.
    pub fn text_from_bytes(payload: Bytes) -> Result<Self, InvalidUtf8> {
        match core::str::from_utf8(&payload) {
            Ok(_) => Ok(Message {
                kind: MessageKind::Text,
                payload,
                unchecked: false,
            }),
            Err(e) => Err(InvalidUtf8 {
                valid_up_to: e.valid_up_to(),
            }),
        }
    }

    /// A text message from bytes the caller has already validated as UTF-8
    /// (e.g. an adapter with tungstenite's `Utf8Bytes` of a received frame),
    /// without checking them again here. Should they not be UTF-8 after all,
    /// [`as_text`](Self::as_text) returns `None`, and
    /// [`Client::send`](crate::Client::send), which checks such a message
    /// before accepting it, refuses it with
    /// [`SendError::InvalidText`](crate::SendError::InvalidText): it never
    /// goes out as some other frame.
    pub fn text_from_validated(payload: Bytes) -> Self {
        Message {
            kind: MessageKind::Text,
            payload,
            unchecked: true,
        }
    }

    /// A binary message.
    pub fn binary(payload: impl Into<Bytes>) -> Self {
        Message {
            kind: MessageKind::Binary,
            payload: payload.into(),
            unchecked: false,
        }
    }

    /// The UTF-8 error of a text message taken on trust that is not UTF-8
    /// (`None` for every other message: they are valid by construction).
    pub(crate) fn invalid_text(&self) -> Option<InvalidUtf8> {
        if !self.unchecked {
            return None;
        }
        core::str::from_utf8(&self.payload)
            .err()
            .map(|e| InvalidUtf8 {
                valid_up_to: e.valid_up_to(),
            })
    }

    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The payload bytes.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The payload, consuming the message.
    pub fn into_payload(self) -> Bytes {
        self.payload
    }

    /// Payload length in bytes; what the outbox's byte limit counts.
    pub fn len(&self) -> usize {
        self.payload.len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    /// The payload as text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self.kind {
            MessageKind::Text => core::str::from_utf8(&self.payload).ok(),
            MessageKind::Binary => None,
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Payloads may carry credentials (auth messages): show only their size.
        f.debug_struct("Message")
            .field("kind", &self.kind)
            .field("len", &self.payload.len())
            .finish()
    }
}

/// Identifies one message accepted by [`Client::send`](crate::Client::send).
/// A client numbers the messages it accepts 0, 1, 2, … in `send` order and
/// never reuses an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub u64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "msg#{}", self.0)
    }
}

/// Identifies one transport (one connection attempt). Every `Connect` gets a
/// fresh id; input tagged with any other id than the live one is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_bytes_rejects_invalid_utf8_with_position() {
        let err = Message::text_from_bytes(Bytes::from_static(b"ab\xff")).unwrap_err();
        assert_eq!(err.valid_up_to, 2);
        assert!(Message::text_from_bytes(Bytes::from_static(b"ok")).is_ok());
    }

    #[test]
    fn only_text_taken_on_trust_is_checked_and_invalid_text_is_found() {
        assert!(Message::text("ok").invalid_text().is_none());
        assert!(Message::binary(&b"\xff"[..]).invalid_text().is_none());
        let bad = Message::text_from_validated(Bytes::from_static(b"ab\xff"));
        assert_eq!(bad.invalid_text(), Some(InvalidUtf8 { valid_up_to: 2 }));
        let good = Message::text_from_validated(Bytes::from_static(b"ab"));
        assert!(good.invalid_text().is_none());
        assert_eq!(good, Message::text("ab"), "trust does not change equality");
    }

    #[test]
    fn debug_output_hides_payload() {
        let m = Message::text("Bearer secret-token");
        let shown = alloc::format!("{m:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
