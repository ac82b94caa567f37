//! Behaviour of the whole client against a scripted peer on a virtual clock.
#![allow(clippy::unwrap_used)]

mod support;

use core::time::Duration;
use steadfast_core::*;
use support::{Pair, PeerMode};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config() -> ConfigBuilder {
    Config::builder().seed(1).heartbeat(HeartbeatConfig {
        interval: secs(10),
        pong_timeout: secs(5),
        ..Default::default()
    })
}

fn at_least_once() -> OutboxConfig {
    OutboxConfig {
        delivery: Delivery::AtLeastOnce,
        ..Default::default()
    }
}

fn pair(builder: ConfigBuilder) -> Pair {
    Pair::new(builder.build().unwrap())
}

fn opened_pair(builder: ConfigBuilder) -> Pair {
    let mut p = pair(builder);
    p.open();
    p.run_for(ms(100));
    assert_eq!(p.state(), State::Open);
    p
}

fn failed_error(p: &Pair) -> Error {
    p.events
        .iter()
        .find_map(|(_, e)| match e {
            Event::Failed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .expect("a Failed event")
}

fn reconnect_causes(p: &Pair) -> Vec<Cause> {
    p.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Reconnecting { cause, .. } => Some(cause.clone()),
            _ => None,
        })
        .collect()
}

fn outcomes(p: &Pair) -> Vec<(MessageId, Outcome)> {
    outcomes_of(p.events.iter().map(|(_, e)| e))
}

/// The outcomes among `events`, in order.
fn outcomes_of<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<(MessageId, Outcome)> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Outcome { id, outcome } => Some((*id, outcome.clone())),
            _ => None,
        })
        .collect()
}

/// Accept `text`, hand it to the transport, and break the link before its
/// write is confirmed; its id.
fn lose_in_flight(p: &mut Pair, text: &str) -> MessageId {
    let id = p.send(text).unwrap();
    // The peer confirms the write only as time runs: the link breaks first.
    p.inject(TransportEvent::Error(TransportError::Reset));
    id
}

// --- lifecycle -------------------------------------------------------------

#[test]
fn messages_queued_while_connecting_flush_in_send_order_once_open() {
    let mut p = pair(config());
    p.open();
    let ids: Vec<_> = (0..5).map(|i| p.send(&format!("m{i}")).unwrap()).collect();
    assert_eq!(p.state(), State::Connecting);
    p.run_for(ms(100));
    assert_eq!(p.received, ids);
    assert_eq!(p.client.stats().written, 5);
}

#[test]
fn sends_before_open_wait_in_idle_and_flush_after_open() {
    let mut p = pair(config());
    let id = p.send("early").unwrap();
    assert_eq!(p.state(), State::Idle);
    assert_eq!(p.connects(), 0);
    p.open();
    p.run_for(ms(100));
    assert_eq!(p.received, [id]);
}

#[test]
fn stale_connection_events_change_nothing() {
    let mut p = opened_pair(config());
    let old = p.client.conn().unwrap();
    p.inject(TransportEvent::Error(TransportError::Reset));
    p.run_for(secs(2));
    let new = p.client.conn().unwrap();
    assert!(new > old);
    let before = format!("{:?} {:?}", p.client.state(), p.client.stats());
    for ev in [
        TransportEvent::Opened(Handshake::default()),
        TransportEvent::Error(TransportError::Reset),
        TransportEvent::Closed {
            code: CloseCode(1008),
            reason: "stale".into(),
        },
        TransportEvent::Message(Message::text("stale")),
        TransportEvent::Written(MessageId(0)),
    ] {
        p.client.handle_transport(old, ev, p.now);
    }
    p.drive();
    assert_eq!(
        format!("{:?} {:?}", p.client.state(), p.client.stats()),
        before
    );
    assert!(
        p.events_where(|e| matches!(e, Event::Message(_)))
            .is_empty()
    );
}

#[test]
fn connect_timeout_aborts_the_attempt_and_counts_it() {
    let mut p = pair(config().connect_timeout(secs(3)));
    p.mode = PeerMode::Blackhole;
    p.open();
    p.run_for(secs(3));
    let conn = support_first_conn(&p);
    assert!(
        p.transmits
            .iter()
            .any(|(t, x)| *x == Transmit::Abort { conn } && *t == Instant::from_secs(3))
    );
    assert_eq!(reconnect_causes(&p), [Cause::ConnectTimeout]);
    p.mode = PeerMode::Up;
    p.run_for(secs(60));
    assert_eq!(p.state(), State::Open);
    assert!(
        p.transmits
            .iter()
            .any(|(_, t)| matches!(t, Transmit::Connect { attempt: 2, .. }))
    );
}

fn support_first_conn(p: &Pair) -> ConnId {
    p.transmits
        .iter()
        .find_map(|(_, t)| match t {
            Transmit::Connect { conn, .. } => Some(*conn),
            _ => None,
        })
        .unwrap()
}

// --- handshake outcomes ----------------------------------------------------

#[test]
fn unauthorized_handshake_is_fatal_without_retry() {
    let mut p = pair(config());
    p.mode = PeerMode::Reject {
        status: 401,
        retry_after: None,
    };
    p.send("kept").unwrap();
    p.open();
    p.run_for(secs(120));
    assert_eq!(p.state(), State::Failed);
    assert_eq!(p.connects(), 1);
    assert_eq!(failed_error(&p), Error::Unauthorized { status: 401 });
    let undelivered = p.events.iter().find_map(|(_, e)| match e {
        Event::Failed { undelivered, .. } => Some(undelivered.len()),
        _ => None,
    });
    assert_eq!(undelivered, Some(1), "the queued message is handed back");
}

#[test]
fn service_unavailable_with_retry_after_is_not_retried_before_it() {
    let mut p = pair(config());
    p.mode = PeerMode::Reject {
        status: 503,
        retry_after: Some(secs(20)),
    };
    p.open();
    p.run_for(ms(100));
    p.mode = PeerMode::Up;
    p.run_for(secs(60));
    let connects: Vec<Instant> = p
        .transmits
        .iter()
        .filter(|(_, t)| matches!(t, Transmit::Connect { .. }))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(connects.len(), 2);
    assert!(connects[1] - connects[0] >= secs(20), "{connects:?}");
    let advised = p.events.iter().find_map(|(_, e)| match e {
        Event::Reconnecting { advised, .. } => *advised,
        _ => None,
    });
    assert_eq!(advised, Some(secs(20)));
}

#[test]
fn too_many_requests_waits_at_least_the_try_again_later_floor() {
    let retry = RetryConfig {
        try_again_later_floor: secs(15),
        ..Default::default()
    };
    let mut p = pair(config().retry(retry));
    p.mode = PeerMode::Reject {
        status: 429,
        retry_after: None,
    };
    p.open();
    p.run_for(ms(100));
    let delay = p.events.iter().find_map(|(_, e)| match e {
        Event::Reconnecting { delay, .. } => Some(*delay),
        _ => None,
    });
    assert!(delay.unwrap() >= secs(15));
}

#[test]
fn unreachable_server_is_retried_with_growing_backoff() {
    let retry = RetryConfig {
        jitter: Jitter::None,
        min_delay: Duration::ZERO,
        ..Default::default()
    };
    let mut p = pair(config().retry(retry));
    p.mode = PeerMode::Down;
    p.open();
    p.run_for(secs(40));
    let delays: Vec<u64> = p
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Reconnecting { delay, .. } => Some(delay.as_secs()),
            _ => None,
        })
        .collect();
    assert_eq!(&delays[..5], [1, 2, 4, 8, 16]);
}

