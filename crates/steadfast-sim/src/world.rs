//! The discrete-event engine: one queue of timed events over virtual time,
//! many `steadfast_core` clients, one server, one network. No threads, no sleeping.

use crate::metrics::{MessageCounts, Metrics, Recovery, ServerCounts};
use crate::queue::{Due, EventQueue};
use crate::scenario::{Fault, Scenario};
use crate::server::{Down, PingSeen, Refusal, Server, Up};
use core::time::Duration;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use steadfast_core::{
    Bytes, Cause, Client, ConnId, Event, Handshake, HandshakeError, Instant, Message, MessageId,
    Outcome, OutcomeEvents, SplitMix64, State, Transmit, TransportError, TransportEvent,
};

#[derive(Debug, Clone, Copy)]
enum Ev {
    Open(u32),
    Timer(u32),
    AppSend(u32),
    ToServer(u32, ConnId, Up),
    ToClient(u32, ConnId, Down),
    FaultStart(u32),
    FaultEnd(u32),
    /// The hub's next deadline (its sessions' pings, reaps, close timeouts).
    HubTimer,
}

/// Cache-line aligned, so that the core client's hot first lines (its
/// clock, deadlines, heartbeat and output queues) start on a line of their
/// own.
#[repr(C, align(64))]
struct SimClient {
    core: Client,
    /// Which accepted messages reached a terminal outcome, by id.
    resolved: Vec<bool>,
    partitioned_since: Option<Instant>,
}

/// Most buckets a run records; longer runs get wider buckets. The docs of
/// `Scenario::bucket` quote this number.
const MAX_BUCKETS: u64 = 1 << 22;

/// Pings whose payload [`pong_payload`] answers without allocating: the
/// core numbers a client's pings from 0, so this covers 34 h of 30 s pings.
const STATIC_NONCES: usize = 4096;

/// The big-endian bytes of 0, 1, 2, ... `STATIC_NONCES - 1`, back to back.
static NONCE_BYTES: [u8; 8 * STATIC_NONCES] = {
    let mut table = [0; 8 * STATIC_NONCES];
    let mut n = 0;
    while n < STATIC_NONCES {
        let bytes = (n as u64).to_be_bytes();
        let mut k = 0;
        while k < 8 {
            table[8 * n + k] = bytes[k];
            k += 1;
        }
        n += 1;
    }
    table
};

/// The pong's payload, the ping's echoed: from the static table when the
/// core's nonce is in it (no allocation per heartbeat), copied otherwise.
fn pong_payload(ping: [u8; 8]) -> Bytes {
    match usize::try_from(u64::from_be_bytes(ping)) {
        Ok(n) if n < STATIC_NONCES => Bytes::from_static(&NONCE_BYTES[8 * n..8 * n + 8]),
        _ => Bytes::copy_from_slice(&ping),
    }
}

/// The client an event or timer is about, if any.
fn client_of(due: Due<Ev>) -> Option<u32> {
    match due {
        Due::Timer(i)
        | Due::Event(Ev::Open(i) | Ev::Timer(i) | Ev::AppSend(i) | Ev::ToClient(i, ..)) => Some(i),
        Due::Event(Ev::ToServer(..) | Ev::FaultStart(_) | Ev::FaultEnd(_) | Ev::HubTimer) => None,
    }
}

/// How many steps of virtual time a run reports progress at.
const PROGRESS_STEPS: u64 = 100;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `t` plus `ns` nanoseconds, as `Instant + Duration` computes it
/// (saturating), without converting a `Duration` per frame.
fn later(t: Instant, ns: u64) -> Instant {
    Instant::from_nanos(t.as_nanos().saturating_add(ns))
}

