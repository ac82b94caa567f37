//! The adapter loop, one task per logical connection, written
//! as one `poll` that does all it can each time the task is woken: drain
//! the core's transmits and do the I/O, then poll the handshake, the write
//! step, the read half (only when the reactor woke it), a transport's last
//! words and the deadline, feed what happened to the core, and repeat until
//! nothing moves. Events stay in the core until the application's [`Events`]
//! stream takes them; the driver only wakes it. It adds no policy.
//!
//! [`Events`]: crate::Events

use crate::connection::{self, Transport};
use crate::request::RequestProvider;
use crate::runtime::{Frame, Runtime};
use crate::watch::{Publisher, StateWatch};
use crate::woken::{Poller, Woken};
use futures_util::task::AtomicWaker;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use steadfast_core::{
    Client, ConnId, Error, Event, Handshake, HandshakeError, MessageId, Outcome, State, Transmit,
    TransportError, TransportEvent,
};
use steadfast_wire::Clock;
use steadfast_wire::Tls;
use steadfast_wire::mapping::{self, Ending, frame_event, log_event};
use tracing::{Instrument, debug, error, info_span, warn};
use tungstenite::protocol::WebSocketConfig;

/// Turns of the loop in one poll before yielding to other tasks, so a
/// connection that always has input cannot starve its neighbours.
const TURNS_PER_POLL: usize = 64;

/// While the application's task reads the socket for itself, the driver is
/// not woken by it; it looks on its own this often, so a task that waits on
/// its events and then goes busy elsewhere delays a read by no more than the
/// core allows for ([`steadfast_core::READ_GRACE`]).
pub(crate) const HAND_BACK: std::time::Duration = steadfast_core::READ_GRACE;

/// Frames the driver reads before it fires a due deadline: what arrived
/// first (a pong) counts first, but a flood cannot hold a deadline off.
const READS_BEFORE_DEADLINE: usize = 256;

/// What the handles, the events stream and the driver share, under one lock.
pub(crate) struct Inner<R: Runtime> {
    pub(crate) client: Client,
    /// The events stream's waker, kept from its last wait.
    pub(crate) events_waker: Option<Waker>,
    /// The events stream waits (its last poll was `Pending`).
    events_waiting: bool,
    /// The events stream was dropped: the driver discards events.
    pub(crate) events_dropped: bool,
    /// The session whose events the core holds: the number of times
    /// [`Shared::open`] restarted the client after its terminal event.
    /// Each session's events come on their own [`Events`] stream.
    session: u64,
    /// Events of earlier sessions not yet taken by their streams (the last
    /// of each is its terminal event). Empty but while an application
    /// restarts the client before its old stream has seen the end.
    leftovers: Vec<(u64, VecDeque<Event>)>,
    /// The driver has ended: the events stream ends once drained.
    pub(crate) finished: bool,
    /// The open transport: here rather than in the driver, so a command
    /// writes at once from the application's task, and the events stream,
    /// while it waits, reads for itself instead of through the driver.
    transport: Option<Transport<R>>,
    /// A frame read (by the events stream or the driver) that only the
    /// driver handles: a close, an error, the end of the stream.
    /// Boxed: rare, and every connection keeps the field for life.
    unhandled: Option<Box<Option<Frame>>>,
    /// Transmits only the driver can perform (connect, abort), and any after
    /// them, in the core's order.
    deferred: VecDeque<Transmit>,
    /// The deadline the driver's sleep is set for.
    armed: Option<steadfast_core::Instant>,
    /// The lifecycle state for [`Handle::watch`](crate::Handle::watch),
    /// published on change; created by the first watcher.
    status: Option<Publisher>,
    /// Requests whose futures wait for their outcome.
    requests: Vec<PendingRequest>,
    /// Their wakers, once their outcome is in: woken outside the lock.
    request_wakers: Vec<Waker>,
}

/// A [`Handle::request`](crate::Handle::request) waiting for its outcome.
struct PendingRequest {
    id: MessageId,
    waker: Option<Waker>,
    /// The outcome, or the state the client ended in without one.
    done: Option<Result<Outcome, State>>,
}

/// Tasks to wake once the lock is released.
pub(crate) struct ToWake {
    events: Option<Waker>,
    requests: Vec<Waker>,
}

impl ToWake {
    pub(crate) fn wake(self) {
        if let Some(events) = self.events {
            events.wake();
        }
        for waker in self.requests {
            waker.wake();
        }
    }
}

/// What the handles, the events stream and the driver share.
pub(crate) struct Shared<R: Runtime> {
    inner: Mutex<Inner<R>>,
    pub(crate) clock: Clock,
    /// Wakes the driver after an application command.
    driver: AtomicWaker,
    /// Set with every wake through [`Shared::wake_driver`]: the driver has
    /// something to look at in the core.
    nudged: AtomicBool,
    /// Set when every handle is gone: the driver ends once the client is done.
    pub(crate) abandoned: AtomicBool,
    /// Test hook: the driver panics at its next turn, holding the lock.
    #[cfg(any(test, feature = "test-hooks"))]
    panic_in_driver: AtomicBool,
}

