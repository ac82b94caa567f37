//! Liveness over the whole heartbeat configuration space: for every valid
//! configuration (both schedules, every mode, any interval, pong timeout and
//! tolerated misses, any frame or only pongs as proof), a peer that answers
//! in time is never declared dead, and a peer that falls silent is declared
//! dead no later than `HeartbeatConfig::detection_bound` after the last
//! frame that proved it alive. The pair's checker asserts both bounds at
//! every step as well.
#![allow(clippy::unwrap_used)]

mod support;

use core::time::Duration;
use proptest::prelude::*;
use steadfast_core::check::Knobs;
use steadfast_core::*;
use support::{Pair, PeerMode};

fn heartbeat() -> impl Strategy<Value = HeartbeatConfig> {
    (
        0u8..3,
        1u32..120_000,
        1u32..=8,
        0u32..5,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(mode, interval_ms, eighths, tolerated_missed, fixed, only_pongs)| {
                Knobs {
                    heartbeat_mode: mode,
                    interval_ms,
                    // 8/8: the pong deadline falls due with the next fixed ping.
                    pong_timeout_ms: (interval_ms * eighths / 8).max(1),
                    tolerated_missed,
                    fixed_schedule: fixed,
                    only_pongs,
                    ..Knobs::default()
                }
                .config()
                .heartbeat()
                .clone()
            },
        )
}

/// An open pair whose peer answers pings (frames, or the app-level `ping`)
/// after `rtt`, under `hb`.
fn answering_pair(hb: HeartbeatConfig, rtt: Duration) -> Pair {
    let config = Config::builder()
        .seed(1)
        .heartbeat(hb)
        .connect_timeout(rtt * 2 + Duration::from_secs(1))
        .suspend(None)
        .build()
        .unwrap();
    let mut p = Pair::new(config);
    p.latency = rtt / 2;
    p.app_pong = Some(Message::static_text("pong"));
    p.open();
    p.run_for(rtt + Duration::from_millis(1));
    assert_eq!(p.state(), State::Open);
    p
}

fn heartbeat_deaths(p: &Pair) -> Vec<Instant> {
    p.events_where(|e| match e {
        Event::Reconnecting { cause, .. } => *cause == Cause::HeartbeatTimeout,
        Event::Failed { error, .. } => error.cause() == Some(&Cause::HeartbeatTimeout),
        _ => false,
    })
    .into_iter()
    .map(|(t, _)| t)
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_peer_answering_in_time_lives_and_a_silent_one_dies_within_the_bound(
        hb in heartbeat(),
        rtt_fraction in 0.0f64..0.95,
        rounds in 1u32..12,
    ) {
        let passive = matches!(hb.mode, HeartbeatMode::Passive);
        let (interval, bound) = (hb.interval, hb.detection_bound());
        // Round trips shorter than the pong timeout: every answer is in time.
        let rtt = hb.pong_timeout.mul_f64(rtt_fraction);
        let mut p = answering_pair(hb, rtt);
        for _ in 0..rounds {
            if passive {
                // A passive client hears from a server that pings it.
                p.peer_sends(TransportEvent::Ping(Bytes::new()));
            }
            p.run_for(interval);
        }
        prop_assert_eq!(heartbeat_deaths(&p), vec![], "a peer answering in time was declared dead");
        prop_assert_eq!(p.state(), State::Open);

        // The peer falls silent; what it already sent still arrives.
        p.mode = PeerMode::Blackhole;
        let silent_from = p.now + rtt;
        p.run_for(rtt + bound + Duration::from_millis(1));
        let deaths = heartbeat_deaths(&p);
        prop_assert_eq!(deaths.len(), 1, "a silent peer was not declared dead within the bound");
        prop_assert!(deaths[0] <= silent_from + bound, "declared dead at {:?}, after {:?}", deaths[0], silent_from + bound);
    }
}

#[test]
fn fixed_pings_with_the_deadline_equal_to_the_interval_detect_a_silent_peer() {
    // The audit's case: Ping and PongDeadline fell due together, the ping
    // re-armed the deadline, and 30 unanswered pings left the link Open.
    let hb = HeartbeatConfig {
        interval: Duration::from_secs(10),
        pong_timeout: Duration::from_secs(10),
        schedule: PingSchedule::Fixed,
        ..Default::default()
    };
    let mut p = answering_pair(hb, Duration::ZERO);
    p.mode = PeerMode::Blackhole;
    let silent_from = p.now;
    p.run_for(Duration::from_secs(300));
    let deaths = heartbeat_deaths(&p);
    assert!(!deaths.is_empty(), "never declared dead");
    assert!(deaths[0] <= silent_from + Duration::from_secs(20));
}

#[test]
fn fixed_pings_with_tolerated_misses_detect_within_the_documented_bound() {
    // interval 10 s, pong 5 s, 3 tolerated: 30 s (it took 45 s).
    let hb = HeartbeatConfig {
        interval: Duration::from_secs(10),
        pong_timeout: Duration::from_secs(5),
        tolerated_missed: 3,
        schedule: PingSchedule::Fixed,
        ..Default::default()
    };
    let mut p = answering_pair(hb, Duration::ZERO);
    p.mode = PeerMode::Blackhole;
    let silent_from = p.now;
    p.run_for(Duration::from_secs(60));
    let deaths = heartbeat_deaths(&p);
    assert!(!deaths.is_empty(), "never declared dead");
    assert!(
        deaths[0] - silent_from <= Duration::from_secs(30),
        "took {:?}",
        deaths[0] - silent_from
    );
}