pub(crate) struct World<'s> {
    s: &'s Scenario,
    queue: EventQueue<Ev>,
    rng: SplitMix64,
    clients: Vec<SimClient>,
    server: Server,
    /// Partitions currently cutting each client off.
    partitioned: Vec<u16>,
    /// Per client, its frames and openings in the queue (not its timer, not
    /// its application sends): while none is, only a fault or the client's
    /// own deadline can come between a ping and its pong.
    in_flight: Vec<u32>,
    /// Per client, when its next application send is queued (empty when
    /// the scenario sends none).
    next_send: Vec<u64>,
    /// When each queued fault edge (a start or an end) is due, earliest on
    /// top.
    fault_edges: BinaryHeap<Reverse<u64>>,
    /// Queue every ping's round trip, even a private one (for the tests
    /// that pin that answering at once changes nothing).
    #[cfg(test)]
    queue_every_round_trip: bool,
    open_now: u32,
    recoveries: Vec<(Recovery, bool)>,
    metrics: Metrics,
    end: Instant,
    /// Per fault, the status and `Retry-After` of its handshake refusals
    /// (only a `RejectHandshakes` fault's entry is read).
    refusals: Vec<(u16, Option<Duration>)>,
    /// The network's one-way latency and its jitter's range, in ns.
    latency_ns: u64,
    jitter_ns: u64,
    /// Index of the bucket the engine is in.
    bucket_now: usize,
    /// When the bucket the engine is in ends (ns; `u64::MAX` in the last):
    /// most events fall in the current bucket, and a comparison is cheaper
    /// than the division that finds the bucket.
    bucket_end: u64,
}

impl<'s> World<'s> {
    pub(crate) fn new(s: &'s Scenario) -> Self {
        let n = s.clients as usize;
        // ceil(duration / bucket), at most MAX_BUCKETS (wider buckets then).
        let bucket_ns = nanos(s.bucket).max(nanos(s.duration).div_ceil(MAX_BUCKETS));
        let buckets = nanos(s.duration).div_ceil(bucket_ns).max(1) as usize;
        let mut rng = SplitMix64::new(s.seed ^ 0xA5A5_5A5A_F00D_CAFE);
        // Every outcome is an event: the accounting resolves each message by
        // its own. One copy of the config for the whole fleet, each client
        // seeded on its own.
        let config = Arc::new(s.config.clone().with_outcome_events(OutcomeEvents::All));
        let clients = (0..n)
            .map(|i| SimClient {
                core: Client::with_shared_config(
                    config.clone(),
                    rng.next_u64() ^ i as u64,
                    Instant::ZERO,
                ),
                resolved: Vec::new(),
                partitioned_since: None,
            })
            .collect();
        let mut world = World {
            s,
            queue: EventQueue::new(),
            rng,
            clients,
            server: Server::new(n, &s.server, s.seed ^ 0x4855_4253_4545_4421),
            partitioned: vec![0; n],
            in_flight: vec![0; n],
            next_send: if s.message_every.is_some() {
                vec![0; n]
            } else {
                Vec::new()
            },
            fault_edges: BinaryHeap::new(),
            #[cfg(test)]
            queue_every_round_trip: false,

            open_now: 0,
            recoveries: Vec::new(),
            metrics: Metrics {
                bucket: Duration::from_nanos(bucket_ns),
                connected: vec![0; buckets],
                attempts: vec![0; buckets],
                accepts: vec![0; buckets],
                recoveries: Vec::new(),
                messages: MessageCounts::default(),
                server: ServerCounts::default(),
                detection: Vec::new(),
                failed_clients: 0,
                events: 0,
            },
            end: Instant::ZERO + s.duration,
            refusals: s
                .faults
                .iter()
                .map(|(_, fault)| match fault {
                    Fault::RejectHandshakes {
                        status,
                        retry_after,
                        ..
                    } => (*status, *retry_after),
                    _ => (0, None),
                })
                .collect(),
            latency_ns: nanos(s.network.latency),
            jitter_ns: nanos(s.network.jitter),
            bucket_now: 0,
            bucket_end: 0,
        };
        for i in 0..s.clients {
            let at = Instant::from_nanos(world.rng.between(0, nanos(s.ramp)));
            world.push(at, Ev::Open(i));
            if let Some(every) = s.message_every {
                let first = at + Duration::from_nanos(world.rng.between(0, nanos(every)));
                world.push(first, Ev::AppSend(i));
            }
        }
        for (k, (at, _)) in s.faults.iter().enumerate() {
            // A scenario's faults are far fewer than 2^32.
            world.push(Instant::ZERO + *at, Ev::FaultStart(k as u32));
        }
        world
    }

    /// Queue `ev`, keeping the books [`Self::round_trip_is_private`] reads.
    fn push(&mut self, at: Instant, ev: Ev) {
        match ev {
            Ev::Open(i) | Ev::ToServer(i, ..) | Ev::ToClient(i, ..) => {
                self.in_flight[i as usize] += 1;
            }
            Ev::AppSend(i) => {
                if let Some(next) = self.next_send.get_mut(i as usize) {
                    *next = at.as_nanos();
                }
            }
            Ev::FaultStart(_) | Ev::FaultEnd(_) => self.fault_edges.push(Reverse(at.as_nanos())),
            Ev::Timer(_) | Ev::HubTimer => {}
        }
        self.queue.push(at.as_nanos(), ev);
    }

