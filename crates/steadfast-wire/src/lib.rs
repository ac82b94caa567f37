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
