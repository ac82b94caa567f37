//! The simulated server: a real [`steadfast_hub::Hub`] (sessions by user,
//! duplicate logins replaced, silent sessions pinged and reaped, graceful
//! shutdown) behind the admission policy a scenario sets (an accept rate,
//! handshake refusals), with an application that acknowledges every
//! message. What it writes is collected for the world to carry.

use crate::metrics::ServerCounts;
use crate::scenario::ServerModel;
use core::time::Duration;
use std::collections::HashMap;
use steadfast_core::{Bytes, CloseCode, ConnId, Instant, Message};
use steadfast_hub::{Action, Hub, HubConfig, HubEvent, LeaveReason, Outbound, SessionId, Verdict};

/// A frame on its way from a client to the server.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Up {
    Connect,
    Data(u64),
    /// The client closes the connection (the server answers).
    Close,
    /// The client's answer to the server's close frame: the transport ends.
    CloseReply,
    /// The client's transport answers a ping of the hub.
    Pong,
    /// The client's ping, when the hub must see it arrive (it has a
    /// deadline of that session's due first): its payload, and whether its
    /// pong will be lost on the way back.
    Ping([u8; 8], bool),
    /// The client dropped the connection: its reset.
    Reset,
}

/// What the server does with a client's ping, told when it departs.
pub(crate) enum PingSeen {
    /// The hub saw it arrive (nothing of its own on that session comes
    /// first) and the server answers it; until the time given (if any) the
    /// hub does nothing more on that session by itself.
    Answered(Option<Instant>),
    /// Nobody answers it: the server does not hold that connection.
    Unanswered,
    /// The hub has a deadline of that session's due before the ping
    /// arrives: deliver the ping then, in its turn.
    InItsTurn,
}

/// A frame on its way from the server to a client.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Down {
    Opened,
    Refused,
    /// An HTTP refusal, its status and `Retry-After` looked up when it
    /// arrives (kept out of the event, which stays 32 bytes).
    Rejected(Refusal),
    /// A ping's whole round trip in one event: answered if, when it returns,
    /// the server is up and still holds the connection.
    PingRoundTrip([u8; 8]),
    /// The hub pings a silent session.
    Ping,
    Ack(u64),
    Closed(CloseCode),
    Reset,
}

/// Why the server refused a handshake with an HTTP status.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refusal {
    /// Over the accept rate: 503 with the server model's `Retry-After`.
    RateLimit,
    /// Fault `k`, a [`Fault::RejectHandshakes`](crate::Fault), is in force.
    Fault(u32),
    /// The hub refused it (shutting down, full, a duplicate it rejects):
    /// its status and `Retry-After` in milliseconds.
    Hub(u16, Option<u32>),
}

pub(crate) struct Server {
    /// Faults currently holding the server down (up when zero).
    pub(crate) down: u32,
    config: HubConfig,
    hub: Hub<u32>,
    /// Per client, the connection the server holds for it and its session.
    current: Vec<Option<(ConnId, SessionId)>>,
    /// Every session the hub knows: whose, over which connection.
    owners: HashMap<SessionId, (u32, ConnId)>,
    /// Handshake refusals in force, by fault index; the latest applies.
    pub(crate) rejects: Vec<(usize, u16, Option<Duration>)>,
    /// (second, accepts in it) for the rate limit.
    rate_window: (u64, u32),
    accept_rate: Option<u32>,
    ack: bool,
    /// How often the application received each message, per client, by id.
    pub(crate) received: Vec<Vec<u32>>,
    /// What the hub did to its sessions so far.
    pub(crate) counts: ServerCounts,
    /// Frames written and not yet taken by the world: to which client, over
    /// which connection, what, and whether the network may lose it.
    out: Vec<(u32, ConnId, Down, bool)>,
}

impl Server {
    /// A server for `clients` clients; its hub is seeded from `seed` unless
    /// the model's hub config has a seed of its own.
    pub(crate) fn new(clients: usize, model: &ServerModel, seed: u64) -> Self {
        let mut config = model.hub.clone();
        config.seed.get_or_insert(seed);
        let hub = fresh_hub(&config);
        Server {
            down: 0,
            config,
            hub,
            current: vec![None; clients],
            owners: HashMap::new(),
            rejects: Vec::new(),
            rate_window: (0, 0),
            accept_rate: model.accept_rate,
            ack: model.ack,
            received: vec![Vec::new(); clients],
            counts: ServerCounts::default(),
            out: Vec::new(),
        }
    }