    /// Undo [`Self::push`]'s books for an event that popped.
    fn popped(&mut self, ev: Ev) {
        match ev {
            Ev::Open(i) | Ev::ToServer(i, ..) | Ev::ToClient(i, ..) => {
                self.in_flight[i as usize] -= 1;
            }
            Ev::FaultStart(_) | Ev::FaultEnd(_) => {
                self.fault_edges.pop();
            }
            Ev::AppSend(_) | Ev::Timer(_) | Ev::HubTimer => {}
        }
    }

    /// Whether a pong reaching client `i` at `at` (its ping just sent) would
    /// meet the world as it is now, so that it can be handed over at once
    /// instead of queued: nothing of the client's own is queued before it
    /// (a frame, an application send, its deadline `next`), no fault edge
    /// comes first, and it arrives within the run. What it then meets, and
    /// what it does, is the same as when it pops in its turn: the shared
    /// random stream is not drawn from on a pong, and a pong changes no
    /// client's state, so no metric sees the order.
    fn round_trip_is_private(&self, i: u32, at: u64, next: Option<Instant>) -> bool {
        #[cfg(test)]
        if self.queue_every_round_trip {
            return false;
        }
        let idx = i as usize;
        // Without network jitter many clients' deadlines fall on the same
        // nanosecond, where the queue pops them in the order they were
        // armed; answering at once arms this client's next one earlier in
        // that order. With jitter, such ties do not happen.
        self.jitter_ns > 0
            && at <= self.end.as_nanos()
            && self.in_flight[idx] == 0
            && next.is_none_or(|t| t.as_nanos() > at)
            && self.next_send.get(idx).is_none_or(|t| *t > at)
            && self.fault_edges.peek().is_none_or(|Reverse(t)| *t > at)
    }

    fn bucket_of(&self, t: Instant) -> usize {
        ((t.as_nanos() / nanos(self.metrics.bucket)) as usize).min(self.metrics.connected.len() - 1)
    }

    /// Record `connected` for every bucket that ended before `t`.
    fn advance_buckets(&mut self, t: Instant) {
        if t.as_nanos() < self.bucket_end {
            return;
        }
        let b = self.bucket_of(t);
        while self.bucket_now < b {
            self.metrics.connected[self.bucket_now] = self.open_now;
            self.bucket_now += 1;
        }
        self.bucket_end = if b + 1 < self.metrics.connected.len() {
            (b as u64 + 1).saturating_mul(nanos(self.metrics.bucket))
        } else {
            u64::MAX
        };
    }

    /// Run to the end, calling `on_progress(now, total)` each time virtual
    /// time crosses another hundredth of the duration (at most ~100 calls,
    /// with increasing times), and once with `(total, total)` at the end.
    pub(crate) fn run(mut self, mut on_progress: impl FnMut(Duration, Duration)) -> Metrics {
        let total = self.s.duration;
        let step = nanos(total).div_ceil(PROGRESS_STEPS).max(1);
        // The next point of virtual time worth a report: one comparison per
        // event, a division only when it is crossed.
        let mut next_report = step;
        let mut reported = None;
        while let Some((at, due)) = self.queue.pop() {
            let ev = match due {
                Due::Event(ev) => ev,
                // Each client's deadline is one cancellable timer of the
                // queue, keyed by the client's index; the hub's is keyed
                // one past the last client.
                Due::Timer(i) if i == self.s.clients => Ev::HubTimer,
                Due::Timer(i) => Ev::Timer(i),
            };
            let at = Instant::from_nanos(at);
            if at > self.end {
                break;
            }
            self.popped(ev);
            if at.as_nanos() >= next_report {
                let now = Duration::from_nanos(at.as_nanos());
                on_progress(now, total);
                reported = Some(now);
                next_report = (at.as_nanos() / step)
                    .saturating_add(1)
                    .saturating_mul(step);
            }
            // The next event's client, most likely cold, comes into the
            // cache while this event runs.
            if let Some(next) = self.queue.peek_hint() {
                // (The hub's timer has a key past the clients: no client.)
                if let Some(k) = client_of(next).filter(|k| *k < self.s.clients) {
                    self.clients[k as usize].core.prefetch();
                    self.server.prefetch(k);
                }
            }
            self.advance_buckets(at);
            self.metrics.events += 1;
            self.handle(at, ev);
        }
        if reported != Some(total) {
            on_progress(total, total);
        }
        self.advance_buckets(self.end);
        let last = self.metrics.connected.len() - 1;
        self.metrics.connected[last] = self.open_now;
        self.finish()
    }

