//! # steadfast-async-std
//!
//! A WebSocket client on smol or async-std that stays up: heartbeats that
//! catch dead peers, reconnects with a real retry budget, and an outbound
//! queue that never loses a message silently. The same API as
//! `steadfast-tokio`, item for item: a program moves between runtimes by
//! changing its imports.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use steadfast_async_std::smol::Builder; // or steadfast_async_std::Builder on async-std
//! use steadfast_async_std::core::{Config, Event};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let (handle, mut events) = Builder::new("wss://example.com/chat")?
//!         .bearer("token")?
//!         .config(Config::builder().build()?)
//!         .connect();
//!     handle.send("hello")?; // queued until open
//!     while let Some(event) = events.next().await {
//!         match event {
//!             Event::Message(m) => {
//!                 println!("got {:?}", m.as_text());
//!                 handle.close().await; // 1000; the stream then ends after Closed
//!             }
//!             Event::Failed { error, undelivered } => {
//!                 eprintln!("gave up: {error}; {} handed back", undelivered.len())
//!             }
//!             _ => {}
//!         }
//!     }
//!     Ok(())
//! })
//! # }
//! ```
//!
//! At-least-once delivery with acks, the auth phase and a close that waits
//! for acks work as in `steadfast-tokio`'s example; the items are documented
//! once, in `steadfast-async`, and re-exported here.
//!
//! # Which marker
//!
//! async-std is deprecated in favour of smol: new code should use [`Smol`].
//! Both run their I/O and timers on async-io, so the two markers are the
//! same in everything but where the connection's driver task is spawned:
//!
//! - [`Smol`] spawns it with `smol::spawn` (smol's global executor),
//! - [`AsyncStd`] spawns it with `async_std::task::spawn`.
//!
//! Pick the executor by picking the marker; sockets, TLS, timers and the
//! clock are one implementation.
//!
//! # What a connection is
//!
//! TCP through [`async_net`] with `TCP_NODELAY` on; for `wss://`, TLS
//! through [`futures_rustls`] with the configuration the engine hands over
//! (certificates are always checked); then the WebSocket handshake of
//! [`async_tungstenite`]. Timers are [`async_io::Timer`]s, following
//! [`std::time::Instant`].
//!
//! # Features
//!
//! - `rustls` (default): `wss://` through rustls on the ring provider.
//!   Without it a `wss://` URL fails with [`UrlError::TlsFeatureNotEnabled`].
//! - `smol` (default): the [`Smol`] marker.
//! - `async-std` (default): the [`AsyncStd`] marker.
//!
//! Neither marker brings in tokio. With neither marker's feature the crate
//! builds but has nothing to offer.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// With neither executor feature, the shared implementation has no user.
#![cfg_attr(
    not(any(feature = "async-std", feature = "smol")),
    allow(dead_code, unused_macros)
)]

use async_net::TcpStream;
use async_tungstenite::WebSocketStream;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use steadfast_wire::request::Target;
use tungstenite::Error;
use tungstenite::error::UrlError;
use tungstenite::handshake::client::{Request, Response};

pub use steadfast_async::adapter_api::*;

/// Configures and starts one resilient connection, its driver on
/// async-std's executor.
#[cfg(feature = "async-std")]
pub type Builder = steadfast_async::Builder<AsyncStd>;
/// Controls one connection; see [`steadfast_async::Handle`].
#[cfg(feature = "async-std")]
pub type Handle = steadfast_async::Handle<AsyncStd>;
/// The events of one connection; see [`steadfast_async::Events`].
#[cfg(feature = "async-std")]
pub type Events = steadfast_async::Events<AsyncStd>;

/// The same items with the driver on smol's global executor:
/// `use steadfast_async_std::smol::{Builder, Handle, Events};`.
#[cfg(feature = "smol")]
pub mod smol {
    pub use crate::Smol;
    pub use steadfast_async::adapter_api::*;
    /// Configures and starts one resilient connection, its driver on smol's
    /// global executor.
    pub type Builder = steadfast_async::Builder<Smol>;
    /// Controls one connection; see [`steadfast_async::Handle`].
    pub type Handle = steadfast_async::Handle<Smol>;
    /// The events of one connection; see [`steadfast_async::Events`].
    pub type Events = steadfast_async::Events<Smol>;
}

/// The byte stream under a WebSocket: TCP for `ws://`, TLS over TCP for `wss://`.
///
/// The TLS stream is boxed: an `Either` is as large as its larger side, and
/// the TLS state (about 1 KiB) would otherwise cost every `ws://` connection.
#[cfg(feature = "rustls")]
pub type Transport =
    futures_util::future::Either<TcpStream, Box<futures_rustls::client::TlsStream<TcpStream>>>;

