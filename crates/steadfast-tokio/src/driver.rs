//! The adapter loop of DESIGN.md, one task per logical connection, written
//! as one `poll` that does all it can each time the task is woken: drain
//! the core's transmits and do the I/O, then poll the handshake, the write
//! step, the read half (only when the reactor woke it), a transport's last
//! words and the deadline, feed what happened to the core, and repeat until
//! nothing moves. Events stay in the core until the application's [`Events`]
//! stream takes them; the driver only wakes it. It adds no policy.
//!
//! [`Events`]: crate::Events

use crate::clock::Clock;
use crate::connection::{self, Reader, Writer, Ws};
use crate::mapping;
use crate::request::RequestProvider;
use futures_util::task::AtomicWaker;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use steadfast_core::{
    Client, ConnId, Event, HandshakeError, MessageId, State, Transmit, TransportError,
    TransportEvent,
};
use tokio::sync::watch;
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{Instrument, debug, info, info_span, warn};

/// Turns of the loop in one poll before yielding to other tasks, so a
/// connection that always has input cannot starve its neighbours.
const TURNS_PER_POLL: usize = 64;

/// What the handles, the events stream and the driver share, under one lock.
pub(crate) struct Inner {
    pub(crate) client: Client,
    /// The events stream's waker, while it waits for an event.
    pub(crate) events_waker: Option<Waker>,
    /// The events stream was dropped: the driver discards events.
    pub(crate) events_dropped: bool,
    /// The driver has ended: the events stream ends once drained.
    pub(crate) finished: bool,
}

/// What the handles, the events stream and the driver share.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    pub(crate) clock: Clock,
    /// Wakes the driver after an application command.
    driver: AtomicWaker,
    /// The lifecycle state, published on change.
    pub(crate) status: watch::Sender<State>,
    /// Set when every handle is gone: the driver ends once the client is done.
    pub(crate) abandoned: AtomicBool,
}

impl Shared {
    pub(crate) fn new(client: Client, clock: Clock) -> Self {
        Shared {
            status: watch::Sender::new(client.state()),
            inner: Mutex::new(Inner {
                client,
                events_waker: None,
                events_dropped: false,
                finished: false,
            }),
            clock,
            driver: AtomicWaker::new(),
            abandoned: AtomicBool::new(false),
        }
    }

    /// The shared state, even if a panicking thread poisoned the lock (the
    /// core's state stays consistent: it never panics midway).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Have the driver look at the core again (after a command).
    pub(crate) fn wake_driver(&self) {
        self.driver.wake();
    }
}

impl Inner {
    /// Wake the events stream if it waits and there is something for it.
    fn wake_events(&mut self) {
        if self.finished || self.client.has_events() {
            if let Some(waker) = self.events_waker.take() {
                waker.wake();
            }
        }
    }
}

/// A handshake under way.
type Handshake = Pin<Box<dyn Future<Output = Result<Ws, HandshakeError>> + Send>>;

/// A transport's last words under way (the ids they flushed), and the event
/// to report once they are done.
type Lingering = (
    Pin<Box<dyn Future<Output = Vec<MessageId>> + Send>>,
    TransportEvent,
);

/// The live transport, if any: at most one, owned by the loop.
#[derive(Default)]
struct Link {
    conn: Option<ConnId>,
    /// The handshake under way.
    connecting: Option<Handshake>,
    reader: Option<Reader>,
    writer: Option<Writer>,
    /// Polled in the loop like everything else, so a peer that stops reading
    /// cannot stall commands or deadlines while we say goodbye.
    lingering: Option<Lingering>,
}

impl Link {
    fn is(&self, conn: ConnId) -> bool {
        self.conn == Some(conn)
    }

    /// Drop the transport at once (its socket closes now).
    fn drop_transport(&mut self) {
        *self = Link::default();
    }
}

/// Progress of the transport's I/O.
enum Io {
    Connected(Box<Result<Ws, HandshakeError>>),
    Frame(Option<Result<tungstenite::Message, tungstenite::Error>>),
    Wrote(Result<(), tungstenite::Error>),
    Lingered(Vec<MessageId>),
}

pub(crate) struct Driver {
    pub(crate) shared: Arc<Shared>,
    pub(crate) provider: RequestProvider,
    pub(crate) ws_config: WebSocketConfig,
    /// Bound on the last writes of a transport that is ending (our close
    /// reply, or the close frame for a protocol breach): the core's close timeout.
    pub(crate) linger: std::time::Duration,
}

/// The loop's own state between polls.
struct Looping {
    driver: Driver,
    link: Link,
    sleep: Pin<Box<Sleep>>,
    /// The deadline the sleep is set for.
    armed: Option<steadfast_core::Instant>,
    /// Reused every turn: no allocation per message.
    transmits: Vec<Transmit>,
    observed: Vec<(ConnId, TransportEvent)>,
}

