//! The lifecycle of one logical connection: states, connection ids, which
//! transport is live, the close handshake. It drives the heartbeat, retry
//! and outbox modules and turns their decisions into transmits and events.

use crate::heartbeat::{Dead, Heartbeat, Ping};
use crate::outbox::{Outbox, Tag};
use crate::retry::Retry;
use crate::rng::Rng;
use crate::slim_queue::SlimQueue;
use crate::timer::{Timer, Timers};
use crate::{
    AckError, Cause, CloseCode, Config, ConnId, Error, Event, Handshake, HeartbeatMode, Instant,
    Message, MessageId, Outcome, OutcomeEvents, SendError, State, StateError, Stats, Transmit,
    TransportEvent,
};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use core::time::Duration;

/// Longest close reason a close frame can carry (125-byte payload minus the code).
pub const MAX_CLOSE_REASON: usize = 123;

/// How late after a deadline a frame may be fed and still count as having
/// come before it (see [`Client::handle_transport`]). An adapter reads every
/// frame within this long of its arrival.
pub const READ_GRACE: Duration = Duration::from_millis(100);

/// `close` was given something a close frame cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CloseError {
    /// The code may not be sent in a close frame (1005, 1006, 1015, < 1000, ...).
    #[error("close code {0} may not be sent")]
    InvalidCode(CloseCode),
    /// The reason is longer than [`MAX_CLOSE_REASON`] bytes.
    #[error("close reason is {0} bytes; at most 123 fit")]
    ReasonTooLong(usize),
}

#[derive(Debug, Clone)]
struct PendingClose {
    code: CloseCode,
    reason: String,
    /// Whether queued messages are flushed before the close frame (only when
    /// the connection was open, i.e. authenticated).
    flush: bool,
    /// The close frame also waits until every message is delivered (acked
    /// at least once, written at most once), until the close timer fires.
    drain: bool,
}

/// One logical WebSocket client connection that outlives many transports.
///
/// # Contract
///
/// - **Inputs** are application commands ([`open`](Self::open),
///   [`send`](Self::send), [`ack`](Self::ack), [`close`](Self::close),
///   [`set_online`](Self::set_online), the auth verdicts), transport events
///   ([`handle_transport`](Self::handle_transport), tagged with the
///   [`ConnId`] of the `Connect` they belong to) and
///   [`handle_timeout`](Self::handle_timeout).
/// - **Time never goes backwards**: every input carries `now`; an earlier
///   `now` than one already seen is treated as the latest one seen.
/// - Every input first fires the deadlines that `now` has reached, so a
///   spurious or late `handle_timeout` is harmless and an early one is a no-op.
/// - **After any input**, drain [`poll_transmit`](Self::poll_transmit) and
///   perform the I/O in order, drain [`poll_event`](Self::poll_event), then
///   sleep until [`poll_timeout`](Self::poll_timeout) or the next input.
/// - Input tagged with a stale [`ConnId`] changes nothing.
/// - No input panics; the same config, seed and inputs give the same outputs.
///
/// See the [crate docs](crate) for a complete driving loop.
// Fields in the order of how often an input touches them, `repr(C)` to
// keep that order: what every input reads (clock, deadlines, the live
// transport, the inbound backlog, the heartbeat, the output queues, the
// outbox's head) comes first, in the first seven cache lines. Laid out by
// the compiler, an input touched about 15 of the struct's 24 lines; a
// simulator of 10,000 clients misses the cache on most of them. The config
// is behind an `Arc`: clients of one config (a simulated fleet) share its
// lines, which then stay in the cache.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct Client {
    now: Instant,
    state: State,
    online: bool,
    close_code: CloseCode,
    timers: Timers,
    /// The transport that exists (connecting, open or closing), if any.
    live: Option<ConnId>,
    /// Received messages in `events`, and their payload bytes.
    inbound_len: usize,
    inbound_bytes: usize,
    /// Reading is paused for the backlog (or was, and the core has not yet
    /// seen an input since it ended): the heartbeat's deadlines are frozen,
    /// as the time left on each (`Ping`, `PongDeadline`) when they froze.
    frozen: Option<[Option<Duration>; 2]>,
    heartbeat: Heartbeat,
    control: SlimQueue<Transmit>,
    events: SlimQueue<Event>,
    pending_close: Option<PendingClose>,
    outbox: Outbox,
    config: Arc<Config>,
    stats: Stats,
    retry: Retry,
    /// No attempt before this: a server-advised delay or an open circuit,
    /// which even coming back online does not skip.
    not_before: Option<Instant>,
    rng: Rng,
    next_conn: u64,
    /// What the live connection's handshake response said, until `Opened`
    /// (boxed: held only while opening, and a client keeps the field for life).
    handshake: Option<Box<Handshake>>,
    /// Messages whose outcome goes to `completions` instead of `events`.
    awaited: alloc::vec::Vec<MessageId>,
    completions: VecDeque<(MessageId, Outcome)>,
    /// Boxed: most clients have none, and every client keeps the field.
    auth_message: Option<Box<Message>>,
}

impl Client {
    /// A client in state [`State::Idle`]; nothing happens until [`open`](Self::open).
    /// Its jitter comes from the config's seed (0 if none was given: draw
    /// one with [`Config::with_os_seed`] when not replaying a run).
    pub fn new(config: Config, now: Instant) -> Self {
        let seed = config.seed.unwrap_or(0);
        Self::with_shared_config(Arc::new(config), seed, now)
    }