impl<R: Runtime> Shared<R> {
    pub(crate) fn new(client: Client, clock: Clock) -> Self {
        Shared {
            inner: Mutex::new(Inner {
                client,
                events_waker: None,
                events_waiting: false,
                events_dropped: false,
                session: 0,
                leftovers: Vec::new(),
                finished: false,
                transport: None,
                unhandled: None,
                deferred: VecDeque::new(),
                armed: None,
                status: None,
                requests: Vec::new(),
                request_wakers: Vec::new(),
            }),
            clock,
            driver: AtomicWaker::new(),
            nudged: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            #[cfg(any(test, feature = "test-hooks"))]
            panic_in_driver: AtomicBool::new(false),
        }
    }

    /// The shared state, even if a panicking thread poisoned the lock (the
    /// core's state stays consistent: it never panics midway).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner<R>> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Run an application command on the core, then do at once what it
    /// made possible: write the frames it released (and report them
    /// written), and wake the events stream. The driver is woken only when
    /// it has something to do: a connect or abort, a write that could not
    /// finish, a state change or an earlier deadline.
    pub(crate) fn command<T>(
        &self,
        f: impl FnOnce(&mut Client, steadfast_core::Instant) -> T,
    ) -> T {
        self.command_on(|inner, now| f(&mut inner.client, now))
    }

    /// [`Shared::command`], for a command that needs more than the core.
    fn command_on<T>(&self, f: impl FnOnce(&mut Inner<R>, steadfast_core::Instant) -> T) -> T {
        let mut inner = self.lock();
        let now = self.clock.now();
        let before = inner.client.state();
        let out = f(&mut inner, now);
        let driver_needed = inner.settle(before, now);
        let to_wake = inner.take_wakers();
        drop(inner);
        // Wakers are woken (and dropped) outside the lock.
        to_wake.wake();
        if driver_needed {
            self.wake_driver();
        }
        out
    }

    /// The next event for the application. While there is none, the
    /// application's task reads the socket itself and hands the core what
    /// it read, then writes what that released, as a command does. A task
    /// that stops polling delays a read by at most [`HAND_BACK`], and no
    /// deadline: the driver looks on its own, and reads before it fires one.
    /// Taking the event that ends a pause of reading (the core's inbound
    /// bound) wakes the driver to read what the socket holds.
    ///
    /// The stream of an earlier `session` takes only what that session
    /// left ([`Shared::open`]), then ends.
    pub(crate) fn poll_event(&self, cx: &mut Context<'_>, session: u64) -> Poll<Option<Event>> {
        let mut inner = self.lock();
        if inner.session != session {
            return Poll::Ready(inner.take_leftover(session));
        }
        let mut driver_needed = false;
        // A waker replaced here is dropped once the lock is released.
        let replaced;
        let polled = loop {
            if let Some((ev, resumed)) = inner.client.poll_event_resuming() {
                // Taking it may resume reading: the driver reads what the
                // socket holds (this task reads only once all is taken).
                driver_needed |= resumed;
                // The wakers stay (no clone per event); the driver wakes
                // this task only once it waits again, and a frame that wakes
                // it before then is read at its next poll.
                inner.events_waiting = false;
                replaced = None;
                break Poll::Ready(Some(ev));
            }
            if inner.finished {
                if let Some(transport) = &inner.transport {
                    transport.forget_guest();
                }
                replaced = None;
                break Poll::Ready(None);
            }
            let before = inner.client.state();
            match inner.read_frame(cx, Poller::Guest, &self.clock) {
                Read::Pending => {
                    replaced = match &inner.events_waker {
                        Some(w) if w.will_wake(cx.waker()) => None,
                        _ => inner.events_waker.replace(cx.waker().clone()),
                    };
                    inner.events_waiting = true;
                    break Poll::Pending;
                }
                Read::Fed(now) => driver_needed |= inner.settle(before, now),
                Read::Nothing => driver_needed |= inner.unhandled.is_some(),
            }
        };
        if let Poll::Ready(Some(ev)) = &polled {
            log_event(ev);
        }
        let requests = std::mem::take(&mut inner.request_wakers);
        drop(inner);
        drop(replaced);
        for waker in requests {
            waker.wake();
        }
        if driver_needed {
            self.wake_driver();
        }
        polled
    }

