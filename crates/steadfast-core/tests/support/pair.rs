//! A client and a scripted peer on a virtual clock. Time jumps to the next
//! client deadline or peer delivery; nothing sleeps.

use core::time::Duration;
use std::collections::BTreeMap;
use steadfast_core::check::Checker;
use steadfast_core::*;

/// How the peer treats the network right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMode {
    /// Accepts connections, answers pings, echoes and acks per its settings.
    Up,
    /// Refuses connections (the server is down).
    Down,
    /// Swallows everything in both directions, answers nothing (a dead link).
    Blackhole,
    /// Refuses the handshake with an HTTP status.
    Reject {
        status: u16,
        retry_after: Option<Duration>,
    },
}

#[derive(Debug, Clone)]
enum Action {
    Deliver(ConnId, TransportEvent),
    /// The server's ack for a message arrives over `conn`.
    Ack(ConnId, MessageId),
}

pub struct Pair {
    pub client: Client,
    pub now: Instant,
    pub mode: PeerMode,
    /// One-way latency.
    pub latency: Duration,
    pub echo: bool,
    pub auto_ack: bool,
    /// How long the server takes to process a message before acking it.
    pub ack_delay: Duration,
    pub answer_pings: bool,
    /// The application-level pong the peer answers an app-level ping with.
    pub app_pong: Option<Message>,
    /// Messages the server received, by id, in arrival order.
    pub received: Vec<MessageId>,
    pub received_control: Vec<Message>,
    pub transmits: Vec<(Instant, Transmit)>,
    pub events: Vec<(Instant, Event)>,
    pub checker: Checker,
    scheduled: BTreeMap<(Instant, u64), Action>,
    seq: u64,
    /// Transports the peer holds open.
    open: Vec<ConnId>,
}

impl Pair {
    pub fn new(config: Config) -> Self {
        Pair {
            client: Client::new(config, Instant::ZERO),
            now: Instant::ZERO,
            mode: PeerMode::Up,
            latency: Duration::from_millis(10),
            echo: false,
            auto_ack: true,
            ack_delay: Duration::ZERO,
            answer_pings: true,
            app_pong: None,
            received: Vec::new(),
            received_control: Vec::new(),
            transmits: Vec::new(),
            events: Vec::new(),
            checker: Checker::default(),
            scheduled: BTreeMap::new(),
            seq: 0,
            open: Vec::new(),
        }
    }

    pub fn open(&mut self) {
        self.checker.on_open(&self.client);
        self.client.open(self.now);
        self.drive();
    }

    /// Send `text` with the config's default TTL, and let the pair run on.
    pub fn send(&mut self, text: &str) -> Result<MessageId, SendError> {
        let id = self.client.send(Message::text(text.to_owned()), self.now)?;
        Ok(self.accepted(id))
    }

    /// [`Pair::send`] with this time to live instead.
    pub fn send_with_ttl(
        &mut self,
        text: &str,
        ttl: Option<Duration>,
    ) -> Result<MessageId, SendError> {
        let id = self
            .client
            .send_with_ttl(Message::text(text.to_owned()), ttl, self.now)?;
        Ok(self.accepted(id))
    }

    /// Tell the checker of an accepted message, and drive.
    fn accepted(&mut self, id: MessageId) -> MessageId {
        self.checker.on_accepted(id);
        self.drive();
        id
    }

    pub fn close(&mut self, code: CloseCode) {
        self.client
            .close(code, "bye", self.now)
            .expect("close from an open state");
        self.checker.on_close(&self.client);
        self.drive();
    }

    pub fn set_online(&mut self, online: bool) {
        self.client.set_online(online, self.now);
        self.drive();
    }

    /// The live transport breaks now with `ev` (reset, close frame, ...).
    pub fn inject(&mut self, ev: TransportEvent) {
        let conn = self.client.conn().expect("a live transport to break");
        self.open.retain(|c| *c != conn);
        self.deliver(conn, ev);
        self.drive();
    }

    /// The peer sends `ev` on the live transport now (a message, a ping).
    pub fn peer_sends(&mut self, ev: TransportEvent) {
        let conn = self.client.conn().expect("a live transport");
        self.deliver(conn, ev);
        self.drive();
    }

    /// The server restarts: live transports reset, the server is down for `down`.
    pub fn restart_server(&mut self, down: Duration) {
        for conn in std::mem::take(&mut self.open) {
            self.schedule(
                Duration::ZERO,
                Action::Deliver(conn, TransportEvent::Error(TransportError::Reset)),
            );
        }
        self.mode = PeerMode::Down;
        let back = self.now + down;
        self.run_until(back);
        self.mode = PeerMode::Up;
    }

    pub fn state(&self) -> State {
        self.client.state()
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Process deliveries and deadlines up to `until`, jumping time.
    pub fn run_until(&mut self, until: Instant) {
        self.drive();
        loop {
            let next_delivery = self.scheduled.keys().next().map(|(t, _)| *t);
            let next = [self.client.poll_timeout(), next_delivery]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => self.step_to(t),
                _ => break,
            }
        }
        self.now = self.now.max(until);
        self.checker.on_now(self.now);
        self.client.handle_timeout(self.now);
        self.drive();
    }

