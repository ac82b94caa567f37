//! Caller-driven mode: the application's own thread runs the connection
//! while it waits in [`Connection::next_event`].

use crate::engine::{Engine, Settings};
use std::time::{Duration, Instant};
use steadfast_core::{Client, CloseCode, CloseError, Event, Message, State, Stats};
use steadfast_wire::Status;
use tracing::warn;

/// One resilient connection driven by the calling thread (from
/// [`Builder::connect`](crate::Builder::connect)).
///
/// Nothing happens between calls: while the caller waits in
/// [`next_event`](Self::next_event), the
/// connection connects, reads, answers pings, runs the heartbeat and the
/// retry schedule, the socket waited on until the core's next deadline.
/// Commands ([`send`](Self::send), [`ack`](Self::ack), ...) write at once
/// when the link is open; a connect waits for the next call. A caller that
/// stays away for a while gets its deadlines handled at its next call,
/// after the frames that arrived meanwhile are read (the core credits
/// those read within [`READ_GRACE`](steadfast_core::READ_GRACE) of a
/// deadline as having come before it).
///
/// It is also an [`Iterator`] of events that ends after the terminal one
/// ([`Event::Closed`] or [`Event::Failed`]); use `while let Some(event) =
/// connection.next()` to send and ack between events.
///
/// Dropping it writes a close frame (1000) if the socket takes it at once,
/// and closes the socket; to close gracefully, call [`close`](Self::close)
/// and take events until [`Event::Closed`].
pub struct Connection {
    engine: Engine,
    settings: Settings,
    /// The terminal event was returned.
    ended: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// A wait long enough to stand for "until something happens".
const FOREVER: Duration = Duration::from_secs(86_400);

impl Connection {
    pub(crate) fn new(engine: Engine, settings: Settings) -> Self {
        Connection {
            engine,
            settings,
            ended: false,
        }
    }

    fn command<T>(&mut self, f: impl FnOnce(&mut Client, steadfast_core::Instant) -> T) -> T {
        let now = self.engine.clock.now();
        let out = f(&mut self.engine.client, now);
        self.engine.settle();
        out
    }

    steadfast_wire::client_commands!(mut);

    /// Send a request with an application `key` and run the connection
    /// until its reply comes (the incoming message the ack matcher takes
    /// for an ack of `key`) or `timeout` has passed
    /// ([`RequestError::TimedOut`](steadfast_wire::RequestError::TimedOut)).
    /// Events that arrive meanwhile wait for [`next_event`](Self::next_event).
    pub fn request(
        &mut self,
        key: u64,
        msg: impl Into<Message>,
        timeout: Duration,
    ) -> Result<Message, steadfast_wire::RequestError> {
        let id = self.engine.start_request(key, msg.into(), timeout)?;
        loop {
            if let Some(done) = self.engine.take_request(id) {
                return steadfast_wire::RequestError::of(done);
            }
            // The core times the request out: its deadline ends this wait.
            if let Err(error) = self.run_once(Instant::now() + FOREVER, false) {
                warn!(%error, "waiting on the socket failed");
                self.engine.forget_request(id);
                return Err(steadfast_wire::RequestError::Failed);
            }
        }
    }

    /// Start closing gracefully with 1000, and return: the connection
    /// closes while the caller goes on taking events, bounded by the core's
    /// close timeout, and [`Event::Closed`] comes last (with what was not
    /// delivered). Queued messages are flushed first when open.
    pub fn close(&mut self) {
        // 1000 with no reason is always a valid close.
        let _ = self.close_with(CloseCode::NORMAL, "");
    }

    /// [`close`](Self::close) with this code and reason (at most 123 bytes).
    pub fn close_with(&mut self, code: CloseCode, reason: &str) -> Result<(), CloseError> {
        self.command(|c, now| c.close(code, reason, now))
    }

    /// Start closing once everything sent is delivered (acked at least
    /// once, written at most once), waiting at most `within` before the
    /// close frame goes out; then as [`close`](Self::close). Keep taking
    /// events (and acking) meanwhile: the acks come as messages.
    pub fn close_when_delivered(
        &mut self,
        code: CloseCode,
        reason: &str,
        within: Duration,
    ) -> Result<(), CloseError> {
        self.command(|c, now| c.close_when_delivered(code, reason, within, now))
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.engine.client.state()
    }

    /// The current counters.
    pub fn stats(&self) -> Stats {
        self.engine.client.stats()
    }

    /// The current state and counters.
    pub fn status(&self) -> Status {
        Status::of(&self.engine.client)
    }

    /// The next event, waiting at most `timeout` for one while the
    /// connection runs: `Ok(None)` when none came in time, and at once
    /// after the terminal event ([`Event::Closed`] or [`Event::Failed`]),
    /// when nothing more can happen. A handshake under way is not cut
    /// short: it may hold the call up to the core's connect timeout.
    ///
    /// An error is the system's refusal to wait on the socket (`poll`),
    /// which the next call may retry.
    pub fn next_event(&mut self, timeout: Duration) -> std::io::Result<Option<Event>> {
        let until = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + FOREVER);
        loop {
            if let Some(ev) = self.take_event() {
                return Ok(Some(ev));
            }
            if self.ended || self.engine.done() {
                return Ok(None);
            }
            self.run_once(until, true)?;
            if let Some(ev) = self.take_event() {
                return Ok(Some(ev));
            }
            if Instant::now() >= until {
                return Ok(None);
            }
        }
    }

    /// One turn, a connect if one is due, or a wait until `until` at most
    /// (none if `for_events` and an event waits to be taken).
    fn run_once(&mut self, until: Instant, for_events: bool) -> std::io::Result<()> {
        self.engine.turn();
        if let Some((conn, attempt, timeout)) = self.engine.take_connect() {
            let opened = self.settings.connect(conn, attempt, timeout);
            self.engine.opened(conn, opened);
            return Ok(());
        }
        if for_events && self.engine.client.has_events() {
            return Ok(());
        }
        let now = Instant::now();
        let w = self.engine.wait_for(now);
        if w.now {
            return Ok(());
        }
        let until = w.until.map_or(until, |at| at.min(until));
        if self.engine.wait_by_reading(&w, until, now) {
            return Ok(());
        }
        if self.engine.take_skipped_read() {
            // Not a wait by reading after all: read what tungstenite may hold first.
            return Ok(());
        }
        let waited = w.wait(None, Some(until));
        self.engine.waited();
        waited.map(drop)
    }

    fn take_event(&mut self) -> Option<Event> {
        let (ev, _) = self.engine.take_event()?;
        if matches!(ev, Event::Closed { .. } | Event::Failed { .. }) {
            self.ended = true;
        }
        Some(ev)
    }
}

impl Iterator for Connection {
    type Item = Event;

    /// The next event, however long it takes; `None` after the terminal
    /// one (or if waiting on the socket fails, which is logged).
    fn next(&mut self) -> Option<Event> {
        loop {
            match self.next_event(FOREVER) {
                Ok(Some(ev)) => return Some(ev),
                Ok(None) if self.ended || self.engine.done() => return None,
                Ok(None) => {}
                Err(error) => {
                    warn!(%error, "waiting on the socket failed");
                    return None;
                }
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if !matches!(self.state(), State::Closed | State::Failed | State::Idle) {
            let _ = self.command(|c, now| c.close(CloseCode::NORMAL, "", now));
        }
    }
}