    fn handle(&mut self, now: Instant, ev: Ev) {
        match ev {
            Ev::Open(i) => {
                self.clients[i as usize].core.open(now);
                self.settle(i, now);
            }
            Ev::Timer(i) => {
                self.clients[i as usize].core.handle_timeout(now);
                self.settle(i, now);
            }
            Ev::AppSend(i) => {
                let c = &mut self.clients[i as usize];
                // The core numbers messages from 0: an id is the index in `resolved`.
                let msg = Message::binary(Bytes::from_static(&[0; 8]));
                if let Ok(id) = c.core.send(msg, now) {
                    debug_assert_eq!(id.0 as usize, c.resolved.len(), "ids number messages");
                    c.resolved.push(false);
                    self.metrics.messages.sent += 1;
                }
                if let Some(every) = self.s.message_every {
                    self.push(now + every, Ev::AppSend(i));
                }
                self.settle(i, now);
            }
            Ev::ToServer(i, conn, up) => self.server_receives(i, conn, up, now),
            Ev::ToClient(i, conn, down) => self.client_receives(i, conn, down, now),
            Ev::FaultStart(k) => self.fault_starts(k as usize, now),
            Ev::FaultEnd(k) => self.fault_ends(k as usize),
            Ev::HubTimer => {
                self.server.timeout(now);
                self.carry_server_frames(now);
            }
        }
    }

    /// Put what the server wrote on the network, and arm the hub's next
    /// deadline.
    fn carry_server_frames(&mut self, now: Instant) {
        let mut out = self.server.take_out();
        for (i, conn, down, lossy) in out.drain(..) {
            self.send_down(i, conn, down, now, lossy);
        }
        self.server.give_back(out);
        let next = self.server.next_timeout().map(Instant::as_nanos);
        self.queue.set_timer(self.s.clients, next);
    }

    /// One-way delay of a frame.
    fn delay(&mut self) -> u64 {
        let jitter = self.rng.between(0, self.jitter_ns);
        self.latency_ns.saturating_add(jitter)
    }

    /// Send a frame towards the server, unless the network eats it.
    fn send_up(&mut self, i: u32, conn: ConnId, up: Up, now: Instant, lossy: bool) {
        if self.partitioned[i as usize] > 0 || (lossy && self.rng.chance(self.s.network.loss)) {
            return;
        }
        let at = later(now, self.delay());
        self.push(at, Ev::ToServer(i, conn, up));
    }

    fn send_down(&mut self, i: u32, conn: ConnId, down: Down, now: Instant, lossy: bool) {
        if lossy && self.rng.chance(self.s.network.loss) {
            return;
        }
        let at = later(now, self.delay());
        self.push(at, Ev::ToClient(i, conn, down));
    }

    /// After any input to client `i`: perform its transmits, account its
    /// events, and queue its next deadline. A ping whose round trip nothing
    /// can come between (see [`Self::round_trip_is_private`]) is answered
    /// at once, at the time its pong arrives: one event per heartbeat, the
    /// client's memory touched once, and the same answers.
    fn settle(&mut self, i: u32, mut now: Instant) {
        let idx = i as usize;
        let queued = loop {
            let Some((at, conn, payload, hub_quiet)) = self.settle_once(i, now) else {
                break None;
            };
            let next = self.clients[idx].core.poll_timeout();
            let private = hub_quiet
                && self.clients[idx].core.state() == State::Open
                && self.round_trip_is_private(i, at.as_nanos(), next);
            if !private {
                break Some((at, conn, payload));
            }
            if !self.pong_reaches(idx, conn) {
                break None;
            }
            self.clients[idx].core.handle_transport(
                conn,
                TransportEvent::Pong(pong_payload(payload)),
                at,
            );
            now = at;
        };
        // Moved (or disarmed) in place: nothing left behind to pop stale.
        // Armed before the round trip is queued, as they always were.
        let next = self.clients[idx].core.poll_timeout();
        self.queue.set_timer(i, next.map(Instant::as_nanos));
        if let Some((at, conn, payload)) = queued {
            self.push(at, Ev::ToClient(i, conn, Down::PingRoundTrip(payload)));
        }
    }

