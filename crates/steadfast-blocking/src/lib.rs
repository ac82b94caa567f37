//! # steadfast-blocking
//!
//! steadfast for programs with no async runtime (CLIs, daemons, game
//! loops, test harnesses): one resilient WebSocket connection on
//! `std::net` and tungstenite's blocking API, with the same core, the
//! same guarantees and the same names as the async adapters. It runs in
//! one of two modes.
//!
//! ## Caller-driven: your thread runs it
//!
//! The connection runs while you wait in [`Connection::next_event`] (or
//! iterate it): it connects, reads, answers pings, runs the heartbeat and
//! retries. Commands write at once.
//!
//! ```no_run
//! use std::time::Duration;
//! use steadfast_blocking::{Builder, core::{Config, Delivery, Event, OutboxConfig}};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::builder()
//!     .outbox(OutboxConfig { delivery: Delivery::AtLeastOnce, ..Default::default() })
//!     .build()?;
//! let mut conn = Builder::new("wss://example.com/feed")?
//!     .bearer("eyJhbGciOi...")?
//!     .config(config)
//!     .connect();
//! let hello = conn.send("hello")?; // queued while connecting
//! loop {
//!     match conn.next_event(Duration::from_millis(250))? {
//!         Some(Event::Message(m)) => {
//!             tracing::info!(len = m.len(), "received");
//!             if m.as_text() == Some("ack:hello") {
//!                 conn.ack(hello)?; // at least once: done with it
//!                 conn.close(); // graceful, 1000; Closed comes next
//!             }
//!         }
//!         Some(Event::Closed { undelivered, .. }) => {
//!             tracing::info!(undelivered = undelivered.len(), "closed");
//!             break;
//!         }
//!         Some(Event::Failed { error, .. }) => return Err(error.into()),
//!         Some(_) => {} // opened, reconnecting, state changes, ...
//!         None => { /* no event within 250 ms: do other work */ }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! ## Background: its own thread
//!
//! [`Builder::spawn`] runs the same loop on a thread of its own and
//! returns a cloneable, `Send` [`Handle`] and a blocking [`Events`]
//! receiver. Commands from any thread act at once.
//!
//! ```no_run
//! use steadfast_blocking::{Builder, core::Event};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (handle, events) = Builder::new("wss://example.com/feed")?
//!     .header("x-client", "kiosk-7")?
//!     .spawn()?;
//! let sender = handle.clone();
//! std::thread::spawn(move || {
//!     for n in 0..3 {
//!         let _ = sender.send(format!("tick {n}"));
//!     }
//! });
//! for event in events {
//!     match event {
//!         Event::Message(m) if m.as_text() == Some("tick 2") => handle.close(),
//!         Event::Message(m) => tracing::info!(len = m.len(), "received"),
//!         Event::Failed { error, .. } => return Err(error.into()),
//!         _ => {}
//!     }
//! } // ends after Event::Closed
//! # Ok(()) }
//! ```
//!
//! ## How it waits
//!
//! - Once open, every read and write on the socket is non-blocking
//!   (`MSG_DONTWAIT`, through rustix, no unsafe). Caller-driven, when all
//!   there is to wait for is a frame, the wait is a read that blocks until
//!   one comes, bounded by the socket's read timeout, which is kept no
//!   later than the core's next deadline
//!   ([`poll_timeout`](steadfast_core::Client::poll_timeout)): one system
//!   call per received message, as in a plain blocking client. Otherwise
//!   (something left to write, reading paused, a goodbye) the loop waits in
//!   `poll(2)` for the socket, or until the core's next deadline, and in
//!   background mode for a waker too: one end of a Unix socket pair,
//!   which a command that needs the loop (a connect or an abort, a write the
//!   socket did not take, a state change, an earlier deadline) writes a byte
//!   to. Nothing polls on a short timeout.
//! - In background mode, while your thread waits in [`Events::recv`] (or
//!   `recv_timeout`, or the iterator) with nothing to take and the link
//!   open, your thread does the loop's work itself: an incoming message
//!   reaches it without a hop from the loop thread, which stays parked
//!   meanwhile. While messages are coming, your thread waits for the next
//!   in one blocking read, as a plain blocking client does, outside the
//!   connection's lock (so commands from other threads run meanwhile) and
//!   for a tenth of a second or so at a time; what a command needs done
//!   while it reads (a write the socket did not take, an earlier deadline)
//!   the loop thread does. Once the link is idle it waits in `poll(2)`. Once
//!   you stop taking events, the loop thread takes over within a quarter of
//!   a second, and never later than the core's next deadline. Connects are
//!   always the loop thread's.
//! - Writes never block: what the socket does not take waits in
//!   tungstenite's buffer (or rustls's) and goes out as the socket drains,
//!   so a blackholed peer with a full send buffer never holds off a
//!   deadline: dead-peer detection holds.
//! - A handshake is blocking, bounded by the core's connect timeout
//!   (`TcpStream::connect_timeout`, then socket timeouts through TLS and
//!   the WebSocket handshake); name resolution is the system's and is not
//!   bounded. Commands issued meanwhile take effect in the core at once
//!   and reach the socket when the handshake ends.
//! - Received messages the application has not taken are bounded
//!   ([`InboundConfig`](steadfast_core::InboundConfig)); at the bound the
//!   socket is not read, and taking an event resumes reading.
//! - The thread of background mode has a [`DEFAULT_STACK_SIZE`] stack
//!   (256 KiB: the handshake, rustls and tracing fit with room to spare,
//!   and only the pages touched cost memory), changed with
//!   [`Builder::stack_size`].
//! - `wss://` uses rustls with the webpki roots and the ring provider,
//!   named explicitly (feature `rustls`, on by default); certificates are
//!   checked. [`Builder::tls_config`] takes the application's own.
//! - The core's clock counts time the system spent suspended (Linux and
//!   Android), as in the async adapters.
//! - steadfast logs a request's scheme, host, port and path, never its
//!   query or headers. tungstenite logs the raw handshake request at
//!   *trace* level through `log`: keep its target at `debug` or above.
//! - Unix only for now (`poll(2)`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(unix))]
compile_error!("steadfast-blocking waits with poll(2): it supports Unix only for now");