#[test]
fn tls_failure_is_fatal_by_default_and_retryable_when_configured() {
    let mut p = pair(config());
    p.open();
    let conn = p.client.conn().unwrap();
    p.client.handle_transport(
        conn,
        TransportEvent::HandshakeFailed(HandshakeError::Tls),
        p.now,
    );
    p.drive();
    assert_eq!(failed_error(&p), Error::Tls);

    let retry = RetryConfig {
        tls_failure_is_fatal: false,
        ..Default::default()
    };
    let mut p = pair(config().retry(retry));
    p.open();
    let conn = p.client.conn().unwrap();
    p.client.handle_transport(
        conn,
        TransportEvent::HandshakeFailed(HandshakeError::Tls),
        p.now,
    );
    p.drive();
    assert_eq!(p.state(), State::Backoff);
}

// --- heartbeat ---------------------------------------------------------------

#[test]
fn reconnects_after_blackhole_within_interval_plus_pong_timeout() {
    let mut p = opened_pair(config());
    let dead_at = p.now;
    p.mode = PeerMode::Blackhole;
    p.run_for(secs(16));
    let detected = p
        .reconnect_at(|c| *c == Cause::HeartbeatTimeout)
        .expect("dead peer detected");
    assert!(
        detected - dead_at <= secs(15),
        "took {:?}",
        detected - dead_at
    );
    p.mode = PeerMode::Up;
    p.run_for(secs(60));
    assert_eq!(p.state(), State::Open);
    assert_eq!(p.client.stats().reconnects, 1);
}

#[test]
fn inbound_traffic_counts_as_liveness_so_a_chatty_link_is_never_pinged() {
    let mut p = opened_pair(config());
    for _ in 0..10 {
        p.run_for(secs(5));
        p.peer_sends(TransportEvent::Message(Message::text("tick")));
    }
    assert!(
        !p.transmits
            .iter()
            .any(|(_, t)| matches!(t, Transmit::Ping { .. }))
    );
    assert_eq!(p.state(), State::Open);
}

#[test]
fn pong_round_trips_are_reported_as_rtt_samples() {
    let mut p = opened_pair(config());
    p.latency = ms(40);
    p.run_for(secs(11));
    let rtt = p.events.iter().find_map(|(_, e)| match e {
        Event::Rtt(r) => Some(*r),
        _ => None,
    });
    assert_eq!(rtt.map(|r| r.last), Some(ms(80)));
    assert_eq!(p.client.stats().rtt.map(|r| r.min), Some(ms(80)));
}

/// Open a bare client with a 10 s + 5 s heartbeat that tolerates no miss,
/// send its first ping, and feed the pong `late` after the pong deadline
/// (with no `handle_timeout` in between). Whether it is still open after.
fn open_after_a_pong_fed_late(late: Duration) -> bool {
    let hb = HeartbeatConfig {
        interval: secs(10),
        pong_timeout: secs(5),
        tolerated_missed: 0,
        ..Default::default()
    };
    let (mut c, conn) = support::open_client(Config::builder().heartbeat(hb).build().unwrap());
    let ping_due = c.poll_timeout().unwrap();
    c.handle_timeout(ping_due);
    let payload = std::iter::from_fn(|| c.poll_transmit())
        .find_map(|t| match t {
            Transmit::Ping { payload, .. } => Some(payload),
            _ => None,
        })
        .expect("a ping");
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, ping_due + secs(5), "the pong deadline is next");
    let pong = TransportEvent::Pong(Bytes::copy_from_slice(&payload));
    c.handle_transport(conn, pong, deadline + late);
    c.state() == State::Open
}

#[test]
fn a_pong_fed_within_the_read_grace_after_its_deadline_still_counts() {
    assert!(open_after_a_pong_fed_late(READ_GRACE / 2));
    assert!(open_after_a_pong_fed_late(READ_GRACE));
    assert!(
        !open_after_a_pong_fed_late(READ_GRACE + ms(1)),
        "a pong later than the grace came after its deadline"
    );
}

