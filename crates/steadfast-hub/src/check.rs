//! [`CheckedHub`]: a [`Hub`] that asserts its invariants after every call.
//! For property tests, fuzzing and simulations; it panics on a violation,
//! which is the point.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Debug;
use core::time::Duration;
use steadfast_core::{CloseCode, Instant, Message};

use crate::{
    Action, Duplicates, Hub, HubConfig, HubConfigError, HubEvent, LeaveReason, Outbound, SendError,
    SessionId, Verdict,
};

/// What the checker knows of a session from the hub's outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// Opened, not (yet) joined: a refused session.
    Refused,
    Live,
    /// Left the pool for this reason.
    Left(LeaveReason),
    /// Its close frame was handed out.
    CloseWritten,
    /// Aborted or closed: the hub forgot it.
    Gone,
}

/// A [`Hub`] wrapped in assertions. Every method forwards to the hub and
/// then checks:
///
/// - under [`Duplicates::Replace`], at most one live session per user;
/// - nothing is handed out for a reaped or forgotten session, nothing but
///   one close frame for a replaced one, and nothing after a close frame;
/// - every queue is within its bounds;
/// - every message routed to a session is written, reported undelivered,
///   or still queued (conservation);
/// - the transcript of outputs (events, actions, frames) is recorded, so
///   two runs of the same inputs can be compared.
#[derive(Debug)]
pub struct CheckedHub<U> {
    hub: Hub<U>,
    seen: BTreeMap<SessionId, Seen>,
    routed: u64,
    written: u64,
    undelivered: u64,
    events: VecDeque<HubEvent<U>>,
    actions: VecDeque<Action>,
    /// Every output, rendered, in order.
    pub transcript: Vec<String>,
}

impl<U: Ord + Clone + Debug> CheckedHub<U> {
    /// A checked hub with this configuration.
    pub fn new(config: HubConfig, now: Instant) -> Result<Self, HubConfigError> {
        Ok(CheckedHub {
            hub: Hub::new(config, now)?,
            seen: BTreeMap::new(),
            routed: 0,
            written: 0,
            undelivered: 0,
            events: VecDeque::new(),
            actions: VecDeque::new(),
            transcript: Vec::new(),
        })
    }

    /// The hub, for queries.
    pub fn hub(&self) -> &Hub<U> {
        &self.hub
    }

    /// [`Hub::open`], checked.
    pub fn open(&mut self, verdict: Verdict<U>, now: Instant) -> SessionId {
        let id = self.hub.open(verdict, now);
        self.seen.insert(id, Seen::Refused);
        self.after();
        id
    }

    /// [`Hub::received`], checked.
    pub fn received(&mut self, session: SessionId, msg: Message, now: Instant) {
        self.hub.received(session, msg, now);
        self.after();
    }

    /// [`Hub::alive`], checked.
    pub fn alive(&mut self, session: SessionId, now: Instant) {
        self.hub.alive(session, now);
        self.after();
    }

    /// [`Hub::closed`], checked.
    pub fn closed(&mut self, session: SessionId, code: Option<CloseCode>, now: Instant) {
        self.hub.closed(session, code, now);
        self.after();
        if self.seen.contains_key(&session) {
            self.seen.insert(session, Seen::Gone);
        }
    }