    /// Whether the server answers a ping of `conn` and its pong reaches
    /// client `idx`: the server is up and holds that connection, and the
    /// client is not cut off.
    fn pong_reaches(&self, idx: usize, conn: ConnId) -> bool {
        self.partitioned[idx] == 0 && self.server.holds(idx as u32, conn)
    }

    /// [`Self::settle`]'s one round: the transmits and events, and the
    /// round trip of a ping that went out, that the server answered and
    /// whose pong is not lost (when its pong would arrive, and whether it
    /// returns before any ping of the hub's could). The caller arms the
    /// next deadline.
    fn settle_once(&mut self, i: u32, now: Instant) -> Option<(Instant, ConnId, [u8; 8], bool)> {
        let idx = i as usize;
        let mut round_trip = None;
        while let Some(t) = self.clients[idx].core.poll_transmit() {
            match t {
                Transmit::Connect { conn, .. } => {
                    let b = self.bucket_of(now);
                    self.metrics.attempts[b] += 1;
                    self.send_up(i, conn, Up::Connect, now, false);
                }
                Transmit::Send { conn, id, .. } => {
                    // The local TCP stack takes it at once.
                    self.clients[idx]
                        .core
                        .handle_transport(conn, TransportEvent::Written(id), now);
                    self.send_up(i, conn, Up::Data(id.0), now, true);
                }
                Transmit::Ping { conn, payload } => {
                    // Heartbeats dominate a fleet's events: one event per
                    // round trip, unless the hub must see the ping in its turn.
                    let up_lost = self.rng.chance(self.s.network.loss);
                    let down_lost = !up_lost && self.rng.chance(self.s.network.loss);
                    if self.partitioned[idx] > 0 || up_lost {
                        continue;
                    }
                    let there = later(now, self.delay());
                    let seen = self.server.ping_departs(i, conn, there);
                    self.carry_server_frames(now);
                    match seen {
                        PingSeen::InItsTurn => {
                            self.push(there, Ev::ToServer(i, conn, Up::Ping(payload, down_lost)));
                        }
                        PingSeen::Unanswered => {}
                        PingSeen::Answered(_) if down_lost => {}
                        PingSeen::Answered(hub_next) => {
                            let at = later(there, self.delay());
                            // The hub does nothing on this session (no
                            // ping, no reap) before the pong is back.
                            let hub_quiet = hub_next.is_none_or(|next| at < next);
                            if let Some((at, conn, payload, _)) =
                                round_trip.replace((at, conn, payload, hub_quiet))
                            {
                                // A second ping in one round: the first queued.
                                self.push(at, Ev::ToClient(i, conn, Down::PingRoundTrip(payload)));
                            }
                        }
                    }
                }
                Transmit::Close { conn, .. } => self.send_up(i, conn, Up::Close, now, false),
                // The reset travels like a frame, not through a partition,
                // and takes the longest delay: it never overtakes a frame
                // sent before it on that connection.
                Transmit::Abort { conn } => {
                    if self.partitioned[idx] == 0 {
                        let at = later(now, self.latency_ns.saturating_add(self.jitter_ns));
                        self.push(at, Ev::ToServer(i, conn, Up::Reset));
                    }
                }
                Transmit::SendControl { .. } => {}
            }
        }
        while let Some(ev) = self.clients[idx].core.poll_event() {
            self.account(i, ev, now);
        }
        round_trip
    }

    fn account(&mut self, i: u32, ev: Event, now: Instant) {
        match ev {
            Event::StateChanged { from, to } => {
                if from == State::Open {
                    self.open_now -= 1;
                }
                if to == State::Open {
                    self.open_now += 1;
                }
                if to == State::Failed {
                    self.metrics.failed_clients += 1;
                }
                self.track_recoveries(now);
            }
            Event::Reconnecting {
                cause: Cause::HeartbeatTimeout,
                ..
            } => {
                if let Some(since) = self.clients[i as usize].partitioned_since.take() {
                    self.metrics.detection.push(now - since);
                }
            }
            Event::Outcome { id, outcome } => {
                if outcome == Outcome::Acked {
                    self.metrics.messages.acked += 1;
                }
                self.resolve(i, id);
            }
            Event::Failed { undelivered, .. } | Event::Closed { undelivered, .. } => {
                for (id, _) in undelivered {
                    self.resolve(i, id);
                }
            }
            _ => {}
        }
    }

    fn resolve(&mut self, i: u32, id: MessageId) {
        if let Some(r) = self.clients[i as usize].resolved.get_mut(id.0 as usize) {
            *r = true;
        }
    }