    fn step_to(&mut self, t: Instant) {
        self.now = self.now.max(t);
        self.checker.on_now(self.now);
        while let Some(entry) = self.scheduled.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            match entry.remove() {
                Action::Deliver(conn, ev) => self.deliver(conn, ev),
                Action::Ack(conn, id) => {
                    if self.client.conn() == Some(conn) {
                        let _ = self.client.ack(id, self.now);
                    }
                }
            }
            self.drive();
        }
        self.client.handle_timeout(self.now);
        self.drive();
    }

    fn deliver(&mut self, conn: ConnId, ev: TransportEvent) {
        let live = self.client.conn();
        self.checker.on_delivered(conn, &ev, live);
        self.client.handle_transport(conn, ev, self.now);
    }

    fn schedule(&mut self, after: Duration, action: Action) {
        self.seq += 1;
        self.scheduled.insert((self.now + after, self.seq), action);
    }

    /// Perform every transmit the client wants and record every event.
    pub fn drive(&mut self) {
        loop {
            let (transmits, events) = self.checker.drain(&mut self.client);
            for e in events {
                self.events.push((self.now, e));
            }
            if transmits.is_empty() {
                break;
            }
            for t in transmits {
                self.transmits.push((self.now, t.clone()));
                self.peer_handles(t);
            }
        }
    }

    fn peer_handles(&mut self, t: Transmit) {
        let (l, rtt) = (self.latency, self.latency * 2);
        let up = self.mode == PeerMode::Up;
        match t {
            Transmit::Connect { conn, .. } => match self.mode.clone() {
                PeerMode::Up => {
                    self.open.push(conn);
                    self.schedule(
                        rtt,
                        Action::Deliver(conn, TransportEvent::Opened(Handshake::default())),
                    );
                }
                PeerMode::Down => self.schedule(
                    l,
                    Action::Deliver(
                        conn,
                        TransportEvent::HandshakeFailed(HandshakeError::Unreachable),
                    ),
                ),
                PeerMode::Reject {
                    status,
                    retry_after,
                } => self.schedule(
                    rtt,
                    Action::Deliver(
                        conn,
                        TransportEvent::HandshakeFailed(HandshakeError::Http {
                            status,
                            retry_after,
                        }),
                    ),
                ),
                PeerMode::Blackhole => {}
            },
            Transmit::Send { conn, id, msg } => {
                self.schedule(
                    Duration::ZERO,
                    Action::Deliver(conn, TransportEvent::Written(id)),
                );
                if up && self.open.contains(&conn) {
                    self.received.push(id);
                    if self.echo {
                        self.schedule(rtt, Action::Deliver(conn, TransportEvent::Message(msg)));
                    }
                    if self.auto_ack {
                        self.schedule(rtt + self.ack_delay, Action::Ack(conn, id));
                    }
                }
            }
            Transmit::SendControl { conn, msg } => {
                if up && self.open.contains(&conn) {
                    self.received_control.push(msg);
                    if let Some(pong) = self.app_pong.clone() {
                        self.schedule(rtt, Action::Deliver(conn, TransportEvent::Message(pong)));
                    }
                }
            }
            Transmit::Ping { conn, payload } => {
                if up && self.answer_pings && self.open.contains(&conn) {
                    let pong = TransportEvent::Pong(Bytes::copy_from_slice(&payload));
                    self.schedule(rtt, Action::Deliver(conn, pong));
                }
            }
            Transmit::Close { conn, code, reason } => {
                if up && self.open.contains(&conn) {
                    self.open.retain(|c| *c != conn);
                    self.schedule(
                        rtt,
                        Action::Deliver(conn, TransportEvent::Closed { code, reason }),
                    );
                }
            }
            Transmit::Abort { conn } => self.open.retain(|c| *c != conn),
        }
    }

    /// Events recorded so far that match `f`.
    pub fn events_where(&self, f: impl Fn(&Event) -> bool) -> Vec<(Instant, Event)> {
        self.events.iter().filter(|(_, e)| f(e)).cloned().collect()
    }

    pub fn connects(&self) -> usize {
        self.transmits
            .iter()
            .filter(|(_, t)| matches!(t, Transmit::Connect { .. }))
            .count()
    }

    /// When the client first scheduled a reconnect for a cause matching `f`.
    pub fn reconnect_at(&self, f: impl Fn(&Cause) -> bool) -> Option<Instant> {
        self.events.iter().find_map(|(t, e)| match e {
            Event::Reconnecting { cause, .. } if f(cause) => Some(*t),
            _ => None,
        })
    }

    /// When the client last reached `state`.
    pub fn last_entered(&self, state: State) -> Option<Instant> {
        self.events
            .iter()
            .rev()
            .find(|(_, e)| matches!(e, Event::StateChanged { to, .. } if *to == state))
            .map(|(t, _)| *t)
    }
}
