//! What the engine needs from an async runtime, and nothing more: open a
//! WebSocket, sleep until an instant, spawn a task, read the clock. Each
//! adapter crate implements [`Runtime`] for its runtime; the engine is
//! monomorphized over it, so nothing on the per-message path is boxed or
//! dispatched dynamically.

use futures_core::Stream;
use futures_util::Sink;
use std::future::Future;
use std::pin::Pin;
use steadfast_wire::Tls;
use tungstenite::handshake::client::{Request, Response};
use tungstenite::protocol::WebSocketConfig;

pub use steadfast_wire::Frame;

/// An async runtime the engine can run a connection on.
///
/// Implementations are small: see `steadfast-tokio` and `steadfast-async-std`.
pub trait Runtime: Send + Sync + Sized + 'static {
    /// An open WebSocket: a stream of frames read and a sink of frames to
    /// write, over TCP or TLS.
    type Socket: Stream<Item = Frame>
        + Sink<tungstenite::Message, Error = tungstenite::Error>
        + Unpin
        + Send
        + 'static;

    /// A timer, created once per connection and moved with [`Runtime::reset`].
    type Timer: Future<Output = ()> + Send + 'static;

    /// Open a connection for `request`: TCP with `TCP_NODELAY`, then TLS
    /// for `wss://` with `tls`'s configuration (certificates checked), then
    /// the WebSocket handshake with `config`. A failure is tungstenite's
    /// error, which the engine classifies.
    fn connect(
        request: Request,
        config: WebSocketConfig,
        tls: Tls,
    ) -> impl Future<Output = Result<(Self::Socket, Response), tungstenite::Error>> + Send + 'static;

    /// A timer that fires at `at`.
    fn timer(at: std::time::Instant) -> Self::Timer;

    /// Move `timer` to fire at `at` instead (whether or not it fired).
    fn reset(timer: Pin<&mut Self::Timer>, at: std::time::Instant);

    /// Run `task` to completion in the background.
    fn spawn(task: impl Future<Output = ()> + Send + 'static);

    /// The runtime's monotonic clock (the one its timers follow).
    fn now() -> std::time::Instant;

    /// The core's clock for one connection, on [`Runtime::now`]. A runtime
    /// whose clock is std's `Instant::now` (and only such a runtime) may
    /// return [`Clock::system`](steadfast_wire::Clock::system), which reads
    /// it for less.
    fn clock() -> steadfast_wire::Clock {
        steadfast_wire::Clock::new(Self::now)
    }
}
