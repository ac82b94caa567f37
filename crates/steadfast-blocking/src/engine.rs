//! The loop both modes share, with no thread of its own: one turn does
//! all that can be done now without blocking (a goodbye's flush, every
//! frame the socket holds, due deadlines, the core's transmits written),
//! and [`Engine::wait_for`] says what to wait on next. Connects happen
//! between turns, outside any lock ([`Settings::connect`]). It adds no
//! policy: every decision is the core's.

use crate::RequestProvider;
use crate::stream::{self, Opened, Stream};
use crate::wait::Interest;
use std::collections::VecDeque;
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use steadfast_core::{
    Client, Config, ConnId, Event, HandshakeError, MessageId, State, Transmit, TransportError,
    TransportEvent,
};
use steadfast_wire::mapping::{self, Ending, Frame, log_event};
use steadfast_wire::{Clock, RequestExtras, Tls, WebSocketConfig, request};
use tracing::{debug, info_span};
use tungstenite::protocol::WebSocket;

/// Frames read in one turn before deadlines and writes get their turn: a
/// flood cannot hold a deadline off.
const READS_PER_TURN: usize = 256;

/// Passes of one turn before the loop waits (or looks again at once).
const PASSES_PER_TURN: usize = 64;

/// The shortest wait made by reading (the socket's read timeout has a
/// resolution of a tick, and zero means no timeout); shorter ones poll.
const SHORTEST_READ_WAIT: Duration = Duration::from_millis(2);

/// How each attempt is made.
pub(crate) struct Settings {
    pub(crate) provider: RequestProvider,
    pub(crate) extras: RequestExtras,
    pub(crate) ws_config: WebSocketConfig,
    pub(crate) tls: Tls,
}

impl Settings {
    /// Make attempt `attempt` of transport `conn`, bounded by the connect timeout.
    pub(crate) fn connect(
        &self,
        conn: ConnId,
        attempt: u32,
        timeout: Duration,
    ) -> Result<Opened, HandshakeError> {
        let _span = info_span!("attempt", %conn, attempt).entered();
        let deadline = std::time::Instant::now() + timeout;
        let built = self.provider.request(attempt);
        let (request, tls) = request::prepare(built, &self.extras, &self.tls)?;
        stream::handshake(request, self.ws_config, tls, deadline)
    }
}

/// An open WebSocket and what was written to it.
struct Transport {
    conn: ConnId,
    ws: WebSocket<Stream>,
    /// The same socket, to wait on (shared with a loop thread while it waits).
    waiter: Arc<TcpStream>,
    /// Ids handed to tungstenite, not yet flushed.
    unflushed: Vec<MessageId>,
    /// Something was handed to tungstenite since the last complete flush.
    dirty: bool,
    /// A write failed: the transport is reported broken at the next flush.
    failed: bool,
    /// Saying goodbye: what to report once flushed, or at this instant.
    ending: Option<(TransportEvent, std::time::Instant)>,
    /// The socket's read timeout, once a wait by reading has set it.
    read_timeout: Option<Duration>,
    /// The last read came up short of a frame: tungstenite holds no whole
    /// frame, only the socket can bring one (see [`Transport::read`]).
    starved: bool,
}

impl Transport {
    /// Read a frame; `None` when there is none to read now. Not even
    /// tungstenite is asked when the last read came up short and the
    /// socket has been found empty since (no wait has ended since): it
    /// would find nothing, after clearing its next read's buffer (a page
    /// of `memset` per ask).
    fn read(&mut self) -> Option<Frame> {
        if self.starved && self.ws.get_ref().found_empty() {
            return None;
        }
        let frame = self.ws.read();
        self.starved = matches!(&frame, Err(tungstenite::Error::Io(e)) if is_no_frame_yet(e));
        (!self.starved).then_some(frame)
    }

