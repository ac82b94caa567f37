//! The hub: every session of a server, keyed by user, as one state machine.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;
use steadfast_core::{Bytes, CloseCode, Instant, MAX_CLOSE_REASON, Message, SplitMix64};

use crate::admission::{Rejection, Request, Verdict};
use crate::config::{Duplicates, HubConfig, HubConfigError, SlowConsumer};
use crate::event::{
    Action, DropReason, HubEvent, LeaveReason, Outbound, REPLACED, REPLACED_REASON,
    SHUTDOWN_REASON, SLOW_CONSUMER_REASON, SendError, SessionId,
};
use crate::session::{Closing, Phase, Session};
use crate::session_list::SessionList;
use crate::session_map::SessionMap;
use crate::timer_heap::TimerHeap;

/// The hub rebuilds its timers once they hold more entries than this many
/// per session plus [`SPARE_TIMERS`]: a bound on the stale ones.
pub(crate) const MAX_TIMERS_PER_SESSION: usize = 2;
/// See [`MAX_TIMERS_PER_SESSION`].
pub(crate) const SPARE_TIMERS: usize = 64;

/// How a session stops being live.
enum Exit {
    /// Drop the transport now: nothing more is written.
    Abort,
    /// The transport is already gone.
    Gone,
    /// Write a close frame (after the queue, when `flush`).
    Close {
        code: CloseCode,
        reason: String,
        flush: bool,
    },
}

/// A server's sessions, keyed by user: admission, duplicate logins,
/// liveness, routing with bounded queues, graceful shutdown. Sans-IO and
/// deterministic: the adapter feeds it what happened, with the time, and
/// does what it asks.
///
/// # The adapter's contract
///
/// - Before the upgrade, call [`check`](Self::check) with the
///   application's [`Verdict`]; answer a [`Rejection`] with its HTTP status.
///   After the upgrade, [`open`](Self::open) the session.
/// - Report every message with [`received`](Self::received), every other
///   frame (ping, pong) with [`alive`](Self::alive), and the end of the
///   transport with [`closed`](Self::closed).
/// - After every call, drain [`poll_action`](Self::poll_action): on
///   [`Action::Wake`] take frames with [`next_outbound`](Self::next_outbound)
///   until it returns `None`, writing each in order; on [`Action::Abort`]
///   drop the transport. Hand [`poll_event`](Self::poll_event) to the
///   application.
/// - Call [`handle_timeout`](Self::handle_timeout) at
///   [`poll_timeout`](Self::poll_timeout).
///
/// # Guarantees
///
/// - Under [`Duplicates::Replace`] at most one live session per user.
/// - Nothing is written to a reaped session, and nothing but its close
///   frame to a replaced one.
/// - Every queue stays within its bounds.
/// - Every message routed to a session is written to it, or reported in a
///   [`HubEvent::Undelivered`]: never silence.
/// - Same inputs, same outputs.
///
/// ```
/// use steadfast_core::{Instant, Message};
/// use steadfast_hub::{Action, Hub, HubConfig, HubEvent, Outbound, Verdict};
///
/// let mut now = Instant::ZERO;
/// let mut hub = Hub::new(HubConfig::default(), now)?;
/// let alice = Verdict::Accept { user: "alice", protocol: None };
/// assert!(hub.check(&alice).is_ok());
/// let a = hub.open(alice, now);
/// let b = hub.open(Verdict::Accept { user: "bob", protocol: None }, now);
/// hub.join(&"alice", "lobby")?;
/// hub.join(&"bob", "lobby")?;
///
/// // bob says hello to the room
/// hub.received(b, Message::text("hello"), now);
/// while let Some(ev) = hub.poll_event() {
///     if let HubEvent::Message { user, msg, .. } = ev {
///         assert_eq!(hub.send_to_room("lobby", msg), 2, "{user} spoke to both");
///     }
/// }
/// // the adapter writes what the hub hands out
/// assert_eq!(hub.poll_action(), Some(Action::Wake(a)));
/// assert_eq!(hub.next_outbound(a, now), Some(Outbound::Message(Message::text("hello"))));
/// assert_eq!(hub.next_outbound(a, now), None);
///
/// // alice goes silent: pinged after 30 s, reaped 15 s later
/// now = hub.poll_timeout().unwrap();
/// hub.handle_timeout(now);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Hub<U> {
    config: HubConfig,
    rng: SplitMix64,
    sessions: SessionMap<Session<U>>,
    /// Live sessions per user, oldest first.
    users: BTreeMap<U, SessionList>,
    rooms: BTreeMap<String, BTreeSet<U>>,
    memberships: BTreeMap<U, BTreeSet<String>>,
    /// One entry per session: when the hub must next look at it.
    timers: TimerHeap,
    events: VecDeque<HubEvent<U>>,
    actions: VecDeque<Action>,
    next_id: u64,
    shutdown: Option<CloseCode>,
    /// Since when the adapter has not been reading (see `pause_reading`).
    reading_paused: Option<Instant>,
    /// The latest instant the hub was given: the clock for calls that take
    /// none (routing), which can only start a close timeout.
    now: Instant,
}