    /// What the server wrote since the last call, in order; hand the
    /// emptied vector back with [`Self::give_back`] (no allocation per call).
    pub(crate) fn take_out(&mut self) -> Vec<(u32, ConnId, Down, bool)> {
        core::mem::take(&mut self.out)
    }

    pub(crate) fn give_back(&mut self, out: Vec<(u32, ConnId, Down, bool)>) {
        if self.out.is_empty() {
            self.out = out;
        }
    }

    /// Whether the server is up and holds `conn` as client `i`'s connection.
    pub(crate) fn holds(&self, i: u32, conn: ConnId) -> bool {
        self.session(i, conn).is_some()
    }

    /// Start bringing what the server keeps of client `i` into the cache.
    pub(crate) fn prefetch(&self, i: u32) {
        prefetch_index::prefetch_index(&self.current, i as usize);
    }

    /// When the hub must next look at its sessions.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.hub.poll_timeout()
    }

    /// The hub's deadlines up to `now`: pings, reaps, close timeouts.
    pub(crate) fn timeout(&mut self, now: Instant) {
        self.hub.handle_timeout(now);
        self.pump(now);
    }

    /// A handshake of client `i` over `conn` arrived; returns whether it
    /// was upgraded to a session of the hub. Otherwise it was refused (the
    /// answer is written), or it was a late handshake of a connection the
    /// client already gave up (the newer one stays, nothing is answered).
    pub(crate) fn connect(&mut self, i: u32, conn: ConnId, now: Instant) -> bool {
        let idx = i as usize;
        let refusal = if self.down > 0 {
            self.out.push((i, conn, Down::Refused, false));
            return false;
        } else if let Some(&(k, ..)) = self.rejects.last() {
            Some(Refusal::Fault(k as u32))
        } else if self.rate_limited(now) {
            Some(Refusal::RateLimit)
        } else {
            None
        };
        if let Some(why) = refusal {
            self.out.push((i, conn, Down::Rejected(why), false));
            return false;
        }
        if self.current[idx].is_some_and(|(c, _)| c >= conn) {
            return false;
        }
        let verdict = Verdict::accept(i);
        if let Err(rejection) = self.hub.check(&verdict) {
            let retry_after = rejection
                .retry_after
                .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX));
            let why = Refusal::Hub(rejection.status, retry_after);
            self.out.push((i, conn, Down::Rejected(why), false));
            return false;
        }
        let session = self.hub.open(verdict, now);
        self.owners.insert(session, (i, conn));
        self.current[idx] = Some((conn, session));
        self.out.push((i, conn, Down::Opened, false));
        self.pump(now);
        true
    }

    fn rate_limited(&mut self, now: Instant) -> bool {
        let Some(limit) = self.accept_rate else {
            return false;
        };
        let second = now.as_nanos() / 1_000_000_000;
        if self.rate_window.0 != second {
            self.rate_window = (second, 0);
        }
        if self.rate_window.1 >= limit {
            return true;
        }
        self.rate_window.1 += 1;
        false
    }

    /// The session of client `i`'s connection `conn`, if the server is up
    /// and holds it.
    fn session(&self, i: u32, conn: ConnId) -> Option<SessionId> {
        if self.down > 0 {
            return None;
        }
        match self.current[i as usize] {
            Some((c, session)) if c == conn => Some(session),
            _ => None,
        }
    }

    /// A data message of client `i` arrived: the application reads it.
    pub(crate) fn data(&mut self, i: u32, conn: ConnId, seq: u64, now: Instant) {
        if let Some(session) = self.session(i, conn) {
            let msg = Message::binary(seq_bytes(seq));
            self.hub.received(session, msg, now);
            self.pump(now);
        }
    }

    /// A ping of client `i` departs now and will reach the server at
    /// `arrives`. Unless the hub has something of its own due on that
    /// session first, it is shown the ping now, as of `arrives`: nothing
    /// else can reach that session before then (a frame of the client's
    /// would have departed earlier, and faults are edges of their own).
    pub(crate) fn ping_departs(&mut self, i: u32, conn: ConnId, arrives: Instant) -> PingSeen {
        let Some(session) = self.session(i, conn) else {
            return PingSeen::Unanswered;
        };
        if self
            .hub
            .deadline_of(session)
            .is_some_and(|due| due <= arrives)
        {
            return PingSeen::InItsTurn;
        }
        let written = self.out.len();
        let live = self.hub.alive(session, arrives);
        // A sign of life only moves deadlines: it writes nothing (which
        // would otherwise leave before the ping arrived).
        self.pump(arrives);
        debug_assert_eq!(self.out.len(), written, "a sign of life wrote frames");
        if live {
            PingSeen::Answered(self.hub.deadline_of(session))
        } else {
            PingSeen::Unanswered
        }
    }

    /// A ping of client `i`, or its answer to a ping of the hub's, arrives
    /// now: a sign of life. Returns whether the server answers a ping.
    pub(crate) fn ping_arrives(&mut self, i: u32, conn: ConnId, now: Instant) -> bool {
        let Some(session) = self.session(i, conn) else {
            return false;
        };
        let live = self.hub.alive(session, now);
        self.pump(now);
        live
    }

    /// Client `i` closed `conn` (the server answers with its own close
    /// frame), or answered the server's: the transport ends.
    pub(crate) fn closed(&mut self, i: u32, conn: ConnId, up: Up, now: Instant) {
        if let Some(session) = self.session(i, conn) {
            self.forget(session);
            self.hub.closed(session, Some(CloseCode::NORMAL), now);
            if matches!(up, Up::Close) {
                self.out
                    .push((i, conn, Down::Closed(CloseCode::NORMAL), false));
            }
            self.pump(now);
        }
    }

    /// Client `i`'s reset of `conn` reached the server.
    pub(crate) fn transport_lost(&mut self, i: u32, conn: ConnId, now: Instant) {
        if let Some(session) = self.session(i, conn) {
            self.forget(session);
            self.hub.closed(session, None, now);
            self.pump(now);
        }
    }

    fn forget(&mut self, session: SessionId) {
        if let Some((i, conn)) = self.owners.remove(&session) {
            let current = &mut self.current[i as usize];
            if *current == Some((conn, session)) {
                *current = None;
            }
        }
    }

    /// The process dies: every transport is reset, and the hub starts over
    /// (down until the fault ends).
    pub(crate) fn restart(&mut self) {
        let _ = self.reset_everyone();
        self.hub = fresh_hub(&self.config);
    }

    /// The server closes every session with `code` at once, then the process
    /// exits and starts over (down until the fault ends).
    pub(crate) fn close_all(&mut self, code: CloseCode, now: Instant) {
        self.hub.shutdown(code, Duration::ZERO, now);
        self.hub.handle_timeout(now);
        self.pump(now);
        self.owners.clear();
        self.current.iter_mut().for_each(|c| *c = None);
        self.hub = fresh_hub(&self.config);
    }

    /// Every transport is reset (a load balancer dies); the hub sees each
    /// one end.
    pub(crate) fn reset_all(&mut self, now: Instant) {
        for session in self.reset_everyone() {
            self.hub.closed(session, None, now);
        }
        self.pump(now);
    }

    /// A reset to every client the server holds a transport of; returns
    /// their sessions, in order.
    fn reset_everyone(&mut self) -> Vec<SessionId> {
        let mut held: Vec<(SessionId, (u32, ConnId))> = self.owners.drain().collect();
        // In session order (the hub numbers sessions as they open), not the map's.
        held.sort_unstable_by_key(|(session, _)| *session);
        for &(_, (i, conn)) in &held {
            self.out.push((i, conn, Down::Reset, false));
        }
        self.current.iter_mut().for_each(|c| *c = None);
        held.into_iter().map(|(session, _)| session).collect()
    }

    /// Carry out what the hub asks and let the application handle what it
    /// reports, until neither has more.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut busy = false;
            while let Some(action) = self.hub.poll_action() {
                busy = true;
                match action {
                    Action::Wake(session) => self.write(session, now),
                    Action::Abort(session) => {
                        if let Some((i, conn)) = self.owners.get(&session).copied() {
                            self.forget(session);
                            self.out.push((i, conn, Down::Reset, false));
                        }
                    }
                }
            }
            while let Some(event) = self.hub.poll_event() {
                busy = true;
                match event {
                    HubEvent::Message { session, msg, .. } => {
                        self.app_receives(session, &msg);
                    }
                    HubEvent::Left { reason, .. } => match reason {
                        LeaveReason::Reaped => self.counts.reaped += 1,
                        LeaveReason::Replaced => self.counts.replaced += 1,
                        LeaveReason::Shutdown => self.counts.shut_down += 1,
                        _ => {}
                    },
                    _ => {}
                }
            }
            if !busy {
                return;
            }
        }
    }

    /// Write what the hub hands out for `session`.
    fn write(&mut self, session: SessionId, now: Instant) {
        let Some(&(i, conn)) = self.owners.get(&session) else {
            // Gone from the world (reset): take its frames, write nothing.
            while self.hub.next_outbound(session, now).is_some() {}
            return;
        };
        while let Some(out) = self.hub.next_outbound(session, now) {
            let frame = match out {
                Outbound::Ping(_) => {
                    self.counts.pings += 1;
                    (Down::Ping, true)
                }
                Outbound::Message(m) => match seq_of(&m) {
                    Some(seq) => (Down::Ack(seq), true),
                    None => continue,
                },
                Outbound::Close { code, .. } => (Down::Closed(code), false),
            };
            self.out.push((i, conn, frame.0, frame.1));
        }
    }

    /// The application: count the message, and acknowledge it if the model
    /// says so.
    fn app_receives(&mut self, session: SessionId, msg: &Message) {
        let (Some(seq), Some(&(i, _))) = (seq_of(msg), self.owners.get(&session)) else {
            return;
        };
        let counts = &mut self.received[i as usize];
        let slot = seq as usize;
        if counts.len() <= slot {
            counts.resize(slot + 1, 0);
        }
        counts[slot] = counts[slot].saturating_add(1);
        if self.ack {
            // Routing to a live session cannot fail; a closing one takes nothing.
            let _ = self
                .hub
                .send_to_session(session, Message::binary(seq_bytes(seq)));
        }
    }
}