    /// Start connecting again, unless the driver is gone: it ended
    /// abnormally ([`Error::Internal`]), and nothing would connect.
    ///
    /// From [`State::Closed`] or [`State::Failed`] this starts a new
    /// session, whose number it returns: its events go to a new stream.
    /// What the old session's stream has not taken yet (up to its terminal
    /// event) stays for it. In any other state the core's `open` does
    /// nothing and the current stream goes on.
    pub(crate) fn open(&self) -> Option<u64> {
        let mut old_waker = None;
        let session = self.command_on(|inner, now| {
            if inner.finished {
                warn!("open after the driver stopped: the connection stays failed");
                return None;
            }
            if !matches!(inner.client.state(), State::Closed | State::Failed) {
                inner.client.open(now);
                return None;
            }
            // The terminal event is the session's last: all it left is here.
            let _ = inner.discard_unheard_events();
            if inner.client.has_events() {
                let left = std::iter::from_fn(|| inner.client.poll_event()).collect();
                inner.leftovers.push((inner.session, left));
            }
            inner.session += 1;
            inner.events_dropped = false;
            inner.events_waiting = false;
            old_waker = inner.events_waker.take();
            inner.client.open(now);
            Some(inner.session)
        });
        // The old stream's task, if it waits, takes what is left (or ends).
        if let Some(waker) = old_waker {
            waker.wake();
        }
        session
    }

    /// The driver's task panicked: fail the core with [`Error::Internal`]
    /// (the [`Event::Failed`] hands back every message it holds), publish
    /// the state, and end the events stream once it has taken that. The
    /// lock may be poisoned by the panic; the state behind it is recovered
    /// (the core never stops midway through an input).
    fn driver_died(&self, panic: &(dyn std::any::Any + Send)) {
        let message = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        error!(panic = message, "the driver panicked: the connection fails");
        let events = {
            let mut inner = self.lock();
            let now = self.clock.now();
            inner.client.abort_with(Error::Internal, now);
            // Nothing performs a transmit any more; the sockets close here
            // and as the driver's task is dropped.
            inner.end_transport();
            inner.deferred.clear();
            while inner.client.poll_transmit().is_some() {}
            let _ = inner.discard_unheard_events();
            inner.finished = true;
            inner.close_status();
            inner.route_completions();
            inner.take_wakers()
        };
        events.wake();
    }

    /// Start a request: the core queues it and reports its outcome to the
    /// future waiting for it ([`Shared::poll_request`]).
    pub(crate) fn start_request(
        &self,
        key: u64,
        msg: steadfast_core::Message,
        timeout: std::time::Duration,
    ) -> Result<MessageId, steadfast_core::SendError> {
        self.command_on(|inner, now| {
            let id = inner.client.request(key, msg, timeout, now)?;
            inner.client.await_outcome(id);
            inner.requests.push(PendingRequest {
                id,
                waker: None,
                done: None,
            });
            Ok(id)
        })
    }

    /// The outcome of request `id`, once it is in: `Err` with the state the
    /// client ended in when it ended without one (the request was handed
    /// back in `Closed` or `Failed`).
    pub(crate) fn poll_request(
        &self,
        cx: &mut Context<'_>,
        id: MessageId,
    ) -> Poll<Result<Outcome, State>> {
        let mut inner = self.lock();
        let Some(at) = inner.requests.iter().position(|p| p.id == id) else {
            return Poll::Ready(Err(State::Failed));
        };
        if inner.requests[at].done.is_some() {
            let pending = inner.requests.swap_remove(at);
            return Poll::Ready(pending.done.unwrap_or(Err(State::Failed)));
        }
        let pending = &mut inner.requests[at];
        if !pending
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            // The replaced waker is dropped with the lock held; it was ours.
            pending.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The future of request `id` is gone: forget it.
    pub(crate) fn forget_request(&self, id: MessageId) {
        let mut inner = self.lock();
        inner.requests.retain(|p| p.id != id);
    }

    /// Test hook: make the driver panic at its next turn, holding the lock.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn panic_in_driver(&self) {
        self.panic_in_driver.store(true, Ordering::Release);
        self.wake_driver();
    }

    /// Whether a panic poisoned the lock.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn lock_poisoned(&self) -> bool {
        self.inner.is_poisoned()
    }

    /// A receiver of state changes.
    pub(crate) fn watch(&self) -> StateWatch {
        let mut inner = self.lock();
        let state = inner.client.state();
        if inner.finished {
            // Nothing will publish: a watcher that is closed from the start.
            return Publisher::new(state).subscribe();
        }
        inner
            .status
            .get_or_insert_with(|| Publisher::new(state))
            .subscribe()
    }

    /// The events stream of `session` is gone. For the current session:
    /// discard events from now on, and stop waking its task for frames; for
    /// an earlier one, discard what it left.
    pub(crate) fn events_dropped(&self, session: u64) {
        let waker = {
            let mut inner = self.lock();
            if inner.session != session {
                while inner.take_leftover(session).is_some() {}
                return;
            }
            inner.events_dropped = true;
            if let Some(transport) = &inner.transport {
                transport.forget_guest();
            }
            inner.events_waker.take()
        };
        drop(waker);
        // Let the driver discard what is queued.
        self.wake_driver();
    }

    /// Whether the driver has promised to look at the open transport's
    /// read side on its own (see [`HAND_BACK`]).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn driver_looks(&self) -> bool {
        self.lock()
            .transport
            .as_ref()
            .is_some_and(|t| t.gate().owner_looks())
    }

    /// Have the driver look at the core again.
    pub(crate) fn wake_driver(&self) {
        self.nudged.store(true, Ordering::Release);
        self.driver.wake();
    }
}

