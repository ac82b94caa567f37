//! The executors the clients run on, and the one piece of each client that
//! differs between them (how a raw connection connects, which steadfast
//! marker spawns the driver). Everything else, the load, the measuring and
//! the tables, is written once, generic over these.
//!
//! - **tokio**: one current-thread runtime; the caller's thread runs the
//!   clients' tasks, steadfast's drivers and the reactor.
//! - **async-std** and **smol**: the clients' tasks are spawned on the
//!   executor's global pool, held to one thread (`ASYNC_STD_THREAD_COUNT=1`,
//!   `SMOL_THREADS=1`; see [`one_thread_env`]), where the `AsyncStd` and
//!   `Smol` markers spawn steadfast's drivers too. That thread also drives
//!   async-io's reactor when it runs out of tasks. The caller's thread only
//!   waits (futures-lite's `block_on`, which parks and leaves the reactor
//!   alone), so one thread runs the client, as on tokio.

use futures_util::{FutureExt, Sink, Stream};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use steadfast_tokio::tungstenite;
use steadfast_tokio::{WebSocketConfig, core::Bytes};

/// A spawned task's output (`None` if it panicked or was cancelled).
pub(crate) type Joined<T> = Pin<Box<dyn Future<Output = Option<T>> + Send>>;

/// Where the clients run (one table row's setup, the same for raw and steadfast).
pub(crate) enum Exec {
    Tokio(tokio::runtime::Runtime),
    AsyncStd,
    Smol,
    /// No executor: the blocking clients run one OS thread per connection
    /// (`crate::blocking`); the caller's thread only waits.
    Blocking,
}

/// The executors, by the name the command line gives them.
pub(crate) const EXECUTORS: [&str; 4] = ["tokio", "async-std", "smol", "blocking"];

impl Exec {
    /// `tokio`, `async-std` or `smol`.
    pub(crate) fn new(name: &str) -> Result<Exec, String> {
        match name {
            "tokio" => Ok(Exec::Tokio(crate::runtime())),
            "async-std" => Ok(Exec::AsyncStd),
            "smol" => Ok(Exec::Smol),
            "blocking" => Ok(Exec::Blocking),
            other => Err(format!(
                "no executor {other}: tokio, async-std, smol or blocking"
            )),
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Exec::Tokio(_) => "tokio",
            Exec::AsyncStd => "async-std",
            Exec::Smol => "smol",
            Exec::Blocking => "blocking threads",
        }
    }

    /// Run `future` from the caller's thread (see the module's note).
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        match self {
            Exec::Tokio(rt) => rt.block_on(future),
            Exec::AsyncStd | Exec::Smol | Exec::Blocking => futures_lite::future::block_on(future),
        }
    }

    /// Spawn `task` where the clients run.
    pub(crate) fn spawn<T: Send + 'static>(
        &self,
        task: impl Future<Output = T> + Send + 'static,
    ) -> Joined<T> {
        match self {
            Exec::Tokio(rt) => Box::pin(rt.spawn(task).map(Result::ok)),
            Exec::AsyncStd => Box::pin(async_std::task::spawn(task).map(Some)),
            Exec::Smol => Box::pin(smol::spawn(task).map(Some)),
            Exec::Blocking => {
                let thread = std::thread::spawn(move || futures_lite::future::block_on(task));
                Box::pin(async move { thread.join().ok() })
            }
        }
    }

    pub(crate) async fn sleep(&self, duration: Duration) {
        match self {
            Exec::Tokio(_) => tokio::time::sleep(duration).await,
            Exec::AsyncStd | Exec::Smol | Exec::Blocking => {
                async_io::Timer::after(duration).await;
            }
        }
    }
}

/// The environment that holds async-std's and smol's global executors to
/// one thread. It must be set before either starts, and setting it from
/// inside needs `unsafe` (forbidden here), so `main` runs itself again with
/// it when it is missing.
pub(crate) const fn one_thread_env() -> [(&'static str, &'static str); 2] {
    [("ASYNC_STD_THREAD_COUNT", "1"), ("SMOL_THREADS", "1")]
}

/// What the raw client needs of a WebSocket stream: tokio-tungstenite's
/// and async-tungstenite's both are one.
pub(crate) trait RawSocket:
    Sink<tungstenite::Message, Error = tungstenite::Error>
    + Stream<Item = Result<tungstenite::Message, tungstenite::Error>>
    + Unpin
    + Send
    + 'static
{
}

impl<S> RawSocket for S where
    S: Sink<tungstenite::Message, Error = tungstenite::Error>
        + Stream<Item = Result<tungstenite::Message, tungstenite::Error>>
        + Unpin
        + Send
        + 'static
{
}

/// A raw tokio-tungstenite connection (TCP_NODELAY on).
pub(crate) async fn raw_tokio(url: &str, config: WebSocketConfig) -> impl RawSocket {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .expect("raw connect");
    ws
}

/// A raw async-tungstenite connection on async-net's TCP (TCP_NODELAY on),
/// as steadfast-async-std connects, without its TLS wrapper.
pub(crate) async fn raw_async_io(url: &str, config: WebSocketConfig) -> impl RawSocket {
    let addr: std::net::SocketAddr = url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .parse()
        .expect("a ws://IP:PORT/ URL");
    let tcp = async_net::TcpStream::connect(addr)
        .await
        .expect("raw connect");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let (ws, _) = async_tungstenite::client_async_with_config(url, tcp, Some(config))
        .await
        .expect("raw handshake");
    ws
}

/// A payload for a binary message (steadfast's `Bytes` is tungstenite's).
pub(crate) fn raw_binary(payload: &Bytes) -> tungstenite::Message {
    tungstenite::Message::Binary(payload.clone())
}
