//! Background mode: the same loop on a thread of its own; the application
//! holds a [`Handle`] (commands, from any thread) and [`Events`].
//!
//! Commands run on the calling thread, under the lock that also holds the
//! core and the socket: a message is written at once when the link is open
//! (non-blocking: what the socket does not take waits in tungstenite's
//! buffer). Whoever drives the connection waits in `poll(2)` on the socket
//! and on its own waker, one end of a socket pair; a command that needs
//! the driver (a connect or an abort, a write the socket did not take, a
//! state change, an earlier deadline) writes a byte to the other end of
//! both wakers and wakes the parked loop thread, so whoever drives looks at
//! once. Each waker is drained only by its own thread.
//!
//! Two threads take turns at driving. The loop thread drives by default.
//! While the application waits in [`Events::recv`] with nothing to take
//! and the link open, its own thread drives instead (a guest): it reads the
//! socket, runs the deadlines and writes, so an incoming message reaches
//! it with no hop between threads. The guest pushes a polling loop thread
//! out of its wait, and the loop thread parks while a guest drives. When
//! the guest leaves, the loop thread takes over at its next look ([`PARK`]
//! at most), at once if the guest leaves work behind (a connect, a write
//! the socket did not take, more to read) or a deadline before that look.
//!
//! When all the guest waits for is a frame (nothing to write, no goodbye)
//! and frames are coming, it waits in one blocking read of the socket
//! instead of `poll(2)`, outside the lock, into a buffer of its thread's;
//! what it brings is handed to tungstenite's next reads (see
//! [`Engine::read_outside_done`]). The read is bounded by the socket's
//! read timeout: no later than the core's next deadline, and about
//! `READ_GRACE` at most, so that events the loop thread makes meanwhile
//! reach the guest soon. A read that times out with nothing means the
//! link is idle: the next wait is `poll(2)` on the socket and the waker
//! (no wake-ups while idle), and reads block again once something came.
//! Blind to its waker during a read, the guest leaves what a command needs
//! a driver for to the loop thread, woken as usual: a turn that does all
//! but read (writes, connects, and only the deadlines a command set
//! meanwhile, earlier than the guest's read's bound: the guest reads before
//! it fires its own), and a wait for the socket to take writes. Even those
//! are left to the guest while the socket holds data or the guest holds
//! bytes it has read and not handed over yet, so a reply that came before
//! its deadline counts.
//!
//! [`Engine::read_outside_done`]: crate::engine::Engine::read_outside_done

use crate::engine::{Engine, Settings};
use crate::{stream, wait};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use steadfast_core::{Client, CloseCode, CloseError, Event, Message, State, Stats};
use steadfast_wire::{RequestError, Status};
use tracing::{debug, warn};

/// How long the loop thread stays parked at a time while the events
/// receiver drives, and so how soon it takes over once the receiver has
/// gone (never past the core's next deadline: see [`Events::next_until`]).
/// Long against a round trip, so that a busy receiver's loop thread wakes
/// rarely even when every message waits long (hundreds of connections on
/// few cores).
const PARK: Duration = Duration::from_millis(250);

/// How much a guest's read outside the lock asks for at once.
const READ_AHEAD_BYTES: usize = 32 * 1024;