impl<R: Runtime> Inner<R> {
    /// After the core changed outside the driver: write at once what it
    /// released (reporting it written) and discard events nobody hears.
    /// Whether the driver must look: a connect or abort, a write that could
    /// not finish, a state change, or a deadline earlier than its sleep.
    fn settle(&mut self, before: State, now: steadfast_core::Instant) -> bool {
        let mut driver_needed = self.client.state() != before;
        loop {
            self.route_transmits();
            driver_needed |= !self.deferred.is_empty();
            let Inner {
                client, transport, ..
            } = self;
            let Some(w) = transport.as_mut().filter(|w| w.has_work()) else {
                break;
            };
            if !w.write_now() {
                driver_needed = true;
                break;
            }
            let conn = w.conn();
            for id in w.flushed() {
                client.handle_transport(conn, TransportEvent::Written(id), now);
            }
        }
        let armed = self.armed;
        driver_needed |= self
            .client
            .poll_timeout()
            .is_some_and(|d| armed.is_none_or(|a| d < a));
        driver_needed |= self.discard_unheard_events();
        self.route_completions();
        driver_needed
    }

    /// The next event an earlier `session` left for its stream; `None`
    /// once it has none (its stream then ends).
    fn take_leftover(&mut self, session: u64) -> Option<Event> {
        let at = self.leftovers.iter().position(|(s, _)| *s == session)?;
        let (_, left) = self.leftovers.get_mut(at)?;
        let ev = left.pop_front();
        if left.is_empty() {
            self.leftovers.swap_remove(at);
        }
        if let Some(ev) = &ev {
            log_event(ev);
        }
        ev
    }

    /// The open transport is gone: nothing more is read or written.
    fn end_transport(&mut self) {
        self.transport = None;
        self.unhandled = None;
    }

    /// Read one frame from the open transport, if its socket woke, and
    /// tell the core what it means. A frame that ends the transport (a
    /// close, an error, the end of the stream) waits in `unhandled` for the
    /// driver; while one waits, nothing more is read.
    ///
    /// Nothing is read while the core says reading is paused (the
    /// application has not taken the messages it holds): the socket's
    /// buffers fill and TCP pushes back on the server. Its wake stays
    /// recorded in the gate, so the first read after the pause polls it.
    fn read_frame(&mut self, cx: &mut Context<'_>, poller: Poller, clock: &Clock) -> Read {
        if self.client.reading_paused() {
            return Read::Pending;
        }
        let Some(transport) = self.transport.as_mut().filter(|_| self.unhandled.is_none()) else {
            return Read::Pending;
        };
        let Poll::Ready(frame) = transport.poll_frame(cx, poller) else {
            return Read::Pending;
        };
        match frame_event(frame) {
            Ok(Some(ev)) => {
                let now = clock.now();
                self.client.handle_transport(transport.conn(), ev, now);
                Read::Fed(now)
            }
            Ok(None) => Read::Nothing,
            Err(frame) => {
                self.unhandled = Some(Box::new(frame));
                Read::Nothing
            }
        }
    }

    /// Before a due deadline fires, what the socket already holds: a pong
    /// nobody read yet (the application's task was woken for it and went
    /// busy elsewhere) must not count as missing. The core credits it as
    /// having come before the deadline ([`steadfast_core::READ_GRACE`]).
    fn read_before_deadline(&mut self, cx: &mut Context<'_>, clock: &Clock) {
        for _ in 0..READS_BEFORE_DEADLINE {
            if matches!(self.read_frame(cx, Poller::Owner, clock), Read::Pending)
                || self.unhandled.is_some()
            {
                return;
            }
        }
    }

    /// Hand the core's transmits for the live transport to its writer;
    /// those only the driver can perform wait in `deferred`, with any after them.
    fn route_transmits(&mut self) {
        while let Some(t) = self.client.poll_transmit() {
            if !self.deferred.is_empty() {
                self.deferred.push_back(t);
                continue;
            }
            let (conn, frame, id) = match mapping::transmit_frame(t) {
                Ok(frame) => frame,
                // The transport being replaced or aborted gets nothing more
                // written, from here on, whoever writes next.
                Err(t @ Transmit::Connect { .. }) => {
                    self.end_transport();
                    self.deferred.push_back(t);
                    continue;
                }
                Err(t) => {
                    if let Transmit::Abort { conn } = t {
                        if self.transport.as_ref().is_some_and(|w| w.is(conn)) {
                            self.end_transport();
                        }
                    }
                    self.deferred.push_back(t);
                    continue;
                }
            };
            // A frame for a transport already gone is dropped: the core has
            // been told (or will be) that it ended.
            if let Some(w) = self.transport.as_mut().filter(|w| w.is(conn)) {
                w.push(frame, id);
            }
        }
    }