    /// A client in state [`State::Idle`] whose config is shared with other
    /// clients: many clients of one process (a simulated fleet, a load
    /// generator) keep one copy of it, and read it from memory the others
    /// keep warm. `seed` seeds this client's jitter in place of the
    /// config's, so that clients sharing a config do not jitter alike.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use steadfast_core::{Client, Config, Instant};
    ///
    /// let config = Arc::new(Config::default());
    /// let fleet: Vec<Client> = (0..3)
    ///     .map(|i| Client::with_shared_config(config.clone(), 1000 + i, Instant::ZERO))
    ///     .collect();
    /// // one config, not three copies
    /// assert!(fleet.iter().all(|c| std::ptr::eq(c.config(), &*config)));
    /// ```
    pub fn with_shared_config(config: Arc<Config>, seed: u64, now: Instant) -> Self {
        Client {
            state: State::Idle,
            now,
            next_conn: 0,
            live: None,
            online: true,
            timers: Timers::default(),
            heartbeat: Heartbeat::default(),
            retry: Retry::new(&config.retry),
            outbox: Outbox::new(),
            rng: Rng::new(seed),
            auth_message: config
                .auth
                .as_ref()
                .and_then(|a| a.message.clone())
                .map(Box::new),
            pending_close: None,
            not_before: None,
            close_code: CloseCode::NORMAL,
            handshake: None,
            // Allocated on first use and kept: no allocation per message in
            // steady state, and no slots held by a client never opened.
            control: SlimQueue::new(),
            events: SlimQueue::new(),
            awaited: alloc::vec::Vec::new(),
            completions: VecDeque::new(),
            inbound_len: 0,
            inbound_bytes: 0,
            frozen: None,
            stats: Stats::default(),
            config,
        }
    }

    /// A hint, for a driver of many clients (a simulator): start bringing
    /// the memory the next input will touch (the clock and deadlines, the
    /// heartbeat, the output queues, the outbox's head) into the cache, so
    /// that fetching it overlaps with other work. It changes nothing.
    ///
    /// ```
    /// use steadfast_core::{Client, Config, Instant};
    ///
    /// let fleet: Vec<Client> = (0..4).map(|_| Client::new(Config::default(), Instant::ZERO)).collect();
    /// fleet[2].prefetch(); // its input comes next
    /// ```
    #[cfg(feature = "prefetch")]
    #[inline]
    pub fn prefetch(&self) {
        use core::slice::from_ref;
        use prefetch_index::prefetch_index;
        prefetch_index(from_ref(&self.now), 0);
        prefetch_index(from_ref(&self.frozen), 0);
        prefetch_index(from_ref(&self.heartbeat), 0);
        self.control.prefetch();
        self.events.prefetch();
        prefetch_index(from_ref(&self.outbox), 0);
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The live transport's id, if one exists.
    pub fn conn(&self) -> Option<ConnId> {
        self.live
    }

    /// Counters and current queue depth.
    pub fn stats(&self) -> Stats {
        Stats {
            queue_len: self.outbox.len(),
            queue_bytes: self.outbox.bytes(),
            inbound_len: self.inbound_len,
            inbound_bytes: self.inbound_bytes,
            rtt: self.heartbeat.rtt(),
            ..self.stats
        }
    }

    /// Start connecting (from idle, closed or failed; otherwise a no-op).
    /// After `close` or a failure, the budgets start afresh.
    pub fn open(&mut self, now: Instant) {
        let now = self.advance(now);
        match self.state {
            State::Idle | State::Closed | State::Failed => {
                self.retry.reset();
                if self.online {
                    self.start_attempt(now);
                } else {
                    self.set_state(State::Offline);
                }
            }
            _ => {}
        }
    }

    /// Queue a message with the configured default TTL. It is sent in order
    /// once a connection is open; while connecting, backing off or offline it
    /// waits. The message is handed back in the error if it is refused.
    pub fn send(&mut self, msg: Message, now: Instant) -> Result<MessageId, SendError> {
        let ttl = self.config.outbox.default_ttl;
        self.send_with_ttl(msg, ttl, now)
    }

    /// Queue a message that expires if not handed to a transport within `ttl`.
    pub fn send_with_ttl(
        &mut self,
        msg: Message,
        ttl: Option<Duration>,
        now: Instant,
    ) -> Result<MessageId, SendError> {
        self.send_tagged(msg, ttl, Tag::default(), now)
    }

    /// Queue a message with an application `key` that the server's acks
    /// name (see [`ConfigBuilder::acks`](crate::ConfigBuilder::acks)): an
    /// ack of the key ends it [`Outcome::Acked`], a negative ack
    /// [`Outcome::Refused`] with the server's reason, without the
    /// application calling [`ack`](Self::ack). Keys need not be unique; an
    /// ack settles the oldest message held with its key. Put the key in the
    /// message where the server will find it.
    ///
    /// ```
    /// # use steadfast_core::*;
    /// let config = Config::builder()
    ///     .outbox(OutboxConfig { delivery: Delivery::AtLeastOnce, ..Default::default() })
    ///     .acks(AckConfig::new(AckMatcher::ack_nack()))
    ///     .build()?;
    /// let mut c = Client::new(config, Instant::ZERO);
    /// c.open(Instant::ZERO);
    /// let Some(Transmit::Connect { conn, .. }) = c.poll_transmit() else { unreachable!() };
    /// c.handle_transport(conn, TransportEvent::Opened(Handshake::default()), Instant::ZERO);
    /// let id = c.send_keyed(42, Message::text("id:42:hello"), Instant::ZERO)?;
    /// c.handle_transport(conn, TransportEvent::Message(Message::text("ack:42")), Instant::ZERO);
    /// let outcome = std::iter::from_fn(|| c.poll_event()).find_map(|e| match e {
    ///     Event::Outcome { id: acked, outcome } if acked == id => Some(outcome),
    ///     _ => None,
    /// });
    /// assert_eq!(outcome, Some(Outcome::Acked));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_keyed(
        &mut self,
        key: u64,
        msg: Message,
        now: Instant,
    ) -> Result<MessageId, SendError> {
        let ttl = self.config.outbox.default_ttl;
        let tag = Tag {
            key: Some(key),
            reply_by: None,
        };
        self.send_tagged(msg, ttl, tag, now)
    }