    /// [`Hub::handle_timeout`], checked; also that no deadline up to `now`
    /// is left behind.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.hub.handle_timeout(now);
        if let Some(next) = self.hub.poll_timeout() {
            assert!(
                next > now,
                "a deadline at {next:?} is left behind at {now:?}"
            );
        }
        self.after();
    }

    /// [`Hub::next_outbound`], checked against what the session may still
    /// be written.
    pub fn next_outbound(&mut self, session: SessionId, now: Instant) -> Option<Outbound> {
        let out = self.hub.next_outbound(session, now);
        let seen = self.seen.get(&session).cloned();
        if let Some(out) = &out {
            self.transcript.push(format!("out {session} {out:?}"));
            match (&seen, out) {
                (Some(Seen::Gone) | None, _) => {
                    panic!("{out:?} handed out for forgotten {session}")
                }
                (Some(Seen::Left(LeaveReason::Reaped)), _) => {
                    panic!("{out:?} handed out for reaped {session}")
                }
                (Some(Seen::CloseWritten), _) => {
                    panic!("{out:?} handed out after the close of {session}")
                }
                (
                    Some(Seen::Left(LeaveReason::Replaced | LeaveReason::SlowConsumer)),
                    Outbound::Message(_) | Outbound::Ping(_),
                ) => panic!("{out:?} handed out for {session}, which was cut off: {seen:?}"),
                (Some(Seen::Left(_)), Outbound::Ping(_)) => {
                    panic!("a ping handed out for {session}, which is leaving")
                }
                _ => {}
            }
            if matches!(out, Outbound::Message(_)) && !matches!(seen, Some(Seen::Refused)) {
                self.written += 1;
            }
            if matches!(out, Outbound::Close { .. }) {
                self.seen.insert(session, Seen::CloseWritten);
            }
        }
        self.after();
        out
    }

    /// [`Hub::send_to_session`], checked.
    pub fn send_to_session(&mut self, session: SessionId, msg: Message) -> Result<(), SendError> {
        let live = self.hub.is_live(session);
        let r = self.hub.send_to_session(session, msg);
        assert_eq!(
            r.is_ok(),
            live,
            "send_to_session routes exactly to live sessions"
        );
        self.routed += u64::from(r.is_ok());
        self.after();
        r
    }

    /// [`Hub::send_to`], checked: it reaches each of the user's live sessions.
    pub fn send_to(&mut self, user: &U, msg: Message) -> Result<usize, SendError> {
        let expected = self.hub.sessions_of(user).len();
        let r = self.hub.send_to(user, msg);
        match r {
            Ok(n) => assert_eq!(n, expected),
            Err(_) => assert_eq!(expected, 0),
        }
        self.routed += r.clone().unwrap_or(0) as u64;
        self.after();
        r
    }

    /// [`Hub::send_to_room`], checked: it reaches each member's live sessions.
    pub fn send_to_room(&mut self, room: &str, msg: Message) -> usize {
        let expected: usize = self
            .hub
            .room_members(room)
            .map(|u| self.hub.sessions_of(u).len())
            .sum();
        let n = self.hub.send_to_room(room, msg);
        assert_eq!(
            n, expected,
            "a room message reaches every member's live sessions"
        );
        self.routed += n as u64;
        self.after();
        n
    }

    /// [`Hub::broadcast`], checked: it reaches every live session.
    pub fn broadcast(&mut self, msg: Message) -> usize {
        let expected = self.hub.live_count();
        let n = self.hub.broadcast(msg);
        assert_eq!(n, expected);
        self.routed += n as u64;
        self.after();
        n
    }

    /// [`Hub::join`], checked.
    pub fn join(&mut self, user: &U, room: &str) -> Result<(), SendError> {
        let r = self.hub.join(user, room);
        assert_eq!(r.is_ok(), self.hub.is_connected(user));
        self.after();
        r
    }

    /// [`Hub::leave`], checked.
    pub fn leave(&mut self, user: &U, room: &str) -> bool {
        let r = self.hub.leave(user, room);
        self.after();
        r
    }

    /// [`Hub::close_session`], checked.
    pub fn close_session(
        &mut self,
        session: SessionId,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), SendError> {
        let r = self.hub.close_session(session, code, reason);
        self.after();
        r
    }

    /// [`Hub::pause_reading`], checked.
    pub fn pause_reading(&mut self, now: Instant) {
        self.hub.pause_reading(now);
        self.after();
    }

    /// [`Hub::resume_reading`], checked.
    pub fn resume_reading(&mut self, now: Instant) {
        self.hub.resume_reading(now);
        self.after();
    }

    /// [`Hub::shutdown`], checked.
    pub fn shutdown(&mut self, code: CloseCode, window: Duration, now: Instant) {
        self.hub.shutdown(code, window, now);
        self.after();
    }

    /// Takes the next action, as [`Hub::poll_action`].
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Takes the next event, as [`Hub::poll_event`].
    pub fn poll_event(&mut self) -> Option<HubEvent<U>> {
        self.events.pop_front()
    }

    /// Moves the hub's outputs into the checker's own queues, in order,
    /// checking each against what the checker knows of its session.
    fn collect(&mut self) {
        while let Some(a) = self.hub.poll_action() {
            self.transcript.push(format!("action {a:?}"));
            if let Action::Abort(id) = a {
                self.seen.insert(id, Seen::Gone);
                assert!(
                    !self.hub.session_ids().any(|s| s == id),
                    "an aborted session is forgotten"
                );
            }
            self.actions.push_back(a);
        }
        while let Some(ev) = self.hub.poll_event() {
            self.transcript.push(format!("event {ev:?}"));
            match &ev {
                HubEvent::Joined { session, .. } => {
                    let before = self.seen.insert(*session, Seen::Live);
                    assert_eq!(before, Some(Seen::Refused), "{session} joined twice");
                }
                HubEvent::Left {
                    session, reason, ..
                } => {
                    let before = self.seen.insert(*session, Seen::Left(reason.clone()));
                    assert!(
                        matches!(before, Some(Seen::Live | Seen::Gone)),
                        "{session} left without being live: {before:?}"
                    );
                    if before == Some(Seen::Gone) {
                        self.seen.insert(*session, Seen::Gone);
                    }
                }
                HubEvent::Undelivered { .. } => self.undelivered += 1,
                HubEvent::Message { .. } => {}
            }
            self.events.push_back(ev);
        }
    }

    fn after(&mut self) {
        self.collect();
        let hub = &self.hub;
        let earliest = hub.session_ids().filter_map(|id| hub.deadline_of(id)).min();
        assert_eq!(
            hub.poll_timeout(),
            earliest,
            "the hub's next deadline is its sessions' earliest"
        );
        assert!(
            hub.timer_entries()
                <= crate::hub::MAX_TIMERS_PER_SESSION * hub.session_count()
                    + crate::hub::SPARE_TIMERS,
            "{} timer entries for {} sessions",
            hub.timer_entries(),
            hub.session_count()
        );
        if hub.config().duplicates == Duplicates::Replace {
            for user in hub.users() {
                assert!(
                    hub.sessions_of(user).len() <= 1,
                    "{user:?} has two live sessions"
                );
            }
        }
        let bounds = hub.config().queue;
        let mut queued = 0u64;
        for id in hub.session_ids() {
            let (len, bytes) = hub.queued(id);
            if hub.is_live(id) || self.seen.get(&id) != Some(&Seen::Refused) {
                assert!(len <= bounds.max_messages, "{id} holds {len} messages");
                assert!(bytes <= bounds.max_bytes, "{id} holds {bytes} bytes");
                queued += len as u64;
            }
        }
        assert_eq!(
            self.routed,
            self.written + self.undelivered + queued,
            "every routed message is written, reported undelivered, or still queued"
        );
        let live: BTreeSet<SessionId> = hub
            .users()
            .flat_map(|u| hub.sessions_of(u).iter().copied())
            .collect();
        for id in &live {
            assert!(hub.is_live(*id));
        }
    }
}

