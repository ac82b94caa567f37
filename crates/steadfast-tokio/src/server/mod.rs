//! A WebSocket server on tokio that runs a [`steadfast_hub::Hub`]: sessions
//! pooled by user, duplicate logins replaced, dead clients reaped, bounded
//! per-session queues, graceful restarts without a herd. Every decision is
//! the hub's; this module reads and writes sockets.
//!
//! Enabled by the `server` feature.
//!
//! ```no_run
//! use steadfast_tokio::server::{HubConfig, HubEvent, Rejection, Server, Verdict};
//!
//! # async fn run() -> std::io::Result<()> {
//! let (server, mut events) = Server::builder(HubConfig::default())
//!     // Who is it? The user id from the query, the token from the subprotocol.
//!     .verify(|req| match (req.query_param("id"), req.offers("token.s3cret")) {
//!         (Some(id), true) => Verdict::Accept { user: id.into_owned(), protocol: Some("token.s3cret".into()) },
//!         _ => Verdict::Reject(Rejection::unauthorized()),
//!     })
//!     .bind("127.0.0.1:8080")
//!     .await?;
//! while let Some(event) = events.recv().await {
//!     if let HubEvent::Message { user, msg, .. } = event {
//!         // Echo to everyone: queued per session, bounded, never lost silently.
//!         server.broadcast(msg);
//!         tracing::info!(%user, "spoke");
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Plain `GET` requests (not upgrades) get the one page set with
//! [`Builder::page`], or `404`.

mod http;
mod session;
mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use steadfast_async::adapter_api::WebSocketConfig;
use steadfast_core::Epoch;
use tokio::net::{TcpListener, ToSocketAddrs};
use tracing::{debug, warn};

pub use state::UserId;
pub use steadfast_core::{CloseCode, Message};
#[doc(no_inline)]
pub use steadfast_hub::Hub;
pub use steadfast_hub::{
    DropReason, Duplicates, HubConfig, HubConfigError, HubEvent, LeaveReason, LivenessConfig,
    QueueConfig, REPLACED, REPLACED_REASON, Rejection, Request, SHUTDOWN_REASON,
    SLOW_CONSUMER_REASON, SendError, SessionId, SlowConsumer, Verdict,
};

use http::Page;
use state::Shared;

/// The largest message (and frame) a session reads by default: 1 MiB.
pub const MAX_MESSAGE: usize = 1 << 20;

type Verifier<U> = dyn Fn(&Request) -> Verdict<U> + Send + Sync;

/// What every connection task reads.
pub(crate) struct Config<U> {
    verifier: Box<Verifier<U>>,
    page: Option<Page>,
    websocket: WebSocketConfig,
}

/// Configures a [`Server`]: the hub's configuration, the application's
/// verifier, an optional page.
pub struct Builder<U> {
    hub: HubConfig,
    verifier: Box<Verifier<U>>,
    page: Option<Page>,
    websocket: WebSocketConfig,
}

impl<U: UserId> std::fmt::Debug for Builder<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("hub", &self.hub)
            .finish_non_exhaustive()
    }
}

impl<U: UserId> Builder<U> {
    /// Decides every handshake from what it carried (path, query, headers,
    /// offered subprotocols). Runs on the connection's task, before the
    /// upgrade; keep it quick (a lookup, a signature check). Without one,
    /// every handshake is rejected with `401`.
    pub fn verify(
        mut self,
        verifier: impl Fn(&Request) -> Verdict<U> + Send + Sync + 'static,
    ) -> Self {
        self.verifier = Box::new(verifier);
        self
    }

    /// Serves `body` with `content_type` on plain `GET`s of `path` (a
    /// browser client's page, say). Other plain requests get `404`.
    pub fn page(mut self, path: &str, content_type: &str, body: impl Into<bytes::Bytes>) -> Self {
        self.page = Some(Page {
            path: path.to_owned(),
            content_type: content_type.to_owned(),
            body: body.into(),
        });
        self
    }