mod background;
mod connection;
mod engine;
mod stream;
mod wait;

pub use background::{Events, Handle};
pub use connection::Connection;
/// The rustls this crate was built with, for [`Builder::tls_config`].
#[cfg(feature = "rustls")]
pub use rustls;
pub use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
pub use steadfast_core as core;
pub use steadfast_wire::{
    DEFAULT_READ_BUFFER, InvalidRequest, ProviderError, RequestError, Status, WebSocketConfig,
    default_websocket_config, retry_after,
};
/// The tungstenite this crate was built with (requests, frames, errors).
pub use tungstenite;

use engine::{Engine, Settings};
use std::sync::Arc;
use steadfast_core::Config;
use steadfast_wire::{RequestExtras, RequestTemplate, Tls};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request;

/// Stack of the background thread: 256 KiB.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

type ProviderFn = dyn Fn(u32) -> Result<Request, ProviderError> + Send + Sync;

/// Builds the handshake request for every connection attempt.
#[derive(Clone)]
pub struct RequestProvider {
    inner: Arc<ProviderFn>,
}

impl std::fmt::Debug for RequestProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Requests carry credentials: never print them.
        f.write_str("RequestProvider(..)")
    }
}

impl RequestProvider {
    /// The same request for every attempt, with a fresh
    /// `Sec-WebSocket-Key` each time (RFC 6455 §4.1).
    pub fn fixed(request: Request) -> Self {
        let template = RequestTemplate::of(request);
        RequestProvider::from_fn(move |_| template.build().map_err(ProviderError::from))
    }

    /// A function called once per attempt (on the connection's thread)
    /// with the attempt's number within the outage (from 1), e.g. to fetch
    /// a fresh token. Its error says whether to retry ([`ProviderError`]):
    ///
    /// ```
    /// use steadfast_blocking::{ProviderError, RequestProvider};
    /// use steadfast_blocking::tungstenite::client::IntoClientRequest;
    ///
    /// let provider = RequestProvider::from_fn(|attempt| {
    ///     let token = "fresh-token"; // fetched per attempt in real code
    ///     if token.is_empty() {
    ///         return Err(ProviderError::fatal("signed out"));
    ///     }
    ///     let mut req = "ws://127.0.0.1:9/chat".into_client_request()?;
    ///     req.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
    ///     req.headers_mut().insert("x-attempt", attempt.to_string().parse()?);
    ///     Ok(req)
    /// });
    /// # let _ = provider;
    /// ```
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn(u32) -> Result<Request, ProviderError> + Send + Sync + 'static,
    {
        RequestProvider { inner: Arc::new(f) }
    }

    pub(crate) fn request(&self, attempt: u32) -> Result<Request, ProviderError> {
        (self.inner)(attempt)
    }
}

/// Configures and starts one resilient connection.
pub struct Builder {
    provider: RequestProvider,
    config: Config,
    ws_config: WebSocketConfig,
    tls: Tls,
    extras: RequestExtras,
    stack_size: usize,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("provider", &self.provider)
            .field("config", &self.config)
            .field("ws_config", &self.ws_config)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// A connection to a fixed URL or `http::Request`; refused with
    /// [`InvalidRequest`] when no attempt could use it (not a request, a
    /// scheme other than `ws`/`wss`, no host).
    pub fn new(request: impl IntoClientRequest) -> Result<Self, InvalidRequest> {
        Ok(Builder::with_provider(RequestProvider::fixed(
            steadfast_wire::request::websocket_request(request)?,
        )))
    }

    /// A connection whose handshake request is built anew for every attempt.
    pub fn with_provider(provider: RequestProvider) -> Self {
        Builder {
            provider,
            config: Config::default(),
            ws_config: default_websocket_config(),
            tls: Tls::default(),
            extras: RequestExtras::default(),
            stack_size: DEFAULT_STACK_SIZE,
        }
    }

    steadfast_wire::builder_options!();

    /// The stack size of [`spawn`](Self::spawn)'s thread
    /// ([`DEFAULT_STACK_SIZE`] unless set).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    fn parts(self) -> (Engine, Settings, usize) {
        let settings = Settings {
            provider: self.provider,
            extras: self.extras,
            ws_config: self.ws_config,
            tls: self.tls,
        };
        (Engine::new(self.config), settings, self.stack_size)
    }

    /// A connection the calling thread drives (caller-driven mode). It
    /// starts connecting at the first [`Connection::next_event`].
    pub fn connect(self) -> Connection {
        let (engine, settings, _) = self.parts();
        Connection::new(engine, settings)
    }

    /// Run the connection on a thread of its own (background mode) and
    /// start connecting. Fails only if the thread or its waker cannot be
    /// created.
    pub fn spawn(self) -> std::io::Result<(Handle, Events)> {
        let (engine, settings, stack_size) = self.parts();
        background::spawn(engine, settings, stack_size)
    }
}