/// One step of a generated workload, for [`Driver`]. Indices pick among the
/// sessions opened so far, four users and three rooms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A handshake: `kind` 0–5 accepts, 6 refuses with a message, 7 is an
    /// application rejection. Opened only when [`Hub::check`] allows it,
    /// except every 16th `kind` which races past the check.
    Open {
        /// Which user.
        user: u8,
        /// Which verdict.
        kind: u8,
    },
    /// The peer sent a message.
    Received {
        /// Which session.
        session: u8,
    },
    /// The peer sent a ping or pong.
    Alive {
        /// Which session.
        session: u8,
    },
    /// The transport ended.
    Closed {
        /// Which session.
        session: u8,
        /// The peer's close code, if it sent one.
        code: Option<u16>,
    },
    /// The session's writer takes up to `frames` frames (a slow consumer
    /// takes few).
    Write {
        /// Which session.
        session: u8,
        /// How many.
        frames: u8,
    },
    /// Time passes; every deadline on the way is run in order.
    Advance {
        /// How long.
        millis: u32,
    },
    /// A message of `len` bytes to one session.
    SendSession {
        /// Which session.
        session: u8,
        /// Payload size.
        len: u16,
    },
    /// A message to a user.
    SendUser {
        /// Which user.
        user: u8,
        /// Payload size.
        len: u16,
    },
    /// A message to a room.
    SendRoom {
        /// Which room.
        room: u8,
        /// Payload size.
        len: u16,
    },
    /// A message to everyone.
    Broadcast {
        /// Payload size.
        len: u16,
    },
    /// A user joins a room.
    Join {
        /// Which user.
        user: u8,
        /// Which room.
        room: u8,
    },
    /// A user leaves a room.
    Leave {
        /// Which user.
        user: u8,
        /// Which room.
        room: u8,
    },
    /// The application closes a session.
    CloseSession {
        /// Which session.
        session: u8,
        /// The code.
        code: u16,
    },
    /// The adapter stops reading (the application lags).
    PauseReading,
    /// The adapter reads again.
    ResumeReading,
    /// Graceful shutdown over a window.
    Shutdown {
        /// 1012 when true, else 1001.
        restart: bool,
        /// The window.
        window_ms: u32,
    },
}

