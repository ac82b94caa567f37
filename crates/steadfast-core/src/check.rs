//! An invariant checker for tests, fuzzing and simulations (feature
//! `check`): it watches everything a [`Client`] outputs and panics the moment
//! one of the invariants of the design is broken.
//!
//! 1. at most one transport is live, and connection ids increase;
//! 2. every accepted message ends in exactly one terminal outcome, or is still held
//!    (under `OutcomeEvents::Failures` deliveries are counted in `Stats`, not reported);
//! 3. the outbox stays within its limits;
//! 4. messages go out in `send` order on every connection (at most once: never twice);
//! 5. no deadline lies before the latest `now`;
//! 6. attempts stay within the budget and delays within `[min_delay, max_delay]`
//!    unless a server advised otherwise or the circuit is open;
//! 7. no `Connect` after `close()` until `open()`;
//! 10. liveness: while a connection's heartbeat runs, a peer that stays silent
//!     is declared dead (the connection ends with
//!     [`Cause::HeartbeatTimeout`](crate::Cause::HeartbeatTimeout)) by the first
//!     input at or after [`HeartbeatConfig::detection_bound`] past the last
//!     frame that proved it alive; and no peer is declared dead sooner than
//!     its schedule allows after such a frame (so a peer answering every ping
//!     in time never is). After a suspend, the probe's deadline is the bound.
//!
//! ```
//! use steadfast_core::{check::Checker, Client, Config, Instant, Message};
//!
//! let mut client = Client::new(Config::default(), Instant::ZERO);
//! let mut checker = Checker::default();
//! checker.on_open(&client);
//! client.open(Instant::ZERO);
//! let id = client.send(Message::text("hi"), Instant::ZERO).unwrap();
//! checker.on_accepted(id);
//! checker.drain(&mut client); // asserts on every transmit and event
//! ```

use crate::{
    AuthConfig, Bytes, Cause, Client, CloseCode, Config, ConnId, Delivery, Event, Handshake,
    HandshakeError, HeartbeatConfig, HeartbeatMode, Instant, Jitter, Message, MessageId,
    OnWindowExhausted, OutboxConfig, OutcomeEvents, Overflow, PingSchedule, PongMatcher, Reconnect,
    RetryConfig, State, Transmit, TransportError, TransportEvent, WindowBudget,
};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

/// The heartbeat of one open connection, as the checker sees it.
#[derive(Debug, Clone, Copy)]
struct Watch {
    conn: ConnId,
    /// The last frame that proved the peer alive (or the open).
    alive_at: Instant,
    /// The latest moment the application's backlog paused reading: time
    /// before it does not count against the peer.
    paused_at: Option<Instant>,
    /// A suspend was detected then and a probe sent; no proof since.
    probe_from: Option<Instant>,
    /// Reading was paused at the end of the last step: the core resumes it
    /// (and gives an outstanding ping a whole pong timeout) at this input.
    was_paused: bool,
    /// How late, in all, the driver fed the client deadlines since the peer
    /// was last alive: a deadline fed late fires late, and so do the ones
    /// it arms.
    lateness: Duration,
}

/// Watches one client's outputs; every method panics on a violation.
#[derive(Debug, Default)]
pub struct Checker {
    /// The transport the client may be using, by the outputs seen so far.
    live: Option<ConnId>,
    last_conn: Option<ConnId>,
    /// After close(): no Connect until open().
    closed_by_app: bool,
    /// Attempts in a row that ended without opening (charged ones: each
    /// is followed by `Reconnecting` or `Failed`).
    failed_in_row: u32,
    /// The latest attempt opened.
    attempt_opened: bool,
    last_now: Instant,
    /// Terminal outcomes per accepted id (0 while the message is held).
    outcomes: BTreeMap<MessageId, u32>,
    /// Last id sent on each connection.
    last_sent: BTreeMap<ConnId, MessageId>,
    /// Highest id ever transmitted (at-most-once never re-sends).
    highest_sent: Option<MessageId>,
    /// The connection whose heartbeat runs, and what proves its peer alive.
    watch: Option<Watch>,
    /// The watch of the connection that just ended, to judge a death.
    ended: Option<Watch>,
    /// Frames fed to the watched connection in this step, judged as proofs
    /// of liveness once the step shows the connection survived them.
    pending: Vec<TransportEvent>,
    /// The client's next heartbeat deadline after the last step.
    next_deadline: Option<Instant>,
    /// Deliveries (written, acked) reported as completions: counted in
    /// `Stats` and resolved here, whatever the outcome events setting.
    completed_deliveries: u64,
    /// The full trace, for determinism checks.
    pub trace: Vec<String>,
}