    /// What to wake once the lock is released: the events stream, if it
    /// waits and there is something for it, and the requests whose outcome
    /// came in.
    fn take_wakers(&mut self) -> ToWake {
        ToWake {
            events: self.events_to_wake(),
            requests: std::mem::take(&mut self.request_wakers),
        }
    }

    /// Hand the core's completions to the requests waiting for them; once
    /// the client has ended, the requests left end without an outcome.
    fn route_completions(&mut self) {
        while let Some((id, outcome)) = self.client.poll_completion() {
            if let Some(p) = self.requests.iter_mut().find(|p| p.id == id) {
                p.done = Some(Ok(outcome));
                self.request_wakers.extend(p.waker.take());
            }
        }
        let state = self.client.state();
        if matches!(state, State::Closed | State::Failed) {
            for p in self.requests.iter_mut().filter(|p| p.done.is_none()) {
                p.done = Some(Err(state));
                self.request_wakers.extend(p.waker.take());
            }
        }
    }

    /// The events stream's waker, if it waits and there is something for
    /// it (or the end). The caller wakes it once the lock is released.
    fn events_to_wake(&mut self) -> Option<Waker> {
        if self.events_waiting && (self.finished || self.client.has_events()) {
            self.events_waiting = false;
            self.events_waker.clone()
        } else {
            None
        }
    }

    /// The driver is gone: publish the final state, and tell every watcher
    /// nothing will change again (dropping the publisher closes them).
    fn close_status(&mut self) {
        self.publish_status();
        self.status = None;
    }

    /// Publish the state to [`Handle::watch`](crate::Handle::watch)ers, if
    /// it changed.
    fn publish_status(&self) {
        if let Some(status) = &self.status {
            status.publish(self.client.state());
        }
    }

    /// With nobody listening, events are logged and dropped. Whether that
    /// resumed reading (the driver then reads what the socket holds).
    fn discard_unheard_events(&mut self) -> bool {
        if !self.events_dropped || !self.client.has_events() {
            return false;
        }
        let mut resumed = false;
        while let Some((ev, r)) = self.client.poll_event_resuming() {
            resumed |= r;
            log_event(&ev);
        }
        resumed
    }
}

/// What [`Inner::read_frame`] did.
enum Read {
    /// Nothing to read now (or a frame waits for the driver).
    Pending,
    /// The core heard a frame, at this instant.
    Fed(steadfast_core::Instant),
    /// A frame that meant nothing to the core, or one left for the driver.
    Nothing,
}

/// A handshake under way.
type Connecting<R> = Pin<
    Box<dyn Future<Output = Result<(<R as Runtime>::Socket, Handshake), HandshakeError>> + Send>,
>;

/// A transport's last words under way (the ids they flushed), and the event
/// to report once they are done.
type Lingering = (
    Pin<Box<dyn Future<Output = Vec<MessageId>> + Send>>,
    TransportEvent,
);

/// The live transport, if any: at most one, owned by the loop.
struct Link<R: Runtime> {
    conn: Option<ConnId>,
    /// The handshake under way.
    connecting: Option<Connecting<R>>,
    /// Polled in the loop like everything else, so a peer that stops reading
    /// cannot stall commands or deadlines while we say goodbye.
    lingering: Option<Lingering>,
}

impl<R: Runtime> Default for Link<R> {
    fn default() -> Self {
        Link {
            conn: None,
            connecting: None,
            lingering: None,
        }
    }
}

impl<R: Runtime> Link<R> {
    fn is(&self, conn: ConnId) -> bool {
        self.conn == Some(conn)
    }

    /// Drop the transport's read side, handshake and last words at once
    /// (its socket closes when the writer in [`Inner`] is gone too).
    fn drop_transport(&mut self) {
        *self = Link::default();
    }
}

/// Progress of the transport's I/O.
enum Io<R: Runtime> {
    Connected(Box<Result<(R::Socket, Handshake), HandshakeError>>),
    /// A frame that ends the transport (see [`frame_event`]).
    Ended(Option<Frame>),
    Lingered(Vec<MessageId>),
}

pub(crate) struct Driver<R: Runtime> {
    pub(crate) shared: Arc<Shared<R>>,
    pub(crate) provider: RequestProvider,
    /// What the builder adds to every request.
    pub(crate) extras: crate::request::RequestExtras,
    pub(crate) ws_config: WebSocketConfig,
    /// The application's TLS client configuration, if any.
    pub(crate) tls: Tls,
    /// Bound on the last writes of a transport that is ending (our close
    /// reply, or the close frame for a protocol breach): the core's close timeout.
    pub(crate) linger: std::time::Duration,
    /// How often the driver looks at the read side on its own while the
    /// application's task reads it: [`HAND_BACK`] but in tests.
    pub(crate) hand_back: std::time::Duration,
}

