//! # steadfast-wire
//!
//! What every steadfast adapter shares, whether it is async
//! (`steadfast-tokio`, `steadfast-async-std`, through `steadfast-async`) or
//! blocking (`steadfast-blocking`), written once and free of any async
//! runtime:
//!
//! - [`mapping`]: tungstenite's frames, handshake responses and errors as
//!   the core's messages and typed outcomes, and the core's transmits as
//!   tungstenite frames;
//! - [`request`]: a fixed request's per-attempt template (a fresh key per
//!   attempt), what a builder adds to it (headers, bearer token,
//!   subprotocols, query), the typed error of a request provider;
//! - [`Tls`]: the TLS configuration for `wss://` (the application's, or the
//!   default: webpki roots on the ring provider, named explicitly);
//! - [`Clock`]: the core's clock, which counts time the system spent
//!   suspended.
//!
//! Applications use an adapter crate; this one is their common ground.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod clock;
pub mod mapping;
pub mod request;
mod tls;

pub use clock::Clock;
pub use mapping::{Frame, retry_after};
pub use request::{ProviderError, RequestExtras, RequestTemplate};
/// The rustls this crate was built with.
#[cfg(feature = "rustls")]
pub use rustls;
pub use steadfast_core as core;
pub use tls::Tls;
#[cfg(feature = "rustls")]
pub use tls::default_config;
/// The tungstenite this crate was built with (requests, frames, errors).
pub use tungstenite;
pub use tungstenite::protocol::WebSocketConfig;

/// Read buffer of [`default_websocket_config`]: 4 KiB.
pub const DEFAULT_READ_BUFFER: usize = 4 * 1024;

/// tungstenite's defaults with a [`DEFAULT_READ_BUFFER`] read buffer, suited
/// to many mostly idle connections.
pub fn default_websocket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(DEFAULT_READ_BUFFER)
}

/// A request that could not be turned into a WebSocket handshake request.
#[derive(Debug, thiserror::Error)]
pub enum InvalidRequest {
    /// The URL or request is not a WebSocket request.
    #[error("invalid WebSocket request: {0}")]
    Request(#[from] tungstenite::Error),
    /// A header name or value is not valid HTTP (the value is not shown:
    /// it may be a token).
    #[error("invalid value for header {name:?}")]
    Header {
        /// The header's name.
        name: String,
    },
}

/// The state and counters of a connection at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The lifecycle state.
    pub state: steadfast_core::State,
    /// The counters.
    pub stats: steadfast_core::Stats,
}

impl Status {
    /// The client's state and counters, read together.
    pub fn of(client: &steadfast_core::Client) -> Self {
        Status {
            state: client.state(),
            stats: client.stats(),
        }
    }
}

/// Why a request (`Handle::request` in every adapter) got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The request was not accepted (the outbox is full, the client closed).
    #[error("request not accepted: {0}")]
    Send(#[from] steadfast_core::SendError),
    /// No reply came within the request's timeout.
    #[error("no reply within the request's timeout")]
    TimedOut,
    /// The server refused it (a negative ack), with its reason.
    #[error("refused by the server: {}", String::from_utf8_lossy(reason))]
    Refused {
        /// The server's reason.
        reason: steadfast_core::Bytes,
    },
    /// At most once: the connection dropped before the reply, and the
    /// request may or may not have been processed.
    #[error("the connection dropped before the reply")]
    ConnectionLost,
    /// Its TTL ran out before it was sent, or a fuller queue evicted it.
    #[error("not sent: it expired or was evicted")]
    NotSent,
    /// The server acknowledged it without a reply (an ack the application
    /// made itself, or a cumulative one).
    #[error("acknowledged without a reply")]
    NoReply,
    /// The connection was closed before the reply (it is handed back in
    /// [`Event::Closed`](steadfast_core::Event::Closed)).
    #[error("the connection was closed before the reply")]
    Closed,
    /// The connection failed before the reply (it is handed back in
    /// [`Event::Failed`](steadfast_core::Event::Failed)).
    #[error("the connection failed before the reply")]
    Failed,
}

impl RequestError {
    /// The reply, or why there is none, from the request's outcome (or the
    /// state the client ended in without one). For adapters.
    pub fn of(
        done: Result<steadfast_core::Outcome, steadfast_core::State>,
    ) -> Result<steadfast_core::Message, Self> {
        use steadfast_core::{DropReason, Outcome, State};
        match done {
            Ok(Outcome::Replied(reply)) => Ok(reply),
            Ok(Outcome::TimedOut) => Err(RequestError::TimedOut),
            Ok(Outcome::Refused(reason)) => Err(RequestError::Refused { reason }),
            Ok(Outcome::Dropped(DropReason::Disconnected)) => Err(RequestError::ConnectionLost),
            Ok(Outcome::Dropped(DropReason::Overflow) | Outcome::Expired) => {
                Err(RequestError::NotSent)
            }
            Ok(Outcome::Acked | Outcome::Written) => Err(RequestError::NoReply),
            Err(State::Closed) => Err(RequestError::Closed),
            Err(_) => Err(RequestError::Failed),
        }
    }
}