impl Checker {
    /// The driver fed the client this `now`.
    pub fn on_now(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
    }

    /// The application is about to call `open` on `client` (`open` only
    /// acts from idle, closed or failed).
    pub fn on_open(&mut self, client: &Client) {
        if matches!(client.state(), State::Idle | State::Closed | State::Failed) {
            self.closed_by_app = false;
            self.failed_in_row = 0;
        }
    }

    /// The application called `close` (successfully).
    pub fn on_close(&mut self, client: &Client) {
        if !matches!(client.state(), State::Failed) {
            self.closed_by_app = true;
        }
    }

    /// `send` accepted a message with this id.
    pub fn on_accepted(&mut self, id: MessageId) {
        assert!(
            self.outcomes.insert(id, 0).is_none(),
            "id {id} handed out twice"
        );
    }

    /// A transport event was fed for `conn`; `client_live_before` is
    /// `client.conn()` just before it was fed.
    pub fn on_delivered(
        &mut self,
        conn: ConnId,
        ev: &TransportEvent,
        client_live_before: Option<ConnId>,
    ) {
        let ends = matches!(
            ev,
            TransportEvent::Closed { .. }
                | TransportEvent::Error(_)
                | TransportEvent::HandshakeFailed(_)
        );
        if ends && client_live_before == Some(conn) && self.live == Some(conn) {
            self.live = None;
        }
        if self.watch.is_some_and(|w| w.conn == conn) {
            self.pending.push(ev.clone());
        }
    }

    /// The client emitted a transmit.
    pub fn on_transmit(&mut self, t: &Transmit, config: &Config) {
        self.trace.push(format!("T {t:?}"));
        match t {
            Transmit::Connect { conn, attempt } => {
                assert!(
                    self.live.is_none(),
                    "Connect {conn} while {:?} is live",
                    self.live
                );
                assert!(
                    !self.closed_by_app,
                    "Connect {conn} after close() without open()"
                );
                assert!(self.last_conn < Some(*conn), "connection ids must increase");
                if let Some(max) = config.retry().max_attempts {
                    assert!(
                        self.failed_in_row < max,
                        "attempt {attempt} after {} failed in a row, beyond budget {max}",
                        self.failed_in_row
                    );
                }
                self.attempt_opened = false;
                self.live = Some(*conn);
                self.last_conn = Some(*conn);
            }
            Transmit::Abort { conn } => {
                if self.live == Some(*conn) {
                    self.live = None;
                }
            }
            Transmit::Send { conn, id, .. } => {
                assert_eq!(
                    self.live,
                    Some(*conn),
                    "Send on a transport that is not live"
                );
                assert_eq!(
                    self.outcomes.get(id),
                    Some(&0),
                    "sent {id}, which is not held"
                );
                if let Some(prev) = self.last_sent.insert(*conn, *id) {
                    assert!(prev < *id, "{id} sent after {prev} on {conn}");
                }
                if config.outbox().delivery == Delivery::AtMostOnce {
                    assert!(self.highest_sent < Some(*id), "at-most-once re-sent {id}");
                }
                self.highest_sent = self.highest_sent.max(Some(*id));
            }
            Transmit::SendControl { conn, .. }
            | Transmit::Ping { conn, .. }
            | Transmit::Close { conn, .. } => {
                assert_eq!(
                    self.live,
                    Some(*conn),
                    "{t:?} on a transport that is not live"
                );
            }
        }
    }

    /// The client emitted an event.
    pub fn on_event(&mut self, ev: &Event, config: &Config) {
        self.trace.push(format!("E {ev:?}"));
        if let Event::Failed { error, .. } = ev {
            if error.cause() == Some(&Cause::HeartbeatTimeout) {
                self.on_death(config);
            }
        }
        if matches!(ev, Event::Failed { .. } | Event::Reconnecting { .. }) && !self.attempt_opened {
            self.failed_in_row += 1;
        }
        if let Event::StateChanged {
            to: State::Open, ..
        } = ev
        {
            self.attempt_opened = true;
            self.failed_in_row = 0;
        }
        match ev {
            Event::Outcome { id, .. } => self.resolve(*id),
            Event::Failed { undelivered, .. } | Event::Closed { undelivered, .. } => {
                let ids: Vec<_> = undelivered.iter().map(|(id, _)| *id).collect();
                assert!(
                    ids.windows(2).all(|w| w[0] < w[1]),
                    "undelivered out of order"
                );
                ids.into_iter().for_each(|id| self.resolve(id));
            }
            Event::StateChanged { from, to } => self.on_state(*from, *to),
            Event::Suspended { .. } => {
                if let Some(w) = &mut self.watch {
                    w.probe_from = Some(self.last_now);
                }
            }
            Event::Reconnecting {
                delay,
                advised,
                circuit_open,
                cause,
                ..
            } => {
                let r = config.retry();
                if advised.is_none() && !circuit_open {
                    assert!(
                        *delay >= r.min_delay && *delay <= r.max_delay,
                        "delay {delay:?} outside bounds"
                    );
                }
                if *cause == Cause::HeartbeatTimeout {
                    self.on_death(config);
                }
            }
            _ => {}
        }
    }