    fn track_recoveries(&mut self, now: Instant) {
        for (r, dipped) in &mut self.recoveries {
            if r.after.is_some() {
                continue;
            }
            if self.open_now < r.target {
                *dipped = true;
            } else if *dipped {
                r.after = Some(now - (Instant::ZERO + r.at));
            }
        }
    }

    fn server_receives(&mut self, i: u32, conn: ConnId, up: Up, now: Instant) {
        match up {
            Up::Connect => {
                if self.server.connect(i, conn, now) {
                    let b = self.bucket_of(now);
                    self.metrics.accepts[b] += 1;
                }
            }
            Up::Data(seq) => self.server.data(i, conn, seq, now),
            Up::Close | Up::CloseReply => self.server.closed(i, conn, up, now),
            Up::Pong => {
                self.server.ping_arrives(i, conn, now);
            }
            Up::Reset => self.server.transport_lost(i, conn, now),
            Up::Ping(payload, down_lost) => {
                if self.server.ping_arrives(i, conn, now) && !down_lost {
                    let at = later(now, self.delay());
                    self.push(at, Ev::ToClient(i, conn, Down::PingRoundTrip(payload)));
                }
            }
        }
        self.carry_server_frames(now);
    }

    fn client_receives(&mut self, i: u32, conn: ConnId, down: Down, now: Instant) {
        let idx = i as usize;
        if self.partitioned[idx] > 0 {
            return; // blackholed
        }
        let c = &mut self.clients[idx].core;
        let event = match down {
            Down::Opened => TransportEvent::Opened(Handshake::default()),
            Down::Refused => TransportEvent::HandshakeFailed(HandshakeError::Unreachable),
            Down::Rejected(why) => {
                let (status, retry_after) = match why {
                    Refusal::RateLimit => (503, self.s.server.rate_limit_retry_after),
                    Refusal::Fault(k) => self.refusals[k as usize],
                    Refusal::Hub(status, ms) => {
                        (status, ms.map(|ms| Duration::from_millis(u64::from(ms))))
                    }
                };
                TransportEvent::HandshakeFailed(HandshakeError::Http {
                    status,
                    retry_after,
                })
            }
            Down::PingRoundTrip(p) => {
                // As `pong_reaches` (the partition was looked at above).
                if !self.server.holds(i, conn) {
                    return;
                }
                TransportEvent::Pong(pong_payload(p))
            }
            Down::Ping => {
                // The transport answers the hub's ping by itself.
                if c.conn() == Some(conn) {
                    c.handle_transport(conn, TransportEvent::Ping(Bytes::new()), now);
                    self.send_up(i, conn, Up::Pong, now, true);
                }
                return self.settle(i, now);
            }
            Down::Ack(seq) => {
                if c.conn() == Some(conn) {
                    let _ = c.ack(MessageId(seq), now);
                }
                return self.settle(i, now);
            }
            Down::Closed(code) => TransportEvent::Closed {
                code,
                reason: String::new(),
            },
            Down::Reset => TransportEvent::Error(TransportError::Reset),
        };
        // The transport answers the server's close frame by itself.
        let answer_close = matches!(event, TransportEvent::Closed { .. }) && c.conn() == Some(conn);
        c.handle_transport(conn, event, now);
        if answer_close {
            self.send_up(i, conn, Up::CloseReply, now, false);
        }
        self.settle(i, now);
    }

    fn fault_starts(&mut self, k: usize, now: Instant) {
        let (at, fault) = self.s.faults[k].clone();
        // A fault that strikes while an earlier one is still being recovered
        // from aims at the same, earlier number of open clients.
        let pending = self
            .recoveries
            .iter()
            .filter(|(r, _)| r.after.is_none())
            .map(|(r, _)| r.target)
            .max()
            .unwrap_or(0);
        self.recoveries.push((
            Recovery {
                at,
                target: self.open_now.max(pending),
                after: None,
            },
            false,
        ));
        match fault {
            Fault::Restart { down } => {
                self.server.restart();
                self.carry_server_frames(now);
                self.server.down += 1;
                self.push(now + down, Ev::FaultEnd(k as u32));
            }
            Fault::CloseAll { code, down } => {
                self.server.close_all(code, now);
                self.carry_server_frames(now);
                self.server.down += 1;
                self.push(now + down, Ev::FaultEnd(k as u32));
            }
            Fault::RejectHandshakes {
                status,
                retry_after,
                duration,
            } => {
                self.server.rejects.push((k, status, retry_after));
                self.push(now + duration, Ev::FaultEnd(k as u32));
            }
            Fault::Partition { duration, .. } => {
                for idx in 0..self.partition_size(k) {
                    self.partitioned[idx] += 1;
                    if self.partitioned[idx] == 1 {
                        let open = self.clients[idx].core.state() == State::Open;
                        self.clients[idx].partitioned_since = open.then_some(now);
                    }
                }
                self.push(now + duration, Ev::FaultEnd(k as u32));
            }
            Fault::ResetAll => {
                self.server.reset_all(now);
                self.carry_server_frames(now);
            }
        }
    }