/// Tells the events stream the driver is gone, however it ends (even if
/// the runtime drops the task).
impl Drop for Looping {
    fn drop(&mut self) {
        let mut inner = self.driver.shared.lock();
        inner.finished = true;
        inner.wake_events();
    }
}

impl Driver {
    pub(crate) async fn run(self) {
        let far = self.shared.clock.far_future();
        let mut looping = Looping {
            driver: self,
            link: Link::default(),
            sleep: Box::pin(tokio::time::sleep_until(far)),
            armed: None,
            transmits: Vec::new(),
            observed: Vec::new(),
        };
        std::future::poll_fn(|cx| looping.poll(cx)).await;
        debug!("driver finished");
    }
}

impl Looping {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Registered before looking at the core, so no command is missed.
        self.driver.shared.driver.register(cx.waker());
        for _ in 0..TURNS_PER_POLL {
            // 1. Drain what the core wants, under the lock; act outside it.
            let shared = self.driver.shared.clone();
            let (deadline, state) = {
                let mut inner = shared.lock();
                let now = shared.clock.now();
                if inner.client.poll_timeout().is_some_and(|d| d <= now) {
                    inner.client.handle_timeout(now);
                }
                let client = &mut inner.client;
                self.transmits
                    .extend(std::iter::from_fn(|| client.poll_transmit()));
                if inner.events_dropped {
                    while let Some(ev) = inner.client.poll_event() {
                        log_event(&ev);
                    }
                }
                inner.wake_events();
                (inner.client.poll_timeout(), inner.client.state())
            };
            for t in self.transmits.drain(..) {
                self.driver.perform(t, &mut self.link);
            }
            shared.status.send_if_modified(|s| {
                let changed = *s != state;
                *s = state;
                changed
            });
            let done = matches!(state, State::Closed | State::Failed | State::Idle);
            if done && shared.abandoned.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            // 2. Re-arm the sleep only when the deadline moved earlier. A later
            //    one (the heartbeat pushed out by traffic, every message) waits
            //    for the armed sleep: one spurious wake, instead of a timer
            //    reset per message.
            if let Some(d) = deadline {
                if self.armed.is_none_or(|a| d < a) {
                    self.armed = Some(d);
                    self.sleep.as_mut().reset(shared.clock.tokio_instant(d));
                }
            }
            // 3. Poll every source that may have moved.
            let mut timed_out = false;
            if self.armed.is_some() && self.sleep.as_mut().poll(cx).is_ready() {
                self.armed = None;
                timed_out = true;
            }
            self.poll_io(cx);
            if self.observed.is_empty() && !timed_out {
                return Poll::Pending;
            }
            // 4. Feed it to the core.
            let mut inner = shared.lock();
            let now = shared.clock.now();
            if timed_out {
                inner.client.handle_timeout(now);
            }
            for (conn, ev) in self.observed.drain(..) {
                inner.client.handle_transport(conn, ev, now);
            }
        }
        // Busy: let other tasks run, and come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Poll the transport's pieces; what happened goes to `self.observed`.
    fn poll_io(&mut self, cx: &mut Context<'_>) {
        let link = &mut self.link;
        if let Some(handshake) = link.connecting.as_mut() {
            if let Poll::Ready(res) = handshake.as_mut().poll(cx) {
                let io = Io::Connected(Box::new(res));
                self.driver.observe(io, link, &mut self.observed);
            }
        }
        if let Some(writer) = link.writer.as_mut().filter(|w| w.has_work()) {
            if let Poll::Ready(res) = writer.poll_write(cx) {
                self.driver
                    .observe(Io::Wrote(res), link, &mut self.observed);
            }
        }
        if let Some(reader) = link.reader.as_mut() {
            if let Poll::Ready(frame) = reader.poll_frame(cx) {
                self.driver
                    .observe(Io::Frame(frame), link, &mut self.observed);
            }
        }
        if let Some((last_words, _)) = link.lingering.as_mut() {
            if let Poll::Ready(ids) = last_words.as_mut().poll(cx) {
                self.driver
                    .observe(Io::Lingered(ids), link, &mut self.observed);
            }
        }
    }
}

