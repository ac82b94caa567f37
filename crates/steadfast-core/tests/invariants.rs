//! Property tests: random sequences of commands, transport events (including
//! stale connection ids) and time steps, under random configurations, keep
//! every invariant of DESIGN.md, and the same inputs give the same outputs.
#![allow(clippy::unwrap_used)]

mod support;

use core::time::Duration;
use proptest::prelude::*;
use steadfast_core::*;
use support::Checker;

#[derive(Debug, Clone)]
enum Ev {
    Opened,
    HandshakeFailed(u8, u16, Option<u16>),
    Message,
    Ping,
    /// Answer the latest ping (true) or send a foreign pong.
    Pong(bool),
    /// Confirm the n-th message sent on the transport.
    Written(usize),
    Closed(u16),
    Error(u8),
}

#[derive(Debug, Clone)]
enum Op {
    Open,
    Send(usize, Option<u16>),
    Ack(usize),
    Close(u16),
    SetOnline(bool),
    AuthAccept,
    AuthReject,
    /// Deliver to the live transport, or to a stale one.
    Transport(bool, Ev),
    Advance(u32),
    AdvanceToDeadline,
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        3 => Just(Ev::Opened),
        1 => (0u8..5, prop::sample::select(vec![401u16, 403, 404, 429, 500, 503]), prop::option::of(0u16..120))
            .prop_map(|(k, s, r)| Ev::HandshakeFailed(k, s, r)),
        2 => Just(Ev::Message),
        1 => Just(Ev::Ping),
        2 => any::<bool>().prop_map(Ev::Pong),
        3 => (0usize..8).prop_map(Ev::Written),
        1 => prop::sample::select(vec![1000u16, 1001, 1002, 1006, 1008, 1009, 1011, 1012, 1013, 4000, 4999])
            .prop_map(Ev::Closed),
        1 => (0u8..4).prop_map(Ev::Error),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Open),
        4 => (0usize..40, prop::option::of(1u16..20_000)).prop_map(|(l, t)| Op::Send(l, t)),
        2 => (0usize..16).prop_map(Op::Ack),
        1 => prop::sample::select(vec![1000u16, 1001, 1006, 4000]).prop_map(Op::Close),
        1 => any::<bool>().prop_map(Op::SetOnline),
        1 => Just(Op::AuthAccept),
        1 => Just(Op::AuthReject),
        8 => (prop::bool::weighted(0.85), ev()).prop_map(|(live, e)| Op::Transport(live, e)),
        3 => (0u32..40_000).prop_map(Op::Advance),
        1 => prop::sample::select(vec![120_000u32, 3_600_000, u32::MAX]).prop_map(Op::Advance),
        4 => Just(Op::AdvanceToDeadline),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        any::<u64>(),
        (
            any::<bool>(),
            any::<bool>(),
            1usize..6,
            1usize..6,
            8usize..80,
        ),
        (
            prop::option::of(1u32..5),
            0u8..4,
            prop::option::of((1u32..4, any::<bool>())),
            any::<bool>(),
            any::<bool>(),
        ),
        (0u8..3, 0u32..3, any::<bool>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(seed, (alo, drop_oldest, max_messages, in_flight, max_bytes), r, h)| {
                let (max_attempts, jitter, window, fail_fast, never) = r;
                let (mode, tolerated, fixed, auth, suspend) = h;
                let heartbeat = HeartbeatConfig {
                    mode: match mode {
                        0 => HeartbeatMode::WebSocketPing,
                        1 => HeartbeatMode::Passive,
                        _ => HeartbeatMode::AppLevel {
                            ping: Message::static_text("ping"),
                            pong: PongMatcher::Equals(Bytes::from_static(b"pong")),
                            forward_pongs: false,
                        },
                    },
                    interval: Duration::from_secs(10),
                    pong_timeout: Duration::from_secs(4),
                    tolerated_missed: tolerated,
                    schedule: if fixed {
                        PingSchedule::Fixed
                    } else {
                        PingSchedule::WhenQuiet
                    },
                    any_frame_is_liveness: true,
                };
                let retry = RetryConfig {
                    max_attempts,
                    jitter: [
                        Jitter::None,
                        Jitter::Full,
                        Jitter::Equal,
                        Jitter::Decorrelated,
                    ][jitter as usize],
                    window: window.map(|(n, fail)| WindowBudget {
                        max_attempts: n,
                        window: Duration::from_secs(30),
                        on_exhausted: if fail {
                            OnWindowExhausted::Fail
                        } else {
                            OnWindowExhausted::Wait
                        },
                    }),
                    first_connect: if fail_fast {
                        FirstConnect::FailFast
                    } else {
                        FirstConnect::Retry
                    },
                    reconnect: if never {
                        Reconnect::Never
                    } else {
                        Reconnect::Always
                    },
                    ..Default::default()
                };
                let outbox = OutboxConfig {
                    max_messages,
                    max_bytes,
                    max_in_flight: in_flight,
                    overflow: if drop_oldest {
                        Overflow::DropOldest
                    } else {
                        Overflow::RejectNew
                    },
                    default_ttl: None,
                    delivery: if alo {
                        Delivery::AtLeastOnce
                    } else {
                        Delivery::AtMostOnce
                    },
                };
                let mut b = Config::builder()
                    .seed(seed)
                    .heartbeat(heartbeat)
                    .retry(retry)
                    .outbox(outbox);
                if auth {
                    b = b.auth(AuthConfig {
                        message: Some(Message::static_text("auth")),
                        ..Default::default()
                    });
                }
                if !suspend {
                    b = b.suspend(None);
                }
                b.build().unwrap()
            },
        )
}

/// Runs `ops` against a fresh client, asserting the invariants after every
/// step. Returns the output trace.
fn run(config: &Config, ops: &[Op]) -> Vec<String> {
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
                checker.on_open();
                client.open(now);
            }
            Op::Send(len, ttl) => {
                let msg = Message::binary(vec![7u8; *len]);
                let ttl = ttl.map(|ms| Duration::from_millis(u64::from(ms)));
                if let Ok(id) = client.send_with_ttl(msg, ttl, now) {
                    checker.on_accepted(id);
                    accepted.push(id);
                }
            }
            Op::Ack(n) => {
                if let Some(id) = accepted.get(*n % accepted.len().max(1)) {
                    let _ = client.ack(*id, now);
                }
            }
            Op::Close(code) => {
                if client.close(CloseCode(*code), "bye", now).is_ok() {
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
                        Ev::Opened => TransportEvent::Opened,
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
                            reason: "x".into(),
                        },
                        Ev::Error(k) => TransportEvent::Error(
                            [
                                TransportError::Reset,
                                TransportError::Protocol,
                                TransportError::MessageTooBig,
                                TransportError::InvalidUtf8,
                            ][*k as usize],
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
    assert!(checker.unresolved() == client.stats().queue_len);
    checker.trace
}

proptest! {
    // 768 cases by default; PROPTEST_CASES=N runs more.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(768),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_inputs_keep_every_invariant(config in config(), ops in prop::collection::vec(op(), 1..120)) {
        run(&config, &ops);
    }

    #[test]
    fn same_seed_and_inputs_give_identical_outputs(config in config(), ops in prop::collection::vec(op(), 1..80)) {
        prop_assert_eq!(run(&config, &ops), run(&config, &ops));
    }
}