    /// The heartbeat runs from the handshake until the connection ends or a
    /// graceful close starts.
    fn on_state(&mut self, from: State, to: State) {
        let running = |s| matches!(s, State::Open | State::Authenticating);
        match (running(from), running(to)) {
            (false, true) => {
                let conn = self
                    .live
                    .unwrap_or_else(|| panic!("{to:?} without a transport"));
                self.watch = Some(Watch {
                    conn,
                    alive_at: self.last_now,
                    paused_at: None,
                    probe_from: None,
                    was_paused: false,
                    lateness: Duration::ZERO,
                });
                self.pending.clear();
            }
            (true, false) => {
                self.ended = self.watch.take();
                self.pending.clear();
            }
            _ => {}
        }
    }

    /// The connection just ended with a heartbeat timeout: the peer must
    /// have been silent for as long as the schedule demands.
    fn on_death(&mut self, config: &Config) {
        let w = self
            .ended
            .take()
            .unwrap_or_else(|| panic!("heartbeat timeout without a running heartbeat"));
        let now = self.last_now;
        let hb = config.heartbeat();
        if let (Some(from), Some(suspend)) = (w.probe_from, config.suspend()) {
            assert!(
                now >= from + suspend.probe_timeout,
                "declared dead at {now:?}, before the suspend probe's deadline from {from:?}"
            );
            return;
        }
        let misses = hb.tolerated_missed.saturating_add(1);
        let earliest = match (&hb.mode, hb.schedule) {
            (HeartbeatMode::Passive, _) | (_, PingSchedule::WhenQuiet) => hb.detection_bound(),
            (_, PingSchedule::Fixed) => hb.pong_timeout.saturating_mul(misses),
        };
        // A frame read late is credited up to READ_GRACE before it was fed.
        let earliest = earliest.saturating_sub(crate::READ_GRACE);
        assert!(
            now >= w.alive_at.saturating_add(earliest),
            "declared dead at {now:?}, {:?} after the peer was last alive at {:?}; \
             the schedule allows no death before {earliest:?}",
            now - w.alive_at,
            w.alive_at
        );
    }

    /// Count this step's frames as proofs of liveness, and check that a
    /// silent peer has not outlived its bound.
    fn check_liveness(&mut self, client: &Client) {
        let pending = core::mem::take(&mut self.pending);
        // Only a heartbeat deadline fed late makes the heartbeat late.
        let deadline = core::mem::replace(&mut self.next_deadline, client.heartbeat_deadline());
        let Some(w) = &mut self.watch else { return };
        let now = self.last_now;
        let hb = client.config().heartbeat();
        if client.conn() == Some(w.conn) && pending.iter().any(|ev| proves_liveness(ev, hb)) {
            w.alive_at = now;
            w.probe_from = None;
            w.lateness = Duration::ZERO;
        } else if let Some(due) = deadline.filter(|due| *due < now) {
            w.lateness = w.lateness.saturating_add(now - due);
        }
        // The time reading stayed paused for the backlog, up to the input
        // that resumed it, does not count against the peer.
        if w.was_paused {
            w.paused_at = Some(now);
        }
        w.was_paused = client.resume_pending();
        if w.was_paused {
            w.paused_at = Some(now);
        }
        let since = [Some(w.alive_at), w.paused_at]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(w.alive_at);
        let (since, bound) = match (w.probe_from, client.config().suspend()) {
            (Some(from), Some(s)) => (from.max(w.paused_at.unwrap_or(from)), s.probe_timeout),
            _ => (since, hb.detection_bound()),
        };
        let bound = bound.saturating_add(w.lateness);
        assert!(
            now < since.saturating_add(bound),
            "liveness: the peer of {} has been silent since {since:?}, and at {now:?} it \
             is still not declared dead (bound {bound:?})",
            w.conn
        );
    }