thread_local! {
    /// The buffer of a guest's reads outside the lock: one per application
    /// thread that receives, whatever the connection, so an idle
    /// connection holds none.
    static READ_AHEAD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What the handles, the events receiver and the loop thread share.
struct Shared {
    engine: Mutex<Background>,
    /// Events to take, a state change, or the end of the loop.
    changed: Condvar,
    /// The parked loop thread is wanted back.
    resume: Condvar,
    /// The loop thread's waker: the end others write to, and the end it
    /// waits on.
    loop_waker: (UnixStream, UnixStream),
    /// The same for the guest (whichever thread waits in `recv`).
    guest_waker: (UnixStream, UnixStream),
    /// Every handle is gone: the loop ends once the client is done.
    abandoned: AtomicBool,
    /// The guest's read outside the lock brought bytes it is about to hand
    /// over: the loop thread leaves the deadlines to the guest's turn,
    /// which reads them first.
    guest_has_bytes: AtomicBool,
}

/// The engine, whether its loop has ended, and who drives it.
struct Background {
    engine: Engine,
    finished: bool,
    /// The events receiver drives, waiting in `recv`.
    guest: bool,
    /// The guest waits in a read of the socket outside the lock, blind to
    /// its waker: the loop thread does all but reading meanwhile, and fires
    /// only deadlines earlier than `guest_bound` (the guest's own read
    /// ends by the others, and reads before firing them).
    guest_reads: bool,
    /// The earliest core deadline when the guest began its read.
    guest_bound: Option<steadfast_core::Instant>,
    /// The guest's last read outside the lock brought nothing before its
    /// timeout: the link is idle, and the guest waits in `poll(2)` (on its
    /// waker too) until something comes, so an idle receiver is not woken
    /// ten times a second.
    reads_lapsed: bool,
    /// The loop thread waits in `poll(2)` (a guest arriving wakes it).
    loop_polling: bool,
    /// Threads waiting on `changed` (none: nobody to notify).
    waiting: usize,
    /// Until when the loop thread is parked, if it is.
    parked_until: Option<Instant>,
}

impl Background {
    /// Whether to notify `changed` after a step that began in `before`:
    /// someone waits, and there are events, a new state or a request's
    /// outcome.
    fn notify(&self, before: State) -> bool {
        let engine = &self.engine;
        self.waiting > 0
            && (engine.client.has_events()
                || engine.client.state() != before
                || engine.request_done())
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Background> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run a command on the core, write what it released, and wake whoever
    /// has something to do.
    fn command<T>(&self, f: impl FnOnce(&mut Client, steadfast_core::Instant) -> T) -> T {
        let mut bg = self.lock();
        let engine = &mut bg.engine;
        let before = engine.client.state();
        let now = engine.clock.now();
        let out = f(&mut engine.client, now);
        engine.settle();
        let wake_loop = engine.needs_loop(before);
        let notify = bg.notify(before);
        // A guest waiting in `poll(2)` takes the events this made at once
        // (one reading outside the lock, within its read's bound).
        let wake_guest = bg.guest && !bg.guest_reads && bg.engine.client.has_events();
        drop(bg);
        if notify {
            self.changed.notify_all();
        }
        if wake_loop {
            self.wake_driver();
        } else if wake_guest {
            wait::wake(&self.guest_waker.0);
        }
        out
    }

    /// Wait on `changed`, at most `timeout` (`None`: until notified).
    fn wait_changed<'a>(
        &self,
        mut bg: MutexGuard<'a, Background>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, Background> {
        bg.waiting += 1;
        let mut bg = match timeout {
            Some(timeout) => {
                self.changed
                    .wait_timeout(bg, timeout)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
            None => self.changed.wait(bg).unwrap_or_else(|p| p.into_inner()),
        };
        bg.waiting -= 1;
        bg
    }

    /// Wake whoever drives: the guest or the loop thread in `poll(2)`, or
    /// the loop thread parked. (The other, woken for nothing, looks and
    /// goes back to its wait.)
    fn wake_driver(&self) {
        wait::wake(&self.guest_waker.0);
        self.wake_loop();
    }

    /// Stop driving: the loop thread takes over at its next look, or at
    /// once if there is work now (a connect, more to read, a write the
    /// socket did not take, a goodbye) or a deadline before that look. Its
    /// look is then the deadline commands compare theirs with.
    fn leave(&self, bg: &mut Background) {
        bg.guest = false;
        bg.guest_reads = false;
        // Cleared on the way out whatever happened (a panic while handing
        // bytes over), or the loop thread would leave deadlines to nobody.
        self.guest_has_bytes.store(false, Ordering::Release);
        let w = bg.engine.wait_for(Instant::now());
        let look = bg.parked_until;
        let work = w.now || w.sock.as_ref().is_some_and(|(_, i)| i.write);
        let sooner = match (w.until, look) {
            (Some(deadline), Some(look)) => deadline < look,
            (_, None) => true,
            (None, Some(_)) => false,
        };
        bg.engine.armed = look.map(|at| bg.engine.clock.core_instant(at));
        if work || sooner {
            self.wake_loop();
        }
    }

    /// Wake the loop thread, polling or parked.
    fn wake_loop(&self) {
        wait::wake(&self.loop_waker.0);
        self.resume.notify_one();
    }

    /// Start a request and wait for its outcome (the core times it out).
    fn request(&self, key: u64, msg: Message, timeout: Duration) -> Result<Message, RequestError> {
        let id = {
            let mut bg = self.lock();
            let before = bg.engine.client.state();
            let id = bg.engine.start_request(key, msg, timeout)?;
            let wake_loop = bg.engine.needs_loop(before);
            drop(bg);
            if wake_loop {
                self.wake_driver();
            }
            id
        };
        let mut bg = self.lock();
        loop {
            if let Some(done) = bg.engine.take_request(id) {
                return RequestError::of(done);
            }
            if bg.finished {
                bg.engine.forget_request(id);
                return Err(RequestError::Failed);
            }
            bg = self.wait_changed(bg, None);
        }
    }

    /// Wait until `f` holds for the state (or the loop has ended).
    fn wait_state(&self, f: impl Fn(State) -> bool) {
        let mut bg = self.lock();
        while !f(bg.engine.client.state()) && !bg.finished {
            bg = self.wait_changed(bg, None);
        }
    }
}

/// Hands the connection back to the loop thread should a guest unwind
/// while driving (a panic in a tracing subscriber, say): otherwise the loop
/// thread would stay parked behind a guest that is gone.
struct GuestRole<'a> {
    shared: &'a Shared,
    /// The guest left the normal way.
    done: bool,
}

impl Drop for GuestRole<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut bg = self.shared.lock();
        if bg.guest {
            self.shared.leave(&mut bg);
        }
    }
}

