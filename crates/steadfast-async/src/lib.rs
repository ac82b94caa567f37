//! # steadfast-async
//!
//! The engine of steadfast's async adapters: one driver, written once, for
//! every async runtime. `steadfast-tokio` and `steadfast-async-std` each
//! implement the small [`Runtime`] trait (open a WebSocket, sleep until an
//! instant, spawn a task, read the clock) and re-export what is here under
//! their own names, so a program moves between runtimes by changing its
//! imports. Use one of those crates; this one is where the items are
//! documented.
//!
//! ## How a connection runs
//!
//! [`Builder::connect`] spawns one driver task per connection on the
//! runtime. The [steadfast-core](steadfast_core) state machine decides when
//! to connect, ping, retry, flush and give up; the driver only does the
//! I/O, in one `poll` that drains the core's transmits, writes, reads, and
//! fires deadlines. The application's [`Handle`] (commands) and [`Events`]
//! (a stream) share the core with the driver under one lock. The engine is
//! monomorphized over the runtime: nothing on the per-message path is boxed
//! or dispatched dynamically.
//!
//! ## Defaults worth knowing
//!
//! - [`default_websocket_config`]: a 4 KiB read buffer instead of
//!   tungstenite's 128 KiB, so an idle connection costs a few KiB rather than
//!   ~130 KiB. Pass your own [`WebSocketConfig`] to change it.
//! - Dropping the last [`Handle`] closes with 1000 and ends the driver task.
//! - [`Events`] ends right after [`Event::Closed`](steadfast_core::Event::Closed)
//!   or [`Event::Failed`](steadfast_core::Event::Failed), even while handles
//!   are alive. [`Handle::open`] then starts a new session and returns the
//!   new stream its events come on.
//! - One driver task per connection keeps it alive: it connects, reads,
//!   answers pings, runs the heartbeat and retries, whether or not the
//!   application polls anything. The application's own task takes part
//!   where it saves a hop: [`Handle::send`] writes at once when the link is
//!   open and idle, and while the task waits on [`Events`] it reads the
//!   socket itself, woken alone for each frame. A task that stops polling
//!   delays a read by at most [`READ_GRACE`](steadfast_core::READ_GRACE)
//!   (100 ms; the driver then looks on its own),
//!   and never a deadline: the driver reads what the socket holds before
//!   it fires one. Events wait in the core until taken.
//! - Received messages the application has not taken are bounded
//!   ([`InboundConfig`](steadfast_core::InboundConfig): 1024 messages or
//!   8 MiB by default). At the bound the socket is no longer read (by the
//!   driver or the application's task), so TCP pushes back on the server;
//!   nothing is dropped, writes and timers go on, and a pong left unread
//!   meanwhile does not count as missed. Taking an event resumes reading at
//!   once.
//! - The core's clock counts time the system spent suspended (Linux and
//!   Android: `CLOCK_BOOTTIME`), so a laptop's sleep is noticed and probed
//!   ([`Event::Suspended`](steadfast_core::Event::Suspended)); elsewhere it is
//!   the runtime's clock, which counts sleep on Windows but not on macOS or iOS.
//! - Should the driver task ever panic (a bug), the connection fails
//!   rather than going quiet: [`Event::Failed`](steadfast_core::Event::Failed)
//!   with [`Error::Internal`](steadfast_core::Error::Internal) hands back
//!   every undelivered message, the [`Events`] stream then ends, and
//!   [`Handle::state`] is `Failed` (and stays so: [`Handle::open`] cannot
//!   restart it).
//! - [`Handle::watch`] publishes state changes only; counters are read on
//!   demand ([`Handle::stats`]), so a message costs no watch notification.
//! - `wss://` uses rustls with the webpki roots and the ring provider,
//!   named explicitly (feature `rustls`, on by default), so an application
//!   that also enables rustls's `aws-lc-rs` provider, or installs a
//!   process-default provider of its own, changes nothing here;
//!   certificates are checked. [`Builder::tls_config`] takes the
//!   application's own configuration (a private CA, client certificates).
//! - steadfast logs a request's scheme, host, port and path, never its query
//!   or headers. tungstenite itself logs the raw handshake request (tokens
//!   included) through the `log` crate at *trace* level: keep the
//!   `tungstenite` target at `debug` or above wherever logs are kept.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod connection;
mod driver;
mod handle;
mod request;
mod runtime;
mod watch;
mod woken;

pub use handle::{Events, Handle, Status};
pub use request::RequestProvider;
pub use runtime::{Frame, Runtime};
/// The rustls this crate was built with, for [`Builder::tls_config`].
#[cfg(feature = "rustls")]
pub use rustls;
pub use steadfast_core as core;
pub use steadfast_wire::{
    DEFAULT_READ_BUFFER, InvalidRequest, ProviderError, RequestError, Tls,
    default_websocket_config, retry_after,
};
/// The tungstenite this crate was built with (requests, frames, errors).
pub use tungstenite;
pub use tungstenite::protocol::WebSocketConfig;
pub use watch::StateWatch;