    /// Hand a frame to tungstenite; whatever the socket does not take now,
    /// it keeps (a non-blocking socket never blocks here).
    fn write(&mut self, frame: tungstenite::Message, id: Option<MessageId>) {
        use tungstenite::Error;
        match self.ws.write(frame) {
            Ok(()) => {}
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            // Our close frame went before (the core's ping while closing).
            Err(Error::Protocol(tungstenite::error::ProtocolError::SendAfterClosing)) => return,
            Err(e) => {
                debug!(error = %e, "write failed");
                self.failed = true;
                return;
            }
        }
        self.unflushed.extend(id);
        self.dirty = true;
    }
}

/// A read error that only means no whole frame has come yet: the socket
/// is empty, or a signal came first.
fn is_no_frame_yet(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

impl Drop for Transport {
    /// The socket closes now, even while a loop thread still holds its
    /// second handle.
    fn drop(&mut self) {
        let _ = self.waiter.shutdown(Shutdown::Both);
    }
}

/// One connection's core, transport and bookkeeping.
pub(crate) struct Engine {
    pub(crate) client: Client,
    pub(crate) clock: Clock,
    transport: Option<Transport>,
    /// Transmits only a turn performs (connect, abort), and any after them.
    deferred: VecDeque<Transmit>,
    /// The attempt to make next, outside any lock: its transport and number.
    connect: Option<(ConnId, u32)>,
    /// Nobody takes events: they are logged and dropped.
    pub(crate) events_dropped: bool,
    /// The last turn stopped reading at its bound: look again at once.
    more: bool,
    /// The last turn left nothing to do until the socket, the waker or a
    /// deadline says otherwise: the next turn waits for [`Engine::waited`]
    /// (a turn then would only read the socket empty again).
    settled: bool,
    /// A wait by reading has just brought a frame: the next turn does not
    /// ask the socket again (it would most likely find it empty, at the
    /// cost of tungstenite clearing its read buffer and, after a read that
    /// filled it, a system call), unless a deadline is due, which reads
    /// first. The next wait by reading takes whatever came meanwhile.
    read_by_waiting: bool,
    /// The last turn left the socket unasked for that reason: if the next
    /// wait is not by reading (which would take what tungstenite holds),
    /// a turn must read first ([`Engine::take_skipped_read`]).
    skipped_read: bool,
    /// Bound on a transport's last words: the core's close timeout.
    linger: Duration,
    /// The core deadline a loop thread waits for, if any.
    pub(crate) armed: Option<steadfast_core::Instant>,
    /// Requests waited for, and their outcome once in.
    requests: Vec<(
        steadfast_core::MessageId,
        Option<Result<steadfast_core::Outcome, State>>,
    )>,
}

/// What to wait for after a turn.
pub(crate) struct WaitFor {
    /// The socket and what it should be ready for.
    pub(crate) sock: Option<(Arc<TcpStream>, Interest)>,
    /// Until when, at most.
    pub(crate) until: Option<std::time::Instant>,
    /// Do not wait: there is work now.
    pub(crate) now: bool,
}

impl WaitFor {
    /// Wait for no data on the socket (someone else reads it): only for it
    /// to take writes, if that is asked.
    pub(crate) fn leave_reading(&mut self) {
        if let Some((_, interest)) = &mut self.sock {
            interest.read = false;
        }
        if self.sock.as_ref().is_some_and(|(_, i)| !i.write) {
            self.sock = None;
        }
    }

    /// Blocks until the socket is ready as asked, `waker` is written, or
    /// the earlier of this wait's deadline and `until` passes. Whether the
    /// waker woke it.
    pub(crate) fn wait(
        &self,
        waker: Option<&std::os::unix::net::UnixStream>,
        until: Option<std::time::Instant>,
    ) -> std::io::Result<bool> {
        let sock = self.sock.as_ref().map(|(s, i)| (&**s, *i));
        let until = self.until.into_iter().chain(until).min();
        crate::wait::wait(waker, sock, until)
    }
}

impl Engine {
    /// A client for `config`, connecting from the first turn.
    pub(crate) fn new(config: Config) -> Self {
        let clock = Clock::system();
        let linger = config.close_timeout();
        // Unless the application gave a seed, every connection draws its own.
        let mut client = Client::new(config.with_os_seed(), clock.now());
        client.open(clock.now());
        Engine {
            client,
            clock,
            transport: None,
            deferred: VecDeque::new(),
            connect: None,
            events_dropped: false,
            more: false,
            settled: false,
            read_by_waiting: false,
            skipped_read: false,
            linger,
            armed: None,
            requests: Vec::new(),
        }
    }

    /// Start a request whose outcome [`Engine::take_request`] gives.
    pub(crate) fn start_request(
        &mut self,
        key: u64,
        msg: steadfast_core::Message,
        timeout: Duration,
    ) -> Result<steadfast_core::MessageId, steadfast_core::SendError> {
        let now = self.clock.now();
        let id = self.client.request(key, msg, timeout, now)?;
        self.client.await_outcome(id);
        self.requests.push((id, None));
        self.settle();
        Ok(id)
    }

    /// The outcome of request `id` once it is in (`Err` with the state the
    /// client ended in without one), forgetting it.
    pub(crate) fn take_request(
        &mut self,
        id: steadfast_core::MessageId,
    ) -> Option<Result<steadfast_core::Outcome, State>> {
        self.route_completions();
        let at = self
            .requests
            .iter()
            .position(|(r, done)| *r == id && done.is_some())?;
        self.requests.swap_remove(at).1
    }

    /// Forget request `id` (its caller stopped waiting).
    pub(crate) fn forget_request(&mut self, id: steadfast_core::MessageId) {
        self.requests.retain(|(r, _)| *r != id);
    }

    /// Whether a request's outcome is in and waits to be taken.
    pub(crate) fn request_done(&self) -> bool {
        self.requests.iter().any(|(_, done)| done.is_some())
    }

    /// Hand the core's completions to the requests waiting; once the client
    /// has ended, the rest end without an outcome.
    fn route_completions(&mut self) {
        while let Some((id, outcome)) = self.client.poll_completion() {
            if let Some((_, done)) = self.requests.iter_mut().find(|(r, _)| *r == id) {
                *done = Some(Ok(outcome));
            }
        }
        let state = self.client.state();
        if matches!(state, State::Closed | State::Failed) {
            for (_, done) in self.requests.iter_mut().filter(|(_, d)| d.is_none()) {
                *done = Some(Err(state));
            }
        }
    }

    /// Whether the core is done: closed or failed, with no transport left.
    pub(crate) fn done(&self) -> bool {
        matches!(
            self.client.state(),
            State::Closed | State::Failed | State::Idle
        ) && self.transport.is_none()
            && self.connect.is_none()
    }

    /// Whether a thread other than the loop's may drive the connection: a
    /// transport is open (or saying goodbye) and no attempt waits to be
    /// made (connects are the loop thread's).
    pub(crate) fn guest_may_drive(&self) -> bool {
        self.transport.is_some() && self.connect.is_none()
    }

    /// The attempt to make now, if any (outside any lock), then [`Engine::opened`].
    pub(crate) fn take_connect(&mut self) -> Option<(ConnId, u32, Duration)> {
        let (conn, attempt) = self.connect.take()?;
        Some((conn, attempt, self.client.config().connect_timeout()))
    }

    /// What an attempt of transport `conn` came to.
    pub(crate) fn opened(&mut self, conn: ConnId, result: Result<Opened, HandshakeError>) {
        let now = self.clock.now();
        self.settled = false;
        match result {
            // A transport the core has given up meanwhile is dropped.
            Ok((ws, waiter, handshake)) if self.client.conn() == Some(conn) => {
                self.transport = Some(Transport {
                    conn,
                    ws,
                    waiter: Arc::new(waiter),
                    unflushed: Vec::new(),
                    dirty: false,
                    failed: false,
                    ending: None,
                    read_timeout: None,
                    starved: false,
                });
                self.client
                    .handle_transport(conn, TransportEvent::Opened(handshake), now);
            }
            Ok(_) => {}
            Err(e) => self
                .client
                .handle_transport(conn, TransportEvent::HandshakeFailed(e), now),
        }
    }

    /// The next event for the application (logged), and whether taking it
    /// resumed reading: the next turn then reads what the socket and
    /// tungstenite already hold (the engine is told so here).
    pub(crate) fn take_event(&mut self) -> Option<(Event, bool)> {
        let (ev, resumed) = self.client.poll_event_resuming()?;
        if resumed {
            self.waited();
        }
        log_event(&ev);
        Some((ev, resumed))
    }

    /// A wait on the socket, the waker or a deadline has ended: the next
    /// turn looks at everything.
    pub(crate) fn waited(&mut self) {
        self.settled = false;
        if let Some(t) = self.transport.as_mut() {
            t.ws.get_mut().may_have_data();
        }
    }

    /// One turn: everything that can be done now without blocking. Nothing,
    /// if the last turn settled and nothing has been waited for since.
    pub(crate) fn turn(&mut self) {
        // A command since may have left a connect or an abort to perform.
        if self.settled && self.deferred.is_empty() {
            return;
        }
        // The socket has just been read by waiting, and no deadline is due:
        // it need not be asked again.
        let drained = std::mem::take(&mut self.read_by_waiting)
            && self
                .client
                .poll_timeout()
                .is_none_or(|d| d > self.clock.now());
        self.skipped_read = drained;
        self.turn_with(!drained, None);
    }

    /// Whether the last turn skipped reading after a wait by reading (and
    /// so must be followed by a wait by reading, or by a turn that reads:
    /// frames that came in the same read wait in tungstenite, where a wait
    /// on the socket would not see them). The next turn reads.
    pub(crate) fn take_skipped_read(&mut self) -> bool {
        let skipped = std::mem::take(&mut self.skipped_read);
        if skipped {
            self.settled = false;
        }
        skipped
    }

    /// A turn that leaves the socket alone, while a receiver reads it
    /// outside the lock ([`Engine::read_outside_target`]): writes,
    /// connects, goodbyes, and of the deadlines only those before `bound`
    /// (the reader's own read ends by the others, and it reads before it
    /// fires them). Always a whole turn (a command may have set an earlier
    /// deadline).
    pub(crate) fn turn_without_reading(&mut self, bound: Option<steadfast_core::Instant>) {
        self.turn_with(false, bound);
    }

    /// A turn; deadlines at or after `fire_before` are left to whoever reads.
    fn turn_with(&mut self, read: bool, fire_before: Option<steadfast_core::Instant>) {
        let mut quiet = false;
        // The socket was found empty (or is not to be read): later passes
        // need not ask it again.
        let mut drained = !read;
        for _ in 0..PASSES_PER_TURN {
            let mut moved = self.goodbye_progress();
            if !drained {
                let (read, empty) = self.read();
                moved |= read;
                drained = empty;
            }
            let now = self.clock.now();
            if self
                .client
                .poll_timeout()
                .is_some_and(|d| d <= now && fire_before.is_none_or(|b| d < b))
            {
                self.client.handle_timeout(now);
                moved = true;
            }
            moved |= self.settle();
            moved |= self.perform_deferred();
            if !moved {
                quiet = true;
                break;
            }
        }
        self.settled = quiet && !self.more && self.connect.is_none() && self.deferred.is_empty();
        self.discard_unheard_events();
    }

    /// After any change to the core: route its transmits (frames to the
    /// transport; connects, aborts and what follows them to `deferred`),
    /// write, and report what was flushed. Whether anything happened.
    pub(crate) fn settle(&mut self) -> bool {
        let mut moved = false;
        loop {
            let step = self.route() | self.flush();
            if !step {
                self.route_completions();
                return moved;
            }
            moved = true;
        }
    }

    /// Whether a loop thread must look at once after a command: a connect
    /// or abort, a write that waits for the socket, a state change, or a
    /// deadline earlier than the one it waits for.
    pub(crate) fn needs_loop(&self, before: State) -> bool {
        let earlier = self
            .client
            .poll_timeout()
            .is_some_and(|d| self.armed.is_none_or(|a| d < a));
        earlier
            || self.client.state() != before
            || !self.deferred.is_empty()
            || self.transport.as_ref().is_some_and(|t| t.dirty || t.failed)
    }

    /// What to wait for until the next turn, as of `now` (just read).
    pub(crate) fn wait_for(&self, now: std::time::Instant) -> WaitFor {
        let deadline = self
            .client
            .poll_timeout()
            .map(|at| self.clock.runtime_instant_at(at, now));
        let goodbye = self
            .transport
            .as_ref()
            .and_then(|t| t.ending.as_ref().map(|(_, until)| *until));
        let until = deadline.into_iter().chain(goodbye).min();
        let sock = self.transport.as_ref().map(|t| {
            let interest = Interest {
                read: t.ending.is_none() && !self.client.reading_paused(),
                write: t.dirty || t.ending.is_some(),
            };
            (t.waiter.clone(), interest)
        });
        // Bytes a receiver read outside the lock wait for a turn to read them.
        let ahead = self
            .transport
            .as_ref()
            .is_some_and(|t| t.ending.is_none() && t.ws.get_ref().has_ahead())
            && !self.client.reading_paused();
        WaitFor {
            sock,
            until,
            now: self.more || ahead || self.connect.is_some() || !self.deferred.is_empty(),
        }
    }

    /// Read every frame the socket holds (up to a bound), unless the core
    /// has paused reading, and tell the core. Whether anything was read,
    /// and whether the socket was found empty.
    fn read(&mut self) -> (bool, bool) {
        self.more = false;
        let mut moved = false;
        for _ in 0..READS_PER_TURN {
            if self.client.reading_paused() {
                return (moved, false);
            }
            let Some(t) = self.transport.as_mut().filter(|t| t.ending.is_none()) else {
                return (moved, false);
            };
            let Some(frame) = t.read() else {
                return (moved, true);
            };
            moved = true;
            let conn = t.conn;
            self.take_frame(conn, frame);
        }
        self.more = true;
        (moved, false)
    }

    /// Tell the core about a frame transport `conn` read.
    fn take_frame(&mut self, conn: ConnId, frame: Frame) {
        match mapping::frame_event(Some(frame)) {
            Ok(Some(ev)) => {
                let now = self.clock.now();
                self.client.handle_transport(conn, ev, now);
            }
            Ok(None) => {}
            Err(frame) => self.end(frame),
        }
    }

    /// Wait by reading: when all there is to wait for is a frame (the link
    /// open and read, nothing left to write), one read that blocks until a
    /// frame comes or until `until` at most, instead of `poll(2)` and then
    /// a read. The socket's read timeout bounds it: never past `until`,
    /// and set again only when it must be (when it would outlast `until`,
    /// or falls far short of it). Whether it waited so; if not, wait with
    /// [`Engine::wait_for`].
    pub(crate) fn wait_by_reading(
        &mut self,
        w: &WaitFor,
        until: std::time::Instant,
        now: std::time::Instant,
    ) -> bool {
        let Some(t) = self.read_wait_transport(w, until, now) else {
            return false;
        };
        t.ws.get_mut().set_blocking_reads(true);
        t.starved = false;
        let read = t.read();
        t.ws.get_mut().set_blocking_reads(false);
        let conn = t.conn;
        // The wait has ended; the read itself noted whether the socket is empty.
        self.settled = false;
        match read {
            // The socket's read timeout, where it reports itself so.
            Some(Err(tungstenite::Error::Io(e))) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Some(frame) => {
                self.take_frame(conn, frame);
                self.read_by_waiting = true;
            }
            None => {}
        }
        true
    }

    /// The transport to wait on by reading, its socket's read timeout set
    /// for a wait until `until` at most: when all there is to wait for is
    /// a frame (the link open and read, nothing to write, no goodbye), and
    /// `until` is not too close. `None`: wait with [`WaitFor::wait`].
    fn read_wait_transport(
        &mut self,
        w: &WaitFor,
        until: std::time::Instant,
        now: std::time::Instant,
    ) -> Option<&mut Transport> {
        if !w.sock.as_ref().is_some_and(|(_, i)| i.read && !i.write) {
            return None;
        }
        let t = self.transport.as_mut().filter(|t| !t.failed)?;
        let left = until.saturating_duration_since(now);
        if left < SHORTEST_READ_WAIT {
            return None;
        }
        if t.read_timeout.is_none_or(|d| d > left || d < left / 4) {
            let timeout = (left / 2).max(SHORTEST_READ_WAIT);
            t.waiter.set_read_timeout(Some(timeout)).ok()?;
            t.read_timeout = Some(timeout);
        }
        Some(t)
    }

    /// Whether the open transport's socket holds data now (or its end),
    /// asked without taking any: a deadline is then left to whoever reads.
    pub(crate) fn socket_readable(&self) -> bool {
        self.transport
            .as_ref()
            .is_some_and(|t| crate::wait::readable_now(&t.waiter))
    }

    /// For a receiver that waits by reading outside the engine's lock
    /// (background mode): the transport and its socket, the socket's read
    /// timeout set for a wait until `until` at most, when all there is to
    /// wait for is a frame; `None`: wait with [`WaitFor::wait`]. What the
    /// read brings goes to [`Engine::read_outside_done`].
    pub(crate) fn read_outside_target(
        &mut self,
        w: &WaitFor,
        until: std::time::Instant,
        now: std::time::Instant,
    ) -> Option<(ConnId, Arc<TcpStream>)> {
        let t = self.read_wait_transport(w, until, now)?;
        Some((t.conn, t.waiter.clone()))
    }

    /// What a read outside the lock brought from transport `conn`'s socket
    /// into `buf`: the next reads take it first (`buf` itself is taken, and
    /// an empty one left), if `conn` is still the open transport (a
    /// transport ended meanwhile shut its socket, which ended the read). A
    /// timeout brought nothing.
    pub(crate) fn read_outside_done(
        &mut self,
        conn: ConnId,
        read: std::io::Result<usize>,
        buf: &mut Vec<u8>,
    ) {
        let Some(t) = self.transport.as_mut().filter(|t| t.conn == conn) else {
            return self.waited();
        };
        match read {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Nothing came before the timeout: the socket was empty
                // (what comes now, a wait sees); a deadline may be due.
                t.ws.get_mut().found_nothing();
                self.settled = false;
            }
            read => {
                t.ws.get_mut().read_ahead(read, buf);
                t.starved = false;
                self.settled = false;
            }
        }
    }

    /// The buffer [`Engine::read_outside_done`] took, back into `buf` once
    /// all it held was read.
    pub(crate) fn give_back(&mut self, buf: &mut Vec<u8>) {
        if let Some(t) = self.transport.as_mut() {
            t.ws.get_mut().give_back(buf);
        }
    }

    /// The transport ends with `frame` (a close, an error, the end).
    fn end(&mut self, frame: Option<Frame>) {
        match mapping::ending(frame) {
            Ending::Goodbye(last, end) => {
                if let Some(t) = self.transport.as_mut() {
                    if let Some(frame) = last {
                        t.write(frame, None);
                    }
                    let until = std::time::Instant::now() + self.linger;
                    t.ending = Some((end, until));
                }
                self.goodbye_progress();
            }
            Ending::Dropped(end) => {
                if let Some(t) = self.transport.take() {
                    let now = self.clock.now();
                    self.client.handle_transport(t.conn, end, now);
                }
            }
        }
    }

    /// Flush a goodbye (our close reply, or the close frame for a breach);
    /// once flushed, failed or out of time, drop the transport and report
    /// how it ended. Whether it ended.
    fn goodbye_progress(&mut self) -> bool {
        let Some(t) = self.transport.as_mut() else {
            return false;
        };
        let Some((_, until)) = &t.ending else {
            return false;
        };
        let flushed = match t.ws.flush() {
            Ok(()) => Some(true),
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(_) => Some(false),
        };
        if flushed.is_none() && std::time::Instant::now() < *until {
            return false;
        }
        let Some(mut t) = self.transport.take() else {
            return false;
        };
        let now = self.clock.now();
        if flushed == Some(true) {
            for id in t.unflushed.drain(..) {
                self.client
                    .handle_transport(t.conn, TransportEvent::Written(id), now);
            }
        }
        if let Some((end, _)) = t.ending.take() {
            self.client.handle_transport(t.conn, end, now);
        }
        true
    }

    /// Route the core's transmits. Whether there were any.
    fn route(&mut self) -> bool {
        let mut any = false;
        while let Some(t) = self.client.poll_transmit() {
            any = true;
            if !self.deferred.is_empty() {
                self.deferred.push_back(t);
                continue;
            }
            match mapping::transmit_frame(t) {
                Ok((conn, frame, id)) => {
                    // A frame for a transport already gone (or ending) is
                    // dropped: the core has been told, or will be.
                    if let Some(tr) = self
                        .transport
                        .as_mut()
                        .filter(|tr| tr.conn == conn && tr.ending.is_none())
                    {
                        tr.write(frame, id);
                    }
                }
                Err(t) => self.deferred.push_back(t),
            }
        }
        any
    }

    /// Flush what was written; report the flushed ids written, or the
    /// transport broken. Whether the core heard anything.
    fn flush(&mut self) -> bool {
        let Engine {
            client,
            clock,
            transport,
            ..
        } = self;
        let Some(t) = transport
            .as_mut()
            .filter(|t| t.ending.is_none() && (t.dirty || t.failed))
        else {
            return false;
        };
        let conn = t.conn;
        let flushed = if t.failed { None } else { Some(t.ws.flush()) };
        let now = clock.now();
        match flushed {
            Some(Ok(())) => {
                t.dirty = false;
                let any = !t.unflushed.is_empty();
                for id in t.unflushed.drain(..) {
                    client.handle_transport(conn, TransportEvent::Written(id), now);
                }
                any
            }
            Some(Err(tungstenite::Error::Io(e))) if e.kind() == std::io::ErrorKind::WouldBlock => {
                false
            }
            _ => {
                debug!("write failed: the transport is broken");
                *transport = None;
                let reset = TransportEvent::Error(TransportError::Reset);
                client.handle_transport(conn, reset, now);
                true
            }
        }
    }

    /// Connects and aborts (and the frames after them, whose transport is
    /// gone). Whether there were any.
    fn perform_deferred(&mut self) -> bool {
        let mut any = false;
        while let Some(t) = self.deferred.pop_front() {
            any = true;
            match t {
                Transmit::Connect { conn, attempt } => {
                    // The previous transport is released: its socket closes
                    // before the next exists.
                    self.transport = None;
                    self.connect = Some((conn, attempt));
                }
                Transmit::Abort { conn } => {
                    if self.transport.as_ref().is_some_and(|t| t.conn == conn) {
                        self.transport = None;
                    }
                }
                Transmit::Send { .. }
                | Transmit::SendControl { .. }
                | Transmit::Ping { .. }
                | Transmit::Close { .. } => {}
            }
        }
        any
    }

    /// With nobody listening, events are logged and dropped.
    fn discard_unheard_events(&mut self) {
        if !self.events_dropped {
            return;
        }
        while let Some(ev) = self.client.poll_event() {
            log_event(&ev);
        }
    }
}