impl Driver {
    /// Turn an input into transport events for the core, appended to `out`.
    fn observe(&self, io: Io, link: &mut Link, out: &mut Vec<(ConnId, TransportEvent)>) {
        let Some(conn) = link.conn else { return };
        let ev = match io {
            Io::Connected(res) => match *res {
                Ok(ws) => {
                    link.connecting = None;
                    let (sink, stream) = futures_util::StreamExt::split(ws);
                    link.writer = Some(Writer::new(sink));
                    link.reader = Some(Reader::new(stream));
                    TransportEvent::Opened
                }
                Err(e) => {
                    link.drop_transport();
                    TransportEvent::HandshakeFailed(e)
                }
            },
            Io::Wrote(Ok(())) => {
                if let Some(w) = link.writer.as_mut() {
                    out.extend(w.flushed().map(|id| (conn, TransportEvent::Written(id))));
                }
                return;
            }
            Io::Wrote(Err(e)) => {
                debug!(error = %e, "write failed");
                link.drop_transport();
                TransportEvent::Error(TransportError::Reset)
            }
            Io::Frame(Some(Ok(tungstenite::Message::Close(frame)))) => {
                let (code, reason) = mapping::peer_close(frame);
                debug!(%code, "close frame received");
                // Answer it (tungstenite queued the reply), then the socket goes.
                let end = TransportEvent::Closed { code, reason };
                return self.say_goodbye(link, conn, None, end, out);
            }
            Io::Lingered(flushed) => {
                let end = link.lingering.take().map(|(_, end)| end);
                link.drop_transport();
                out.extend(
                    flushed
                        .into_iter()
                        .map(|id| (conn, TransportEvent::Written(id))),
                );
                out.extend(end.map(|end| (conn, end)));
                return;
            }
            Io::Frame(Some(Ok(tungstenite::Message::Ping(p)))) => TransportEvent::Ping(p),
            Io::Frame(Some(Ok(tungstenite::Message::Pong(p)))) => TransportEvent::Pong(p),
            Io::Frame(Some(Ok(msg))) => match mapping::from_ws(msg) {
                Some(msg) => TransportEvent::Message(msg),
                None => return,
            },
            Io::Frame(Some(Err(e))) => {
                debug!(error = %e, "read failed");
                let error = mapping::read_error(&e);
                // Tell the peer why (1002, 1007, 1009), then the socket goes.
                let last = mapping::close_code_for(error)
                    .map(|code| tungstenite::Message::Close(Some(mapping::close_frame(code, ""))));
                return self.say_goodbye(link, conn, last, TransportEvent::Error(error), out);
            }
            Io::Frame(None) => {
                link.drop_transport();
                TransportEvent::Error(TransportError::Reset)
            }
        };
        out.push((conn, ev));
    }

    /// End the transport after its last words (bounded by the close
    /// timeout), polled by the loop; `end` is reported once they are done.
    /// With no writer, the end is reported at once.
    fn say_goodbye(
        &self,
        link: &mut Link,
        conn: ConnId,
        last: Option<tungstenite::Message>,
        end: TransportEvent,
        out: &mut Vec<(ConnId, TransportEvent)>,
    ) {
        let Some(writer) = link.writer.take() else {
            link.drop_transport();
            out.push((conn, end));
            return;
        };
        link.reader = None;
        link.lingering = Some((Box::pin(writer.finish(last, self.linger)), end));
    }

    fn perform(&self, t: Transmit, link: &mut Link) {
        match t {
            Transmit::Connect { conn, attempt } => {
                // The core released the previous transport already; its socket
                // closes here, before the next exists.
                link.drop_transport();
                let span = info_span!("attempt", %conn, attempt);
                let handshake =
                    connection::connect(self.provider.clone(), self.ws_config).instrument(span);
                link.conn = Some(conn);
                link.connecting = Some(Box::pin(handshake));
            }
            Transmit::Send { conn, id, msg } => {
                if let (true, Some(w)) = (link.is(conn), link.writer.as_mut()) {
                    w.push(mapping::to_ws(msg), Some(id));
                }
            }
            Transmit::SendControl { conn, msg } => {
                if let (true, Some(w)) = (link.is(conn), link.writer.as_mut()) {
                    w.push(mapping::to_ws(msg), None);
                }
            }
            Transmit::Ping { conn, payload } => {
                if let (true, Some(w)) = (link.is(conn), link.writer.as_mut()) {
                    let payload = steadfast_core::Bytes::copy_from_slice(&payload);
                    w.push(tungstenite::Message::Ping(payload), None);
                }
            }
            Transmit::Close { conn, code, reason } => {
                if let (true, Some(w)) = (link.is(conn), link.writer.as_mut()) {
                    let frame =
                        tungstenite::Message::Close(Some(mapping::close_frame(code, &reason)));
                    w.push(frame, None);
                }
            }
            Transmit::Abort { conn } => {
                if link.is(conn) {
                    link.drop_transport();
                }
            }
        }
    }
}

/// Log the events worth a line, as the application takes them (or as the
/// driver discards them when nobody listens).
pub(crate) fn log_event(ev: &Event) {
    match ev {
        Event::StateChanged { from, to } => debug!(?from, ?to, "state"),
        Event::Reconnecting {
            attempt,
            delay,
            cause,
            ..
        } => info!(attempt, ?delay, %cause, "reconnecting"),
        Event::Failed { error, undelivered } => {
            warn!(%error, undelivered = undelivered.len(), "failed")
        }
        Event::Suspended { overshoot } => info!(?overshoot, "suspend detected"),
        _ => {}
    }
}