    fn resolve(&mut self, id: MessageId) {
        let n = self
            .outcomes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("outcome for unknown {id}"));
        *n += 1;
        assert_eq!(*n, 1, "{id} got a second terminal outcome");
    }

    /// After a step: limits, deadlines, and accounting of held messages.
    pub fn after_step(&mut self, client: &Client) {
        let stats = client.stats();
        let cfg = client.config().outbox();
        assert!(
            stats.queue_len <= cfg.max_messages,
            "outbox over its count limit"
        );
        assert!(
            stats.queue_bytes <= cfg.max_bytes,
            "outbox over its byte limit"
        );
        if let Some(deadline) = client.poll_timeout() {
            assert!(
                deadline >= self.last_now,
                "deadline {deadline:?} before now {:?}",
                self.last_now
            );
        }
        // Deliveries are not events when only failures are reported.
        let silent = match cfg.outcome_events {
            OutcomeEvents::All => 0,
            OutcomeEvents::Failures => stats.written + stats.acked - self.completed_deliveries,
        };
        assert_eq!(
            self.unresolved() as u64,
            stats.queue_len as u64 + silent,
            "messages neither held nor resolved"
        );
        self.check_liveness(client);
        if matches!(client.state(), State::Closed | State::Failed) {
            assert_eq!(client.poll_timeout(), None, "deadline left after the end");
            assert_eq!(client.conn(), None, "transport left after the end");
        }
    }

    /// Drain a client's transmits and events through the checks, then
    /// check the step; returns what was drained.
    pub fn drain(&mut self, client: &mut Client) -> (Vec<Transmit>, Vec<Event>) {
        let mut transmits = Vec::new();
        while let Some(t) = client.poll_transmit() {
            self.on_transmit(&t, client.config());
            transmits.push(t);
        }
        let mut events = Vec::new();
        while let Some(e) = client.poll_event() {
            self.on_event(&e, client.config());
            events.push(e);
        }
        while let Some((id, outcome)) = client.poll_completion() {
            self.trace.push(format!("C {id} {outcome:?}"));
            if matches!(outcome, crate::Outcome::Written | crate::Outcome::Acked) {
                self.completed_deliveries += 1;
            }
            self.resolve(id);
        }
        self.after_step(client);
        (transmits, events)
    }

    /// Accepted messages without a terminal outcome yet.
    pub fn unresolved(&self) -> usize {
        self.outcomes.values().filter(|n| **n == 0).count()
    }
}

/// Whether a frame the peer sent proves it alive under `hb`.
fn proves_liveness(ev: &TransportEvent, hb: &HeartbeatConfig) -> bool {
    match ev {
        TransportEvent::Pong(_) => true,
        TransportEvent::Ping(_) => hb.any_frame_is_liveness,
        TransportEvent::Message(m) => {
            hb.any_frame_is_liveness
                || matches!(&hb.mode, HeartbeatMode::AppLevel { pong, .. } if pong.matches(m))
        }
        _ => false,
    }
}

/// A transport event to feed, in a compact form that fuzzers and property
/// tests can generate.
#[derive(Debug, Clone)]
pub enum Ev {
    /// The handshake completed.
    Opened,
    /// The handshake failed: kind (0..5), HTTP status, Retry-After seconds.
    HandshakeFailed(u8, u16, Option<u16>),
    /// A data message (the text `pong`, so app-level heartbeats see pongs).
    Message,
    /// The peer pinged.
    Ping,
    /// A pong answering the latest ping (true) or a foreign one.
    Pong(bool),
    /// Confirm the n-th message sent on the transport (modulo their count).
    Written(usize),
    /// The peer closed with this code.
    Closed(u16),
    /// The transport broke: kind 0..4.
    Error(u8),
    /// The server acks key n (`ack:n`; a request's reply).
    Ack(u8),
    /// The server acks every key up to n (`upto:n`).
    AckUpTo(u8),
    /// The server refuses key n (`nack:n:why`).
    Nack(u8),
}

/// One input to a client.
#[derive(Debug, Clone)]
pub enum Op {
    /// `open`.
    Open,
    /// `send` a binary message of this length, with an optional TTL in ms.
    Send(usize, Option<u16>),
    /// `send_keyed` a binary message of this length with this key.
    SendKeyed(usize, u8),
    /// `request` with this key and a timeout in ms.
    Request(u8, u16),
    /// `ack` the n-th accepted message (modulo their count).
    Ack(usize),
    /// `close` with this code; with `true`, `close_when_delivered` (5 s).
    Close(u16, bool),
    /// `set_online`.
    SetOnline(bool),
    /// `auth_accepted`.
    AuthAccept,
    /// `auth_rejected`.
    AuthReject,
    /// Feed an event to the live transport (true) or to a stale one.
    Transport(bool, Ev),
    /// Advance time by this many ms.
    Advance(u32),
    /// Advance time to the client's next deadline.
    AdvanceToDeadline,
}

