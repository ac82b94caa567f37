//! What the conformance scenarios need from an adapter, and a test client
//! that records events and acks `ack:N` answers automatically.

use crate::lock;
use futures_core::Stream;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use steadfast_core::{
    AckError, CloseCode, CloseError, Config, Event, Message, MessageId, SendError, State, Stats,
};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Events of one connection, as a stream.
pub type EventStream = Pin<Box<dyn Stream<Item = Event> + Send>>;

/// How to start one connection.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// `ws://…` or `wss://…` URL.
    pub url: String,
    /// The core's configuration.
    pub config: Config,
    /// The WebSocket library's limit on an incoming message, if not its default.
    pub max_message_size: Option<usize>,
    /// The TLS client configuration for `wss://` (e.g. one that trusts a
    /// [`TestCa`](crate::TestCa)); `None`: the adapter's default.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Subprotocols the request offers (`Sec-WebSocket-Protocol`), in order.
    pub subprotocols: Vec<String>,
}

/// An adapter under test: starts connections.
pub trait Adapter: Send + Sync + 'static {
    /// The adapter's handle type.
    type Handle: AdapterHandle;
    /// Start a connection (it connects at once).
    fn start(&self, options: StartOptions) -> (Self::Handle, EventStream);
}

/// The commands every adapter's handle offers.
pub trait AdapterHandle: Clone + Send + Sync + 'static {
    /// Queue a message.
    fn send(&self, msg: Message) -> Result<MessageId, SendError>;
    /// Queue a message with an application key the server's acks name.
    fn send_keyed(&self, key: u64, msg: Message) -> Result<MessageId, SendError>;
    /// Send a request and wait for its reply (or why there is none).
    fn request(
        &self,
        key: u64,
        msg: Message,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Message, steadfast_async::RequestError>>;
    /// Acknowledge a message.
    fn ack(&self, id: MessageId) -> Result<(), AckError>;
    /// Network hint.
    fn set_online(&self, online: bool);
    /// Current state.
    fn state(&self) -> State;
    /// Current counters.
    fn stats(&self) -> Stats;
    /// Close gracefully; resolves once closed.
    fn close(&self, code: CloseCode, reason: &str) -> BoxFuture<'static, Result<(), CloseError>>;
    /// Close once everything sent is delivered, waiting at most `within`;
    /// resolves once closed.
    fn close_when_delivered(
        &self,
        code: CloseCode,
        reason: &str,
        within: Duration,
    ) -> BoxFuture<'static, Result<(), CloseError>>;
}

/// Events recorded with the time they arrived.
#[derive(Clone, Default)]
pub struct EventLog {
    events: Arc<Mutex<Vec<(Instant, Event)>>>,
    changed: Arc<Notify>,
}

impl EventLog {
    /// Every event so far.
    pub fn all(&self) -> Vec<(Instant, Event)> {
        lock(&self.events).clone()
    }

    /// The first event (with its time) matching `f`, if any yet.
    pub fn find(&self, f: impl Fn(&Event) -> bool) -> Option<(Instant, Event)> {
        lock(&self.events).iter().find(|(_, e)| f(e)).cloned()
    }

    /// How many events match `f`.
    pub fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        lock(&self.events).iter().filter(|(_, e)| f(e)).count()
    }

    /// Wait up to `timeout` for an event matching `f`; returns it with its time.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        f: impl Fn(&Event) -> bool,
    ) -> Option<(Instant, Event)> {
        self.wait_nth(timeout, 1, f).await
    }

    /// Wait up to `timeout` for the `n`-th event matching `f`.
    pub async fn wait_nth(
        &self,
        timeout: Duration,
        n: usize,
        f: impl Fn(&Event) -> bool,
    ) -> Option<(Instant, Event)> {
        let nth = || {
            lock(&self.events)
                .iter()
                .filter(|(_, e)| f(e))
                .nth(n - 1)
                .cloned()
        };
        crate::wait_on(&self.changed, timeout, nth).await
    }

    fn push(&self, ev: Event) {
        lock(&self.events).push((Instant::now(), ev));
        self.changed.notify_waiters();
    }
}

/// A connection under test: its handle, its event log, and the mapping from
/// the `seq` numbers it sent to message ids (for automatic acks).
pub struct TestClient<H: AdapterHandle> {
    /// The adapter's handle.
    pub handle: H,
    /// Everything the connection reported.
    pub log: EventLog,
    seq_ids: Arc<Mutex<BTreeMap<u64, MessageId>>>,
    next_seq: u64,
}

impl<H: AdapterHandle> TestClient<H> {
    /// Start a connection. With `auto_ack`, every `ack:N` message from the
    /// server acks the message sent as `seq:N` (the recorder then holds a
    /// handle clone, so dropping the test's handle does not close it).
    pub fn start<A: Adapter<Handle = H>>(
        adapter: &A,
        options: StartOptions,
        auto_ack: bool,
    ) -> Self {
        let (handle, mut events) = adapter.start(options);
        let log = EventLog::default();
        let seq_ids: Arc<Mutex<BTreeMap<u64, MessageId>>> = Arc::default();
        let acker = auto_ack.then(|| (handle.clone(), seq_ids.clone()));
        let recorder = log.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                if let (Some((handle, ids)), Event::Message(m)) = (&acker, &ev) {
                    if let Some(seq) = m.as_text().and_then(crate::server::parse_ack) {
                        let id = lock(ids).get(&seq).copied();
                        if let Some(id) = id {
                            let _ = handle.ack(id);
                        }
                    }
                }
                recorder.push(ev);
            }
        });
        TestClient {
            handle,
            log,
            seq_ids,
            next_seq: 0,
        }
    }

    /// Send `seq:N` with the next `N`.
    pub fn send_seq(&mut self) -> Result<(u64, MessageId), SendError> {
        let seq = self.next_seq;
        // Hold the map while sending so an early ack always finds the id.
        let mut ids = lock(&self.seq_ids);
        let id = self.handle.send(Message::text(format!("seq:{seq}")))?;
        ids.insert(seq, id);
        self.next_seq += 1;
        Ok((seq, id))
    }

    /// Wait up to `timeout` for `f` to hold for the handle.
    pub async fn wait_until(&self, timeout: Duration, f: impl Fn(&H) -> bool) -> bool {
        wait_until(timeout, || f(&self.handle)).await
    }
}

/// Check `cond` every millisecond until it holds: `false` if it still does not
/// after `timeout`.
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    cond()
}

/// Take events from `events` until `pick` picks one, for up to `timeout`:
/// what it picked, or `None` if the stream ended or the time ran out first.
pub async fn next_matching<S, T>(
    events: &mut S,
    timeout: Duration,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> Option<T>
where
    S: Stream<Item = Event> + Unpin,
{
    let wait = async {
        while let Some(ev) = events.next().await {
            if let Some(picked) = pick(ev) {
                return Some(picked);
            }
        }
        None
    };
    tokio::time::timeout(timeout, wait).await.ok().flatten()
}

/// The connection is open on its first attempt, and the server saw one
/// handshake: nothing (`why`, e.g. a pong left unread) made it reconnect.
pub fn assert_open_on_first_connection(
    status: steadfast_async::Status,
    server: &crate::Server,
    why: &str,
) {
    assert_eq!(status.state, State::Open, "not open: {why}");
    assert_eq!(status.stats.attempts, 1, "reconnected: {why}");
    assert_eq!(server.handshakes(), 1, "a second handshake: {why}");
}