impl Op {
    /// Decodes a workload from raw bytes (for fuzzing): every byte string
    /// is some workload.
    pub fn decode(mut bytes: &[u8]) -> Vec<Op> {
        let mut ops = Vec::new();
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, rest) = (bytes.get(..n)?, bytes.get(n..)?);
            bytes = rest;
            Some(head)
        };
        while let Some(&[tag, a, b, c]) = take(4) {
            let len = u16::from_le_bytes([b, c]);
            ops.push(match tag % 16 {
                0 => Op::Open { user: a, kind: b },
                1 => Op::Received { session: a },
                2 => Op::Alive { session: a },
                3 => Op::Closed {
                    session: a,
                    code: (b % 2 == 0).then_some(1000 + u16::from(c % 16)),
                },
                4 => Op::Write {
                    session: a,
                    frames: b,
                },
                5 => Op::Advance {
                    millis: u32::from(len) * u32::from(a % 8 + 1),
                },
                6 => Op::SendSession { session: a, len },
                7 => Op::SendUser { user: a, len },
                8 => Op::SendRoom { room: a, len },
                9 => Op::Broadcast { len },
                10 => Op::Join { user: a, room: b },
                11 => Op::Leave { user: a, room: b },
                12 => Op::CloseSession {
                    session: a,
                    code: 1000 + u16::from(b % 16),
                },
                13 => Op::PauseReading,
                14 => Op::ResumeReading,
                // Rare: a shut-down hub refuses everything after it.
                _ if a < 16 => Op::Shutdown {
                    restart: a % 2 == 0,
                    window_ms: u32::from(len),
                },
                _ => Op::Advance {
                    millis: u32::from(len % 1000),
                },
            });
        }
        ops
    }
}

/// Runs a workload of [`Op`]s against a [`CheckedHub`] as an adapter
/// would, and adds the liveness checks: a session is never reaped before
/// [`LivenessConfig::detection_bound`](crate::LivenessConfig::detection_bound)
/// of silence, and never survives past it.
#[derive(Debug)]
pub struct Driver {
    hub: CheckedHub<u8>,
    now: Instant,
    opened: Vec<SessionId>,
    last_heard: BTreeMap<SessionId, Instant>,
    paused_since: Option<Instant>,
    /// Sessions with a Wake out that the writer has not drained yet.
    woken: BTreeSet<SessionId>,
    counter: u64,
}

const ROOMS: [&str; 3] = ["a", "b", "c"];

impl Driver {
    /// A driver over a checked hub with this configuration.
    pub fn new(config: HubConfig) -> Result<Self, HubConfigError> {
        Ok(Driver {
            hub: CheckedHub::new(config, Instant::ZERO)?,
            now: Instant::ZERO,
            opened: Vec::new(),
            last_heard: BTreeMap::new(),
            paused_since: None,
            woken: BTreeSet::new(),
            counter: 0,
        })
    }

    /// The transcript of every output so far.
    pub fn transcript(&self) -> &[String] {
        &self.hub.transcript
    }