/// A hub with no sessions. A config the hub refuses is replaced by the
/// default one (with its seed), which it accepts.
fn fresh_hub(config: &HubConfig) -> Hub<u32> {
    match Hub::new(config.clone(), Instant::ZERO) {
        Ok(hub) => hub,
        Err(_) => fresh_hub(&HubConfig {
            seed: config.seed,
            ..HubConfig::default()
        }),
    }
}

/// A message id as the 8 big-endian bytes of a message.
fn seq_bytes(seq: u64) -> Bytes {
    Bytes::copy_from_slice(&seq.to_be_bytes())
}

fn seq_of(msg: &Message) -> Option<u64> {
    let bytes: [u8; 8] = msg.payload().get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use steadfast_hub::LivenessConfig;

    fn server(interval: u64, timeout: u64) -> Server {
        let mut model = ServerModel::default();
        model.hub.liveness = LivenessConfig {
            interval: Duration::from_secs(interval),
            timeout: Duration::from_secs(timeout),
        };
        Server::new(1, &model, 1)
    }

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn a_ping_the_hub_would_see_after_its_own_deadline_is_delivered_in_its_turn() {
        let mut s = server(30, 15);
        let conn = ConnId(1);
        assert!(s.connect(0, conn, at(0)));
        // Silent for 30 s: the hub pings, and will reap at 45 s.
        s.timeout(at(30_000));
        assert!(s.take_out().iter().any(|f| matches!(f.2, Down::Ping)));
        // A ping leaving at 44.95 s arrives at 45.05 s: after the reap, so
        // the hub must not see it early.
        assert!(matches!(
            s.ping_departs(0, conn, at(45_050)),
            PingSeen::InItsTurn
        ));
        s.timeout(at(45_000));
        assert!(!s.holds(0, conn), "reaped at its bound");
        assert_eq!(s.counts.reaped, 1);
        assert!(!s.ping_arrives(0, conn, at(45_050)), "too late");
    }

    #[test]
    fn a_ping_arriving_before_the_hubs_deadline_is_seen_at_once_as_of_its_arrival() {
        let mut s = server(30, 15);
        let conn = ConnId(1);
        assert!(s.connect(0, conn, at(0)));
        // Seen as of 29 s: the hub's next look at that session is its ping
        // at 59 s, which the caller gets to bound what it hands over early.
        assert!(matches!(
            s.ping_departs(0, conn, at(29_000)),
            PingSeen::Answered(Some(next)) if next == at(59_000)
        ));
        // Seen as of 29 s: nothing is due on that session until 59 s.
        s.timeout(at(58_999));
        assert!(s.take_out().iter().all(|f| !matches!(f.2, Down::Ping)));
        assert!(s.holds(0, conn));
    }
}