    /// tungstenite's limits for every session (message and frame sizes,
    /// buffers). The default is tungstenite's with a 4 KiB read buffer,
    /// suited to many mostly idle sessions, and messages and frames of at
    /// most 1 MiB ([`MAX_MESSAGE`]), which also bounds what the held-back
    /// events can take.
    pub fn websocket_config(mut self, config: WebSocketConfig) -> Self {
        self.websocket = config;
        self
    }

    /// How many events may wait for the application before the server
    /// stops reading from its clients (default 1,024): a slow application
    /// pushes back on the clients instead of growing memory. While it does,
    /// nobody is pinged or reaped (an unread pong is not the client's
    /// fault); liveness resumes, with the time each session had left, once
    /// the application catches up.
    pub fn max_pending_events(mut self, n: usize) -> Self {
        self.hub.max_pending_events = n;
        self
    }

    /// Binds the listener and starts serving on the current tokio runtime.
    /// Returns the handle and the application's events.
    ///
    /// # Errors
    ///
    /// The bind's error, or [`std::io::ErrorKind::InvalidInput`] for a hub
    /// configuration the hub refuses (its [`HubConfigError`] inside).
    pub async fn bind(self, addr: impl ToSocketAddrs) -> std::io::Result<(Server<U>, Events<U>)> {
        let epoch = Epoch::new(tokio::time::Instant::now().into_std());
        let hub = Hub::new(
            self.hub,
            epoch.instant(tokio::time::Instant::now().into_std()),
        )
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(hub, epoch));
        let config = Arc::new(Config {
            verifier: self.verifier,
            page: self.page,
            websocket: self.websocket,
        });
        tokio::spawn(accept_loop(Arc::clone(&shared), config, listener));
        tokio::spawn(timer_loop(Arc::clone(&shared)));
        debug!(%local_addr, "server listening");
        let owner = Arc::new(Owner {
            shared: Arc::clone(&shared),
        });
        Ok((
            Server {
                shared: Arc::clone(&shared),
                local_addr,
                _owner: Arc::clone(&owner),
            },
            Events {
                shared,
                _owner: owner,
            },
        ))
    }
}

/// Stops the server when the last [`Server`] handle and the [`Events`] are gone.
#[derive(Debug)]
struct Owner<U: UserId> {
    shared: Arc<Shared<U>>,
}

impl<U: UserId> Drop for Owner<U> {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

async fn accept_loop<U: UserId>(
    shared: Arc<Shared<U>>,
    config: Arc<Config<U>>,
    listener: TcpListener,
) {
    loop {
        let stopped = shared.changed.notified();
        tokio::pin!(stopped);
        stopped.as_mut().enable();
        if shared.is_stopped() {
            return;
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tokio::spawn(session::serve(Arc::clone(&shared), Arc::clone(&config), tcp, peer));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off a little
                    // rather than spin.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut stopped => {}
        }
    }
}

/// Runs the hub's deadlines: pings, reaps, shutdown closes.
async fn timer_loop<U: UserId>(shared: Arc<Shared<U>>) {
    loop {
        let changed = shared.timer.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if shared.is_stopped() {
            return;
        }
        let next = shared.with(|state, now| {
            state.hub.handle_timeout(now);
            state.hub.poll_timeout()
        });
        match next.and_then(|t| shared.epoch().to_std(t)) {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = &mut changed => {}
                }
            }
            None => changed.await,
        }
    }
}

/// A running server: route messages, manage rooms, shut down. Cheap to
/// clone; the server stops (every session dropped) when the last handle
/// and its [`Events`] are dropped.
#[derive(Debug)]
pub struct Server<U: UserId> {
    shared: Arc<Shared<U>>,
    local_addr: SocketAddr,
    _owner: Arc<Owner<U>>,
}

impl<U: UserId> Clone for Server<U> {
    fn clone(&self) -> Self {
        Server {
            shared: Arc::clone(&self.shared),
            local_addr: self.local_addr,
            _owner: Arc::clone(&self._owner),
        }
    }
}