    /// How many clients (the first ones by index) partition fault `k` cuts off.
    fn partition_size(&self, k: usize) -> usize {
        let n = self.clients.len();
        match &self.s.faults[k].1 {
            // Clamped: -inf cuts off nobody, +inf everyone, and NaN nobody
            // (its casts end at 0).
            Fault::Partition { fraction, .. } => {
                ((fraction.clamp(0.0, 1.0) * n as f64).ceil() as usize).min(n)
            }
            _ => 0,
        }
    }

    /// Undo fault `k`'s own effect; overlapping faults keep theirs.
    fn fault_ends(&mut self, k: usize) {
        match &self.s.faults[k].1 {
            Fault::Restart { .. } | Fault::CloseAll { .. } => {
                self.server.down = self.server.down.saturating_sub(1);
            }
            Fault::RejectHandshakes { .. } => self.server.rejects.retain(|(j, ..)| *j != k),
            Fault::Partition { .. } => {
                for idx in 0..self.partition_size(k) {
                    self.partitioned[idx] = self.partitioned[idx].saturating_sub(1);
                    if self.partitioned[idx] == 0 {
                        self.clients[idx].partitioned_since = None;
                    }
                }
            }
            Fault::ResetAll => {}
        }
    }

    fn finish(mut self) -> Metrics {
        let mut m = self.metrics;
        m.recoveries = self
            .recoveries
            .iter()
            .map(|(r, dipped)| Recovery {
                after: if *dipped {
                    r.after
                } else {
                    Some(Duration::ZERO)
                },
                ..*r
            })
            .collect();
        m.detection.sort_unstable();
        // Every accepted message is delivered, still held, or lost.
        let (mut delivered, mut receptions, mut pending, mut lost) = (0, 0, 0, 0);
        for (client, counts) in self.clients.iter().zip(&self.server.received) {
            receptions += counts.iter().map(|n| u64::from(*n)).sum::<u64>();
            for (id, resolved) in client.resolved.iter().enumerate() {
                if counts.get(id).is_some_and(|n| *n > 0) {
                    delivered += 1;
                } else if *resolved {
                    lost += 1;
                } else {
                    pending += 1;
                }
            }
        }
        m.messages.delivered = delivered;
        m.messages.pending = pending;
        m.messages.lost = lost;
        m.messages.duplicated = receptions - delivered;
        m.server = self.server.counts;
        self.clients.clear();
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{NetworkModel, ServerModel};
    use proptest::prelude::*;
    use steadfast_core::CloseCode;
    use steadfast_core::{Config, Delivery, HeartbeatConfig, Jitter, OutboxConfig, RetryConfig};
    use steadfast_hub::{HubConfig, LivenessConfig};

    /// The scenario's metrics with private round trips answered at once
    /// (as a run does) and with every round trip queued.
    fn both_ways(s: &Scenario) -> (Metrics, Metrics) {
        let at_once = World::new(s).run(|_, _| {});
        let mut world = World::new(s);
        world.queue_every_round_trip = true;
        (at_once, world.run(|_, _| {}))
    }

    fn any_fault() -> impl Strategy<Value = Fault> {
        let secs = |s: u64| Duration::from_secs(s);
        prop_oneof![
            (0..30u64).prop_map(move |d| Fault::Restart { down: secs(d) }),
            (0..10u64).prop_map(move |d| Fault::CloseAll {
                code: CloseCode::SERVICE_RESTART,
                down: secs(d)
            }),
            (prop_oneof![Just(401u16), Just(429), Just(503)], 1..40u64).prop_map(
                move |(status, d)| Fault::RejectHandshakes {
                    status,
                    retry_after: Some(secs(d / 4)),
                    duration: secs(d),
                }
            ),
            (0.0..=1.0f64, 1..60u64).prop_map(move |(fraction, d)| Fault::Partition {
                fraction,
                duration: secs(d),
            }),
            Just(Fault::ResetAll),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Answering a private round trip at once is only a shortcut: over
        /// heartbeats, network, delivery, messages, server and faults, every
        /// metric but the event count is what queueing each pong gives.
        #[test]
        fn answering_private_round_trips_at_once_changes_no_metric(
            clients in 1..40u32,
            seed: u64,
            interval_ms in 200..40_000u64,
            pong_ms in 100..15_000u64,
            latency_ms in 0..400u64,
            jitter_ms in 0..300u64,
            loss in prop_oneof![Just(0.0), 0.0..0.2f64],
            message_ms in prop::option::of(50..5_000u64),
            at_least_once: bool,
            full_jitter: bool,
            ack: bool,
            accept_rate in prop::option::of(1..20u32),
            hub_ping_ms in 10..60_000u64,
            hub_reap_ms in 10..20_000u64,
            faults in prop::collection::vec((0..240u64, any_fault()), 0..4),
        ) {
            let ms = Duration::from_millis;
            let config = Config::builder()
                .heartbeat(HeartbeatConfig {
                    interval: ms(interval_ms),
                    pong_timeout: ms(pong_ms),
                    ..Default::default()
                })
                .retry(RetryConfig {
                    jitter: if full_jitter { Jitter::Full } else { Jitter::None },
                    ..Default::default()
                })
                .outbox(OutboxConfig {
                    delivery: if at_least_once { Delivery::AtLeastOnce } else { Delivery::AtMostOnce },
                    ..Default::default()
                })
                .build();
            prop_assume!(config.is_ok());
            let mut s = Scenario::new(clients, config.expect("valid"))
                .seed(seed)
                .duration(Duration::from_secs(240))
                .network(NetworkModel { latency: ms(latency_ms), jitter: ms(jitter_ms), loss })
                .server(ServerModel {
                    hub: HubConfig {
                        liveness: LivenessConfig {
                            interval: ms(hub_ping_ms),
                            timeout: ms(hub_reap_ms),
                        },
                        ..HubConfig::default()
                    },
                    ack,
                    accept_rate,
                    ..Default::default()
                });
            if let Some(every) = message_ms {
                s = s.messages_every(ms(every));
            }
            for (at, fault) in faults {
                s = s.fault(Duration::from_secs(at), fault);
            }
            let (mut at_once, queued) = both_ways(&s);
            prop_assert!(at_once.events <= queued.events);
            at_once.events = queued.events;
            prop_assert_eq!(at_once, queued);
        }
    }

    #[test]
    fn a_steady_fleet_answers_its_heartbeats_in_one_event_each() {
        // Liveness of the shortcut: without faults or messages nearly every
        // round trip is private, so the run has about half the events.
        let config = Config::builder()
            .heartbeat(HeartbeatConfig {
                interval: Duration::from_secs(30),
                pong_timeout: Duration::from_secs(10),
                ..Default::default()
            })
            .build()
            .expect("valid");
        // A server that pings less often than its clients is never first.
        let mut server = ServerModel::default();
        server.hub.liveness.interval = Duration::from_secs(60);
        let s = Scenario::new(100, config)
            .seed(1)
            .duration(Duration::from_secs(3600))
            .server(server);
        let (mut at_once, queued) = both_ways(&s);
        // 100 clients x 120 heartbeats, each a deadline and a round trip
        // when queued: nearly every round trip is answered at once.
        assert!(queued.events > 2 * 100 * 110, "{}", queued.events);
        assert!(
            queued.events - at_once.events > 100 * 110,
            "{} of {}",
            at_once.events,
            queued.events
        );
        at_once.events = queued.events;
        assert_eq!(at_once, queued);
    }

    #[test]
    fn an_event_stays_32_bytes() {
        // The queue moves events by value: each byte counts at 100,000 clients.
        assert!(size_of::<Ev>() <= 32, "{}", size_of::<Ev>());
    }

    #[test]
    fn pong_payload_echoes_the_ping_inside_and_beyond_the_static_table() {
        for n in [
            0u64,
            1,
            255,
            256,
            STATIC_NONCES as u64 - 1,
            STATIC_NONCES as u64,
            u64::MAX,
        ] {
            let ping = n.to_be_bytes();
            assert_eq!(pong_payload(ping).as_ref(), &ping[..], "nonce {n}");
        }
    }
}
