//! Background mode: the same loop on a thread of its own; the application
//! holds a [`Handle`] (commands, from any thread) and [`Events`].
//!
//! Commands run on the calling thread, under the lock that also holds the
//! core and the socket: a message is written at once when the link is open
//! (non-blocking: what the socket does not take waits in tungstenite's
//! buffer). The loop thread waits in `poll(2)` on the socket and on one end
//! of a socket pair; a command that needs the loop (a connect or an abort,
//! a write the socket did not take, a state change, an earlier deadline)
//! writes a byte to the other end, which wakes it at once.

use crate::engine::{Engine, Settings};
use crate::wait;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use steadfast_core::{Client, CloseCode, CloseError, Event, Message, State, Stats};
use steadfast_wire::mapping::log_event;
use steadfast_wire::{RequestError, Status};
use tracing::{debug, warn};

/// What the handles, the events receiver and the loop thread share.
struct Shared {
    engine: Mutex<Background>,
    /// Events to take, a state change, or the end of the loop.
    changed: Condvar,
    /// The loop thread's waker (the end commands write to).
    waker: UnixStream,
    /// Every handle is gone: the loop ends once the client is done.
    abandoned: AtomicBool,
}

/// The engine and whether its loop has ended.
struct Background {
    engine: Engine,
    finished: bool,
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
        let notify =
            engine.client.has_events() || engine.client.state() != before || engine.request_done();
        drop(bg);
        if notify {
            self.changed.notify_all();
        }
        if wake_loop {
            wait::wake(&self.waker);
        }
        out
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
                wait::wake(&self.waker);
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
            bg = self.changed.wait(bg).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Wait until `f` holds for the state (or the loop has ended).
    fn wait_state(&self, f: impl Fn(State) -> bool) {
        let mut bg = self.lock();
        while !f(bg.engine.client.state()) && !bg.finished {
            bg = self.changed.wait(bg).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Start the loop thread.
pub(crate) fn spawn(
    engine: Engine,
    settings: Settings,
    stack_size: usize,
) -> std::io::Result<(Handle, Events)> {
    let (waker, woken) = wait::waker_pair()?;
    let shared = Arc::new(Shared {
        engine: Mutex::new(Background {
            engine,
            finished: false,
        }),
        changed: Condvar::new(),
        waker,
        abandoned: AtomicBool::new(false),
    });
    let looping = shared.clone();
    std::thread::Builder::new()
        .name("steadfast".into())
        .stack_size(stack_size)
        .spawn(move || run(&looping, &settings, &woken))?;
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
/// and the client is done. However it ends, the events receiver is told.
fn run(shared: &Shared, settings: &Settings, woken: &UnixStream) {
    struct Finish<'a>(&'a Shared);
    impl Drop for Finish<'_> {
        fn drop(&mut self) {
            self.0.lock().finished = true;
            self.0.changed.notify_all();
        }
    }
    let _finish = Finish(shared);
    loop {
        let (connect, wait_for, notify) = {
            let mut bg = shared.lock();
            let engine = &mut bg.engine;
            let before = engine.client.state();
            engine.turn();
            if shared.abandoned.load(Ordering::Acquire) && engine.done() {
                debug!("loop finished");
                return;
            }
            engine.armed = engine.client.poll_timeout();
            let notify = engine.client.has_events()
                || engine.client.state() != before
                || engine.request_done();
            (engine.take_connect(), engine.wait_for(), notify)
        };
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
        let sock = wait_for.sock.as_ref().map(|(s, i)| (&**s, *i));
        if let Err(error) = wait::wait(Some(woken), sock, wait_for.until) {
            warn!(%error, "waiting on the socket failed");
            std::thread::sleep(Duration::from_millis(10));
        }
        wait::drain(woken);
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
        wait::wake(&self.shared.waker);
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
        let engine = &mut bg.engine;
        let paused = engine.client.reading_paused();
        let Some(ev) = engine.client.poll_event() else {
            return Err(bg.finished);
        };
        if paused && !engine.client.reading_paused() {
            // The loop reads what the socket holds.
            wait::wake(&self.shared.waker);
        }
        if matches!(ev, Event::Closed { .. } | Event::Failed { .. }) {
            self.ended = true;
        }
        log_event(&ev);
        Ok(ev)
    }

    /// The next event, waiting as long as it takes; `None` once ended.
    pub fn recv(&mut self) -> Option<Event> {
        let shared = self.shared.clone();
        let mut bg = shared.lock();
        loop {
            match self.take(&mut bg) {
                Ok(ev) => return Some(ev),
                Err(true) => return None,
                Err(false) => {
                    bg = shared.changed.wait(bg).unwrap_or_else(|p| p.into_inner());
                }
            }
        }
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        let until = Instant::now().checked_add(timeout);
        let shared = self.shared.clone();
        let mut bg = shared.lock();
        loop {
            match self.take(&mut bg) {
                Ok(ev) => return Ok(ev),
                Err(true) => return Err(RecvTimeoutError::Disconnected),
                Err(false) => {
                    let left = match until {
                        Some(until) => until.saturating_duration_since(Instant::now()),
                        None => Duration::from_secs(86_400),
                    };
                    if left.is_zero() {
                        return Err(RecvTimeoutError::Timeout);
                    }
                    bg = shared
                        .changed
                        .wait_timeout(bg, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
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
        wait::wake(&self.shared.waker);
    }
}