    /// Queue a request: a message with an application `key` that expects
    /// a reply, recognised by the ack matcher as an ack of its key (see
    /// [`ConfigBuilder::acks`](crate::ConfigBuilder::acks)). It ends
    /// [`Outcome::Replied`] with the reply, [`Outcome::Refused`] on a
    /// negative ack, or [`Outcome::TimedOut`] once `timeout` has passed since
    /// now without either. (Replies are reported even under
    /// [`OutcomeEvents::Failures`].)
    ///
    /// If the connection drops before the reply, an unanswered request is
    /// sent again on the next connection under at-least-once delivery; under
    /// at-most-once it ends [`Outcome::Dropped`] with
    /// [`DropReason::Disconnected`](crate::DropReason::Disconnected), as it
    /// may or may not have been processed. Either way the deadline stands.
    pub fn request(
        &mut self,
        key: u64,
        msg: Message,
        timeout: Duration,
        now: Instant,
    ) -> Result<MessageId, SendError> {
        let at = self.now.max(now).saturating_add(timeout);
        let tag = Tag {
            key: Some(key),
            reply_by: Some(at),
        };
        let ttl = self.config.outbox.default_ttl;
        let id = self.send_tagged(msg, ttl, tag, now)?;
        self.timers
            .set_opt(Timer::Reply, self.outbox.next_reply_by());
        Ok(id)
    }

    fn send_tagged(
        &mut self,
        msg: Message,
        ttl: Option<Duration>,
        tag: Tag,
        now: Instant,
    ) -> Result<MessageId, SendError> {
        let now = self.advance(now);
        match self.state {
            State::Failed => return Err(SendError::Failed(msg)),
            State::Closing | State::Closed => return Err(SendError::Closed(msg)),
            _ => {}
        }
        if let Some(e) = msg.invalid_text() {
            return Err(SendError::InvalidText {
                msg,
                valid_up_to: e.valid_up_to,
            });
        }
        let id = {
            let (outbox, cfg, mut record) = self.outbox_parts();
            outbox.push_tagged(msg, ttl, tag, now, cfg, &mut record)?
        };
        self.stats.accepted += 1;
        // Due deadlines fired in `advance`; only a TTL can add an expiry.
        if ttl.is_some() {
            self.expire_messages(now);
        }
        Ok(id)
    }

    /// Acknowledge message `id` (at-least-once delivery): it is removed from
    /// the outbox and counted as [`Outcome::Acked`] (an event too, unless
    /// [`OutcomeEvents::Failures`]).
    pub fn ack(&mut self, id: MessageId, now: Instant) -> Result<(), AckError> {
        self.advance(now);
        let (outbox, cfg, mut record) = self.outbox_parts();
        outbox.ack(id, cfg, &mut record)
    }

    /// Close gracefully: flush what is queued (when open), send a close frame,
    /// wait for the peer's up to the close timeout, then abort. No `Connect` is
    /// emitted again until [`open`](Self::open). Closing a client that is
    /// closing, closed or failed does nothing.
    pub fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Result<(), CloseError> {
        self.start_close(code, reason, None, now)
    }

