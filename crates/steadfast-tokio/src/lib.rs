//! # steadfast-tokio
//!
//! A WebSocket client on tokio that stays up: heartbeats that catch dead
//! peers, reconnects with a real retry budget, and an outbound queue that
//! never loses a message silently. You send and receive; the
//! [steadfast-core](steadfast_core) state machine decides when to connect,
//! ping, retry, flush and give up.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use std::time::Duration;
//! use steadfast_tokio::Builder;
//! use steadfast_tokio::core::{AuthConfig, CloseCode, Config, Delivery, Event, Message, OutboxConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::builder()
//!     // At least once: a message stays queued, and is replayed after a
//!     // reconnect, until you ack it.
//!     .outbox(OutboxConfig { delivery: Delivery::AtLeastOnce, ..Default::default() })
//!     // An auth phase: this message goes first on every connection, and
//!     // nothing else is sent until you accept the server's answer.
//!     .auth(AuthConfig { message: Some(Message::text("auth secret")), ..Default::default() })
//!     .build()?;
//! let (handle, mut events) = Builder::new("wss://example.com/chat")?
//!     .bearer("token")?
//!     .config(config)
//!     .connect();
//!
//! let id = handle.send("hello")?; // queued until open; &str, String, Vec<u8>, Bytes
//! while let Some(event) = events.next().await {
//!     match event {
//!         Event::Message(m) if m.as_text() == Some("auth ok") => handle.auth_accepted()?,
//!         Event::Message(m) if m.as_text() == Some("ack hello") => {
//!             handle.ack(id)?; // delivered: the outcome is Acked
//!             handle.close_when_delivered(CloseCode::NORMAL, "bye", Duration::from_secs(5)).await?;
//!         }
//!         Event::Message(m) => println!("got {:?}", m.as_text()),
//!         Event::Reconnecting { attempt, delay, cause, .. } => {
//!             println!("attempt {attempt} in {delay:?}: {cause}")
//!         }
//!         Event::Failed { error, undelivered } => {
//!             eprintln!("gave up: {error}; {} handed back", undelivered.len())
//!         }
//!         _ => {}
//!     }
//! } // the stream ends after Closed or Failed
//! # Ok(()) }
//! ```
//!
//! `events.recv().await` is the same as `events.next().await` without
//! `StreamExt`. [`Handle::close`](steadfast_async::Handle::close) closes with
//! 1000; dropping the last handle does too.
//!
//! Everything but the runtime lives in `steadfast-async`, where the items
//! re-exported here are documented (the same names serve async-std and smol
//! in `steadfast-async-std`). This crate implements its [`Runtime`] for tokio:
//! tokio-tungstenite for the WebSocket (TLS through rustls, feature `rustls`,
//! on by default), tokio's timers, `tokio::spawn` on the current runtime, and
//! tokio's clock, so `tokio::time::pause()` drives tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::pin::Pin;
use steadfast_async::tungstenite::handshake::client::{Request, Response};

pub use steadfast_async::adapter_api::*;

#[cfg(feature = "server")]
pub mod server;

/// Configures and starts one resilient connection on tokio.
pub type Builder = steadfast_async::Builder<Tokio>;
/// Controls one connection on tokio; see [`steadfast_async::Handle`].
pub type Handle = steadfast_async::Handle<Tokio>;
/// The events of one connection on tokio; see [`steadfast_async::Events`].
pub type Events = steadfast_async::Events<Tokio>;

/// The tokio runtime: connections are spawned on the runtime current when
/// [`Builder::connect`](steadfast_async::Builder::connect) is called.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

impl Runtime for Tokio {
    type Socket = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;
    type Timer = tokio::time::Sleep;

    fn connect(
        request: Request,
        config: WebSocketConfig,
        tls: Tls,
    ) -> impl Future<Output = Result<(Self::Socket, Response), tungstenite::Error>> + Send + 'static
    {
        // TCP_NODELAY on; the connector is always ours for wss (or none):
        // tokio-tungstenite never builds one from the process-default provider.
        #[cfg(feature = "rustls")]
        {
            let connector = Some(match tls.config() {
                Some(config) => tokio_tungstenite::Connector::Rustls(config.clone()),
                None => tokio_tungstenite::Connector::Plain,
            });
            tokio_tungstenite::connect_async_tls_with_config(request, Some(config), true, connector)
        }
        #[cfg(not(feature = "rustls"))]
        {
            let _ = tls;
            tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        }
    }

    fn timer(at: std::time::Instant) -> tokio::time::Sleep {
        tokio::time::sleep_until(at.into())
    }

    fn reset(timer: Pin<&mut tokio::time::Sleep>, at: std::time::Instant) {
        timer.reset(at.into());
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }

    fn now() -> std::time::Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// The README's examples, compiled (and the core one run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
