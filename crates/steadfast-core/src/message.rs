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
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Message {
    kind: MessageKind,
    payload: Bytes,
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
        }
    }

    /// A text message from a static string, without allocating.
    pub const fn static_text(s: &'static str) -> Self {
        Message {
            kind: MessageKind::Text,
            payload: Bytes::from_static(s.as_bytes()),
        }
    }

    /// A text message from bytes, checked to be UTF-8.
    pub fn text_from_bytes(payload: Bytes) -> Result<Self, InvalidUtf8> {
        match core::str::from_utf8(&payload) {
            Ok(_) => Ok(Message {
                kind: MessageKind::Text,
                payload,
            }),
            Err(e) => Err(InvalidUtf8 {
                valid_up_to: e.valid_up_to(),
            }),
        }
    }

    /// A text message from bytes the caller has already validated as UTF-8
    /// (e.g. tungstenite's `Utf8Bytes`), without checking them again. Should
    /// they not be UTF-8 after all, [`as_text`](Self::as_text) returns `None`;
    /// nothing else depends on it.
    pub fn text_from_validated(payload: Bytes) -> Self {
        Message {
            kind: MessageKind::Text,
            payload,
        }
    }

    /// A binary message.
    pub fn binary(payload: impl Into<Bytes>) -> Self {
        Message {
            kind: MessageKind::Binary,
            payload: payload.into(),
        }
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
    fn debug_output_hides_payload() {
        let m = Message::text("Bearer secret-token");
        let shown = alloc::format!("{m:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