/// Start the loop thread.
pub(crate) fn spawn(
    engine: Engine,
    settings: Settings,
    stack_size: usize,
) -> std::io::Result<(Handle, Events)> {
    let loop_waker = wait::waker_pair()?;
    let guest_waker = wait::waker_pair()?;
    let shared = Arc::new(Shared {
        engine: Mutex::new(Background {
            engine,
            finished: false,
            guest: false,
            guest_reads: false,
            guest_bound: None,
            reads_lapsed: false,
            loop_polling: false,
            waiting: 0,
            parked_until: None,
        }),
        changed: Condvar::new(),
        resume: Condvar::new(),
        loop_waker,
        guest_waker,
        abandoned: AtomicBool::new(false),
        guest_has_bytes: AtomicBool::new(false),
    });
    let looping = shared.clone();
    std::thread::Builder::new()
        .name("steadfast".into())
        .stack_size(stack_size)
        .spawn(move || run(&looping, &settings))?;
    let handle = Handle {
        inner: Arc::new(HandleInner {
            shared: shared.clone(),
        }),
    };
    Ok((
        handle,
        Events {
            shared,
            ended: false,
        },
    ))
}

/// The loop thread: turns, connects and waits until every handle is gone
/// and the client is done, parked while the events receiver drives. However
/// it ends, the events receiver is told.
fn run(shared: &Shared, settings: &Settings) {
    struct Finish<'a>(&'a Shared);
    impl Drop for Finish<'_> {
        fn drop(&mut self) {
            self.0.lock().finished = true;
            self.0.changed.notify_all();
        }
    }
    let _finish = Finish(shared);
    // Whether the last wait saw the waker.
    let mut woken = false;
    loop {
        let (connect, wait_for, notify, look) = {
            let mut bg = shared.lock();
            bg.loop_polling = false;
            bg.parked_until = None;
            if woken {
                wait::drain(&shared.loop_waker.1);
            }
            // The guest reads outside the lock, and has nothing to hand
            // over yet (else its turn, due at once, does all there is).
            let guest_reads = bg.guest_reads
                && !shared.guest_has_bytes.load(Ordering::Acquire)
                && !bg.engine.socket_readable();
            if bg.guest && !guest_reads {
                // The receiver drives: stay out of its way.
                bg.parked_until = Instant::now().checked_add(PARK);
                let (mut bg, _) = shared
                    .resume
                    .wait_timeout(bg, PARK)
                    .unwrap_or_else(|p| p.into_inner());
                bg.parked_until = None;
                drop(bg);
                woken = false;
                continue;
            }
            let bound = bg.guest_bound;
            let engine = &mut bg.engine;
            let before = engine.client.state();
            if guest_reads {
                // All but reading, which the guest does outside the lock;
                // of the deadlines, only those a command set meanwhile.
                engine.turn_without_reading(bound);
            } else {
                engine.waited();
                engine.turn();
                // A guest's buffer this turn finished reading is freed.
                engine.give_back(&mut Vec::new());
            }
            if shared.abandoned.load(Ordering::Acquire) && engine.done() {
                debug!("loop finished");
                return;
            }
            engine.armed = engine.client.poll_timeout();
            let notify = bg.notify(before);
            let engine = &mut bg.engine;
            let (connect, mut wait_for) = (engine.take_connect(), engine.wait_for(Instant::now()));
            let mut look = None;
            if guest_reads {
                // Not the socket's reads (the guest's), and a look at least
                // once a park, as parked: the guest leaving compares with it.
                wait_for.leave_reading();
                let at = Instant::now().checked_add(PARK);
                bg.parked_until = at;
                look = at;
            } else {
                bg.loop_polling = connect.is_none() && !wait_for.now;
            }
            (connect, wait_for, notify, look)
        };
        woken = false;
        if notify {
            shared.changed.notify_all();
        }
        if let Some((conn, attempt, timeout)) = connect {
            let opened = settings.connect(conn, attempt, timeout);
            shared.lock().engine.opened(conn, opened);
            continue;
        }
        if wait_for.now {
            continue;
        }
        match wait_for.wait(Some(&shared.loop_waker.1), look) {
            Ok(w) => woken = w,
            Err(error) => {
                warn!(%error, "waiting on the socket failed");
                std::thread::sleep(Duration::from_millis(10));
                woken = true;
            }
        }
    }
}