/// What every adapter crate re-exports beside its runtime's `Builder`,
/// `Handle` and `Events` aliases, so the names are the same on every runtime.
pub mod adapter_api {
    #[cfg(feature = "rustls")]
    pub use crate::rustls;
    pub use crate::{
        DEFAULT_READ_BUFFER, Frame, InvalidRequest, ProviderError, RequestError, RequestProvider,
        Runtime, StateWatch, Status, Tls, WebSocketConfig, core, default_websocket_config,
        retry_after, tungstenite,
    };
}

use driver::{Driver, Shared};
use std::sync::Arc;
use steadfast_core::{Client, Config};

/// Configures and starts one resilient connection on runtime `R`.
pub struct Builder<R: Runtime> {
    provider: RequestProvider,
    config: Config,
    ws_config: WebSocketConfig,
    /// The application's TLS client configuration, if any.
    tls: Tls,
    /// Headers and query parameters added to every attempt's request.
    extras: steadfast_wire::RequestExtras,
    /// How often the driver looks at the socket on its own while the
    /// application's task reads it (see `driver::HAND_BACK`).
    hand_back: std::time::Duration,
    /// Time suspended, set by a test in nanoseconds, instead of the system's.
    #[cfg(feature = "test-hooks")]
    suspended: Option<Arc<std::sync::atomic::AtomicU64>>,
    runtime: std::marker::PhantomData<fn() -> R>,
}

impl<R: Runtime> std::fmt::Debug for Builder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("provider", &self.provider)
            .field("config", &self.config)
            .field("ws_config", &self.ws_config)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Builder<R> {
    /// A connection to a fixed URL or `http::Request`; refused with
    /// [`InvalidRequest`] when no attempt could use it (not a request, a
    /// scheme other than `ws`/`wss`, no host).
    pub fn new(
        request: impl tungstenite::client::IntoClientRequest,
    ) -> Result<Self, InvalidRequest> {
        Ok(Builder::with_provider(request::fixed(request)?))
    }

    /// A connection whose handshake request is built anew for every attempt.
    pub fn with_provider(provider: RequestProvider) -> Self {
        Builder {
            provider,
            config: Config::default(),
            ws_config: default_websocket_config(),
            tls: Default::default(),
            extras: Default::default(),
            hand_back: driver::HAND_BACK,
            #[cfg(feature = "test-hooks")]
            suspended: None,
            runtime: std::marker::PhantomData,
        }
    }

    steadfast_wire::builder_options!();

    /// A longer hand-back interval, so a test can hold a frame unread by
    /// the driver until a deadline (feature `test-hooks`).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn hand_back(mut self, interval: std::time::Duration) -> Self {
        self.hand_back = interval;
        self
    }

    /// Take the time suspended from `nanos`, so a test can suspend the
    /// connection's clock (feature `test-hooks`).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn suspended_time(mut self, nanos: Arc<std::sync::atomic::AtomicU64>) -> Self {
        self.suspended = Some(nanos);
        self
    }

    /// Spawn the driver on the runtime and start connecting. Returns at
    /// once. (On tokio, outside a tokio runtime this panics, like
    /// `tokio::spawn`.)
    pub fn connect(self) -> (Handle<R>, Events<R>) {
        #[cfg(feature = "test-hooks")]
        let clock = match self.suspended {
            Some(fake) => steadfast_wire::Clock::with_fake(R::now, fake),
            None => R::clock(),
        };
        #[cfg(not(feature = "test-hooks"))]
        let clock = R::clock();
        let linger = self.config.close_timeout();
        // Unless the application gave a seed, every connection draws its own,
        // so a fleet of default clients never jitters in lock-step.
        let mut client = Client::new(self.config.with_os_seed(), clock.now());
        client.open(clock.now());
        let shared = Arc::new(Shared::new(client, clock));
        let driver = Driver {
            linger,
            shared: shared.clone(),
            provider: self.provider,
            extras: self.extras,
            ws_config: self.ws_config,
            tls: self.tls,
            hand_back: self.hand_back,
        };
        R::spawn(driver.run());
        (Handle::new(shared.clone()), Events::new(shared, 0))
    }
}

/// Hooks into a connection's driver for the adapters' own tests (feature
/// `test-hooks`). Not part of the API.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub struct TestHooks<'a, R: Runtime>(&'a Shared<R>);

#[cfg(feature = "test-hooks")]
impl<R: Runtime> TestHooks<'_, R> {
    /// Whether the driver has promised to look at the read side on its own.
    pub fn driver_looks(&self) -> bool {
        self.0.driver_looks()
    }

    /// Make the driver panic at its next turn, holding the lock.
    pub fn panic_in_driver(&self) {
        self.0.panic_in_driver();
    }

    /// Whether a panic poisoned the shared lock.
    pub fn lock_poisoned(&self) -> bool {
        self.0.lock_poisoned()
    }
}