impl<U: UserId> Server<U> {
    /// A builder with this hub configuration and no verifier yet.
    pub fn builder(hub: HubConfig) -> Builder<U> {
        Builder {
            hub,
            verifier: Box::new(|_| Verdict::Reject(Rejection::unauthorized())),
            page: None,
            websocket: steadfast_async::adapter_api::default_websocket_config()
                .max_message_size(Some(MAX_MESSAGE))
                .max_frame_size(Some(MAX_MESSAGE)),
        }
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Queues a message for every live session of a user; how many.
    pub fn send_to(&self, user: &U, msg: impl Into<Message>) -> Result<usize, SendError> {
        let msg = msg.into();
        self.shared.with(|state, _| state.hub.send_to(user, msg))
    }

    /// Queues a message for one live session.
    pub fn send_to_session(
        &self,
        session: SessionId,
        msg: impl Into<Message>,
    ) -> Result<(), SendError> {
        let msg = msg.into();
        self.shared
            .with(|state, _| state.hub.send_to_session(session, msg))
    }

    /// Queues a message for every member of a room; how many sessions.
    pub fn send_to_room(&self, room: &str, msg: impl Into<Message>) -> usize {
        let msg = msg.into();
        self.shared
            .with(|state, _| state.hub.send_to_room(room, msg))
    }

    /// Queues a message for every live session; how many.
    pub fn broadcast(&self, msg: impl Into<Message>) -> usize {
        let msg = msg.into();
        self.shared.with(|state, _| state.hub.broadcast(msg))
    }

    /// Adds a connected user to a room.
    pub fn join(&self, user: &U, room: &str) -> Result<(), SendError> {
        self.shared.with(|state, _| state.hub.join(user, room))
    }

    /// Removes a user from a room; whether it was a member.
    pub fn leave(&self, user: &U, room: &str) -> bool {
        self.shared.with(|state, _| state.hub.leave(user, room))
    }

    /// Closes one session after writing what is queued for it.
    pub fn close_session(
        &self,
        session: SessionId,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), SendError> {
        self.shared
            .with(|state, _| state.hub.close_session(session, code, reason))
    }

    /// Reads the hub: who is connected ([`Hub::users`], [`Hub::is_connected`],
    /// [`Hub::sessions_of`], [`Hub::live_count`]), rooms
    /// ([`Hub::room_members`], [`Hub::rooms_of`]) and queue sizes
    /// ([`Hub::queued`]). The rest of the hub's interface is this server's.
    pub fn with_hub<R>(&self, f: impl FnOnce(&Hub<U>) -> R) -> R {
        self.shared.read(f)
    }

    /// Closes every session with `code` (1012 for a restart, 1001 for
    /// going away), each at its own moment spread over `window`, refusing
    /// new handshakes with `503` meanwhile; resolves when every session is
    /// gone. Then drop the server (or exit) and start the new one. Keep
    /// taking [`Events`] meanwhile if the application needs the leaves;
    /// closing sessions finish their close handshakes either way.
    pub fn shutdown(
        &self,
        code: CloseCode,
        window: Duration,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.shared
            .with(|state, now| state.hub.shutdown(code, window, now));
        let shared = Arc::clone(&self.shared);
        async move {
            loop {
                let changed = shared.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if shared.is_stopped() || shared.read(|hub| hub.session_count() == 0) {
                    return;
                }
                changed.await;
            }
        }
    }
}

/// The server's events for the application: joins, messages, leaves and
/// undelivered messages, in order. A [`futures_core::Stream`]; or call
/// [`recv`](Self::recv). Ends once a [`Server::shutdown`] has closed every
/// session (after the last leave), so an event loop finishes by itself.
#[derive(Debug)]
pub struct Events<U: UserId> {
    shared: Arc<Shared<U>>,
    _owner: Arc<Owner<U>>,
}

impl<U: UserId> Events<U> {
    /// The next event; `None` once a shutdown has closed every session.
    pub async fn recv(&mut self) -> Option<HubEvent<U>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<HubEvent<U>>> {
        match self.shared.poll_event(cx.waker()) {
            Some(ev) => Poll::Ready(ev),
            None => Poll::Pending,
        }
    }
}

impl<U: UserId> futures_core::Stream for Events<U> {
    type Item = HubEvent<U>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<HubEvent<U>>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<U: UserId> Drop for Events<U> {
    fn drop(&mut self) {
        self.shared.close_events();
    }
}
