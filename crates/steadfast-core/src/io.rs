//! What flows between the core and an adapter: [`Transmit`] out,
//! [`TransportEvent`] in.

use crate::{CloseCode, ConnId, Message, MessageId};
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;
use core::time::Duration;

/// I/O the adapter must perform, in the order returned by
/// [`Client::poll_transmit`](crate::Client::poll_transmit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Open a new transport (TCP, TLS, WebSocket handshake) tagged `conn`.
    /// Any earlier transport has already been closed or aborted.
    Connect {
        /// The new connection's id; tag every event about it with this id.
        conn: ConnId,
        /// 1-based attempt number within the current outage.
        attempt: u32,
    },
    /// Write an outbox message; report [`TransportEvent::Written`] once the
    /// transport has accepted it.
    Send {
        /// The connection to write on.
        conn: ConnId,
        /// The message's id.
        id: MessageId,
        /// The message.
        msg: Message,
    },
    /// Write a message that is not part of the outbox (the auth message, an
    /// application-level ping). No `Written` report is expected.
    SendControl {
        /// The connection to write on.
        conn: ConnId,
        /// The message.
        msg: Message,
    },
    /// Send a WebSocket ping frame with this payload.
    Ping {
        /// The connection to ping on.
        conn: ConnId,
        /// The ping's payload; the pong echoes it.
        payload: [u8; 8],
    },
    /// Send a close frame and keep reading until the peer's close arrives,
    /// then report [`TransportEvent::Closed`].
    Close {
        /// The connection to close.
        conn: ConnId,
        /// The close code.
        code: CloseCode,
        /// The close reason (at most 123 bytes).
        reason: String,
    },
    /// Drop the transport at once, without a close handshake. Report nothing more for it.
    Abort {
        /// The connection to drop.
        conn: ConnId,
    },
}

impl Transmit {
    /// The connection this transmit concerns.
    pub fn conn(&self) -> ConnId {
        match self {
            Transmit::Connect { conn, .. }
            | Transmit::Send { conn, .. }
            | Transmit::SendControl { conn, .. }
            | Transmit::Ping { conn, .. }
            | Transmit::Close { conn, .. }
            | Transmit::Abort { conn } => *conn,
        }
    }
}

/// What the server's handshake response said, as
/// [`Event::Opened`](crate::Event::Opened) hands it to the application.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Handshake {
    /// The subprotocol the server chose (`Sec-WebSocket-Protocol`), if any.
    pub protocol: Option<String>,
    /// The response's headers, names in lower case, in the order received.
    pub headers: Vec<(String, Bytes)>,
}

impl Handshake {
    /// The first value of header `name` (case-insensitive).
    ///
    /// ```
    /// use steadfast_core::{Bytes, Handshake};
    /// let h = Handshake {
    ///     protocol: None,
    ///     headers: vec![("x-region".into(), Bytes::from_static(b"eu-1"))],
    /// };
    /// assert_eq!(h.header("X-Region").map(|v| v.as_ref()), Some(&b"eu-1"[..]));
    /// ```
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may carry session tokens (cookies): names only.
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Handshake")
            .field("protocol", &self.protocol)
            .field("headers", &names)
            .finish()
    }
}

/// Why a handshake failed, as the adapter saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// Connection refused, DNS failure, no route: the server is not reachable.
    Unreachable,
    /// The adapter's own I/O timed out (the core's connect timeout is separate).
    Timeout,
    /// TLS failed (certificate, protocol version, ...).
    Tls,
    /// The server answered the upgrade with a non-101 HTTP status.
    Http {
        /// The status code.
        status: u16,
        /// The server's `Retry-After`, already converted to a delay.
        retry_after: Option<Duration>,
    },
    /// The server's response was not a valid WebSocket handshake.
    Protocol,
    /// The request offered subprotocols (`Sec-WebSocket-Protocol`, e.g. a
    /// token) and the server chose none of them, or one not offered: a
    /// configuration error that retrying does not heal.
    Subprotocol,
    /// The application's request provider failed (retryably), or built an
    /// invalid request.
    Request,
    /// The application's request provider failed and said not to retry
    /// (e.g. its credentials were revoked).
    RequestRefused,
}