#[test]
fn application_level_heartbeat_sends_the_configured_ping_and_recognises_the_pong() {
    let hb = HeartbeatConfig {
        mode: HeartbeatMode::AppLevel {
            ping: Message::static_text(r#"{"type":"ping"}"#),
            pong: PongMatcher::Contains(Bytes::from_static(br#""type":"pong""#)),
            forward_pongs: false,
        },
        interval: secs(10),
        pong_timeout: secs(5),
        ..Default::default()
    };
    let mut p = opened_pair(Config::builder().heartbeat(hb));
    p.app_pong = Some(Message::text(r#"{"type":"pong"}"#));
    p.run_for(secs(60));
    assert_eq!(
        p.state(),
        State::Open,
        "answered app pings keep the link up"
    );
    assert!(p.received_control.len() >= 5);
    assert!(
        p.events_where(|e| matches!(e, Event::Message(_)))
            .is_empty(),
        "pongs consumed"
    );
    assert!(!p.events_where(|e| matches!(e, Event::Rtt(_))).is_empty());
    assert!(
        !p.transmits
            .iter()
            .any(|(_, t)| matches!(t, Transmit::Ping { .. }))
    );

    p.app_pong = None;
    p.run_for(secs(16));
    assert_eq!(reconnect_causes(&p), [Cause::HeartbeatTimeout]);
}

#[test]
fn passive_mode_stays_up_while_the_server_pings_and_reconnects_when_it_falls_silent() {
    let hb = HeartbeatConfig {
        mode: HeartbeatMode::Passive,
        interval: secs(10),
        pong_timeout: secs(5),
        ..Default::default()
    };
    let mut p = opened_pair(Config::builder().heartbeat(hb));
    for _ in 0..6 {
        p.run_for(secs(8));
        p.peer_sends(TransportEvent::Ping(Bytes::new()));
    }
    assert_eq!(p.state(), State::Open);
    assert!(
        !p.transmits
            .iter()
            .any(|(_, t)| matches!(t, Transmit::Ping { .. }))
    );
    let silent_from = p.now;
    p.run_for(secs(16));
    let detected = p.reconnect_at(|_| true).unwrap();
    assert_eq!(detected - silent_from, secs(15));
}

#[test]
fn tolerated_missed_pongs_extend_detection_by_one_pong_timeout_each() {
    let hb = HeartbeatConfig {
        interval: secs(10),
        pong_timeout: secs(5),
        tolerated_missed: 2,
        ..Default::default()
    };
    let mut p = opened_pair(Config::builder().heartbeat(hb));
    let start = p.now;
    p.mode = PeerMode::Blackhole;
    p.run_for(secs(40));
    let detected = p.reconnect_at(|c| *c == Cause::HeartbeatTimeout).unwrap();
    // Silent since the handshake, just before `start`: 10 s + 3 × 5 s.
    assert!(
        detected - start <= secs(25) && detected - start > secs(24),
        "{:?}",
        detected - start
    );
    let pings = p
        .transmits
        .iter()
        .filter(|(_, t)| matches!(t, Transmit::Ping { .. }))
        .count();
    assert_eq!(pings, 3);
}

// --- suspend ------------------------------------------------------------------

#[test]
fn after_a_suspend_one_probe_ping_decides_instead_of_counting_missed_beats() {
    let mut p = opened_pair(config());
    p.now = p.now + secs(3600); // the laptop slept for an hour
    p.client.handle_timeout(p.now);
    p.drive();
    assert!(
        p.events_where(|e| matches!(e, Event::Suspended { .. }))
            .len()
            == 1
    );
    let probes: Vec<_> = p
        .transmits
        .iter()
        .filter(|(t, x)| *t == p.now && matches!(x, Transmit::Ping { .. }))
        .collect();
    assert_eq!(probes.len(), 1);
    p.run_for(secs(5));
    assert_eq!(
        p.state(),
        State::Open,
        "the answered probe keeps the connection"
    );
    assert!(reconnect_causes(&p).is_empty());

    p.mode = PeerMode::Blackhole;
    p.now = p.now + secs(3600);
    p.client.handle_timeout(p.now);
    p.drive();
    let slept_at = p.now;
    p.run_for(secs(4));
    let detected = p.reconnect_at(|_| true).unwrap();
    assert_eq!(detected - slept_at, SuspendConfig::default().probe_timeout);
}

#[test]
fn a_connect_cut_short_by_a_suspend_is_not_charged_to_the_budget() {
    let retry = RetryConfig {
        max_attempts: Some(1),
        ..Default::default()
    };
    let mut p = pair(config().retry(retry));
    p.mode = PeerMode::Blackhole;
    p.open();
    p.now = p.now + secs(600);
    p.mode = PeerMode::Up;
    p.client.handle_timeout(p.now);
    p.drive();
    p.run_for(secs(1));
    assert_eq!(
        p.state(),
        State::Open,
        "the budget of one attempt was not spent by the sleep"
    );
    assert!(
        p.transmits
            .iter()
            .all(|(_, t)| !matches!(t, Transmit::Connect { attempt: 2, .. }))
    );
}

// --- retry budget and policies ----------------------------------------------------

#[test]
fn a_server_restarting_every_few_seconds_does_not_spend_the_attempt_budget() {
    // The audit's case: max_attempts 3, three 1012 restarts 8 s apart, each
    // reconnect succeeding first time, ended in RetriesExhausted { 3 }.
    let retry = RetryConfig {
        max_attempts: Some(3),
        ..Default::default()
    };
    let mut p = opened_pair(config().retry(retry));
    for _ in 0..8 {
        p.run_for(secs(8));
        restart_once_open(&mut p);
    }
    p.run_for(secs(120));
    assert_eq!(p.state(), State::Open);
    assert!(
        p.events_where(|e| matches!(e, Event::Failed { .. }))
            .is_empty()
    );
    assert_eq!(p.client.stats().reconnects, 8);
}

/// Wait (up to 10 min) until the client is open, then close it with 1012.
fn restart_once_open(p: &mut Pair) {
    for _ in 0..6000 {
        if p.state() == State::Open {
            p.inject(TransportEvent::Closed {
                code: CloseCode::SERVICE_RESTART,
                reason: "restart".into(),
            });
            return;
        }
        p.run_for(ms(100));
    }
    panic!("never reopened: {:?}", p.state());
}

#[test]
fn a_flapping_server_spends_the_short_lived_budget_and_the_error_says_so() {
    let retry = RetryConfig {
        max_attempts: Some(3),
        max_short_lived: Some(4),
        ..Default::default()
    };
    let mut p = opened_pair(config().retry(retry));
    for _ in 0..4 {
        p.run_for(secs(1));
        restart_once_open(&mut p);
    }
    p.run_for(secs(1));
    assert_eq!(
        failed_error(&p),
        Error::RetriesExhausted {
            attempts: 4,
            budget: Budget::ShortLivedConnections,
            last: Cause::Closed {
                code: CloseCode::SERVICE_RESTART,
                reason: "restart".into()
            }
        }
    );
}

#[test]
fn exhausted_attempts_fail_with_the_last_cause_and_hand_back_messages() {
    let retry = RetryConfig {
        max_attempts: Some(3),
        ..Default::default()
    };
    let mut p = pair(config().retry(retry));
    p.mode = PeerMode::Down;
    let a = p.send("a").unwrap();
    let b = p.send("b").unwrap();
    p.open();
    p.run_for(secs(600));
    assert_eq!(p.connects(), 3);
    assert_eq!(
        failed_error(&p),
        Error::RetriesExhausted {
            attempts: 3,
            budget: Budget::FailedAttempts,
            last: Cause::Handshake(HandshakeError::Unreachable)
        }
    );
    let ids: Vec<_> = p
        .events
        .iter()
        .find_map(|(_, e)| match e {
            Event::Failed { undelivered, .. } => {
                Some(undelivered.iter().map(|(id, _)| *id).collect())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(ids, [a, b]);
    assert!(matches!(
        p.client.send(Message::text("late"), p.now),
        Err(SendError::Failed(_))
    ));
}

#[test]
fn a_server_that_accepts_and_drops_keeps_backing_off_until_min_uptime_is_reached() {
    let retry = RetryConfig {
        jitter: Jitter::None,
        min_delay: Duration::ZERO,
        ..Default::default()
    };
    let mut p = opened_pair(config().retry(retry));
    let mut delays = Vec::new();
    for _ in 0..4 {
        p.run_for(secs(1));
        p.inject(TransportEvent::Error(TransportError::Reset));
        let Some((_, Event::Reconnecting { delay, .. })) = p.events.last().cloned() else {
            panic!("expected a reconnect")
        };
        delays.push(delay.as_secs());
        p.run_for(delay + ms(100));
    }
    assert_eq!(delays, [1, 2, 4, 8]);
    p.run_for(secs(20)); // stays up past min_uptime
    p.inject(TransportEvent::Error(TransportError::Reset));
    let Some((_, Event::Reconnecting { delay, attempt, .. })) = p.events.last().cloned() else {
        panic!("expected a reconnect")
    };
    assert_eq!((delay, attempt), (secs(1), 1));
}

#[test]
fn fail_fast_first_connect_gives_up_at_once() {
    let retry = RetryConfig {
        first_connect: FirstConnect::FailFast,
        ..Default::default()
    };
    let mut p = pair(config().retry(retry));
    p.mode = PeerMode::Down;
    p.open();
    p.run_for(secs(60));
    assert_eq!(p.connects(), 1);
    assert!(matches!(failed_error(&p), Error::FirstConnectFailed { .. }));
}

#[test]
fn never_reconnect_policy_fails_at_once_when_the_connection_drops() {
    let retry = RetryConfig {
        reconnect: Reconnect::Never,
        ..Default::default()
    };
    let mut p = opened_pair(config().retry(retry));
    p.inject(TransportEvent::Error(TransportError::Reset));
    p.run_for(secs(60));
    assert_eq!(p.connects(), 1);
    assert_eq!(
        failed_error(&p),
        Error::ReconnectDisabled {
            cause: Cause::Transport(TransportError::Reset)
        }
    );
}

#[test]
fn window_budget_holds_attempts_until_the_window_frees() {
    let retry = RetryConfig {
        window: Some(WindowBudget {
            max_attempts: 3,
            window: secs(60),
            on_exhausted: OnWindowExhausted::Wait,
        }),
        ..Default::default()
    };
    let mut p = pair(config().retry(retry));
    p.mode = PeerMode::Down;
    p.open();
    p.run_for(secs(180));
    let connects: Vec<Instant> = p
        .transmits
        .iter()
        .filter(|(_, t)| matches!(t, Transmit::Connect { .. }))
        .map(|(t, _)| *t)
        .collect();
    for w in connects.windows(4) {
        assert!(w[3] - w[0] >= secs(60), "4 attempts within a minute: {w:?}");
    }
    assert!(
        !p.events_where(|e| matches!(
            e,
            Event::Reconnecting {
                circuit_open: true,
                ..
            }
        ))
        .is_empty()
    );
}

// --- close codes --------------------------------------------------------------------

#[test]
fn service_restart_close_reconnects_soon_within_the_restart_spread() {
    let mut p = opened_pair(config());
    p.inject(TransportEvent::Closed {
        code: CloseCode::SERVICE_RESTART,
        reason: "deploy".into(),
    });
    let Some((_, Event::Reconnecting { delay, .. })) = p.events.last().cloned() else {
        panic!()
    };
    assert!(delay <= RetryConfig::default().restart_spread);
}

#[test]
fn try_again_later_close_waits_at_least_the_floor() {
    let mut p = opened_pair(config());
    p.inject(TransportEvent::Closed {
        code: CloseCode::TRY_AGAIN_LATER,
        reason: String::new(),
    });
    let Some((_, Event::Reconnecting { delay, .. })) = p.events.last().cloned() else {
        panic!()
    };
    assert!(delay >= RetryConfig::default().try_again_later_floor);
}

#[test]
fn policy_violation_close_is_fatal_with_code_and_reason() {
    let mut p = opened_pair(config());
    p.inject(TransportEvent::Closed {
        code: CloseCode::POLICY,
        reason: "bad id".into(),
    });
    p.run_for(secs(60));
    assert_eq!(p.connects(), 1);
    assert_eq!(
        failed_error(&p),
        Error::ClosedByServer {
            code: CloseCode::POLICY,
            reason: "bad id".into()
        }
    );
}

#[test]
fn application_close_codes_follow_the_overridable_table() {
    let table = CloseCodeTable::default().with(4000..=4099, RetryClass::Fatal);
    let mut p = opened_pair(config().close_codes(table));
    p.inject(TransportEvent::Closed {
        code: CloseCode(4001),
        reason: "banned".into(),
    });
    assert_eq!(p.state(), State::Failed);
    let mut p = opened_pair(config());
    p.inject(TransportEvent::Closed {
        code: CloseCode(4001),
        reason: "banned".into(),
    });
    assert_eq!(p.state(), State::Backoff);
}

#[test]
fn oversized_and_invalid_utf8_messages_are_classified_by_their_close_codes() {
    let mut p = opened_pair(config());
    p.inject(TransportEvent::Error(TransportError::MessageTooBig));
    assert_eq!(
        failed_error(&p),
        Error::ProtocolFailure {
            code: CloseCode::TOO_BIG
        }
    );
    let mut p = opened_pair(config());
    p.inject(TransportEvent::Error(TransportError::InvalidUtf8));
    assert_eq!(
        failed_error(&p),
        Error::ProtocolFailure {
            code: CloseCode::INVALID_PAYLOAD
        }
    );
    let mut p = opened_pair(config());
    p.inject(TransportEvent::Error(TransportError::Protocol));
    assert_eq!(p.state(), State::Backoff);
}

// --- outbox -------------------------------------------------------------------------

#[test]
fn at_least_once_survives_a_server_restart_with_nothing_lost_and_order_kept() {
    let mut p = opened_pair(config().outbox(at_least_once()));
    p.latency = ms(50);
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(p.send(&format!("m{i}")).unwrap());
        p.run_for(ms(30));
    }
    p.restart_server(secs(3));
    for i in 20..30 {
        ids.push(p.send(&format!("m{i}")).unwrap());
    }
    p.run_for(secs(60));
    assert_eq!(p.state(), State::Open);
    let acked = p.events_where(|e| {
        matches!(
            e,
            Event::Outcome {
                outcome: Outcome::Acked,
                ..
            }
        )
    });
    assert_eq!(acked.len(), ids.len(), "every message acked exactly once");
    let mut first_seen = Vec::new();
    for id in &p.received {
        if !first_seen.contains(id) {
            first_seen.push(*id);
        }
    }
    assert_eq!(
        first_seen, ids,
        "server saw every message, first deliveries in send order"
    );
    assert_eq!(p.client.stats().queue_len, 0);
}

#[test]
fn at_most_once_reports_in_flight_messages_as_dropped_on_disconnect() {
    let mut p = opened_pair(config());
    let id = lose_in_flight(&mut p, "x");
    assert_eq!(
        outcomes(&p),
        [(id, Outcome::Dropped(DropReason::Disconnected))]
    );
}

#[test]
fn failure_only_outcome_events_report_losses_but_not_deliveries() {
    let outbox = OutboxConfig {
        outcome_events: OutcomeEvents::Failures,
        ..Default::default()
    };
    let mut p = opened_pair(config().outbox(outbox));
    p.send("delivered").unwrap();
    p.run_for(ms(100));
    assert_eq!(p.client.stats().written, 1, "written and counted");
    let lost = lose_in_flight(&mut p, "lost");
    assert_eq!(
        outcomes(&p),
        [(lost, Outcome::Dropped(DropReason::Disconnected))],
        "only the loss is an event"
    );
    assert_eq!(p.client.stats().dropped, 1);
}

#[test]
fn failure_only_outcome_events_hide_acks_and_still_report_expiry() {
    let outbox = OutboxConfig {
        outcome_events: OutcomeEvents::Failures,
        ..at_least_once()
    };
    let mut p = opened_pair(config().outbox(outbox));
    // The scripted peer acks what it receives.
    p.send("acked").unwrap();
    p.run_for(ms(100));
    assert_eq!(p.client.stats().acked, 1, "acked and counted");
    // Offline, a message with a TTL expires before any transport takes it.
    p.set_online(false);
    p.inject(TransportEvent::Error(TransportError::Reset));
    let expiring = p.send_with_ttl("stale soon", Some(secs(5))).unwrap();
    p.run_for(secs(6));
    assert_eq!(
        outcomes(&p),
        [(expiring, Outcome::Expired)],
        "only the expiry is an event"
    );
    assert_eq!(p.client.stats().expired, 1);
}

#[test]
fn queued_messages_expire_after_their_ttl_while_offline() {
    let mut p = pair(config());
    p.set_online(false);
    p.open();
    assert_eq!(p.state(), State::Offline);
    p.send_with_ttl("stale soon", Some(secs(5))).unwrap();
    p.run_for(secs(6));
    assert_eq!(
        p.events_where(|e| matches!(
            e,
            Event::Outcome {
                outcome: Outcome::Expired,
                ..
            }
        ))
        .len(),
        1
    );
    assert_eq!(p.client.stats().expired, 1);
}

#[test]
fn drop_oldest_overflow_reports_each_eviction() {
    let outbox = OutboxConfig {
        max_messages: 2,
        overflow: Overflow::DropOldest,
        ..Default::default()
    };
    let mut p = pair(config().outbox(outbox));
    let first = p.send("1").unwrap();
    p.send("2").unwrap();
    p.send("3").unwrap();
    assert_eq!(
        p.events_where(|e| matches!(e, Event::Outcome { .. }))[0].1,
        Event::Outcome {
            id: first,
            outcome: Outcome::Dropped(DropReason::Overflow)
        }
    );
    assert!(matches!(
        p.client.send(Message::binary(vec![0; 5 << 20]), p.now),
        Err(SendError::TooLarge(_))
    ));
}

// --- auth ----------------------------------------------------------------------------

fn auth_config() -> ConfigBuilder {
    config().auth(AuthConfig {
        message: Some(Message::static_text("token:abc")),
        timeout: secs(5),
    })
}

#[test]
fn auth_message_goes_first_and_the_outbox_waits_for_the_verdict() {
    let mut p = pair(auth_config());
    p.open();
    let id = p.send("after auth").unwrap();
    p.run_for(ms(100));
    assert_eq!(p.state(), State::Authenticating);
    assert_eq!(p.received_control, [Message::static_text("token:abc")]);
    assert!(p.received.is_empty());
    p.client.auth_accepted(p.now).unwrap();
    p.drive();
    assert_eq!(p.state(), State::Open);
    assert_eq!(p.received, [id]);
}

#[test]
fn auth_rejection_is_fatal_and_an_auth_timeout_is_retried() {
    let mut p = pair(auth_config());
    p.open();
    p.run_for(ms(100));
    p.client.auth_rejected("bad token", p.now).unwrap();
    p.drive();
    assert_eq!(
        failed_error(&p),
        Error::AuthRejected {
            reason: "bad token".into()
        }
    );

    let mut p = pair(auth_config());
    p.open();
    p.run_for(secs(6));
    assert_eq!(reconnect_causes(&p), [Cause::AuthTimeout]);
}

#[test]
fn auth_message_can_be_refreshed_per_attempt() {
    let mut p = pair(auth_config());
    p.open();
    p.run_for(ms(100));
    p.client
        .set_auth_message(Some(Message::static_text("token:fresh")))
        .unwrap();
    p.inject(TransportEvent::Error(TransportError::Reset));
    p.run_for(secs(30));
    assert_eq!(
        p.received_control.last(),
        Some(&Message::static_text("token:fresh"))
    );
}

// --- graceful close ----------------------------------------------------------------------

#[test]
fn graceful_close_flushes_then_sends_close_and_never_reconnects() {
    let mut p = opened_pair(config());
    let id = p.client.send(Message::text("last words"), p.now).unwrap();
    p.checker.on_accepted(id);
    p.close(CloseCode::NORMAL);
    let kinds: Vec<_> = p
        .transmits
        .iter()
        .rev()
        .take(2)
        .map(|(_, t)| t.clone())
        .collect();
    assert!(matches!(
        kinds[0],
        Transmit::Close {
            code: CloseCode::NORMAL,
            ..
        }
    ));
    assert!(matches!(kinds[1], Transmit::Send { .. }));
    p.run_for(secs(120));
    assert_eq!(p.state(), State::Closed);
    assert_eq!(p.connects(), 1);
    assert_eq!(p.received, [id]);
    assert!(p.client.poll_timeout().is_none());
}

#[test]
fn close_aborts_when_the_peer_never_answers_within_the_close_timeout() {
    let mut p = opened_pair(config().close_timeout(secs(2)));
    p.mode = PeerMode::Blackhole;
    let start = p.now;
    p.close(CloseCode::GOING_AWAY);
    p.run_for(secs(10));
    assert_eq!(p.last_entered(State::Closed), Some(start + secs(2)));
    let conn = support_first_conn(&p);
    assert!(
        p.transmits
            .iter()
            .any(|(_, t)| *t == Transmit::Abort { conn })
    );
}

#[test]
fn close_before_open_while_backing_off_and_twice_is_well_defined() {
    let mut p = pair(config());
    p.close(CloseCode::NORMAL);
    assert_eq!(p.state(), State::Closed);

    let mut p = pair(config());
    p.mode = PeerMode::Down;
    p.open();
    p.run_for(ms(50));
    assert_eq!(p.state(), State::Backoff);
    p.close(CloseCode::NORMAL);
    p.close(CloseCode::NORMAL);
    p.run_for(secs(120));
    assert_eq!(p.connects(), 1);
    assert_eq!(
        p.events_where(|e| matches!(e, Event::Closed { .. })).len(),
        1
    );

    p.mode = PeerMode::Up;
    p.open();
    p.run_for(ms(100));
    assert_eq!(
        p.state(),
        State::Open,
        "open() after close() connects again"
    );
}

#[test]
fn close_rejects_codes_and_reasons_a_close_frame_cannot_carry() {
    let mut c = Client::new(Config::default(), Instant::ZERO);
    assert_eq!(
        c.close(CloseCode::ABNORMAL, "", Instant::ZERO),
        Err(CloseError::InvalidCode(CloseCode::ABNORMAL))
    );
    let long = "x".repeat(124);
    assert_eq!(
        c.close(CloseCode::NORMAL, &long, Instant::ZERO),
        Err(CloseError::ReasonTooLong(124))
    );
    assert_eq!(c.state(), State::Idle);
}

// --- network hints -----------------------------------------------------------------------

#[test]
fn offline_pauses_reconnects_without_spending_budget_and_online_reconnects_at_once() {
    let retry = RetryConfig {
        max_attempts: Some(2),
        ..Default::default()
    };
    let mut p = pair(config().retry(retry));
    p.mode = PeerMode::Down;
    p.open();
    p.run_for(ms(50));
    assert_eq!(p.state(), State::Backoff);
    p.set_online(false);
    assert_eq!(p.state(), State::Offline);
    p.run_for(secs(3600));
    assert_eq!(p.connects(), 1, "no attempts while offline");
    p.mode = PeerMode::Up;
    p.set_online(true);
    assert_eq!(p.state(), State::Connecting, "no remaining backoff");
    p.run_for(ms(100));
    assert_eq!(p.state(), State::Open);
}

#[test]
fn going_offline_while_connecting_aborts_the_attempt_uncharged() {
    let retry = RetryConfig {
        max_attempts: Some(1),
        ..Default::default()
    };
    let mut p = pair(config().retry(retry));
    p.mode = PeerMode::Blackhole;
    p.open();
    p.set_online(false);
    p.mode = PeerMode::Up;
    p.set_online(true);
    p.run_for(ms(100));
    assert_eq!(p.state(), State::Open);
    assert!(
        p.transmits
            .iter()
            .any(|(_, t)| matches!(t, Transmit::Connect { attempt: 1, .. }))
    );
}

// --- bad calls --------------------------------------------------------------------------

#[test]
fn bad_calls_are_typed_errors_not_panics() {
    let mut c = Client::new(Config::default(), Instant::ZERO);
    assert_eq!(
        c.ack(MessageId(3), Instant::ZERO),
        Err(AckError::NotAtLeastOnce)
    );
    assert_eq!(
        c.auth_accepted(Instant::ZERO),
        Err(StateError { state: State::Idle })
    );
    assert_eq!(
        c.auth_rejected("x", Instant::ZERO),
        Err(StateError { state: State::Idle })
    );
    let mut c = Client::new(
        Config::builder().outbox(at_least_once()).build().unwrap(),
        Instant::ZERO,
    );
    assert_eq!(
        c.ack(MessageId(3), Instant::ZERO),
        Err(AckError::Unknown(MessageId(3)))
    );
}

#[test]
fn time_going_backwards_is_treated_as_the_latest_time_seen() {
    let mut p = opened_pair(config());
    let deadline = p.client.poll_timeout().unwrap();
    p.client.handle_timeout(Instant::ZERO);
    p.drive();
    assert_eq!(p.client.poll_timeout(), Some(deadline));
    assert_eq!(p.state(), State::Open);
}

// --- edge cases found in review ---------------------------------------------------------

#[test]
fn extreme_times_do_not_loop_forever() {
    let hb = HeartbeatConfig {
        tolerated_missed: u32::MAX,
        ..Default::default()
    };
    let mut c = Client::new(
        Config::builder().heartbeat(hb).build().unwrap(),
        Instant::ZERO,
    );
    c.open(Instant::ZERO);
    c.handle_timeout(Instant::MAX);
    let mut transmits = 0;
    while c.poll_transmit().is_some() {
        transmits += 1;
    }
    assert!(transmits < 10, "{transmits} transmits from one input");
    c.handle_timeout(Instant::MAX);
    assert!(c.poll_timeout() >= Some(Instant::MAX) || c.poll_timeout().is_none());
}

#[test]
fn close_right_after_open_withdraws_the_queued_connect() {
    let mut c = Client::new(Config::default(), Instant::ZERO);
    c.open(Instant::ZERO);
    c.close(CloseCode::NORMAL, "", Instant::ZERO).unwrap();
    assert_eq!(
        c.poll_transmit(),
        None,
        "neither Connect nor Abort reaches the adapter"
    );
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn close_timeout_reports_unconfirmed_at_most_once_writes_as_dropped_not_undelivered() {
    let mut p = opened_pair(config().close_timeout(secs(2)));
    p.mode = PeerMode::Blackhole;
    let id = p.client.send(Message::text("x"), p.now).unwrap();
    p.checker.on_accepted(id);
    let Some(Transmit::Send { .. }) = p.client.poll_transmit() else {
        panic!()
    };
    p.client.close(CloseCode::NORMAL, "", p.now).unwrap();
    p.checker.on_close(&p.client);
    p.drive();
    p.run_for(secs(3));
    assert_eq!(
        p.events_where(|e| matches!(e, Event::Outcome { .. }))[0].1,
        Event::Outcome {
            id,
            outcome: Outcome::Dropped(DropReason::Disconnected)
        }
    );
    assert!(
        p.events_where(
            |e| matches!(e, Event::Closed { undelivered, .. } if undelivered.is_empty())
        )
        .len()
            == 1
    );
}

#[test]
fn graceful_close_flushes_more_than_the_in_flight_window() {
    let outbox = OutboxConfig {
        max_in_flight: 2,
        ..at_least_once()
    };
    let mut p = opened_pair(config().outbox(outbox));
    let ids: Vec<_> = (0..6)
        .map(|i| p.client.send(Message::text(format!("{i}")), p.now).unwrap())
        .collect();
    ids.iter().for_each(|id| p.checker.on_accepted(*id));
    p.close(CloseCode::NORMAL);
    p.run_for(secs(4));
    assert_eq!(p.received, ids);
    assert_eq!(p.client.stats().acked, 6);
    assert_eq!(p.state(), State::Closed);
}

#[test]
fn coming_back_online_does_not_skip_a_server_advised_delay() {
    let mut p = pair(config());
    p.mode = PeerMode::Reject {
        status: 503,
        retry_after: Some(secs(30)),
    };
    p.open();
    p.run_for(ms(100));
    p.mode = PeerMode::Up;
    p.set_online(false);
    p.set_online(true);
    assert_eq!(p.state(), State::Backoff);
    p.run_for(secs(31));
    let connects: Vec<Instant> = p
        .transmits
        .iter()
        .filter(|(_, t)| matches!(t, Transmit::Connect { .. }))
        .map(|(t, _)| *t)
        .collect();
    assert!(connects[1] - connects[0] >= secs(30), "{connects:?}");
    assert_eq!(p.state(), State::Open);
}

#[test]
fn empty_pong_patterns_are_rejected_at_build_time() {
    let hb = HeartbeatConfig {
        mode: HeartbeatMode::AppLevel {
            ping: Message::static_text("ping"),
            pong: PongMatcher::Contains(Bytes::new()),
            forward_pongs: false,
        },
        ..Default::default()
    };
    assert_eq!(
        Config::builder().heartbeat(hb).build().unwrap_err().field(),
        "heartbeat.mode.pong"
    );
}

/// A bare client with a 10 s + 5 s heartbeat and an inbound bound of three
/// messages or 1 KiB, open at time zero.
fn bounded_inbound_client() -> (Client, ConnId) {
    let hb = HeartbeatConfig {
        interval: secs(10),
        pong_timeout: secs(5),
        ..Default::default()
    };
    let inbound = InboundConfig {
        max_messages: 3,
        max_bytes: 1024,
    };
    support::open_client(
        Config::builder()
            .heartbeat(hb)
            .inbound(inbound)
            .build()
            .unwrap(),
    )
}

#[test]
fn reading_pauses_at_the_inbound_bounds_and_resumes_once_messages_are_taken() {
    let (mut c, conn) = bounded_inbound_client();
    let now = Instant::from_secs(1);
    for _ in 0..2 {
        c.handle_transport(conn, TransportEvent::Message(Message::text("x")), now);
    }
    assert!(!c.reading_paused());
    c.handle_transport(conn, TransportEvent::Message(Message::text("x")), now);
    assert!(c.reading_paused(), "three messages held: the count bound");
    // A frame fed anyway is kept, never dropped.
    c.handle_transport(conn, TransportEvent::Message(Message::text("y")), now);
    assert_eq!(c.stats().inbound_len, 4);
    let taken = std::iter::from_fn(|| c.poll_event())
        .filter(|e| matches!(e, Event::Message(_)))
        .count();
    assert_eq!(taken, 4);
    assert!(!c.reading_paused());
    assert_eq!((c.stats().inbound_len, c.stats().inbound_bytes), (0, 0));

    let big = Message::binary(vec![0u8; 1024]);
    c.handle_transport(conn, TransportEvent::Message(big), now);
    assert!(c.reading_paused(), "1 KiB held: the byte bound");
}

#[test]
fn only_the_event_whose_taking_ends_the_pause_says_reading_resumed() {
    let (mut c, conn) = bounded_inbound_client();
    while c.poll_event().is_some() {}
    let now = Instant::from_secs(1);
    for _ in 0..4 {
        c.handle_transport(conn, TransportEvent::Message(Message::text("x")), now);
    }
    assert!(c.reading_paused());
    // Four held, the bound three: the second message taken brings it under.
    let resumed: Vec<bool> = std::iter::from_fn(|| c.poll_event_resuming())
        .map(|(_, resumed)| resumed)
        .collect();
    assert_eq!(resumed, [false, true, false, false]);
    assert!(!c.reading_paused());
}

#[test]
fn the_heartbeat_stands_still_while_reading_is_paused_and_runs_on_from_where_it_stood() {
    let (mut c, conn) = bounded_inbound_client();
    // At 12 s the backlog fills (the application stopped taking events);
    // those frames proved the peer alive: the next ping is due at 22 s.
    for _ in 0..3 {
        c.handle_transport(
            conn,
            TransportEvent::Message(Message::text("x")),
            Instant::from_secs(12),
        );
    }
    assert!(c.reading_paused());
    while c.poll_transmit().is_some() {} // the ping due at 10 s went out first
    assert_eq!(c.poll_timeout(), None, "the heartbeat stands still");
    c.handle_timeout(Instant::from_secs(60));
    assert_eq!(c.state(), State::Open);
    assert!(
        !std::iter::from_fn(|| c.poll_transmit()).any(|t| matches!(t, Transmit::Ping { .. })),
        "no ping whose pong could not be read"
    );
    // The application takes its events at 60 s: the ping has its 10 s left.
    while c.poll_event().is_some() {}
    c.handle_timeout(Instant::from_secs(60));
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(70)));
    c.handle_timeout(Instant::from_secs(70));
    assert!(std::iter::from_fn(|| c.poll_transmit()).any(|t| matches!(t, Transmit::Ping { .. })));
    // Unanswered: dead at its deadline, as if the pause had not been.
    c.handle_timeout(Instant::from_secs(75));
    assert_eq!(c.state(), State::Backoff);
}

#[test]
fn abort_with_fails_at_once_and_hands_back_every_held_message() {
    let mut p = opened_pair(config().outbox(at_least_once()));
    p.echo = false;
    p.auto_ack = false;
    let a = p.send("a").unwrap();
    let b = p.send("b").unwrap();
    p.run_for(ms(50));
    let conn = p.client.conn().expect("open");
    p.client.abort_with(Error::Internal, p.now);
    assert_eq!(p.state(), State::Failed);
    assert_eq!(
        p.client.poll_timeout(),
        None,
        "a deadline outlived the abort"
    );
    assert_eq!(p.client.poll_transmit(), Some(Transmit::Abort { conn }));
    assert_eq!(p.client.poll_transmit(), None);
    let events: Vec<_> = std::iter::from_fn(|| p.client.poll_event()).collect();
    let failed = events.iter().find_map(|e| match e {
        Event::Failed { error, undelivered } => Some((error.clone(), undelivered.clone())),
        _ => None,
    });
    let (error, undelivered) = failed.expect("a Failed event");
    assert_eq!(error, Error::Internal);
    let ids: Vec<_> = undelivered.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [a, b]);
    assert!(events.contains(&Event::StateChanged {
        from: State::Open,
        to: State::Failed
    }));
}

#[test]
fn abort_with_leaves_a_closed_client_closed() {
    let mut p = opened_pair(config());
    p.close(CloseCode::NORMAL);
    p.run_for(secs(5));
    assert_eq!(p.state(), State::Closed);
    p.client.abort_with(Error::Internal, p.now);
    assert_eq!(p.state(), State::Closed);
    assert_eq!(p.client.poll_event(), None);
    assert_eq!(p.client.poll_transmit(), None);
}

#[test]
fn text_that_is_not_utf8_is_refused_with_a_typed_error_never_sent_as_another_frame() {
    let mut p = opened_pair(config());
    let bad = Message::text_from_validated(Bytes::from_static(b"ok\xff"));
    let err = p.client.send(bad.clone(), p.now).unwrap_err();
    assert_eq!(
        err,
        SendError::InvalidText {
            msg: bad,
            valid_up_to: 2
        }
    );
    assert_eq!(p.client.stats().accepted, 0);
    let fine = Message::text_from_validated(Bytes::from_static(b"ok"));
    assert!(p.client.send(fine, p.now).is_ok());
}

/// An open at-least-once pair whose peer takes 200 ms to process and ack
/// each message, longer than a close handshake; 20 messages are sent in a
/// burst and the client is closed at once, plainly or draining.
fn close_after_a_burst(drain: bool) -> Pair {
    let mut p = opened_pair(config().outbox(at_least_once()));
    p.latency = ms(25);
    p.ack_delay = ms(200);
    for i in 0..20 {
        p.client
            .send(Message::text(format!("m{i}")), p.now)
            .map(|id| p.checker.on_accepted(id))
            .unwrap();
    }
    let result = if drain {
        p.client
            .close_when_delivered(CloseCode::NORMAL, "bye", secs(5), p.now)
    } else {
        p.client.close(CloseCode::NORMAL, "bye", p.now)
    };
    result.unwrap();
    p.checker.on_close(&p.client);
    p.run_for(secs(20));
    assert_eq!(p.state(), State::Closed);
    p
}

/// The ids handed back when the client closed.
fn handed_back_on_close(p: &Pair) -> Vec<MessageId> {
    p.events
        .iter()
        .find_map(|(_, e)| match e {
            Event::Closed { undelivered, .. } => {
                Some(undelivered.iter().map(|(id, _)| *id).collect())
            }
            _ => None,
        })
        .expect("a Closed event")
}

#[test]
fn close_when_delivered_waits_for_the_acks_plain_close_does_not() {
    let plain = close_after_a_burst(false);
    assert_eq!(plain.received.len(), 20, "the peer got everything");
    assert_eq!(
        handed_back_on_close(&plain).len(),
        20,
        "plain close hands back what the peer had not acked yet"
    );
    let drained = close_after_a_burst(true);
    assert_eq!(drained.received.len(), 20);
    assert_eq!(
        handed_back_on_close(&drained),
        [],
        "every message was acked first"
    );
    assert_eq!(drained.client.stats().acked, 20);
}

#[test]
fn close_when_delivered_gives_up_waiting_after_its_bound() {
    let mut p = opened_pair(config().outbox(at_least_once()));
    p.auto_ack = false;
    let id = p.send("never acked").unwrap();
    let t0 = p.now;
    p.client
        .close_when_delivered(CloseCode::NORMAL, "bye", secs(3), p.now)
        .unwrap();
    p.checker.on_close(&p.client);
    p.run_for(secs(30));
    let closed_at = p.last_entered(State::Closed).expect("closed");
    assert!(closed_at - t0 >= secs(3), "waited for the ack");
    assert!(closed_at - t0 <= secs(3) + ms(100), "then closed at once");
    let frame_at = p
        .transmits
        .iter()
        .find(|(_, t)| matches!(t, Transmit::Close { .. }))
        .map(|(t, _)| *t)
        .expect("a close frame");
    assert_eq!(frame_at - t0, secs(3));
    assert_eq!(handed_back_on_close(&p), [id]);
}

#[test]
fn application_close_codes_reconnect_by_default_and_one_made_fatal_stops() {
    let revoked = || TransportEvent::Closed {
        code: CloseCode(4401),
        reason: "auth revoked".into(),
    };
    let mut p = opened_pair(config());
    p.inject(revoked());
    assert_eq!(p.state(), State::Backoff, "4401 reconnects by default");

    let table = CloseCodeTable::default().with(4401..=4401, RetryClass::Fatal);
    let mut p = opened_pair(config().close_codes(table));
    p.inject(revoked());
    assert_eq!(p.state(), State::Failed);
    assert_eq!(
        failed_error(&p),
        Error::ClosedByServer {
            code: CloseCode(4401),
            reason: "auth revoked".into()
        }
    );
}

// --- acks and replies the server sends ---------------------------------------

/// A bare client that recognises `ack:`, `upto:` and `nack:` and delivers
/// at least once (or at most once), open at time zero.
fn acking_client(delivery: Delivery) -> (Client, ConnId) {
    let acks = AckConfig::new(AckMatcher::Prefixed {
        ack: Bytes::from_static(b"ack:"),
        up_to: Some(Bytes::from_static(b"upto:")),
        nack: Some(Bytes::from_static(b"nack:")),
    });
    let outbox = OutboxConfig {
        delivery,
        ..Default::default()
    };
    support::open_client(Config::builder().outbox(outbox).acks(acks).build().unwrap())
}

/// Feed `text` from the server, and return the events it caused.
fn server_says(c: &mut Client, conn: ConnId, text: &str, now: Instant) -> Vec<Event> {
    c.handle_transport(
        conn,
        TransportEvent::Message(Message::text(text.to_owned())),
        now,
    );
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Hand every transmit to the transport as written.
fn write_all(c: &mut Client, conn: ConnId, now: Instant) -> Vec<MessageId> {
    let sent: Vec<_> = std::iter::from_fn(|| c.poll_transmit())
        .filter_map(|t| match t {
            Transmit::Send { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    for id in &sent {
        c.handle_transport(conn, TransportEvent::Written(*id), now);
    }
    sent
}

#[test]
fn the_servers_ack_nack_and_cumulative_ack_settle_keyed_messages_without_app_bookkeeping() {
    let (mut c, conn) = acking_client(Delivery::AtLeastOnce);
    let t = Instant::ZERO;
    let ids: Vec<_> = (1..=5)
        .map(|k| {
            c.send_keyed(k, Message::text(format!("id:{k}")), t)
                .unwrap()
        })
        .collect();
    write_all(&mut c, conn, t);
    while c.poll_event().is_some() {}
    let ev = server_says(&mut c, conn, "ack:2", t);
    assert_eq!(outcomes_of(&ev), [(ids[1], Outcome::Acked)]);
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Message(_))),
        "an ack is not a message"
    );
    let ev = server_says(&mut c, conn, "nack:4:room full", t);
    assert_eq!(
        outcomes_of(&ev),
        [(ids[3], Outcome::Refused(Bytes::from_static(b"room full")))]
    );
    let ev = server_says(&mut c, conn, "upto:3", t);
    assert_eq!(
        outcomes_of(&ev),
        [(ids[0], Outcome::Acked), (ids[2], Outcome::Acked)]
    );
    // Duplicate, stale and unknown acks change nothing.
    for text in ["ack:2", "ack:1", "nack:4:again", "ack:99", "upto:3"] {
        assert_eq!(outcomes_of(&server_says(&mut c, conn, text, t)), []);
    }
    assert_eq!(c.stats().queue_len, 1, "key 5 is still held");
    let other = server_says(&mut c, conn, "ack:x", t);
    assert!(
        matches!(&other[..], [Event::Message(_)]),
        "not an ack: delivered"
    );
}

#[test]
fn after_a_reconnect_the_unacked_are_replayed_in_order_and_a_duplicate_ack_settles_once() {
    let (mut c, conn) = acking_client(Delivery::AtLeastOnce);
    let t = Instant::ZERO;
    let a = c.send_keyed(1, Message::text("a"), t).unwrap();
    let b = c.send_keyed(2, Message::text("b"), t).unwrap();
    assert_eq!(write_all(&mut c, conn, t), [a, b]);
    c.handle_transport(conn, TransportEvent::Error(TransportError::Reset), t);
    let at = c.poll_timeout().unwrap();
    c.handle_timeout(at);
    let Some(Transmit::Connect { conn: next, .. }) = c.poll_transmit() else {
        panic!("no reconnect")
    };
    c.handle_transport(next, TransportEvent::Opened(Handshake::default()), at);
    assert_eq!(
        write_all(&mut c, next, at),
        [a, b],
        "replayed first, in order"
    );
    while c.poll_event().is_some() {}
    // The server had processed `a` before the reset: it acks both copies.
    assert_eq!(
        outcomes_of(&server_says(&mut c, next, "ack:1", at)),
        [(a, Outcome::Acked)]
    );
    assert_eq!(outcomes_of(&server_says(&mut c, next, "ack:1", at)), []);
    assert_eq!(
        outcomes_of(&server_says(&mut c, next, "ack:2", at)),
        [(b, Outcome::Acked)]
    );
}

#[test]
fn a_request_ends_with_its_reply_or_times_out_at_its_deadline() {
    let (mut c, conn) = acking_client(Delivery::AtLeastOnce);
    let t = Instant::ZERO;
    let asked = c.request(7, Message::text("id:7:get"), secs(5), t).unwrap();
    let never = c.request(8, Message::text("id:8:get"), secs(3), t).unwrap();
    write_all(&mut c, conn, t);
    while c.poll_event().is_some() {}
    let ev = server_says(&mut c, conn, "ack:7:{\"n\":1}", Instant::from_secs(1));
    assert_eq!(
        outcomes_of(&ev),
        [(asked, Outcome::Replied(Message::text("ack:7:{\"n\":1}")))]
    );
    assert_eq!(
        c.poll_timeout(),
        Some(Instant::from_secs(3)),
        "the other's deadline"
    );
    c.handle_timeout(Instant::from_secs(3));
    let ev: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert_eq!(outcomes_of(&ev), [(never, Outcome::TimedOut)]);
    assert_eq!((c.stats().replied, c.stats().timed_out), (1, 1));
    assert_eq!(c.stats().queue_len, 0);
}

#[test]
fn an_unanswered_request_is_replayed_at_least_once_and_dropped_at_most_once() {
    for delivery in [Delivery::AtLeastOnce, Delivery::AtMostOnce] {
        let (mut c, conn) = acking_client(delivery);
        let t = Instant::ZERO;
        let id = c.request(3, Message::text("id:3"), secs(60), t).unwrap();
        write_all(&mut c, conn, t);
        while c.poll_event().is_some() {}
        c.handle_transport(conn, TransportEvent::Error(TransportError::Reset), t);
        let ev: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
        match delivery {
            Delivery::AtMostOnce => assert_eq!(
                outcomes_of(&ev),
                [(id, Outcome::Dropped(DropReason::Disconnected))],
                "at most once: it may or may not have been processed"
            ),
            Delivery::AtLeastOnce => {
                assert_eq!(outcomes_of(&ev), []);
                let at = c.poll_timeout().unwrap();
                c.handle_timeout(at);
                let Some(Transmit::Connect { conn: next, .. }) = c.poll_transmit() else {
                    panic!("no reconnect")
                };
                c.handle_transport(next, TransportEvent::Opened(Handshake::default()), at);
                assert_eq!(write_all(&mut c, next, at), [id], "sent again");
                let ev = server_says(&mut c, next, "ack:3:done", at);
                assert_eq!(
                    outcomes_of(&ev),
                    [(id, Outcome::Replied(Message::text("ack:3:done")))]
                );
            }
        }
    }
}

#[test]
fn a_reply_is_reported_even_when_only_failures_are() {
    let acks = AckConfig::new(AckMatcher::ack_nack());
    let config = Config::builder()
        .acks(acks)
        .build()
        .unwrap()
        .with_outcome_events(OutcomeEvents::Failures);
    let (mut c, conn) = support::open_client(config);
    let id = c
        .request(1, Message::text("q"), secs(5), Instant::ZERO)
        .unwrap();
    write_all(&mut c, conn, Instant::ZERO);
    let ev = server_says(&mut c, conn, "ack:1", Instant::ZERO);
    assert_eq!(
        outcomes_of(&ev),
        [(id, Outcome::Replied(Message::text("ack:1")))]
    );
}

#[test]
fn an_awaited_outcome_comes_through_completions_not_events() {
    let (mut c, conn) = acking_client(Delivery::AtLeastOnce);
    let t = Instant::ZERO;
    let id = c.request(5, Message::text("q"), secs(5), t).unwrap();
    assert!(c.await_outcome(id));
    assert!(!c.await_outcome(MessageId(99)), "not held");
    write_all(&mut c, conn, t);
    let ev = server_says(&mut c, conn, "ack:5:yes", t);
    assert_eq!(outcomes_of(&ev), [], "not an event");
    assert_eq!(
        c.poll_completion(),
        Some((id, Outcome::Replied(Message::text("ack:5:yes"))))
    );
    assert_eq!(c.poll_completion(), None);
    // One handed back when the client closes gets no completion.
    let open = c.request(6, Message::text("q"), secs(5), t).unwrap();
    c.await_outcome(open);
    c.close(CloseCode::NORMAL, "", t).unwrap();
    c.handle_timeout(Instant::from_secs(30));
    let handed: Vec<_> = std::iter::from_fn(|| c.poll_event())
        .filter_map(|e| match e {
            Event::Closed { undelivered, .. } => Some(undelivered),
            _ => None,
        })
        .flatten()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(handed, [open]);
    assert_eq!(c.poll_completion(), None);
}