/// The knobs of a generated configuration; every combination is valid.
#[derive(Debug, Clone, Default)]
pub struct Knobs {
    /// Jitter seed.
    pub seed: u64,
    /// At-least-once delivery.
    pub at_least_once: bool,
    /// Drop-oldest overflow.
    pub drop_oldest: bool,
    /// Outbox count limit (1..).
    pub max_messages: usize,
    /// In-flight window (1..).
    pub max_in_flight: usize,
    /// Outbox byte limit (1..).
    pub max_bytes: usize,
    /// Attempts per outage.
    pub max_attempts: Option<u32>,
    /// Jitter mode, 0..4.
    pub jitter: u8,
    /// Window budget: attempts per 30 s, and whether exhausting it fails.
    pub window: Option<(u32, bool)>,
    /// Fail-fast first connect.
    pub fail_fast: bool,
    /// Never reconnect.
    pub never_reconnect: bool,
    /// Heartbeat mode, 0..3 (frames, passive, app-level).
    pub heartbeat_mode: u8,
    /// Tolerated missed pongs.
    pub tolerated_missed: u32,
    /// Fixed ping schedule.
    pub fixed_schedule: bool,
    /// Heartbeat interval in ms (0: 10 s).
    pub interval_ms: u32,
    /// Pong timeout in ms, clamped to `1..=interval` (0: 4 s, or the interval if shorter).
    pub pong_timeout_ms: u32,
    /// Only pongs prove liveness (`any_frame_is_liveness: false`).
    pub only_pongs: bool,
    /// An auth phase.
    pub auth: bool,
    /// Suspend detection.
    pub suspend: bool,
    /// Outcome events for failed messages only.
    pub failures_only: bool,
    /// The server's acks are recognised (`ack:`, `upto:`, `nack:`).
    pub acks: bool,
    /// Inbound bound in messages (0: the default), to pause reading.
    pub inbound_max: usize,
}

impl Knobs {
    /// The configuration these knobs describe.
    pub fn config(&self) -> Config {
        let ms = |ms: u32| Duration::from_millis(u64::from(ms));
        let interval = match self.interval_ms {
            0 => Duration::from_secs(10),
            n => ms(n),
        };
        let pong_timeout = match self.pong_timeout_ms {
            0 => Duration::from_secs(4),
            n => ms(n),
        }
        .min(interval);
        let heartbeat = HeartbeatConfig {
            mode: match self.heartbeat_mode % 3 {
                0 => HeartbeatMode::WebSocketPing,
                1 => HeartbeatMode::Passive,
                _ => HeartbeatMode::AppLevel {
                    ping: Message::static_text("ping"),
                    pong: PongMatcher::Equals(Bytes::from_static(b"pong")),
                    forward_pongs: false,
                },
            },
            interval,
            pong_timeout,
            tolerated_missed: self.tolerated_missed,
            schedule: if self.fixed_schedule {
                PingSchedule::Fixed
            } else {
                PingSchedule::WhenQuiet
            },
            // A passive heartbeat hears no pongs: any frame must count.
            any_frame_is_liveness: !self.only_pongs || self.heartbeat_mode % 3 == 1,
        };
        let retry = RetryConfig {
            max_attempts: self.max_attempts.map(|n| n.max(1)),
            jitter: [
                Jitter::None,
                Jitter::Full,
                Jitter::Equal,
                Jitter::Decorrelated,
            ][usize::from(self.jitter % 4)],
            window: self.window.map(|(n, fail)| WindowBudget {
                max_attempts: n.max(1),
                window: Duration::from_secs(30),
                on_exhausted: if fail {
                    OnWindowExhausted::Fail
                } else {
                    OnWindowExhausted::Wait
                },
            }),
            first_connect: if self.fail_fast {
                crate::FirstConnect::FailFast
            } else {
                crate::FirstConnect::Retry
            },
            reconnect: if self.never_reconnect {
                Reconnect::Never
            } else {
                Reconnect::Always
            },
            ..Default::default()
        };
        let outbox = OutboxConfig {
            max_messages: self.max_messages.max(1),
            max_bytes: self.max_bytes.max(1),
            max_in_flight: self.max_in_flight.max(1),
            overflow: if self.drop_oldest {
                Overflow::DropOldest
            } else {
                Overflow::RejectNew
            },
            default_ttl: None,
            outcome_events: if self.failures_only {
                OutcomeEvents::Failures
            } else {
                OutcomeEvents::All
            },
            delivery: if self.at_least_once {
                Delivery::AtLeastOnce
            } else {
                Delivery::AtMostOnce
            },
        };
        let mut b = Config::builder()
            .seed(self.seed)
            .heartbeat(heartbeat)
            .retry(retry)
            .outbox(outbox);
        if self.auth {
            b = b.auth(AuthConfig {
                message: Some(Message::static_text("auth")),
                ..Default::default()
            });
        }
        if !self.suspend {
            b = b.suspend(None);
        }
        if self.inbound_max > 0 {
            b = b.inbound(crate::InboundConfig {
                max_messages: self.inbound_max,
                ..Default::default()
            });
        }
        if self.acks {
            b = b.acks(crate::AckConfig::new(crate::AckMatcher::Prefixed {
                ack: Bytes::from_static(b"ack:"),
                up_to: Some(Bytes::from_static(b"upto:")),
                nack: Some(Bytes::from_static(b"nack:")),
            }));
        }
        // Every knob combination is valid by construction; fall back anyway.
        b.build().unwrap_or_default()
    }
}