    /// The checked hub.
    pub fn hub(&self) -> &CheckedHub<u8> {
        &self.hub
    }

    fn session(&self, i: u8) -> Option<SessionId> {
        (!self.opened.is_empty()).then(|| self.opened[usize::from(i) % self.opened.len()])
    }

    fn message(&mut self, len: u16) -> Message {
        self.counter += 1;
        let mut body = format!("m{}:", self.counter);
        body.extend(core::iter::repeat_n('x', usize::from(len % 2048)));
        Message::text(body)
    }

    /// Applies one step, then drains actions and events.
    pub fn apply(&mut self, op: &Op) {
        let now = self.now;
        match *op {
            Op::Open { user, kind } => {
                let user = user % 4;
                let verdict = match kind % 8 {
                    0..=5 => Verdict::Accept {
                        user,
                        protocol: None,
                    },
                    6 => Verdict::Refuse {
                        message: Some(Message::text("{\"type\":\"error\"}")),
                        code: CloseCode::POLICY,
                        reason: "unknown".into(),
                        protocol: None,
                    },
                    _ => Verdict::Reject(crate::Rejection::unauthorized()),
                };
                if self.hub.hub().check(&verdict).is_ok() || kind % 16 == 15 {
                    let id = self.hub.open(verdict, now);
                    self.opened.push(id);
                    self.last_heard.insert(id, now);
                }
            }
            Op::Received { session } => {
                if let Some(s) = self.session(session) {
                    let msg = self.message(0);
                    self.heard(s);
                    self.hub.received(s, msg, now);
                }
            }
            Op::Alive { session } => {
                if let Some(s) = self.session(session) {
                    self.heard(s);
                    self.hub.alive(s, now);
                }
            }
            Op::Closed { session, code } => {
                if let Some(s) = self.session(session) {
                    self.hub.closed(s, code.map(CloseCode), now);
                }
            }
            Op::Write { session, frames } => {
                // As an adapter does: a writer runs only once woken, and
                // sleeps again when it finds nothing more to write.
                if let Some(s) = self.session(session).filter(|s| self.woken.contains(s)) {
                    for _ in 0..frames {
                        if self.hub.next_outbound(s, now).is_none() {
                            self.woken.remove(&s);
                            break;
                        }
                    }
                }
            }
            Op::Advance { millis } => {
                let until = now + Duration::from_millis(u64::from(millis));
                while let Some(t) = self.hub.hub().poll_timeout().filter(|&t| t <= until) {
                    self.now = t;
                    self.hub.handle_timeout(t);
                    self.drain();
                }
                self.now = until;
                self.hub.handle_timeout(until);
                self.check_reaped();
            }
            Op::SendSession { session, len } => {
                if let Some(s) = self.session(session) {
                    let msg = self.message(len);
                    let _ = self.hub.send_to_session(s, msg);
                }
            }
            Op::SendUser { user, len } => {
                let msg = self.message(len);
                let _ = self.hub.send_to(&(user % 4), msg);
            }
            Op::SendRoom { room, len } => {
                let msg = self.message(len);
                self.hub.send_to_room(ROOMS[usize::from(room) % 3], msg);
            }
            Op::Broadcast { len } => {
                let msg = self.message(len);
                self.hub.broadcast(msg);
            }
            Op::Join { user, room } => {
                let _ = self.hub.join(&(user % 4), ROOMS[usize::from(room) % 3]);
            }
            Op::Leave { user, room } => {
                self.hub.leave(&(user % 4), ROOMS[usize::from(room) % 3]);
            }
            Op::CloseSession { session, code } => {
                if let Some(s) = self.session(session) {
                    let _ = self.hub.close_session(s, CloseCode(code), "bye");
                }
            }
            Op::PauseReading => {
                self.hub.pause_reading(now);
                self.paused_since.get_or_insert(now);
            }
            Op::ResumeReading => {
                self.hub.resume_reading(now);
                if let Some(since) = self.paused_since.take() {
                    // The model of the credit: silence before the pause counts,
                    // the pause does not.
                    let paused = now.saturating_duration_since(since);
                    for heard in self.last_heard.values_mut() {
                        *heard = heard.saturating_add(paused).min(now);
                    }
                }
            }
            Op::Shutdown { restart, window_ms } => {
                let code = if restart {
                    CloseCode::SERVICE_RESTART
                } else {
                    CloseCode::GOING_AWAY
                };
                self.hub
                    .shutdown(code, Duration::from_millis(u64::from(window_ms)), now);
            }
        }
        self.drain();
    }

