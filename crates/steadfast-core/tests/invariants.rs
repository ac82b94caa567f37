//! Property tests: random sequences of commands, transport events (including
//! stale connection ids) and time steps, under random configurations, keep
//! every invariant `steadfast_core::check` asserts, and the same inputs give
//! the same outputs.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use steadfast_core::Config;
use steadfast_core::check::{Ev, Knobs, Op, run};

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
        2 => (0u8..8).prop_map(Ev::Ack),
        1 => (0u8..8).prop_map(Ev::AckUpTo),
        1 => (0u8..8).prop_map(Ev::Nack),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Open),
        4 => (0usize..40, prop::option::of(1u16..20_000)).prop_map(|(l, t)| Op::Send(l, t)),
        2 => (0usize..40, 0u8..8).prop_map(|(l, k)| Op::SendKeyed(l, k)),
        2 => (0u8..8, 1u16..30_000).prop_map(|(k, t)| Op::Request(k, t)),
        2 => (0usize..16).prop_map(Op::Ack),
        1 => (prop::sample::select(vec![1000u16, 1001, 1006, 4000]), any::<bool>())
            .prop_map(|(code, drain)| Op::Close(code, drain)),
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
        (
            0u8..3,
            0u32..3,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        (
            1u32..60_000,
            1u32..=8,
            any::<bool>(),
            any::<bool>(),
            0usize..4,
        ),
    )
        .prop_map(
            |(seed, (alo, drop_oldest, max_messages, in_flight, max_bytes), r, h, t)| {
                let (max_attempts, jitter, window, fail_fast, never) = r;
                let (mode, tolerated, fixed, auth, suspend, failures_only) = h;
                let (interval_ms, eighths, only_pongs, acks, inbound_max) = t;
                Knobs {
                    seed,
                    at_least_once: alo,
                    drop_oldest,
                    max_messages,
                    max_in_flight: in_flight,
                    max_bytes,
                    max_attempts,
                    jitter,
                    window,
                    fail_fast,
                    never_reconnect: never,
                    heartbeat_mode: mode,
                    tolerated_missed: tolerated,
                    fixed_schedule: fixed,
                    auth,
                    suspend,
                    failures_only,
                    interval_ms,
                    // 8/8: the pong deadline equals the interval.
                    pong_timeout_ms: (interval_ms * eighths / 8).max(1),
                    only_pongs,
                    acks,
                    inbound_max,
                }
                .config()
            },
        )
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