/// Reads fuzzer bytes; past the end it reads zeros.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }
}

/// Decodes fuzzer bytes into a configuration and a sequence of inputs
/// (19 bytes of knobs, then 4 bytes per input). Every byte string decodes.
pub fn decode(data: &[u8]) -> (Config, Vec<Op>) {
    let mut r = Reader(data);
    let flags = r.u8();
    let seed = r.u64();
    let limits = [r.u8(), r.u8(), r.u8(), r.u8()];
    let jitter = r.u8();
    // Attempt window (bits 0-2) and failures-only outcome events (bit 3).
    let w = r.u8();
    let heartbeat_mode = r.u8();
    // Interval 0.25..64 s; pong timeout 1..8 eighths of it (8/8: equal).
    let interval = (u32::from(r.u8()) + 1) * 250;
    let pong = r.u8();
    let eighths = u32::from(pong % 8) + 1;
    let misc = r.u8();
    let knobs = Knobs {
        seed,
        at_least_once: flags & 1 != 0,
        drop_oldest: flags & 2 != 0,
        fail_fast: flags & 4 != 0,
        never_reconnect: flags & 8 != 0,
        fixed_schedule: flags & 16 != 0,
        auth: flags & 32 != 0,
        suspend: flags & 64 != 0,
        max_messages: usize::from(limits[0] % 8) + 1,
        max_in_flight: usize::from(limits[1] % 6) + 1,
        max_bytes: usize::from(limits[2]) + 1,
        max_attempts: Some(u32::from(limits[3] % 8)).filter(|n| *n > 0),
        jitter,
        window: (w & 3 != 0).then_some((u32::from(w & 3), w & 4 != 0)),
        heartbeat_mode,
        tolerated_missed: u32::from(flags >> 7) + u32::from(misc >> 1 & 3),
        failures_only: w & 8 != 0,
        interval_ms: interval,
        pong_timeout_ms: interval * eighths / 8,
        only_pongs: misc & 1 != 0,
        acks: misc & 8 != 0,
        inbound_max: usize::from(misc >> 4 & 3),
    };
    let mut ops = Vec::new();
    while !r.0.is_empty() && ops.len() < 4096 {
        let tag = r.u8();
        let (a, b, c) = (r.u8(), r.u8(), r.u8());
        let wide = u16::from_le_bytes([b, c]);
        let op = match tag % 16 {
            0 => Op::Open,
            1 if b & 2 == 2 => Op::SendKeyed(usize::from(a % 48), c % 8),
            2 if b & 2 == 2 => Op::Request(c % 8, wide),
            1 | 2 => Op::Send(usize::from(a % 48), (b & 1 == 1).then_some(wide | 1)),
            3 => Op::Ack(usize::from(a)),
            4 => Op::Close([1000, 1001, 1006, 4000][usize::from(a % 4)], a & 4 != 0),
            5 => Op::SetOnline(a & 1 == 1),
            6 => Op::AuthAccept,
            7 => Op::AuthReject,
            8 => Op::Advance(u32::from(wide) * 16),
            9 => Op::Advance([120_000, 3_600_000, u32::MAX][usize::from(a % 3)]),
            10 | 11 => Op::AdvanceToDeadline,
            _ => {
                let live = a & 7 != 0;
                let ev = match b % 11 {
                    0 => Ev::Opened,
                    1 => Ev::HandshakeFailed(
                        c % 6,
                        [401, 403, 404, 429, 500, 503][usize::from(c % 6)],
                        (a & 8 != 0).then_some(u16::from(c)),
                    ),
                    2 => Ev::Message,
                    3 => Ev::Ping,
                    4 => Ev::Pong(c & 1 == 1),
                    5 => Ev::Written(usize::from(c)),
                    8 => Ev::Ack(c % 8),
                    9 => Ev::AckUpTo(c % 8),
                    10 => Ev::Nack(c % 8),
                    6 => Ev::Closed(
                        [
                            1000, 1001, 1002, 1006, 1008, 1009, 1011, 1012, 1013, 4000, 4999, 0,
                        ][usize::from(c % 12)],
                    ),
                    _ => Ev::Error(c % 4),
                };
                Op::Transport(live, ev)
            }
        };
        ops.push(op);
    }
    (knobs.config(), ops)
}