    /// Close once everything sent is delivered: like [`close`](Self::close),
    /// but the close frame also waits until every message held is acked
    /// (at-least-once) or written (at-most-once), for at most `within`.
    /// Then the close handshake gets the close timeout as usual, and what is
    /// still held is handed back in [`Event::Closed`]. Use it when the peer
    /// acks what it processed and closing must not cut off messages it may
    /// already have; plain `close` hands back whatever is not yet acked.
    ///
    /// ```
    /// # use steadfast_core::*;
    /// # use core::time::Duration;
    /// let outbox = OutboxConfig { delivery: Delivery::AtLeastOnce, ..Default::default() };
    /// let mut c = Client::new(Config::builder().outbox(outbox).build()?, Instant::ZERO);
    /// c.open(Instant::ZERO);
    /// let Some(Transmit::Connect { conn, .. }) = c.poll_transmit() else { unreachable!() };
    /// c.handle_transport(conn, TransportEvent::Opened(Handshake::default()), Instant::ZERO);
    /// let id = c.send(Message::text("last words"), Instant::ZERO)?;
    /// c.close_when_delivered(CloseCode::NORMAL, "bye", Duration::from_secs(5), Instant::ZERO)?;
    /// assert!(matches!(c.poll_transmit(), Some(Transmit::Send { .. })));
    /// assert_eq!(c.poll_transmit(), None, "the close frame waits for the ack");
    /// c.ack(id, Instant::from_millis(30))?;
    /// assert!(matches!(c.poll_transmit(), Some(Transmit::Close { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close_when_delivered(
        &mut self,
        code: CloseCode,
        reason: &str,
        within: Duration,
        now: Instant,
    ) -> Result<(), CloseError> {
        self.start_close(code, reason, Some(within), now)
    }

    /// Start a graceful close; with `drain`, the close frame first waits up to
    /// that long for every message held to be delivered.
    fn start_close(
        &mut self,
        code: CloseCode,
        reason: &str,
        drain: Option<Duration>,
        now: Instant,
    ) -> Result<(), CloseError> {
        if !code.is_sendable() {
            return Err(CloseError::InvalidCode(code));
        }
        if reason.len() > MAX_CLOSE_REASON {
            return Err(CloseError::ReasonTooLong(reason.len()));
        }
        let now = self.advance(now);
        match self.state {
            State::Open | State::Authenticating => {
                self.close_code = code;
                let flush = self.state == State::Open;
                let drain = drain.filter(|_| flush);
                self.pending_close = Some(PendingClose {
                    code,
                    reason: String::from(reason),
                    flush,
                    drain: drain.is_some(),
                });
                self.heartbeat.stop(&mut self.timers);
                self.frozen = None;
                self.timers.stop(Timer::Auth);
                let wait = drain.unwrap_or(self.config.close_timeout);
                self.timers.set(Timer::Close, now.saturating_add(wait));
                self.set_state(State::Closing);
            }
            State::Idle | State::Connecting | State::Backoff | State::Offline => {
                self.close_code = code;
                self.finish_close();
            }
            State::Closing | State::Closed | State::Failed => {}
        }
        Ok(())
    }

    /// Tell the core whether the network is up. Going offline pauses
    /// reconnects (an attempt under way is aborted and not charged); coming
    /// back online reconnects at once, skipping what is left of the backoff.
    /// An open connection is kept either way: it is judged by its heartbeat.
    pub fn set_online(&mut self, online: bool, now: Instant) {
        let now = self.advance(now);
        if self.online == online {
            return;
        }
        self.online = online;
        match (online, self.state) {
            (false, State::Backoff) => {
                self.timers.stop(Timer::Backoff);
                self.set_state(State::Offline);
            }
            (false, State::Connecting) => {
                self.retry.refund();
                self.abort_live();
                self.timers.stop_connection_timers();
                self.set_state(State::Offline);
            }
            (true, State::Offline) => match self.not_before {
                Some(at) if at > now => {
                    self.timers.set(Timer::Backoff, at);
                    self.set_state(State::Backoff);
                }
                _ => self.start_attempt(now),
            },
            _ => {}
        }
    }

    /// Replace the auth message sent on the next connections (e.g. with a
    /// fresh token). `None` sends nothing and only awaits the verdict. Text
    /// taken on trust that is not UTF-8 is refused (the old message stays):
    /// it could only go out as a different frame.
    pub fn set_auth_message(&mut self, msg: Option<Message>) -> Result<(), crate::InvalidUtf8> {
        if let Some(e) = msg.as_ref().and_then(Message::invalid_text) {
            return Err(e);
        }
        self.auth_message = msg.map(Box::new);
        Ok(())
    }

    /// Whether reading was paused for the backlog and the core has not yet
    /// seen the input that resumes it (for the checker's liveness accounting).
    #[cfg(feature = "check")]
    #[doc(hidden)]
    pub fn resume_pending(&self) -> bool {
        self.frozen.is_some()
    }

    /// The earliest heartbeat deadline (the next ping, or the pong
    /// deadline), for the checker's liveness accounting.
    #[cfg(feature = "check")]
    #[doc(hidden)]
    pub fn heartbeat_deadline(&self) -> Option<Instant> {
        [Timer::Ping, Timer::PongDeadline]
            .into_iter()
            .filter_map(|t| self.timers.get(t))
            .min()
    }

    /// The application accepted the server's authentication answer: the
    /// connection opens and the outbox flushes.
    pub fn auth_accepted(&mut self, now: Instant) -> Result<(), StateError> {
        let now = self.advance(now);
        self.expect_state(State::Authenticating)?;
        self.timers.stop(Timer::Auth);
        self.become_open(now);
        Ok(())
    }

    /// The application rejected authentication: the client fails with
    /// [`Error::AuthRejected`] (fatal, never retried).
    pub fn auth_rejected(&mut self, reason: &str, now: Instant) -> Result<(), StateError> {
        let now = self.advance(now);
        self.expect_state(State::Authenticating)?;
        let cause = Cause::AuthRejected {
            reason: String::from(reason),
        };
        self.connection_ended(cause, true, now);
        Ok(())
    }

    /// Feed an event observed on transport `conn`.
    ///
    /// A frame (a message, ping or pong) fed up to [`READ_GRACE`] after a
    /// deadline that has not fired yet is taken to have come just before
    /// it: it may have waited in the socket for a busy task or a late
    /// timer. Deadlines still due after it then fire, as of `now`. An RTT
    /// sample from such a pong is taken at the deadline, so it is at most
    /// [`READ_GRACE`] short.
    pub fn handle_transport(&mut self, conn: ConnId, event: TransportEvent, now: Instant) {
        let is_frame = matches!(
            event,
            TransportEvent::Message(_) | TransportEvent::Ping(_) | TransportEvent::Pong(_)
        );
        let overdue = self.timers.next().filter(|due| {
            is_frame && *due <= now && now.saturating_duration_since(*due) <= READ_GRACE
        });
        match overdue {
            Some(due) => {
                let before = Instant::from_nanos(due.as_nanos().saturating_sub(1));
                self.on_transport(conn, event, before);
                self.advance(now);
            }
            None => self.on_transport(conn, event, now),
        }
        // A message may have filled the backlog, or a frame re-armed the
        // heartbeat while it was frozen.
        self.freeze_heartbeat(self.now);
    }

    fn on_transport(&mut self, conn: ConnId, event: TransportEvent, now: Instant) {
        let now = self.advance(now);
        if self.live != Some(conn) {
            return;
        }
        match event {
            TransportEvent::Opened(handshake) => {
                if self.state != State::Connecting {
                    return;
                }
                self.handshake = Some(Box::new(handshake));
                self.timers.stop(Timer::Connect);
                // A new heartbeat: what an earlier connection froze is moot.
                self.frozen = None;
                self.heartbeat
                    .start(now, &self.config.heartbeat, &mut self.timers);
                match &self.config.auth {
                    Some(auth) => {
                        self.timers.set(Timer::Auth, now + auth.timeout);
                        if let Some(msg) = self.auth_message.as_deref().cloned() {
                            self.push_control(Transmit::SendControl { conn, msg });
                        }
                        self.set_state(State::Authenticating);
                    }
                    None => self.become_open(now),
                }
            }
            TransportEvent::HandshakeFailed(e) => {
                // The adapter has dropped the transport, whatever state we thought it was in.
                self.live = None;
                self.connection_ended(Cause::Handshake(e), false, now);
            }
            TransportEvent::Message(msg) => self.on_message(msg, now),
            TransportEvent::Ping(_) if self.heartbeat_running() => {
                self.heartbeat
                    .on_inbound(now, &self.config.heartbeat, &mut self.timers);
            }
            TransportEvent::Ping(_) => {}
            TransportEvent::Pong(_) if !self.heartbeat_running() => {}
            TransportEvent::Pong(payload) => {
                let rtt = self.heartbeat.on_pong(
                    Some(&payload),
                    now,
                    &self.config.heartbeat,
                    &mut self.timers,
                );
                if let Some(rtt) = rtt {
                    self.events.push(Event::Rtt(rtt));
                }
            }
            TransportEvent::Written(id) => {
                let (outbox, cfg, mut record) = self.outbox_parts();
                outbox.on_written(id, cfg, &mut record);
            }
            TransportEvent::Closed { code, reason } => {
                self.live = None;
                self.connection_ended(Cause::Closed { code, reason }, false, now);
            }
            TransportEvent::Error(e) => {
                self.live = None;
                self.connection_ended(Cause::Transport(e), false, now);
            }
        }
    }

    /// Fire the deadlines `now` has reached. Spurious calls are no-ops.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
    }

    /// The next I/O to perform, in order.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.control.pop() {
            return Some(t);
        }
        let conn = self.live?;
        let flushing = match self.state {
            State::Open => true,
            State::Closing => self.pending_close.as_ref().is_some_and(|p| p.flush),
            _ => false,
        };
        if flushing {
            if let Some((id, msg)) = self.outbox.next_transmit(&self.config.outbox) {
                self.stats.transmitted += 1;
                return Some(Transmit::Send { conn, id, msg });
            }
            if self.outbox.has_waiting() {
                // The in-flight window is full: the close frame waits for it
                // to drain, bounded by the close timeout.
                return None;
            }
            if self.pending_close.as_ref().is_some_and(|p| p.drain) {
                if self.outbox.len() > 0 {
                    // Sent, not yet delivered: wait, bounded by the drain.
                    return None;
                }
                // Delivered: the close handshake gets its own timeout.
                let at = self.now + self.config.close_timeout;
                self.timers.set(Timer::Close, at);
            }
        }
        // Asked first, as `SlimQueue::pop` does: `take` moves the whole slot.
        self.pending_close.as_ref()?;
        let close = self.pending_close.take()?;
        Some(Transmit::Close {
            conn,
            code: close.code,
            reason: close.reason,
        })
    }

    /// Report the terminal outcome of message `id` through
    /// [`poll_completion`](Self::poll_completion) instead of as an
    /// [`Event::Outcome`]: for an adapter that completes a future per
    /// request, whatever the application does with its events. Returns
    /// false (and changes nothing) if `id` is not held. A message handed
    /// back by [`Event::Closed`] or [`Event::Failed`] gets no completion: the
    /// client ended.
    pub fn await_outcome(&mut self, id: MessageId) -> bool {
        if !self.outbox.holds(id) {
            return false;
        }
        if !self.awaited.contains(&id) {
            self.awaited.push(id);
        }
        true
    }

    /// The next terminal outcome of a message given to
    /// [`await_outcome`](Self::await_outcome).
    pub fn poll_completion(&mut self) -> Option<(MessageId, Outcome)> {
        self.completions.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop()?;
        if let Event::Message(m) = &event {
            self.inbound_len -= 1;
            self.inbound_bytes -= m.len();
        }
        Some(event)
    }

    /// The next event, as [`poll_event`](Self::poll_event), and whether
    /// taking it ended a pause of reading ([`reading_paused`](Self::reading_paused)
    /// was true before and is false now): the adapter then reads what the
    /// socket holds, even though no new input woke it.
    ///
    /// ```
    /// # fn read_the_socket() {}
    /// use steadfast_core::{Client, Config, Instant};
    ///
    /// let mut client = Client::new(Config::default(), Instant::ZERO);
    /// client.open(Instant::ZERO);
    /// while let Some((event, resumed)) = client.poll_event_resuming() {
    ///     // ... hand `event` to the application ...
    ///     if resumed {
    ///         read_the_socket();
    ///     }
    /// }
    /// ```
    pub fn poll_event_resuming(&mut self) -> Option<(Event, bool)> {
        let paused = self.reading_paused();
        let event = self.poll_event()?;
        Some((event, paused && !self.reading_paused()))
    }

    /// Whether the received messages not yet taken with
    /// [`poll_event`](Self::poll_event) have reached a bound of
    /// [`InboundConfig`](crate::InboundConfig): the adapter then stops
    /// reading the socket until they are taken. While reading is paused the
    /// heartbeat stands still: no ping goes out and no deadline runs (a pong
    /// may wait unread behind the backlog), and once reading resumes (as of
    /// the next input) each deadline has the time it had left. Frames fed
    /// anyway are kept, never dropped.
    #[must_use]
    pub fn reading_paused(&self) -> bool {
        let bounds = &self.config.inbound;
        self.inbound_len >= bounds.max_messages || self.inbound_bytes >= bounds.max_bytes
    }

    /// Whether [`poll_event`](Self::poll_event) has an event to return, so an
    /// adapter can wake the application only when there is something to take.
    #[must_use]
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called;
    /// `None` when no deadline is pending. Never earlier than the latest `now` seen.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // --- internals -------------------------------------------------------

    /// The outbox, its config and the recorder of its outcomes, borrowed
    /// apart: each outcome is counted in the stats, and reported as an
    /// event if the config's `outcome_events` says so.
    fn outbox_parts(
        &mut self,
    ) -> (
        &mut Outbox,
        &crate::OutboxConfig,
        impl FnMut(MessageId, Outcome) + '_,
    ) {
        let Client {
            outbox,
            config,
            events,
            awaited,
            completions,
            stats,
            ..
        } = self;
        let which = config.outbox.outcome_events;
        let record = move |id, outcome| {
            match outcome {
                Outcome::Written => stats.written += 1,
                Outcome::Acked => stats.acked += 1,
                Outcome::Replied(_) => stats.replied += 1,
                Outcome::Refused(_) => stats.refused += 1,
                Outcome::TimedOut => stats.timed_out += 1,
                Outcome::Expired => stats.expired += 1,
                Outcome::Dropped(_) => stats.dropped += 1,
            }
            if let Some(at) = awaited.iter().position(|a| *a == id) {
                awaited.swap_remove(at);
                completions.push_back((id, outcome));
                return;
            }
            // A reply carries data: it is reported whatever the setting.
            if which == OutcomeEvents::All
                || outcome.is_failure()
                || matches!(outcome, Outcome::Replied(_))
            {
                events.push(Event::Outcome { id, outcome });
            }
        };
        (outbox, &config.outbox, record)
    }

    /// Clamp `now` to never go backwards, notice a suspend, and fire every
    /// deadline `now` has reached.
    fn advance(&mut self, now: Instant) -> Instant {
        let now = now.max(self.now);
        self.now = now;
        if self.frozen.is_some() && !self.reading_paused() {
            self.thaw_heartbeat(now);
        }
        let Some(next) = self.timers.next().filter(|next| *next <= now) else {
            return now; // nothing due: the common case
        };
        if let Some(suspend) = self.config.suspend {
            if now > next + suspend.threshold {
                self.on_suspend(now - next, suspend.probe_timeout, now);
            }
        }
        // Each deadline due now fires once; one re-armed at or before `now`
        // while firing waits for the next input, so no input loops forever.
        let mut due = self.timers.due(now);
        while let Some(timer) = self.timers.pop_expired(now, &mut due) {
            self.fire(timer, now);
        }
        // A suspend probe sent while reading is paused waits for it too.
        self.freeze_heartbeat(now);
        now
    }

    fn on_suspend(&mut self, overshoot: Duration, probe_timeout: Duration, now: Instant) {
        self.events.push(Event::Suspended { overshoot });
        match self.state {
            State::Open | State::Authenticating if self.live.is_some() => {
                let ping = self.heartbeat.probe(
                    now,
                    probe_timeout,
                    &self.config.heartbeat,
                    &mut self.timers,
                );
                self.send_ping(ping);
                if self.state == State::Authenticating {
                    // The verdict deadline passed while asleep: allow it again.
                    if let Some(auth) = &self.config.auth {
                        self.timers.set(Timer::Auth, now + auth.timeout);
                    }
                }
            }
            State::Connecting => {
                // The connect deadline ran out while asleep: retry at once, uncharged.
                self.retry.refund();
                self.abort_live();
                self.timers.stop_connection_timers();
                self.start_attempt(now);
            }
            _ => {}
        }
    }

    fn fire(&mut self, timer: Timer, now: Instant) {
        match (timer, self.state) {
            (Timer::Connect, State::Connecting) => {
                self.connection_ended(Cause::ConnectTimeout, true, now);
            }
            (Timer::Auth, State::Authenticating) => {
                self.connection_ended(Cause::AuthTimeout, true, now);
            }
            (Timer::Ping, State::Open | State::Authenticating) => {
                if let Some(ping) =
                    self.heartbeat
                        .on_ping_due(now, &self.config.heartbeat, &mut self.timers)
                {
                    self.send_ping(ping);
                }
            }
            (Timer::PongDeadline, State::Open | State::Authenticating) => {
                match self
                    .heartbeat
                    .on_deadline(now, &self.config.heartbeat, &mut self.timers)
                {
                    Ok(Some(ping)) => self.send_ping(ping),
                    Ok(None) => {}
                    Err(Dead) => self.connection_ended(Cause::HeartbeatTimeout, true, now),
                }
            }
            (Timer::Backoff, State::Backoff) => self.start_attempt(now),
            (Timer::Close, State::Closing) => match &mut self.pending_close {
                Some(pending) if pending.drain => {
                    // Waited long enough for deliveries: close now with what is left.
                    pending.drain = false;
                    pending.flush = false;
                    self.timers
                        .set(Timer::Close, now + self.config.close_timeout);
                }
                _ => self.finish_close(),
            },
            (Timer::Expiry, _) => self.expire_messages(now),
            (Timer::Reply, _) => {
                {
                    let (outbox, _, mut record) = self.outbox_parts();
                    outbox.time_out_requests(now, &mut record);
                }
                self.timers
                    .set_opt(Timer::Reply, self.outbox.next_reply_by());
            }
            // A deadline left over from a state already left: nothing to do.
            _ => {}
        }
    }

    /// Expire waiting messages past their TTL and re-arm the expiry deadline.
    fn expire_messages(&mut self, now: Instant) {
        {
            let (outbox, _, mut record) = self.outbox_parts();
            outbox.expire(now, &mut record);
        }
        self.timers
            .set_opt(Timer::Expiry, self.outbox.next_expiry());
    }

    /// Queue a control transmit (a connect, a ping, the auth message, an
    /// abort).
    fn push_control(&mut self, transmit: Transmit) {
        self.control.push(transmit);
    }

    fn send_ping(&mut self, ping: Ping) {
        let Some(conn) = self.live else { return };
        let transmit = match (ping, &self.config.heartbeat.mode) {
            (Ping::Frame(payload), _) => Transmit::Ping { conn, payload },
            (Ping::App, HeartbeatMode::AppLevel { ping, .. }) => Transmit::SendControl {
                conn,
                msg: ping.clone(),
            },
            // The heartbeat asks for application pings only in that mode.
            (Ping::App, _) => return,
        };
        self.push_control(transmit);
    }

    /// The heartbeat watches the transport from its handshake until it ends
    /// or a graceful close starts.
    fn heartbeat_running(&self) -> bool {
        matches!(self.state, State::Open | State::Authenticating)
    }

    /// While reading is paused, the heartbeat's deadlines stand still:
    /// freeze those armed (again, if a frame fed anyway or a suspend probe
    /// re-armed them), keeping the time each had left.
    fn freeze_heartbeat(&mut self, now: Instant) {
        if !self.reading_paused() {
            return;
        }
        let armed = [Timer::Ping, Timer::PongDeadline].map(|t| self.timers.get(t));
        if self.frozen.is_some() && armed.iter().all(Option::is_none) {
            return; // frozen already, nothing re-armed since
        }
        self.frozen = Some(armed.map(|at| at.map(|at| at.saturating_duration_since(now))));
        self.timers.stop(Timer::Ping);
        self.timers.stop(Timer::PongDeadline);
    }

    /// Reading resumed: each frozen deadline runs on from now with the time
    /// it had left (while the connection's heartbeat still runs).
    fn thaw_heartbeat(&mut self, now: Instant) {
        let Some(left) = self.frozen.take() else {
            return;
        };
        if !self.heartbeat_running() {
            return;
        }
        for (timer, left) in [Timer::Ping, Timer::PongDeadline].into_iter().zip(left) {
            if let Some(left) = left {
                self.timers.set(timer, now.saturating_add(left));
            }
        }
    }

    /// Hand a received message to the application, counting it against the
    /// inbound bounds.
    fn deliver(&mut self, msg: Message) {
        self.inbound_len += 1;
        self.inbound_bytes += msg.len();
        self.events.push(Event::Message(msg));
    }

    fn on_message(&mut self, msg: Message, now: Instant) {
        if !self.heartbeat_running() {
            if let Some(msg) = self.settle_ack(msg) {
                self.deliver(msg);
            }
            return;
        }
        let hb = &self.config.heartbeat;
        if let HeartbeatMode::AppLevel {
            pong,
            forward_pongs,
            ..
        } = &hb.mode
        {
            if pong.matches(&msg) {
                if let Some(rtt) = self.heartbeat.on_pong(None, now, hb, &mut self.timers) {
                    self.events.push(Event::Rtt(rtt));
                }
                if *forward_pongs {
                    self.deliver(msg);
                }
                return;
            }
        }
        self.heartbeat.on_inbound(now, hb, &mut self.timers);
        if let Some(msg) = self.settle_ack(msg) {
            self.deliver(msg);
        }
    }

    /// If `msg` is an ack the config recognises, settle what it names (a
    /// reply reaches the application in its outcome). The message back
    /// when it is for the application too: not an ack, or acks are forwarded.
    fn settle_ack(&mut self, msg: Message) -> Option<Message> {
        let Some(acks) = &self.config.acks else {
            return Some(msg);
        };
        let Some(ack) = acks.matcher.matches(&msg) else {
            return Some(msg);
        };
        // Cloned only to forward it: an ack costs no allocation otherwise.
        let forwarded = acks.forward.then(|| msg.clone());
        {
            let (outbox, _, mut record) = self.outbox_parts();
            outbox.on_ack(ack, msg, &mut record);
        }
        self.timers
            .set_opt(Timer::Reply, self.outbox.next_reply_by());
        forwarded
    }

    fn start_attempt(&mut self, now: Instant) {
        self.abort_live();
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.live = Some(conn);
        self.retry.on_attempt(now, &self.config.retry);
        self.stats.attempts += 1;
        self.timers.stop(Timer::Backoff);
        self.timers
            .set(Timer::Connect, now + self.config.connect_timeout);
        self.push_control(Transmit::Connect {
            conn,
            attempt: self.retry.attempt(),
        });
        self.set_state(State::Connecting);
    }

    fn become_open(&mut self, now: Instant) {
        let Some(conn) = self.live else { return };
        let reconnect = self.retry.ever_opened();
        self.retry.on_open(now);
        if reconnect {
            self.stats.reconnects += 1;
        }
        self.set_state(State::Open);
        let handshake = self.handshake.take().map(|h| *h).unwrap_or_default();
        self.events.push(Event::Opened {
            conn,
            reconnect,
            handshake,
        });
    }

    /// The live transport ended (or the attempt failed) because of `cause`;
    /// `abort` when the core itself decided to drop it.
    fn connection_ended(&mut self, cause: Cause, abort: bool, now: Instant) {
        if abort {
            self.abort_live();
        }
        self.live = None;
        let was_connected = matches!(self.state, State::Open | State::Closing);
        self.heartbeat.stop(&mut self.timers);
        self.frozen = None;
        self.timers.stop_connection_timers();
        self.disconnect_outbox();
        // Replayable messages wait again; some may have outlived their TTL.
        self.expire_messages(now);
        if self.state == State::Closing {
            self.finish_close();
            return;
        }
        if was_connected {
            self.retry.on_lost(now, &self.config.retry);
        } else {
            self.retry.on_failed_attempt();
        }
        let plan = self.retry.plan(&cause, now, &self.config, &mut self.rng);
        if let Ok(backoff) = &plan {
            self.not_before = backoff.hold.then(|| now + backoff.delay);
        }
        match plan {
            Err(error) => self.fail(error),
            Ok(_) if !self.online => self.set_state(State::Offline),
            Ok(backoff) => {
                self.timers.set(Timer::Backoff, now + backoff.delay);
                self.set_state(State::Backoff);
                self.events.push(Event::Reconnecting {
                    attempt: self.retry.attempt().saturating_add(1),
                    delay: backoff.delay,
                    cause,
                    advised: backoff.advised,
                    circuit_open: backoff.circuit_open,
                });
            }
        }
    }

    /// The transport is gone: at most once, what was in flight is dropped; at
    /// least once, it waits again for replay (or to be handed back).
    fn disconnect_outbox(&mut self) {
        let (outbox, cfg, mut record) = self.outbox_parts();
        outbox.on_disconnect(cfg, &mut record);
    }

    /// Drop the live transport. Transmits still queued for it are withdrawn;
    /// if even its `Connect` was, the adapter never knew it and needs no `Abort`.
    fn abort_live(&mut self) {
        let Some(conn) = self.live.take() else { return };
        let queued_connect = self
            .control
            .iter()
            .any(|t| matches!(t, Transmit::Connect { conn: c, .. } if *c == conn));
        self.control.retain(|t| t.conn() != conn);
        if !queued_connect {
            self.push_control(Transmit::Abort { conn });
        }
    }

    fn fail(&mut self, error: Error) {
        self.abort_live();
        self.timers = Timers::default();
        self.frozen = None;
        self.pending_close = None;
        self.set_state(State::Failed);
        self.disconnect_outbox();
        self.awaited.clear();
        let undelivered = self.outbox.drain();
        self.events.push(Event::Failed { error, undelivered });
    }

    fn finish_close(&mut self) {
        self.abort_live();
        self.timers = Timers::default();
        self.heartbeat.stop(&mut self.timers);
        self.frozen = None;
        self.pending_close = None;
        self.set_state(State::Closed);
        self.disconnect_outbox();
        self.awaited.clear();
        let undelivered = self.outbox.drain();
        self.events.push(Event::Closed {
            code: self.close_code,
            undelivered,
        });
    }

    fn set_state(&mut self, to: State) {
        if self.state != to {
            let from = core::mem::replace(&mut self.state, to);
            self.events.push(Event::StateChanged { from, to });
        }
    }

    fn expect_state(&self, state: State) -> Result<(), StateError> {
        if self.state == state {
            Ok(())
        } else {
            Err(StateError { state: self.state })
        }
    }

    /// Give up at once with `error`, whatever the state, for an adapter
    /// that can no longer drive this client (its driver stopped
    /// abnormally: [`Error::Internal`]). The live transport is aborted (an
    /// `Abort` transmit), every deadline is cleared, the state becomes
    /// [`State::Failed`] and [`Event::Failed`] hands back every message
    /// still held. Deadlines already due are not fired first: nothing will
    /// act on them. A client already closed or failed holds nothing and is
    /// left as it is.
    pub fn abort_with(&mut self, error: Error, now: Instant) {
        self.now = now.max(self.now);
        if matches!(self.state, State::Closed | State::Failed) {
            return;
        }
        self.fail(error);
    }
}