/// Why an open transport broke, as the adapter saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    /// Connection reset, or the stream ended without a close frame (1006).
    Reset,
    /// The peer violated the WebSocket protocol (1002).
    Protocol,
    /// The peer sent a message or frame over the size limit (1009).
    MessageTooBig,
    /// The peer sent a text message that is not UTF-8 (1007).
    InvalidUtf8,
}

impl TransportError {
    /// The close code that describes this failure.
    pub fn close_code(self) -> CloseCode {
        match self {
            TransportError::Reset => CloseCode::ABNORMAL,
            TransportError::Protocol => CloseCode::PROTOCOL,
            TransportError::MessageTooBig => CloseCode::TOO_BIG,
            TransportError::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
        }
    }

    /// The close frame an adapter sends the peer before dropping a
    /// connection the peer broke; `None` when the connection is already gone.
    /// One rule here, so every adapter tells the peer the same thing.
    pub fn close_frame_code(self) -> Option<CloseCode> {
        match self {
            TransportError::Reset => None,
            other => Some(other.close_code()),
        }
    }
}

/// Something the adapter observed on a transport, fed to
/// [`Client::handle_transport`](crate::Client::handle_transport) with the
/// transport's [`ConnId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// The WebSocket handshake completed, with what the response said.
    Opened(Handshake),
    /// The handshake failed; the adapter has dropped the transport.
    HandshakeFailed(HandshakeError),
    /// A data message arrived.
    Message(Message),
    /// The peer pinged us (the WebSocket library answers it).
    Ping(Bytes),
    /// A pong arrived.
    Pong(Bytes),
    /// The transport accepted an outbox message.
    Written(MessageId),
    /// The close handshake finished (or the peer's close frame arrived and was
    /// answered); the adapter has dropped the transport.
    Closed {
        /// The peer's close code (1005 when its frame had none).
        code: CloseCode,
        /// The peer's reason.
        reason: String,
    },
    /// The transport broke; the adapter has dropped it.
    Error(TransportError),
}

/// Why a connection attempt failed or an open connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The handshake failed.
    Handshake(HandshakeError),
    /// The attempt did not open within the connect timeout.
    ConnectTimeout,
    /// The peer closed the connection.
    Closed {
        /// Its close code.
        code: CloseCode,
        /// Its reason.
        reason: String,
    },
    /// The transport broke.
    Transport(TransportError),
    /// The peer stopped answering heartbeats.
    HeartbeatTimeout,
    /// The application did not confirm authentication in time.
    AuthTimeout,
    /// The application rejected authentication.
    AuthRejected {
        /// The application's reason.
        reason: String,
    },
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Handshake(HandshakeError::Unreachable) => f.write_str("server unreachable"),
            Cause::Handshake(HandshakeError::Timeout) => f.write_str("handshake timed out"),
            Cause::Handshake(HandshakeError::Tls) => f.write_str("TLS handshake failed"),
            Cause::Handshake(HandshakeError::Http { status, .. }) => {
                write!(f, "handshake refused with HTTP {status}")
            }
            Cause::Handshake(HandshakeError::Protocol) => f.write_str("invalid handshake response"),
            Cause::Handshake(HandshakeError::Subprotocol) => {
                f.write_str("the server chose none of the offered subprotocols")
            }
            Cause::Handshake(HandshakeError::Request) => f.write_str("could not build the request"),
            Cause::Handshake(HandshakeError::RequestRefused) => {
                f.write_str("the request provider refused to build a request")
            }
            Cause::ConnectTimeout => f.write_str("connect timeout"),
            Cause::Closed { code, reason } => write!(f, "closed by peer with {code} {reason:?}"),
            Cause::Transport(e) => write!(f, "transport error {e:?} ({})", e.close_code()),
            Cause::HeartbeatTimeout => f.write_str("heartbeat timeout"),
            Cause::AuthTimeout => f.write_str("authentication timeout"),
            Cause::AuthRejected { reason } => write!(f, "authentication rejected: {reason}"),
        }
    }
}
