//! The hub's invariants over generated workloads and configurations: the
//! checks in `CheckedHub` and `Driver` (one live session per user under
//! Replace, nothing written to reaped or replaced sessions, bounded
//! queues, conservation of routed messages, reaping exactly by the bound)
//! plus determinism.

use core::time::Duration;
use proptest::prelude::*;
use steadfast_core::CloseCode;
use steadfast_hub::check::{Driver, Op};
use steadfast_hub::{Duplicates, HubConfig, LivenessConfig, QueueConfig, SlowConsumer};

fn config() -> impl Strategy<Value = HubConfig> {
    (
        1u64..5_000,
        1u64..5_000,
        prop_oneof![
            Just(Duplicates::Replace),
            Just(Duplicates::RejectNew),
            Just(Duplicates::Allow)
        ],
        1usize..8,
        1usize..4096,
        prop_oneof![
            Just(SlowConsumer::DropOldest),
            Just(SlowConsumer::Close(CloseCode::TRY_AGAIN_LATER)),
            Just(SlowConsumer::Close(CloseCode::POLICY)),
        ],
        proptest::option::of(1usize..6),
        1u64..3_000,
        any::<u64>(),
    )
        .prop_map(
            |(
                interval,
                timeout,
                duplicates,
                max_messages,
                max_bytes,
                slow_consumer,
                max_sessions,
                close_ms,
                seed,
            )| {
                HubConfig {
                    liveness: LivenessConfig {
                        interval: Duration::from_millis(interval),
                        timeout: Duration::from_millis(timeout),
                    },
                    duplicates,
                    queue: QueueConfig {
                        max_messages,
                        max_bytes,
                        slow_consumer,
                    },
                    max_sessions,
                    max_pending_events: HubConfig::default().max_pending_events,
                    retry_after: Duration::from_secs(1),
                    close_timeout: Duration::from_millis(close_ms),
                    seed: Some(seed),
                }
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<u8>(), any::<u8>()).prop_map(|(user, kind)| Op::Open { user, kind }),
        3 => any::<u8>().prop_map(|session| Op::Received { session }),
        2 => any::<u8>().prop_map(|session| Op::Alive { session }),
        1 => (any::<u8>(), proptest::option::of(1000u16..1016)).prop_map(|(session, code)| Op::Closed { session, code }),
        3 => (any::<u8>(), 0u8..6).prop_map(|(session, frames)| Op::Write { session, frames }),
        3 => (0u32..8_000).prop_map(|millis| Op::Advance { millis }),
        2 => (any::<u8>(), 0u16..3000).prop_map(|(session, len)| Op::SendSession { session, len }),
        2 => (any::<u8>(), 0u16..3000).prop_map(|(user, len)| Op::SendUser { user, len }),
        2 => (any::<u8>(), 0u16..3000).prop_map(|(room, len)| Op::SendRoom { room, len }),
        1 => (0u16..3000).prop_map(|len| Op::Broadcast { len }),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(user, room)| Op::Join { user, room }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(user, room)| Op::Leave { user, room }),
        1 => (any::<u8>(), 1000u16..1016).prop_map(|(session, code)| Op::CloseSession { session, code }),
        1 => (any::<bool>(), 0u32..5_000).prop_map(|(restart, window_ms)| Op::Shutdown { restart, window_ms }),
        1 => Just(Op::PauseReading),
        1 => Just(Op::ResumeReading),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_hub_keeps_its_invariants(config in config(), ops in proptest::collection::vec(op(), 0..200)) {
        let mut driver = Driver::new(config).unwrap();
        for op in &ops {
            driver.apply(op);
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_outputs(config in config(), ops in proptest::collection::vec(op(), 0..120)) {
        let run = || {
            let mut driver = Driver::new(config.clone()).unwrap();
            for op in &ops {
                driver.apply(op);
            }
            driver.transcript().to_vec()
        };
        prop_assert_eq!(run(), run());
    }
}

/// Liveness, not only safety: a workload where nobody ever speaks reaps
/// every accepted session, so the checks above are not passing on a hub
/// that never reaps.
#[test]
fn silent_workloads_do_get_reaped() {
    let config = HubConfig {
        seed: Some(1),
        ..HubConfig::default()
    };
    let bound = config.liveness.detection_bound();
    let mut driver = Driver::new(config).unwrap();
    for user in 0..4 {
        driver.apply(&Op::Open { user, kind: 0 });
    }
    assert_eq!(driver.hub().hub().live_count(), 4);
    driver.apply(&Op::Advance {
        millis: bound.as_millis() as u32,
    });
    assert_eq!(driver.hub().hub().live_count(), 0);
    assert_eq!(
        driver
            .transcript()
            .iter()
            .filter(|l| l.contains("Reaped"))
            .count(),
        4
    );
}