/// The loop's own state between polls.
struct Looping<R: Runtime> {
    driver: Driver<R>,
    link: Link<R>,
    /// The deadline the sleep is set for.
    armed: Option<steadfast_core::Instant>,
    /// The open transport's read gate, checked without the lock.
    read_gate: Option<Woken>,
    /// When the driver next looks at the read side on its own, while the
    /// application's task reads it (see [`HAND_BACK`]).
    hand_back: Option<steadfast_core::Instant>,
    /// When the application's task was last seen woken for a frame, while
    /// the hand-back is off.
    last_guest_read: Option<steadfast_core::Instant>,
    /// The last poll left a write unfinished.
    writing: bool,
}

/// Tells the events stream the driver is gone, however it ends (even if
/// the runtime drops the task).
impl<R: Runtime> Drop for Looping<R> {
    fn drop(&mut self) {
        let events = {
            let mut inner = self.driver.shared.lock();
            inner.finished = true;
            inner.close_status();
            inner.route_completions();
            inner.take_wakers()
        };
        events.wake();
    }
}

pin_project_lite::pin_project! {
    /// The driver task: the loop and its sleep, in one allocation.
    pub(crate) struct Run<R: Runtime> {
        looping: Looping<R>,
        #[pin]
        sleep: R::Timer,
    }
}

impl<R: Runtime> Future for Run<R> {
    type Output = ();

    /// One poll of the loop. A panic in it (a bug) ends the task, but not
    /// silently: the connection fails with [`Error::Internal`] first.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let looping = this.looping;
        let sleep = this.sleep;
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| looping.poll(sleep, cx)));
        match polled {
            Ok(Poll::Ready(())) => {
                debug!("driver finished");
                Poll::Ready(())
            }
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => {
                looping.driver.shared.driver_died(&*panic);
                Poll::Ready(())
            }
        }
    }
}

impl<R: Runtime> Driver<R> {
    /// The task that drives this connection until the client is done and
    /// every handle is gone.
    pub(crate) fn run(self) -> Run<R> {
        let far = self.shared.clock.far_future();
        Run {
            looping: Looping {
                driver: self,
                link: Link::default(),
                armed: None,
                read_gate: None,
                hand_back: None,
                last_guest_read: None,
                writing: false,
            },
            sleep: R::timer(far),
        }
    }
}