impl<U: Ord + Clone> Hub<U> {
    /// A hub with no sessions, or the reason the configuration is refused.
    pub fn new(config: HubConfig, now: Instant) -> Result<Self, HubConfigError> {
        config.validate()?;
        let rng = match config.seed {
            Some(seed) => SplitMix64::new(seed),
            #[cfg(feature = "std")]
            None => SplitMix64::from_os(),
            #[cfg(not(feature = "std"))]
            None => SplitMix64::new(0),
        };
        Ok(Hub {
            config,
            rng,
            sessions: SessionMap::default(),
            users: BTreeMap::new(),
            rooms: BTreeMap::new(),
            memberships: BTreeMap::new(),
            timers: TimerHeap::default(),
            events: VecDeque::new(),
            actions: VecDeque::new(),
            next_id: 1,
            shutdown: None,
            reading_paused: None,
            now,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    // ---- admission ------------------------------------------------------

    /// Whether a handshake with this verdict may be upgraded, decided
    /// before the upgrade: the application's own rejection, a shutdown in
    /// progress, reading paused (see [`pause_reading`](Self::pause_reading))
    /// or the session limit (`503` + `Retry-After`), or a
    /// duplicate under [`Duplicates::RejectNew`] (`409`).
    pub fn check(&self, verdict: &Verdict<U>) -> Result<(), Rejection> {
        if let Verdict::Reject(rejection) = verdict {
            return Err(rejection.clone());
        }
        // Shutting down, or not reading (the application lags): a new
        // session would only add to the backlog.
        if self.shutdown.is_some() || self.reading_paused.is_some() {
            return Err(Rejection::unavailable(self.config.retry_after));
        }
        if self
            .config
            .max_sessions
            .is_some_and(|max| self.sessions.len() >= max)
        {
            return Err(Rejection::unavailable(self.config.retry_after));
        }
        if let Verdict::Accept { user, .. } = verdict {
            if self.config.duplicates == Duplicates::RejectNew && self.users.contains_key(user) {
                return Err(Rejection::new(409, "already connected"));
            }
        }
        Ok(())
    }

    /// [`check`](Self::check) for a handshake that carried `request`, and
    /// the subprotocol to echo in the response: a verdict naming one the
    /// client did not offer is refused with `500` (a client fails a
    /// handshake that echoes what it never offered, so the server refuses
    /// it plainly instead).
    ///
    /// ```
    /// use steadfast_core::Instant;
    /// use steadfast_hub::{Hub, HubConfig, Request, Verdict};
    ///
    /// let hub = Hub::new(HubConfig::default(), Instant::ZERO)?;
    /// let request = Request { protocols: vec!["chat.v2".into()], ..Default::default() };
    /// let chat = |p: &str| Verdict::Accept { user: "ann", protocol: Some(p.to_owned()) };
    /// assert_eq!(hub.admit(&request, &chat("chat.v2")), Ok(Some("chat.v2")));
    /// assert_eq!(hub.admit(&request, &chat("chat.v3")).map_err(|r| r.status), Err(500));
    /// assert_eq!(hub.admit(&request, &Verdict::accept("ann")), Ok(None));
    /// # Ok::<(), steadfast_hub::HubConfigError>(())
    /// ```
    pub fn admit<'v>(
        &self,
        request: &Request,
        verdict: &'v Verdict<U>,
    ) -> Result<Option<&'v str>, Rejection> {
        self.check(verdict)?;
        match verdict.protocol() {
            Some(protocol) if !request.offers(protocol) => Err(Rejection::new(
                500,
                "the server chose a subprotocol the client did not offer",
            )),
            protocol => Ok(protocol),
        }
    }

    /// Opens the session of an upgraded connection. An accepted user joins
    /// the pool (under [`Duplicates::Replace`], replacing its older
    /// session). A [`Verdict::Refuse`] session writes its message and
    /// close frame and never joins. Should the situation have changed since
    /// [`check`](Self::check) (a shutdown began, the pool filled, a
    /// duplicate arrived under `RejectNew`) or a `Reject` verdict arrive
    /// here, the session is refused with a close frame instead: 1001/1012
    /// when shutting down, 1013 at capacity, 1008 otherwise.
    pub fn open(&mut self, verdict: Verdict<U>, now: Instant) -> SessionId {
        let id = SessionId(self.next_id);
        self.next_id += 1;
        self.tick(now);
        let refusal = match &verdict {
            Verdict::Refuse { .. } => None,
            _ => self
                .check(&verdict)
                .err()
                .map(|r| match (self.shutdown, r.status) {
                    (Some(code), 503) => (code, String::from(SHUTDOWN_REASON)),
                    (None, 503) => (CloseCode::TRY_AGAIN_LATER, r.reason),
                    _ => (CloseCode::POLICY, r.reason),
                }),
        };
        let (user, phase, first) = match (verdict, refusal) {
            (Verdict::Accept { user, .. }, None) => (Some(user), Phase::Live, None),
            (
                Verdict::Refuse {
                    message,
                    code,
                    reason,
                    ..
                },
                _,
            ) => (None, self.refusal(code, reason), message),
            (_, refusal) => {
                let (code, reason) =
                    refusal.unwrap_or_else(|| (CloseCode::POLICY, String::from("rejected")));
                (None, self.refusal(code, reason), None)
            }
        };
        let mut session = Session::new(user.clone(), phase, now);
        if let Some(msg) = first {
            session.push(msg);
        }
        self.sessions.insert(id, session);
        if let Some(user) = user {
            self.admit_user(id, user);
        }
        self.reschedule(id);
        self.wake(id);
        id
    }

    fn refusal(&self, code: CloseCode, reason: String) -> Phase {
        Phase::Closing(Box::new(Closing {
            reason: LeaveReason::Closed,
            code: sendable(code),
            message: truncated(reason),
            close_sent: false,
            deadline: self.now.saturating_add(self.config.close_timeout),
        }))
    }

    fn admit_user(&mut self, id: SessionId, user: U) {
        // The new session is pooled first, so the user (and its rooms)
        // never look disconnected while the old one is replaced.
        let sessions = self.users.entry(user.clone()).or_default();
        let old = match self.config.duplicates {
            Duplicates::Replace => core::mem::take(sessions),
            Duplicates::RejectNew | Duplicates::Allow => SessionList::Empty,
        };
        sessions.push(id);
        for &old in old.as_slice() {
            self.exit(
                old,
                LeaveReason::Replaced,
                Exit::Close {
                    code: REPLACED,
                    reason: REPLACED_REASON.into(),
                    flush: false,
                },
            );
        }
        self.events
            .push_back(HubEvent::Joined { session: id, user });
    }

    // ---- inputs from the transport ---------------------------------------

    /// A message arrived on a session. It counts as a sign of life, and
    /// becomes a [`HubEvent::Message`] when the session is live (messages on
    /// a closing session are dropped).
    pub fn received(&mut self, session: SessionId, msg: Message, now: Instant) {
        if self.alive(session, now) {
            if let Some(user) = self.sessions.get(&session).and_then(|s| s.user.clone()) {
                self.events
                    .push_back(HubEvent::Message { session, user, msg });
            }
        }
    }

    /// A frame other than a message (ping, pong) arrived: a sign of life.
    /// Returns whether the session is live.
    pub fn alive(&mut self, session: SessionId, now: Instant) -> bool {
        self.tick(now);
        let Some(s) = self.sessions.get_mut(&session) else {
            return false;
        };
        if !s.is_live() {
            return false;
        }
        s.last_seen = s.last_seen.max(now);
        // Once a ping was out, the next one may be due before the reap the
        // timer is set for: reschedule. Otherwise every deadline only moved
        // later, and a timer that fires early reschedules itself; but one
        // that would fire within half an interval moves now, while the
        // session is at hand, instead of waking the hub for nothing (an
        // active session is then never woken for, and a busy one moves its
        // timer at most about twice an interval).
        let was_pinged = core::mem::replace(&mut s.pinged, false);
        s.ping_pending = false;
        let half = self.config.liveness.interval / 2;
        let early = s
            .scheduled()
            .is_some_and(|at| at < s.last_seen.saturating_add(half));
        if was_pinged || early {
            self.reschedule(session);
        }
        true
    }

    /// The session's transport ended: the peer's close frame (`Some`), or
    /// an error or EOF (`None`). The hub forgets the session.
    pub fn closed(&mut self, session: SessionId, code: Option<CloseCode>, now: Instant) {
        self.tick(now);
        let Some(s) = self.sessions.get(&session) else {
            return;
        };
        if s.is_live() {
            self.exit(session, LeaveReason::PeerClosed(code), Exit::Gone);
        } else {
            self.forget(session);
        }
    }

    /// The next frame to write to a session, in order: a due ping, queued
    /// messages, and for a closing session its close frame last. `None`
    /// when there is nothing (more) to write; the next
    /// [`Action::Wake`] says when there is.
    pub fn next_outbound(&mut self, session: SessionId, now: Instant) -> Option<Outbound> {
        self.tick(now);
        let s = self.sessions.get_mut(&session)?;
        let out = match &mut s.phase {
            Phase::Live if s.ping_pending => {
                s.ping_pending = false;
                Some(Outbound::Ping(Bytes::new()))
            }
            Phase::Live => s.pop().map(Outbound::Message),
            Phase::Closing(c) if c.close_sent => None,
            Phase::Closing(c) => match s.queue.pop_front() {
                Some(msg) => {
                    s.queued_bytes -= msg.len();
                    Some(Outbound::Message(msg))
                }
                None => {
                    c.close_sent = true;
                    Some(Outbound::Close {
                        code: c.code,
                        reason: c.message.clone(),
                    })
                }
            },
        };
        if out.is_none() {
            s.wake_outstanding = false;
        }
        out
    }

    // ---- time -----------------------------------------------------------

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| t)
    }

    /// Runs every deadline up to `now`: pings, reaps, shutdown closes and
    /// close timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        while let Some((at, id)) = self.settle_timers() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            s.scheduled = Instant::MAX;
            let liveness = self.config.liveness;
            match &s.phase {
                Phase::Live => {
                    let reap_at = s.last_seen.saturating_add(liveness.detection_bound());
                    let ping_at = s.last_seen.saturating_add(liveness.interval);
                    if s.close_at != Instant::MAX && s.close_at <= now {
                        let code = self.shutdown.unwrap_or(CloseCode::GOING_AWAY);
                        let reason = SHUTDOWN_REASON.into();
                        self.exit(
                            id,
                            LeaveReason::Shutdown,
                            Exit::Close {
                                code,
                                reason,
                                flush: true,
                            },
                        );
                    } else if self.reading_paused.is_some() {
                        // Liveness stands still while the adapter is not reading.
                    } else if now >= reap_at {
                        self.exit(id, LeaveReason::Reaped, Exit::Abort);
                    } else if !s.pinged && now >= ping_at {
                        s.pinged = true;
                        s.ping_pending = true;
                        self.wake(id);
                    }
                }
                Phase::Closing(c) if c.deadline <= now => {
                    self.forget(id);
                    self.actions.push_back(Action::Abort(id));
                }
                Phase::Closing(_) => {}
            }
            self.reschedule(id);
        }
    }

    // ---- routing --------------------------------------------------------

    /// Queues a message for one live session.
    pub fn send_to_session(&mut self, session: SessionId, msg: Message) -> Result<(), SendError> {
        match self.sessions.get(&session) {
            Some(s) if s.is_live() => {
                self.enqueue(session, msg);
                Ok(())
            }
            _ => Err(SendError::NoSuchSession),
        }
    }

    /// Queues a message for every live session of a user (one, unless
    /// [`Duplicates::Allow`]); returns how many.
    pub fn send_to(&mut self, user: &U, msg: Message) -> Result<usize, SendError> {
        let sessions = self.users.get(user).ok_or(SendError::NoSuchUser)?.clone();
        for &id in sessions.as_slice() {
            self.enqueue(id, msg.clone());
        }
        Ok(sessions.as_slice().len())
    }

    /// Queues a message for every live session of every member of a room;
    /// returns how many sessions (0 for an empty or unknown room).
    pub fn send_to_room(&mut self, room: &str, msg: Message) -> usize {
        let Some(members) = self.rooms.get(room) else {
            return 0;
        };
        let targets: Vec<SessionId> = members
            .iter()
            .filter_map(|u| self.users.get(u))
            .flat_map(SessionList::as_slice)
            .copied()
            .collect();
        for &id in &targets {
            self.enqueue(id, msg.clone());
        }
        targets.len()
    }

    /// Queues a message for every live session; returns how many.
    pub fn broadcast(&mut self, msg: Message) -> usize {
        let targets = self.live_sessions();
        for &id in &targets {
            self.enqueue(id, msg.clone());
        }
        targets.len()
    }

    /// Adds a connected user to a room (created on first join). A user's
    /// rooms last while it has a live session; a reconnect that replaces
    /// the old session keeps them.
    pub fn join(&mut self, user: &U, room: &str) -> Result<(), SendError> {
        if !self.users.contains_key(user) {
            return Err(SendError::NoSuchUser);
        }
        self.rooms
            .entry(room.to_string())
            .or_default()
            .insert(user.clone());
        self.memberships
            .entry(user.clone())
            .or_default()
            .insert(room.to_string());
        Ok(())
    }

    /// Removes a user from a room; whether it was a member.
    pub fn leave(&mut self, user: &U, room: &str) -> bool {
        let was = self
            .memberships
            .get_mut(user)
            .is_some_and(|rooms| rooms.remove(room));
        if was {
            self.remove_member(user, room);
        }
        was
    }

    fn remove_member(&mut self, user: &U, room: &str) {
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(user);
            if members.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    fn enqueue(&mut self, id: SessionId, msg: Message) {
        let queue = self.config.queue;
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let Some(user) = s.user.clone() else { return };
        if msg.len() > queue.max_bytes {
            self.events.push_back(HubEvent::Undelivered {
                session: id,
                user,
                msg,
                reason: DropReason::TooLarge,
            });
            return;
        }
        s.push(msg);
        while s.queue.len() > queue.max_messages || s.queued_bytes > queue.max_bytes {
            match queue.slow_consumer {
                SlowConsumer::DropOldest => {
                    if let Some(old) = s.pop() {
                        self.events.push_back(HubEvent::Undelivered {
                            session: id,
                            user: user.clone(),
                            msg: old,
                            reason: DropReason::QueueFull,
                        });
                    }
                }
                SlowConsumer::Close(code) => {
                    let reason = SLOW_CONSUMER_REASON.into();
                    self.exit(
                        id,
                        LeaveReason::SlowConsumer,
                        Exit::Close {
                            code,
                            reason,
                            flush: false,
                        },
                    );
                    return;
                }
            }
        }
        self.wake(id);
    }

    // ---- closing --------------------------------------------------------

    /// Closes one live session: its queue is written first, then the close
    /// frame.
    pub fn close_session(
        &mut self,
        session: SessionId,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), SendError> {
        match self.sessions.get(&session) {
            Some(s) if s.is_live() => {
                let reason = reason.into();
                self.exit(
                    session,
                    LeaveReason::Closed,
                    Exit::Close {
                        code,
                        reason,
                        flush: true,
                    },
                );
                Ok(())
            }
            _ => Err(SendError::NoSuchSession),
        }
    }

    /// Closes every live session, each at its own moment spread uniformly
    /// (seeded) over `window`, with `code`: 1012 (service restart) or 1001
    /// (going away). Queues are written before the close frames. From now
    /// on handshakes are refused with `503` and `Retry-After`. A steadfast
    /// client spreads its own return on 1012 too, so a restart does not
    /// bring back a herd.
    pub fn shutdown(&mut self, code: CloseCode, window: Duration, now: Instant) {
        self.tick(now);
        self.shutdown = Some(code);
        let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        let live = self.live_sessions();
        for id in live {
            let at = now.saturating_add(Duration::from_nanos(self.rng.between(0, window_ns)));
            if let Some(s) = self.sessions.get_mut(&id) {
                s.close_at = at;
            }
            self.reschedule(id);
        }
    }

    /// Reading follows the application's backlog of events: paused once
    /// [`HubConfig::max_pending_events`] wait to be taken, resumed once at
    /// most half as many do (not on and off with every event taken), and resumed for
    /// good while `discarding` (nobody takes events any more). An adapter
    /// calls it after every call that may have changed the backlog, and
    /// holds its readers back while [`is_reading_paused`](Self::is_reading_paused).
    /// Returns whether reading resumed just now (held-back readers may go on).
    ///
    /// ```
    /// use steadfast_core::{Instant, Message};
    /// use steadfast_hub::{Hub, HubConfig, Verdict};
    ///
    /// let now = Instant::ZERO;
    /// let config = HubConfig { max_pending_events: 4, ..HubConfig::default() };
    /// let mut hub = Hub::new(config, now)?;
    /// let s = hub.open(Verdict::accept("ann"), now);
    /// while hub.poll_event().is_some() {}
    /// for _ in 0..4 {
    ///     hub.received(s, Message::text("hi"), now);
    /// }
    /// hub.follow_backlog(false, now);
    /// assert!(hub.is_reading_paused(), "4 waiting: paused");
    /// hub.poll_event();
    /// assert!(!hub.follow_backlog(false, now), "3 waiting: still paused");
    /// hub.poll_event();
    /// assert!(hub.follow_backlog(false, now), "2 waiting: resumed");
    /// # Ok::<(), steadfast_hub::HubConfigError>(())
    /// ```
    pub fn follow_backlog(&mut self, discarding: bool, now: Instant) -> bool {
        let max_pending = self.config.max_pending_events.max(1);
        let pending = self.pending_events();
        let full = !discarding && pending >= max_pending;
        let caught_up = discarding || pending <= max_pending / 2;
        match (self.is_reading_paused(), full, caught_up) {
            (false, true, _) => {
                self.pause_reading(now);
                false
            }
            (true, _, true) => {
                self.resume_reading(now);
                true
            }
            _ => false,
        }
    }

    /// The adapter stops reading every session (the application is behind
    /// on events, say): until [`resume_reading`](Self::resume_reading), no
    /// session is pinged or reaped, since a pong it cannot read is not the
    /// peer's fault. Shutdown closes and close timeouts go on.
    pub fn pause_reading(&mut self, now: Instant) {
        self.tick(now);
        self.reading_paused.get_or_insert(now);
    }

    /// Reading goes on: every live session's liveness resumes with the time
    /// it had left when reading paused.
    pub fn resume_reading(&mut self, now: Instant) {
        self.tick(now);
        let Some(since) = self.reading_paused.take() else {
            return;
        };
        let paused = now.saturating_duration_since(since);
        let live = self.live_sessions();
        for id in live {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.last_seen = s.last_seen.saturating_add(paused).min(now);
            }
            self.reschedule(id);
        }
    }

    /// Whether reading is paused.
    pub fn is_reading_paused(&self) -> bool {
        self.reading_paused.is_some()
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    /// Takes a session out of the pool.
    fn exit(&mut self, id: SessionId, reason: LeaveReason, how: Exit) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if !s.is_live() {
            return;
        }
        let user = s.user.clone();
        if let Some(user) = &user {
            self.unpool(id, user);
            self.events.push_back(HubEvent::Left {
                session: id,
                user: user.clone(),
                reason: reason.clone(),
            });
        }
        match how {
            Exit::Abort => {
                self.undeliver_queue(id, &reason);
                self.forget(id);
                self.actions.push_back(Action::Abort(id));
            }
            Exit::Gone => {
                self.undeliver_queue(id, &reason);
                self.forget(id);
            }
            Exit::Close {
                code,
                reason: text,
                flush,
            } => {
                if !flush {
                    self.undeliver_queue(id, &reason);
                }
                let deadline = self.now.saturating_add(self.config.close_timeout);
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.ping_pending = false;
                    s.phase = Phase::Closing(Box::new(Closing {
                        reason,
                        code: sendable(code),
                        message: truncated(text),
                        close_sent: false,
                        deadline,
                    }));
                }
                self.reschedule(id);
                self.wake(id);
            }
        }
    }

    /// Every live session, by user.
    fn live_sessions(&self) -> Vec<SessionId> {
        self.users
            .values()
            .flat_map(SessionList::as_slice)
            .copied()
            .collect()
    }

    fn unpool(&mut self, id: SessionId, user: &U) {
        let Some(sessions) = self.users.get_mut(user) else {
            return;
        };
        sessions.remove(id);
        if !sessions.is_empty() {
            return;
        }
        self.users.remove(user);
        for room in self.memberships.remove(user).unwrap_or_default() {
            self.remove_member(user, &room);
        }
    }

    /// Forgets a session: what it still had queued is reported undelivered.
    fn forget(&mut self, id: SessionId) {
        let reason = match self.sessions.get(&id).map(|s| &s.phase) {
            Some(Phase::Closing(c)) => c.reason.clone(),
            Some(Phase::Live) => LeaveReason::Closed,
            None => return,
        };
        self.undeliver_queue(id, &reason);
        if self.sessions.remove(&id).is_some() {
            self.settle_timers();
        }
    }

    fn undeliver_queue(&mut self, id: SessionId, reason: &LeaveReason) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let user = s.user.clone();
        while let Some(msg) = s.pop() {
            if let Some(user) = &user {
                self.events.push_back(HubEvent::Undelivered {
                    session: id,
                    user: user.clone(),
                    msg,
                    reason: DropReason::SessionEnded(reason.clone()),
                });
            }
        }
    }

    // ---- bookkeeping ------------------------------------------------------

    fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    fn reschedule(&mut self, id: SessionId) {
        let liveness = self.config.liveness;
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let due = s.due(&liveness, self.reading_paused.is_some());
        if s.scheduled == due {
            return;
        }
        s.scheduled = due;
        if due != Instant::MAX {
            self.timers.push(due, id);
            if self.timers.len() > MAX_TIMERS_PER_SESSION * self.sessions.len() + SPARE_TIMERS {
                let current = self
                    .sessions
                    .iter()
                    .filter(|(_, s)| s.scheduled != Instant::MAX)
                    .map(|(&id, s)| (s.scheduled, id));
                self.timers.rebuild(current);
            }
        }
        self.settle_timers();
    }

    /// Timer entries, stale ones included (see `TimerHeap`).
    #[cfg(feature = "check")]
    pub(crate) fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    /// Drop the stale timers on top (see [`TimerHeap`]): the earliest
    /// current one.
    fn settle_timers(&mut self) -> Option<(Instant, SessionId)> {
        let sessions = &self.sessions;
        self.timers
            .settle(|id| sessions.get(&id).and_then(Session::scheduled))
    }

    fn wake(&mut self, id: SessionId) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if s.wants_write() && !s.wake_outstanding {
            s.wake_outstanding = true;
            self.actions.push_back(Action::Wake(id));
        }
    }

    // ---- outputs and queries --------------------------------------------

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<HubEvent<U>> {
        self.events.pop_front()
    }

    /// How many events wait for [`poll_event`](Self::poll_event).
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// The next thing the adapter must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The user a live session belongs to.
    pub fn user_of(&self, session: SessionId) -> Option<&U> {
        self.sessions
            .get(&session)
            .filter(|s| s.is_live())
            .and_then(|s| s.user.as_ref())
    }

    /// A user's live sessions, oldest first (empty when not connected).
    pub fn sessions_of(&self, user: &U) -> &[SessionId] {
        self.users.get(user).map_or(&[], SessionList::as_slice)
    }

    /// Whether a user has a live session.
    pub fn is_connected(&self, user: &U) -> bool {
        self.users.contains_key(user)
    }

    /// The connected users, in order.
    pub fn users(&self) -> impl Iterator<Item = &U> {
        self.users.keys()
    }

    /// A room's members, in order.
    pub fn room_members(&self, room: &str) -> impl Iterator<Item = &U> {
        self.rooms.get(room).into_iter().flatten()
    }

    /// A user's rooms, in order.
    pub fn rooms_of(&self, user: &U) -> impl Iterator<Item = &str> {
        self.memberships
            .get(user)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// When the hub next looks at a session by itself (to ping it, reap
    /// it, close it at a shutdown, or give up its close): `None` for a
    /// session it does not know or has nothing scheduled for. The hub's
    /// [`poll_timeout`](Self::poll_timeout) is the earliest of these.
    pub fn deadline_of(&self, session: SessionId) -> Option<Instant> {
        self.sessions.get(&session)?.scheduled()
    }

    /// Whether a session is live (in the pool).
    pub fn is_live(&self, session: SessionId) -> bool {
        self.sessions.get(&session).is_some_and(Session::is_live)
    }

    /// How many messages and payload bytes are queued for a session.
    pub fn queued(&self, session: SessionId) -> (usize, usize) {
        self.sessions
            .get(&session)
            .map_or((0, 0), |s| (s.queue.len(), s.queued_bytes))
    }

    /// The messages queued for a session, oldest first.
    pub fn queued_messages(&self, session: SessionId) -> impl Iterator<Item = &Message> {
        self.sessions
            .get(&session)
            .into_iter()
            .flat_map(|s| s.queue.iter())
    }

    /// Sessions the hub knows: live ones and those still closing.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Live sessions.
    pub fn live_count(&self) -> usize {
        self.users.values().map(|l| l.as_slice().len()).sum()
    }

    /// Every session the hub knows, live or closing, in order.
    pub fn session_ids(&self) -> impl Iterator<Item = SessionId> + use<U> {
        let mut ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter()
    }
}

/// A code a close frame may carry: others (1005, 1006, 1015, out of range)
/// become 1001.
fn sendable(code: CloseCode) -> CloseCode {
    if code.is_sendable() {
        code
    } else {
        CloseCode::GOING_AWAY
    }
}

/// A close reason cut to what a close frame holds, on a character boundary.
fn truncated(mut reason: String) -> String {
    if reason.len() > MAX_CLOSE_REASON {
        let mut end = MAX_CLOSE_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}