/// Runs `ops` against a fresh client, asserting every invariant after each
/// step, and returns the output trace (equal for equal inputs).
pub fn run(config: &Config, ops: &[Op]) -> Vec<String> {
    let mut client = Client::new(config.clone(), Instant::ZERO);
    let mut checker = Checker::default();
    let mut now = Instant::ZERO;
    let mut accepted: Vec<MessageId> = Vec::new();
    let mut sent_on_live: Vec<MessageId> = Vec::new();
    let mut last_ping = [0u8; 8];
    let mut stale: Option<ConnId> = None;
    let mut live = None;
    for op in ops {
        match op {
            Op::Open => {
                checker.on_open(&client);
                client.open(now);
            }
            Op::Send(len, ttl) => {
                let msg = Message::binary(alloc::vec![7u8; *len]);
                let ttl = ttl.map(|ms| Duration::from_millis(u64::from(ms)));
                if let Ok(id) = client.send_with_ttl(msg, ttl, now) {
                    checker.on_accepted(id);
                    accepted.push(id);
                }
            }
            Op::SendKeyed(len, key) => {
                let msg = Message::binary(alloc::vec![7u8; *len]);
                if let Ok(id) = client.send_keyed(u64::from(*key), msg, now) {
                    checker.on_accepted(id);
                    accepted.push(id);
                }
            }
            Op::Request(key, timeout_ms) => {
                let msg = Message::static_text("request");
                let timeout = Duration::from_millis(u64::from(*timeout_ms));
                if let Ok(id) = client.request(u64::from(*key), msg, timeout, now) {
                    checker.on_accepted(id);
                    accepted.push(id);
                    if key % 2 == 1 {
                        // As an adapter's request future does.
                        client.await_outcome(id);
                    }
                }
            }
            Op::Ack(n) => {
                if let Some(id) = accepted.get(*n % accepted.len().max(1)) {
                    let _ = client.ack(*id, now);
                }
            }
            Op::Close(code, drain) => {
                let closed = if *drain {
                    let within = Duration::from_secs(5);
                    client.close_when_delivered(CloseCode(*code), "bye", within, now)
                } else {
                    client.close(CloseCode(*code), "bye", now)
                };
                if closed.is_ok() {
                    checker.on_close(&client);
                }
            }
            Op::SetOnline(online) => client.set_online(*online, now),
            Op::AuthAccept => {
                let _ = client.auth_accepted(now);
            }
            Op::AuthReject => {
                let _ = client.auth_rejected("no", now);
            }
            Op::Transport(to_live, e) => {
                let target = if *to_live { client.conn() } else { stale };
                if let Some(conn) = target {
                    let event = match e {
                        Ev::Opened => TransportEvent::Opened(Handshake::default()),
                        Ev::HandshakeFailed(k, status, retry_after) => {
                            TransportEvent::HandshakeFailed(match k {
                                0 => HandshakeError::Unreachable,
                                1 => HandshakeError::Timeout,
                                2 => HandshakeError::Tls,
                                3 => HandshakeError::Protocol,
                                _ => HandshakeError::Http {
                                    status: *status,
                                    retry_after: retry_after
                                        .map(|s| Duration::from_secs(u64::from(s))),
                                },
                            })
                        }
                        Ev::Message => TransportEvent::Message(Message::static_text("pong")),
                        Ev::Ping => TransportEvent::Ping(Bytes::new()),
                        Ev::Pong(matching) => TransportEvent::Pong(if *matching {
                            Bytes::copy_from_slice(&last_ping)
                        } else {
                            Bytes::from_static(b"foreign")
                        }),
                        Ev::Written(n) => match sent_on_live.get(*n % sent_on_live.len().max(1)) {
                            Some(id) => TransportEvent::Written(*id),
                            None => continue,
                        },
                        Ev::Closed(code) => TransportEvent::Closed {
                            code: CloseCode(*code),
                            reason: String::from("x"),
                        },
                        Ev::Ack(k) => TransportEvent::Message(Message::text(format!("ack:{k}"))),
                        Ev::AckUpTo(k) => {
                            TransportEvent::Message(Message::text(format!("upto:{k}")))
                        }
                        Ev::Nack(k) => {
                            TransportEvent::Message(Message::text(format!("nack:{k}:no")))
                        }
                        Ev::Error(k) => TransportEvent::Error(
                            [
                                TransportError::Reset,
                                TransportError::Protocol,
                                TransportError::MessageTooBig,
                                TransportError::InvalidUtf8,
                            ][usize::from(*k % 4)],
                        ),
                    };
                    let before = client.conn();
                    checker.on_delivered(conn, &event, before);
                    client.handle_transport(conn, event, now);
                }
            }
            Op::Advance(ms) => {
                now = now + Duration::from_millis(u64::from(*ms));
                client.handle_timeout(now);
            }
            Op::AdvanceToDeadline => {
                if let Some(t) = client.poll_timeout() {
                    now = now.max(t);
                }
                client.handle_timeout(now);
            }
        }
        checker.on_now(now);
        let (transmits, _) = checker.drain(&mut client);
        for t in transmits {
            match t {
                Transmit::Connect { conn, .. } => {
                    stale = live.or(stale);
                    live = Some(conn);
                    sent_on_live.clear();
                }
                Transmit::Send { id, .. } => sent_on_live.push(id),
                Transmit::Ping { payload, .. } => last_ping = payload,
                _ => {}
            }
        }
    }
    checker.trace
}