impl<R: Runtime> Looping<R> {
    fn poll(&mut self, mut sleep: Pin<&mut R::Timer>, cx: &mut Context<'_>) -> Poll<()> {
        // Registered before looking at the core, so no command is missed.
        self.driver.shared.driver.register(cx.waker());
        self.watch_guest_reads(&mut sleep);
        if self.nothing_moved(&mut sleep, cx) {
            return Poll::Pending;
        }
        let shared = self.driver.shared.clone();
        for _ in 0..TURNS_PER_POLL {
            // 1. Under the lock: fire due deadlines, route the core's
            //    transmits (frames to the writer, connects and aborts here),
            //    write, and wake the events stream if it has something.
            let (state, mut deferred, events, wrote) = {
                let mut inner = shared.lock();
                #[cfg(any(test, feature = "test-hooks"))]
                if shared.panic_in_driver.swap(false, Ordering::AcqRel) {
                    panic!("the driver panics (test hook)");
                }
                let now = shared.clock.now();
                self.track_read_gate(&inner, now);
                if inner.client.poll_timeout().is_some_and(|d| d <= now) {
                    inner.read_before_deadline(cx, &shared.clock);
                    // A frame that ends the transport goes first (step 3).
                    if inner.unhandled.is_none() {
                        inner.client.handle_timeout(now);
                    }
                }
                inner.route_transmits();
                let deferred = std::mem::take(&mut inner.deferred);
                let wrote = self.poll_writer(cx, &mut inner, now);
                self.writing = inner.transport.as_ref().is_some_and(Transport::has_work);
                // Reading resumed by this is done in step 3.
                let _ = inner.discard_unheard_events();
                inner.route_completions();
                let events = inner.take_wakers();
                // 2. The sleep, for the core's deadline or the hand-back look.
                let wake_at = inner
                    .client
                    .poll_timeout()
                    .into_iter()
                    .chain(self.hand_back)
                    .min();
                if let Some(at) = wake_at {
                    self.arm(&mut sleep, at);
                }
                inner.armed = self.armed;
                inner.publish_status();
                (inner.client.state(), deferred, events, wrote)
            };
            events.wake();
            // Connects and aborts, outside the lock (a handshake dropped here
            // may own the application's request future).
            if !deferred.is_empty() {
                for t in deferred.drain(..) {
                    self.driver.perform(t, &mut self.link);
                }
                // Keep the queue's capacity.
                let mut inner = shared.lock();
                if inner.deferred.is_empty() {
                    inner.deferred = deferred;
                }
            }
            let done = matches!(state, State::Closed | State::Failed | State::Idle);
            if done && shared.abandoned.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            // 3. Poll every other source that may have moved; what happened
            //    goes to the core at once. A deadline is fired on the next turn.
            let mut moved = wrote;
            if self.armed.is_some() && sleep.as_mut().poll(cx).is_ready() {
                self.armed = None;
                shared.lock().armed = None;
                moved = true;
            }
            moved |= self.poll_io(cx);
            if !moved {
                return Poll::Pending;
            }
        }
        // Busy: let other tasks run, and come back (past the quiet check).
        self.driver.shared.nudged.store(true, Ordering::Release);
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Start the hand-back, without the lock, once the application's task
    /// is woken for frames twice within one [`HAND_BACK`]: from then on the
    /// driver promises to look every interval (the read side is polled in
    /// step 3 if its socket woke), and the task alone is woken for frames.
    /// A connection with sparse traffic keeps waking both, which costs the
    /// driver only the quick check, not a look per frame.
    fn watch_guest_reads(&mut self, sleep: &mut Pin<&mut R::Timer>) {
        let Some(gate) = &self.read_gate else {
            return;
        };
        if self.hand_back.is_some() || !gate.guest_was_woken() {
            return;
        }
        let now = self.driver.shared.clock.now();
        let interval = self.driver.hand_back;
        let busy = self
            .last_guest_read
            .is_some_and(|t| now.saturating_duration_since(t) < interval);
        self.last_guest_read = Some(now);
        if !busy {
            return;
        }
        gate.set_owner_looks(true);
        let at = now.saturating_add(interval);
        self.hand_back = Some(at);
        // `Inner::armed` may stay later until the next turn, which at worst
        // wakes the driver once for nothing.
        self.arm(sleep, at);
    }

    /// Set the sleep for `at` if that is earlier than it is set for. A later
    /// deadline (the heartbeat pushed out by traffic, every message) waits
    /// for the armed sleep: one spurious wake instead of a timer reset per
    /// message.
    fn arm(&mut self, sleep: &mut Pin<&mut R::Timer>, at: steadfast_core::Instant) {
        if self.armed.is_none_or(|a| at < a) {
            self.armed = Some(at);
            R::reset(sleep.as_mut(), self.driver.shared.clock.runtime_instant(at));
        }
    }

    /// Keep the open transport's read gate at hand, and the hand-back
    /// schedule once started ([`Looping::watch_guest_reads`]): at each look
    /// it goes on if the application's task was woken for a frame since the
    /// last one, and stops otherwise.
    fn track_read_gate(&mut self, inner: &Inner<R>, now: steadfast_core::Instant) {
        let gate = inner.transport.as_ref().map(Transport::gate);
        let same = match (&self.read_gate, gate) {
            (Some(old), Some(new)) => old.is(new),
            (None, None) => true,
            _ => false,
        };
        if !same {
            // The old transport is read no more: it needs no promise.
            if let Some(old) = &self.read_gate {
                old.set_owner_looks(false);
            }
            self.read_gate = gate.cloned();
            self.hand_back = None;
            self.last_guest_read = None;
        }
        let (Some(gate), Some(at)) = (&self.read_gate, self.hand_back) else {
            return;
        };
        if at > now {
            return;
        }
        if gate.guest_was_woken() {
            self.hand_back = Some(now.saturating_add(self.driver.hand_back));
        } else {
            gate.set_owner_looks(false);
            self.hand_back = None;
            self.last_guest_read = None;
        }
    }

    /// Whether this wake can be ignored without taking the lock: nobody
    /// nudged the driver, no handshake, last words or write is under way,
    /// the deadline (or the hand-back look) has not come, and the socket
    /// has nothing unread (the application's task, woken for a frame, read
    /// it itself). The read gate keeps this task's waker.
    fn nothing_moved(&mut self, sleep: &mut Pin<&mut R::Timer>, cx: &mut Context<'_>) -> bool {
        let Some(gate) = &self.read_gate else {
            return false;
        };
        let quiet = !self.writing
            && self.link.connecting.is_none()
            && self.link.lingering.is_none()
            // Polled, not just inspected: a reset sleep must hold our waker.
            && (self.armed.is_none() || sleep.as_mut().poll(cx).is_pending())
            && !gate.register_owner_if_quiet(cx)
            && !self.driver.shared.nudged.load(Ordering::Acquire);
        if !quiet {
            self.driver.shared.nudged.store(false, Ordering::Release);
        }
        quiet
    }

    /// Write what waits, registering this task for write readiness; the
    /// core hears at once what was written or that the write failed.
    /// Whether the core heard something (it may then have more to send:
    /// written messages free the in-flight window).
    fn poll_writer(
        &mut self,
        cx: &mut Context<'_>,
        inner: &mut Inner<R>,
        now: steadfast_core::Instant,
    ) -> bool {
        let Inner {
            client, transport, ..
        } = inner;
        let Some(w) = transport.as_mut().filter(|w| w.has_work()) else {
            return false;
        };
        let conn = w.conn();
        // First without this task's waker: tungstenite's stream wakes the last
        // writer on every read readiness too, which would wake the driver
        // for frames the application's task reads.
        let written = if w.write_now() {
            Poll::Ready(Ok(()))
        } else {
            w.poll_write(cx)
        };
        match written {
            Poll::Pending => false,
            Poll::Ready(Ok(())) => {
                let mut fed = false;
                for id in w.flushed() {
                    client.handle_transport(conn, TransportEvent::Written(id), now);
                    fed = true;
                }
                fed
            }
            Poll::Ready(Err(e)) => {
                debug!(error = %e, "write failed");
                inner.end_transport();
                self.link.drop_transport();
                let reset = TransportEvent::Error(TransportError::Reset);
                inner.client.handle_transport(conn, reset, now);
                true
            }
        }
    }

    /// Poll the transport's read side, handshake and last words, and tell
    /// the core what happened. Whether anything did.
    fn poll_io(&mut self, cx: &mut Context<'_>) -> bool {
        let (link, driver) = (&mut self.link, &self.driver);
        let mut moved = false;
        if let Some(handshake) = link.connecting.as_mut() {
            if let Poll::Ready(res) = handshake.as_mut().poll(cx) {
                driver.observe(Io::Connected(Box::new(res)), link);
                moved = true;
            }
        }
        let ended = {
            let mut inner = driver.shared.lock();
            let read = inner.read_frame(cx, Poller::Owner, &driver.shared.clock);
            moved |= !matches!(read, Read::Pending);
            inner.unhandled.take()
        };
        if let Some(frame) = ended {
            driver.observe(Io::Ended(*frame), link);
            moved = true;
        }
        if let Some((last_words, _)) = link.lingering.as_mut() {
            if let Poll::Ready(ids) = last_words.as_mut().poll(cx) {
                driver.observe(Io::Lingered(ids), link);
                moved = true;
            }
        }
        moved
    }
}

impl<R: Runtime> Driver<R> {
    /// Tell the core what a transport did.
    fn feed(&self, conn: ConnId, events: impl IntoIterator<Item = TransportEvent>) {
        let mut inner = self.shared.lock();
        let now = self.shared.clock.now();
        for ev in events {
            inner.client.handle_transport(conn, ev, now);
        }
    }