/// Controls one resilient connection running on its own thread (from
/// [`Builder::spawn`](crate::Builder::spawn)). Cheap to clone, `Send` and
/// `Sync`; commands run on the calling thread and never wait for the loop
/// (but [`close`](Self::close), which waits until closed). When the last
/// clone is dropped the connection closes gracefully (code 1000) and the
/// thread ends.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    shared: Arc<Shared>,
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        self.shared.abandoned.store(true, Ordering::Release);
        let _ = self
            .shared
            .command(|c, now| c.close(CloseCode::NORMAL, "", now));
        // The loop ends once the client is done.
        self.shared.wake_driver();
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("status", &self.status())
            .finish()
    }
}

impl Handle {
    fn command<T>(&self, f: impl FnOnce(&mut Client, steadfast_core::Instant) -> T) -> T {
        self.inner.shared.command(f)
    }

    steadfast_wire::client_commands!();

    /// Send a request with an application `key` and wait for its reply
    /// (the incoming message the ack matcher takes for an ack of `key`), or
    /// until `timeout` has passed ([`RequestError::TimedOut`]). As
    /// `Handle::request` in the async adapters, blocking the calling thread.
    pub fn request(
        &self,
        key: u64,
        msg: impl Into<Message>,
        timeout: Duration,
    ) -> Result<Message, RequestError> {
        self.inner.shared.request(key, msg.into(), timeout)
    }

    /// Close gracefully with 1000 and wait until closed (or failed). Queued
    /// messages are flushed first when open; those left, and those sent but
    /// not yet acked, are handed back in [`Event::Closed`].
    pub fn close(&self) {
        // 1000 with no reason is always a valid close.
        let _ = self.close_with(CloseCode::NORMAL, "");
    }