/// The byte stream under a WebSocket: TCP (`wss://` needs the `rustls` feature).
#[cfg(not(feature = "rustls"))]
pub type Transport = TcpStream;

/// An open WebSocket on async-io: [`Runtime::Socket`] of [`AsyncStd`] and [`Smol`].
pub type Socket = WebSocketStream<Transport>;

/// Runs the connection's driver on async-std's executor.
///
/// async-std is deprecated in favour of smol ([`Smol`]); both share
/// async-io, and this marker differs from [`Smol`] only in how it spawns.
#[cfg(feature = "async-std")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AsyncStd;

/// Runs the connection's driver on smol's global executor.
#[cfg(feature = "smol")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Smol;

/// A timer on async-io: [`Runtime::Timer`] of [`AsyncStd`] and [`Smol`].
///
/// It completes once its instant is reached and, like a sleep past its
/// deadline, stays complete until [`Runtime::reset`] moves it.
#[derive(Debug)]
pub struct Timer {
    inner: async_io::Timer,
    fired: bool,
}

impl Timer {
    fn at(at: Instant) -> Timer {
        Timer {
            inner: async_io::Timer::at(at),
            fired: false,
        }
    }

    fn set_at(&mut self, at: Instant) {
        self.inner.set_at(at);
        self.fired = false;
    }
}

impl Future for Timer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.fired {
            return Poll::Ready(());
        }
        // The stream view, not the future one: async-io's `Future` impl
        // must not be polled again once fired.
        match futures_core::Stream::poll_next(Pin::new(&mut this.inner), cx) {
            Poll::Ready(_) => {
                this.fired = true;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Everything the two markers share: all of [`Runtime`] but `spawn`.
macro_rules! async_io_runtime {
    ($marker:ty, |$task:ident| $spawn:expr) => {
        impl Runtime for $marker {
            type Socket = Socket;
            type Timer = Timer;

            fn connect(
                request: Request,
                config: WebSocketConfig,
                tls: Tls,
            ) -> impl Future<Output = Result<(Socket, Response), Error>> + Send + 'static {
                connect(request, config, tls)
            }

            fn timer(at: Instant) -> Timer {
                Timer::at(at)
            }

            fn reset(timer: Pin<&mut Timer>, at: Instant) {
                timer.get_mut().set_at(at);
            }

            fn spawn($task: impl Future<Output = ()> + Send + 'static) {
                $spawn
            }

            fn now() -> Instant {
                Instant::now()
            }

            fn clock() -> steadfast_wire::Clock {
                steadfast_wire::Clock::system()
            }
        }
    };
}

#[cfg(feature = "async-std")]
async_io_runtime!(AsyncStd, |task| {
    // Detached: the JoinHandle is dropped, the task runs on.
    drop(async_std::task::spawn(task));
});

#[cfg(feature = "smol")]
async_io_runtime!(Smol, |task| ::smol::spawn(task).detach());

/// TCP (with `TCP_NODELAY`), TLS for `wss://`, then the WebSocket handshake.
async fn connect(
    request: Request,
    config: WebSocketConfig,
    tls: Tls,
) -> Result<(Socket, Response), Error> {
    let Target { host, port, secure } = Target::of(request.uri())?;
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    tcp.set_nodelay(true)?;
    let stream = wrap(secure, host, tcp, tls).await?;
    async_tungstenite::client_async_with_config(request, stream, Some(config)).await
}

/// The TCP stream as is for `ws://`; for `wss://`, TLS over it with `tls`'s
/// configuration, for the server name `host`.
#[cfg(feature = "rustls")]
async fn wrap(secure: bool, host: String, tcp: TcpStream, tls: Tls) -> Result<Transport, Error> {
    use futures_rustls::pki_types::ServerName;
    use futures_util::future::Either;

    if !secure {
        return Ok(Either::Left(tcp));
    }
    let config = tls
        .config()
        .ok_or(Error::Url(UrlError::TlsFeatureNotEnabled))?
        .clone();
    let name = ServerName::try_from(host).map_err(|e| {
        Error::Url(UrlError::UnableToConnect(format!(
            "not a TLS server name: {e}"
        )))
    })?;
    // A certificate refused is an `io::Error` wrapping the `rustls::Error`.
    let stream = futures_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    Ok(Either::Right(Box::new(stream)))
}

/// Without the `rustls` feature: `ws://` only.
#[cfg(not(feature = "rustls"))]
async fn wrap(secure: bool, host: String, tcp: TcpStream, tls: Tls) -> Result<Transport, Error> {
    let _ = (host, tls);
    if secure {
        Err(Error::Url(UrlError::TlsFeatureNotEnabled))
    } else {
        Ok(tcp)
    }
}