    /// Turn an input into transport events and tell the core.
    fn observe(&self, io: Io<R>, link: &mut Link<R>) {
        let Some(conn) = link.conn else { return };
        let ev = match io {
            Io::Connected(res) => match *res {
                Ok((ws, handshake)) => {
                    link.connecting = None;
                    self.shared.lock().transport = Some(Transport::new(conn, ws));
                    TransportEvent::Opened(handshake)
                }
                Err(e) => {
                    link.drop_transport();
                    TransportEvent::HandshakeFailed(e)
                }
            },
            Io::Lingered(flushed) => {
                let end = link.lingering.take().map(|(_, end)| end);
                link.drop_transport();
                let written = flushed.into_iter().map(TransportEvent::Written);
                return self.feed(conn, written.chain(end));
            }
            Io::Ended(frame) => match mapping::ending(frame) {
                // Answer it or say why, then the socket goes.
                Ending::Goodbye(last, end) => return self.say_goodbye(link, conn, last, end),
                // The end of the stream (no other frame ends a transport).
                Ending::Dropped(end) => {
                    self.shared.lock().end_transport();
                    link.drop_transport();
                    end
                }
            },
        };
        self.feed(conn, [ev]);
    }

    /// End the transport after its last words (bounded by the close
    /// timeout), polled by the loop; `end` is reported once they are done.
    /// With no writer, the end is reported at once.
    fn say_goodbye(
        &self,
        link: &mut Link<R>,
        conn: ConnId,
        last: Option<tungstenite::Message>,
        end: TransportEvent,
    ) {
        let transport = {
            let mut inner = self.shared.lock();
            let transport = inner.transport.take();
            inner.end_transport();
            transport
        };
        match transport {
            Some(writer) => {
                link.lingering = Some((Box::pin(writer.finish(last, self.linger)), end));
            }
            None => {
                link.drop_transport();
                self.feed(conn, [end]);
            }
        }
    }

    /// Perform a transmit only the driver can (see [`Inner::route_transmits`]).
    fn perform(&self, t: Transmit, link: &mut Link<R>) {
        match t {
            Transmit::Connect { conn, attempt } => {
                // The core released the previous transport already; its socket
                // closes here, before the next exists.
                link.drop_transport();
                let span = info_span!("attempt", %conn, attempt);
                let handshake = connection::connect::<R>(
                    self.provider.clone(),
                    self.extras.clone(),
                    attempt,
                    self.ws_config,
                    self.tls.clone(),
                )
                .instrument(span);
                link.conn = Some(conn);
                link.connecting = Some(Box::pin(handshake));
            }
            Transmit::Abort { conn } => {
                if link.is(conn) {
                    link.drop_transport();
                }
            }
            // Frames that waited behind a connect or an abort: their
            // transport is gone.
            Transmit::Send { .. }
            | Transmit::SendControl { .. }
            | Transmit::Ping { .. }
            | Transmit::Close { .. } => {}
        }
    }
}