    /// [`close`](Self::close) with this code and reason (at most 123 bytes).
    pub fn close_with(&self, code: CloseCode, reason: &str) -> Result<(), CloseError> {
        self.command(|c, now| c.close(code, reason, now))?;
        self.inner
            .shared
            .wait_state(|s| matches!(s, State::Closed | State::Failed));
        Ok(())
    }

    /// Close once everything sent is delivered (acked at least once,
    /// written at most once), waiting at most `within` before the close
    /// frame goes out; then as [`close`](Self::close).
    pub fn close_when_delivered(
        &self,
        code: CloseCode,
        reason: &str,
        within: Duration,
    ) -> Result<(), CloseError> {
        self.command(|c, now| c.close_when_delivered(code, reason, within, now))?;
        self.inner
            .shared
            .wait_state(|s| matches!(s, State::Closed | State::Failed));
        Ok(())
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.inner.shared.lock().engine.client.state()
    }

    /// Test hook: whether the events receiver waits in a read of the socket
    /// outside the lock (see the module's docs).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn receiver_reads_outside_the_lock(&self) -> bool {
        self.inner.shared.lock().guest_reads
    }

    /// The current counters.
    pub fn stats(&self) -> Stats {
        self.inner.shared.lock().engine.client.stats()
    }

    /// The current state and counters, read together.
    pub fn status(&self) -> Status {
        Status::of(&self.inner.shared.lock().engine.client)
    }
}

/// The connection's events, taken on any thread: [`recv`](Self::recv),
/// [`recv_timeout`](Self::recv_timeout), [`try_recv`](Self::try_recv), or
/// as an [`Iterator`]. Events wait in the core until taken; while too many
/// received messages wait ([`InboundConfig`](steadfast_core::InboundConfig)),
/// the socket is not read, so TCP pushes back on the server, and taking an
/// event resumes reading at once.
///
/// It ends right after the terminal event ([`Event::Closed`] or
/// [`Event::Failed`]), or once the loop thread has ended. Dropping it does
/// not close the connection; events are then discarded.
pub struct Events {
    shared: Arc<Shared>,
    /// The terminal event was returned.
    ended: bool,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    /// An event if one waits; whether the receiver has ended otherwise.
    fn take(&mut self, bg: &mut Background) -> Result<Event, bool> {
        if self.ended {
            return Err(true);
        }
        let Some((ev, resumed)) = bg.engine.take_event() else {
            return Err(bg.finished);
        };
        if resumed {
            // The driver reads what the socket holds again.
            self.shared.wake_driver();
        }
        if matches!(ev, Event::Closed { .. } | Event::Failed { .. }) {
            self.ended = true;
        }
        Ok(ev)
    }

    /// The next event, waiting as long as it takes; `None` once ended.
    pub fn recv(&mut self) -> Option<Event> {
        self.next_until(None).ok()
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        // A timeout too long to add is as good as none.
        self.next_until(Instant::now().checked_add(timeout))
    }