    fn heard(&mut self, s: SessionId) {
        if self.hub.hub().is_live(s) {
            self.last_heard.insert(s, self.now);
        }
    }

    fn drain(&mut self) {
        while let Some(action) = self.hub.poll_action() {
            match action {
                Action::Wake(s) => {
                    self.woken.insert(s);
                }
                Action::Abort(s) => {
                    self.woken.remove(&s);
                }
            }
        }
        // No lost wake: whatever has messages queued has a writer woken.
        for id in self.hub.hub().session_ids() {
            if self.hub.hub().queued(id).0 > 0 {
                assert!(
                    self.woken.contains(&id),
                    "{id} has queued messages and no Wake out"
                );
            }
        }
        let bound = self.hub.hub().config().liveness.detection_bound();
        while let Some(ev) = self.hub.poll_event() {
            if let HubEvent::Left {
                session,
                reason: LeaveReason::Reaped,
                ..
            } = ev
            {
                let heard = self.last_heard[&session];
                assert!(
                    self.now.saturating_duration_since(heard) >= bound,
                    "{session} reaped {:?} after it was last heard, before the bound {bound:?}",
                    self.now.saturating_duration_since(heard)
                );
            }
        }
    }

    fn check_reaped(&self) {
        if self.paused_since.is_some() {
            return;
        }
        let bound = self.hub.hub().config().liveness.detection_bound();
        for (s, heard) in &self.last_heard {
            if self.hub.hub().is_live(*s) {
                assert!(
                    self.now.saturating_duration_since(*heard) < bound,
                    "{s} silent for {:?} is still live (bound {bound:?})",
                    self.now.saturating_duration_since(*heard)
                );
            }
        }
    }
}

/// The fuzz property: any byte string is a configuration (its first 12
/// bytes) and a workload ([`Op::decode`] of the rest), and the [`Driver`]'s
/// checks hold over it. Run twice, it gives the same transcript.
pub fn hub_ops(data: &[u8]) {
    let (head, rest) = data.split_at(data.len().min(12));
    let mut b = [0u8; 12];
    b[..head.len()].copy_from_slice(head);
    let ms =
        |x: u8, y: u8| Duration::from_millis(1 + u64::from(u16::from_le_bytes([x, y]) % 10_000));
    let config = HubConfig {
        // Not a knob: the operations never follow the backlog.
        max_pending_events: HubConfig::default().max_pending_events,
        liveness: crate::LivenessConfig {
            interval: ms(b[0], b[1]),
            timeout: ms(b[2], b[3]),
        },
        duplicates: match b[4] % 3 {
            0 => Duplicates::Replace,
            1 => Duplicates::RejectNew,
            _ => Duplicates::Allow,
        },
        queue: crate::QueueConfig {
            max_messages: 1 + usize::from(b[5] % 16),
            max_bytes: 1 + usize::from(u16::from_le_bytes([b[6], b[7]])),
            slow_consumer: match b[8] % 3 {
                0 => crate::SlowConsumer::DropOldest,
                1 => crate::SlowConsumer::Close(CloseCode::TRY_AGAIN_LATER),
                _ => crate::SlowConsumer::Close(CloseCode::POLICY),
            },
        },
        max_sessions: (b[9] % 4 != 0).then_some(1 + usize::from(b[9] % 8)),
        retry_after: Duration::from_secs(1),
        close_timeout: ms(b[10], 0),
        seed: Some(u64::from(b[11])),
    };
    let ops = Op::decode(rest);
    let run = || {
        let mut driver = Driver::new(config.clone()).expect("every decoded configuration is valid");
        for op in &ops {
            driver.apply(op);
        }
        driver.hub.transcript
    };
    assert_eq!(run(), run(), "the same inputs gave different outputs");
}