/// Fuzz property of [`parse_close_payload`](crate::parse_close_payload): no
/// panic; what it accepts is a sendable code and the rest of the payload, verbatim.
pub fn close_payload(data: &[u8]) {
    if let Some((code, reason)) = crate::parse_close_payload(data) {
        if data.is_empty() {
            assert_eq!((code, reason), (CloseCode::NO_STATUS, ""));
        } else {
            assert!(code.is_sendable(), "accepted unsendable {code}");
            assert_eq!(&data[..2], &code.0.to_be_bytes());
            assert_eq!(&data[2..], reason.as_bytes());
        }
    }
}

/// Fuzz property of [`parse_retry_after_seconds`](crate::parse_retry_after_seconds):
/// no panic; accepted values are trimmed digits, clamped to the maximum.
pub fn retry_after(data: &[u8]) {
    if let Some(delay) = crate::parse_retry_after_seconds(data) {
        let digits = data.trim_ascii();
        assert!(!digits.is_empty() && digits.iter().all(u8::is_ascii_digit));
        assert!(delay <= crate::MAX_RETRY_AFTER);
        if digits.len() < 6 {
            let secs: u64 = digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0'));
            assert_eq!(delay, Duration::from_secs(secs).min(crate::MAX_RETRY_AFTER));
        }
    }
}

/// Fuzz property of [`PongMatcher::matches`]: no panic, and each matcher
/// agrees with a naive reference. The first byte splits pattern from message.
pub fn pong_matcher(data: &[u8]) {
    let Some((split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(*split).min(rest.len());
    let (pattern, payload) = rest.split_at(at);
    let msg = Message::binary(Bytes::copy_from_slice(payload));
    let pat = Bytes::copy_from_slice(pattern);
    let contains = pattern.is_empty()
        || (0..=payload.len().saturating_sub(pattern.len()))
            .any(|i| payload.get(i..i + pattern.len()) == Some(pattern));
    assert_eq!(
        PongMatcher::Equals(pat.clone()).matches(&msg),
        payload == pattern
    );
    assert_eq!(
        PongMatcher::StartsWith(pat.clone()).matches(&msg),
        payload.get(..pattern.len()) == Some(pattern)
    );
    assert_eq!(PongMatcher::Contains(pat).matches(&msg), contains);
}

/// Fuzz property of the whole client: [`decode`] the bytes and [`run`] them.
pub fn client_ops(data: &[u8]) {
    let (config, ops) = decode(data);
    run(&config, &ops);
}