    /// The next event, waiting until `until` at most (`None`: as long as
    /// it takes). While none waits and the link is open, this thread drives
    /// the connection (see the module's docs); otherwise it waits for the
    /// loop thread.
    fn next_until(&mut self, until: Option<Instant>) -> Result<Event, RecvTimeoutError> {
        let shared = self.shared.clone();
        let mut guest_role = GuestRole {
            shared: &shared,
            done: false,
        };
        let mut bg = shared.lock();
        // Whether this thread may drive (not after a failed wait).
        let mut may_drive = true;
        let result = loop {
            match self.take(&mut bg) {
                Ok(ev) => break Ok(ev),
                Err(true) => break Err(RecvTimeoutError::Disconnected),
                Err(false) => {}
            }
            let left = until.map(|u| u.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                break Err(RecvTimeoutError::Timeout);
            }
            if !may_drive || bg.finished || !bg.engine.guest_may_drive() {
                if bg.guest {
                    // A connect is due (or waiting failed): the loop thread's.
                    bg.guest = false;
                    shared.wake_loop();
                }
                bg = shared.wait_changed(bg, left);
                continue;
            }
            if !bg.guest {
                bg.guest = true;
                if bg.loop_polling {
                    // Out of its wait, to park: one thread drives at a time.
                    wait::wake(&shared.loop_waker.0);
                }
            }
            let before = bg.engine.client.state();
            bg.engine.turn();
            // What a read outside the lock brought is read: its buffer back.
            let _ = READ_AHEAD.try_with(|buf| bg.engine.give_back(&mut buf.borrow_mut()));
            if bg.notify(before) {
                // For those waiting in `close` or `request`.
                shared.changed.notify_all();
            }
            let engine = &mut bg.engine;
            if engine.client.has_events() {
                continue;
            }
            let now = Instant::now();
            let wait_for = engine.wait_for(now);
            if wait_for.now {
                continue;
            }
            engine.armed = engine.client.poll_timeout();
            // Blind to its waker, it comes back within about READ_GRACE
            // (the read's timeout is half the time left): what the loop
            // thread does for a command meanwhile may make events for it.
            let read_until = now
                .checked_add(2 * steadfast_core::READ_GRACE)
                .into_iter()
                .chain(wait_for.until)
                .chain(until)
                .min();
            let target = read_until
                .filter(|_| !bg.reads_lapsed && READ_AHEAD.try_with(|_| ()).is_ok())
                .and_then(|at| bg.engine.read_outside_target(&wait_for, at, now));
            if let Some((conn, sock)) = target {
                // Only a frame to wait for, and frames are coming: one read
                // that blocks, outside the lock (commands run meanwhile;
                // what needs a driver, the loop thread does), instead of
                // `poll(2)` and a read.
                bg.guest_reads = true;
                bg.guest_bound = bg.engine.client.poll_timeout();
                drop(bg);
                bg = READ_AHEAD.with_borrow_mut(|buf| {
                    if buf.is_empty() {
                        // The first read on this thread, or the last
                        // buffer is still with a connection.
                        buf.resize(READ_AHEAD_BYTES, 0);
                    }
                    let read = stream::read_outside(&sock, buf);
                    if read.as_ref().is_ok_and(|n| *n > 0) {
                        shared.guest_has_bytes.store(true, Ordering::Release);
                    }
                    let mut bg = shared.lock();
                    bg.guest_reads = false;
                    bg.reads_lapsed =
                        matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
                    bg.engine.read_outside_done(conn, read, buf);
                    shared.guest_has_bytes.store(false, Ordering::Release);
                    bg
                });
                continue;
            }
            drop(bg);
            let waited = wait_for.wait(Some(&shared.guest_waker.1), until);
            bg = shared.lock();
            bg.engine.waited();
            // Something came, or a deadline or a command: read blocking again.
            bg.reads_lapsed = false;
            match waited {
                Ok(true) => wait::drain(&shared.guest_waker.1),
                Ok(false) => {}
                Err(error) => {
                    warn!(%error, "waiting on the socket failed; the loop thread takes over");
                    may_drive = false;
                }
            }
        };
        if bg.guest {
            shared.leave(&mut bg);
        }
        drop(bg);
        guest_role.done = true;
        result
    }

    /// An event if one waits now.
    pub fn try_recv(&mut self) -> Result<Event, TryRecvError> {
        let shared = self.shared.clone();
        let mut bg = shared.lock();
        match self.take(&mut bg) {
            Ok(ev) => Ok(ev),
            Err(true) => Err(TryRecvError::Disconnected),
            Err(false) => Err(TryRecvError::Empty),
        }
    }
}

impl Iterator for Events {
    type Item = Event;

    /// [`Events::recv`].
    fn next(&mut self) -> Option<Event> {
        self.recv()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.shared.lock().engine.events_dropped = true;
        // Let the loop discard what is queued (and read again if paused).
        self.shared.wake_driver();
    }
}