/// The option setters every adapter's `Builder` has, written once: expands,
/// inside a `Builder`'s `impl`, to `header`, `bearer`, `subprotocols`,
/// `query`, `config`, `websocket_config` and (with the caller's `rustls`
/// feature) `tls_config`, over its fields `extras` ([`RequestExtras`]),
/// `config`, `ws_config` and `tls` ([`Tls`]).
#[macro_export]
macro_rules! builder_options {
    () => {
        /// Add header `name: value` to every attempt's request (beside any
        /// of the same name). Values are never logged.
        pub fn header(mut self, name: &str, value: &str) -> Result<Self, $crate::InvalidRequest> {
            self.extras.header(name, value)?;
            Ok(self)
        }

        /// `Authorization: Bearer <token>` on every attempt's request
        /// (marked sensitive, never logged). For a token that changes
        /// between attempts, use [`Builder::with_provider`].
        pub fn bearer(mut self, token: &str) -> Result<Self, $crate::InvalidRequest> {
            self.extras.bearer(token)?;
            Ok(self)
        }

        /// Offer these subprotocols (`Sec-WebSocket-Protocol`), in order of
        /// preference. The one the server chose is in
        /// [`Event::Opened`](steadfast_core::Event::Opened)'s handshake; a
        /// server that chooses none fails the connection with
        /// [`Error::Subprotocol`](steadfast_core::Error::Subprotocol).
        pub fn subprotocols(mut self, protocols: &[&str]) -> Result<Self, $crate::InvalidRequest> {
            self.extras.subprotocols(protocols)?;
            Ok(self)
        }

        /// Add query parameter `key=value` (form-encoded) to every
        /// attempt's URL.
        pub fn query(mut self, key: &str, value: &str) -> Self {
            self.extras.query(key, value);
            self
        }

        /// The core's configuration (heartbeat, retry, outbox, acks, ...).
        pub fn config(mut self, config: $crate::core::Config) -> Self {
            self.config = config;
            self
        }

        /// tungstenite's settings (buffers, message size limits).
        pub fn websocket_config(mut self, ws_config: $crate::WebSocketConfig) -> Self {
            self.ws_config = ws_config;
            self
        }

        /// The TLS client configuration for `wss://`, instead of the
        /// default (the webpki roots, on the ring provider): e.g. one that
        /// trusts a private CA, or presents a client certificate (build it
        /// with `rustls::ClientConfig::builder_with_provider`).
        /// Certificates are still checked against its roots and the URL's
        /// host. Leave its ALPN protocols empty (or `http/1.1`): the
        /// WebSocket handshake is HTTP/1.1.
        #[cfg(feature = "rustls")]
        pub fn tls_config(mut self, config: std::sync::Arc<$crate::rustls::ClientConfig>) -> Self {
            self.tls = $crate::Tls::rustls(config);
            self
        }
    };
}

/// The commands every adapter's handle has, written once: expands, inside
/// an `impl` with a `command` method that runs a closure on the core
/// (`fn command<T>(&self, f: impl FnOnce(&mut Client, Instant) -> T) -> T`),
/// to `send`, `send_keyed`, `send_with_ttl`, `ack`, `set_online`,
/// `auth_accepted`, `auth_rejected` and `set_auth_message`. Pass `mut` for
/// a handle whose `command` takes `&mut self`.
#[macro_export]
macro_rules! client_commands {
    ($($mut:tt)?) => {
        /// Queue a message; it is sent in order once connected. Never
        /// blocks; works while connecting, backing off or offline. Takes
        /// `&str`, `String`, `Vec<u8>`, `Bytes` or a `Message`.
        pub fn send(
            & $($mut)? self,
            msg: impl Into<$crate::core::Message>,
        ) -> Result<$crate::core::MessageId, $crate::core::SendError> {
            let msg = msg.into();
            self.command(|c, now| c.send(msg, now))
        }

        /// Queue a message with an application `key` that the server's acks
        /// name: with acks configured
        /// ([`ConfigBuilder::acks`](steadfast_core::ConfigBuilder::acks)),
        /// the server's `ack:<key>` settles it (at least once: no `ack`
        /// call, no map of your own), and a negative ack refuses it with the
        /// server's reason. Put the key in the message where the server
        /// finds it.
        pub fn send_keyed(
            & $($mut)? self,
            key: u64,
            msg: impl Into<$crate::core::Message>,
        ) -> Result<$crate::core::MessageId, $crate::core::SendError> {
            let msg = msg.into();
            self.command(|c, now| c.send_keyed(key, msg, now))
        }

        /// Queue a message that expires if not handed to a transport
        /// within `ttl`.
        pub fn send_with_ttl(
            & $($mut)? self,
            msg: impl Into<$crate::core::Message>,
            ttl: std::time::Duration,
        ) -> Result<$crate::core::MessageId, $crate::core::SendError> {
            let msg = msg.into();
            self.command(|c, now| c.send_with_ttl(msg, Some(ttl), now))
        }

        /// Acknowledge a message yourself (at-least-once delivery; with an
        /// ack matcher the server's acks do it).
        pub fn ack(
            & $($mut)? self,
            id: $crate::core::MessageId,
        ) -> Result<(), $crate::core::AckError> {
            self.command(|c, now| c.ack(id, now))
        }

        /// Whether the network is up (e.g. from the OS). Offline pauses
        /// reconnects; online reconnects at once.
        pub fn set_online(& $($mut)? self, online: bool) {
            self.command(|c, now| c.set_online(online, now));
        }

        /// Confirm authentication (when the config has an auth phase).
        pub fn auth_accepted(& $($mut)? self) -> Result<(), $crate::core::StateError> {
            self.command(|c, now| c.auth_accepted(now))
        }

        /// Reject authentication: the connection fails with a typed error.
        pub fn auth_rejected(
            & $($mut)? self,
            reason: &str,
        ) -> Result<(), $crate::core::StateError> {
            self.command(|c, now| c.auth_rejected(reason, now))
        }

        /// Replace the auth message for the next connections (a fresh
        /// token). Text taken on trust that is not UTF-8 is refused.
        pub fn set_auth_message(
            & $($mut)? self,
            msg: Option<$crate::core::Message>,
        ) -> Result<(), $crate::core::InvalidUtf8> {
            self.command(|c, _| c.set_auth_message(msg))
        }
    };
}
