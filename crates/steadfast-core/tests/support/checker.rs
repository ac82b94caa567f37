//! Asserts DESIGN.md's invariants over the outputs of one client.

use std::collections::BTreeMap;
use steadfast_core::*;

#[derive(Debug, Default)]
pub struct Checker {
    /// The transport the client may be using, by the outputs seen so far.
    live: Option<ConnId>,
    last_conn: Option<ConnId>,
    /// After close(): no Connect until open().
    closed_by_app: bool,
    last_now: Instant,
    /// Terminal outcomes per accepted id (0 while the message is held).
    outcomes: BTreeMap<MessageId, u32>,
    /// Last id sent on each connection.
    last_sent: BTreeMap<ConnId, MessageId>,
    /// Highest id ever transmitted (at-most-once never re-sends).
    highest_sent: Option<MessageId>,
    /// The full trace, for determinism checks.
    pub trace: Vec<String>,
}

impl Checker {
    pub fn on_now(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
    }

    pub fn on_open(&mut self) {
        self.closed_by_app = false;
    }

    pub fn on_close(&mut self, client: &Client) {
        if !matches!(client.state(), State::Failed) {
            self.closed_by_app = true;
        }
    }

    pub fn on_accepted(&mut self, id: MessageId) {
        assert!(
            self.outcomes.insert(id, 0).is_none(),
            "id {id} handed out twice"
        );
    }

    /// A transport event was delivered for `conn` while it was the client's live one.
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
    }

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
                    assert!(*attempt <= max, "attempt {attempt} beyond budget {max}");
                }
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

    pub fn on_event(&mut self, ev: &Event, config: &Config) {
        self.trace.push(format!("E {ev:?}"));
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
            Event::Reconnecting {
                delay,
                advised,
                circuit_open,
                ..
            } => {
                let r = config.retry();
                if advised.is_none() && !circuit_open {
                    assert!(
                        *delay >= r.min_delay && *delay <= r.max_delay,
                        "delay {delay:?} outside bounds"
                    );
                }
            }
            _ => {}
        }
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
        let held = self.outcomes.values().filter(|n| **n == 0).count();
        assert_eq!(held, stats.queue_len, "messages neither held nor resolved");
        if matches!(client.state(), State::Closed | State::Failed) {
            assert_eq!(client.poll_timeout(), None, "deadline left after the end");
            assert_eq!(client.conn(), None, "transport left after the end");
        }
    }

    /// Drain a client's outputs through the checks.
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
        self.after_step(client);
        (transmits, events)
    }

    pub fn unresolved(&self) -> usize {
        self.outcomes.values().filter(|n| **n == 0).count()
    }
}
