//! What a simulated fleet does, deterministically.

use core::time::Duration;
use steadfast_core::{
    CloseCode, Config, Delivery, HeartbeatConfig, Jitter, OutboxConfig, OutcomeEvents, RetryConfig,
};
use steadfast_sim::{Fault, LivenessConfig, NetworkModel, Scenario, ServerModel};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn config(jitter: Jitter) -> Config {
    Config::builder()
        .heartbeat(HeartbeatConfig {
            interval: secs(30),
            pong_timeout: secs(10),
            ..Default::default()
        })
        .retry(RetryConfig {
            jitter,
            ..Default::default()
        })
        .build()
        .expect("valid")
}

fn restart_scenario(jitter: Jitter) -> Scenario {
    Scenario::new(2_000, config(jitter))
        .seed(11)
        .duration(secs(240))
        .fault(secs(60), Fault::Restart { down: secs(10) })
}

#[test]
fn same_seed_gives_identical_metrics_and_another_seed_differs() {
    let a = restart_scenario(Jitter::Full).run();
    let b = restart_scenario(Jitter::Full).run();
    assert_eq!(a, b);
    let c = restart_scenario(Jitter::Full).seed(12).run();
    assert_ne!(a.attempts, c.attempts);
}

#[test]
fn whole_fleet_recovers_after_a_server_restart() {
    let m = restart_scenario(Jitter::Full).run();
    assert_eq!(m.failed_clients, 0);
    assert_eq!(m.recoveries[0].target, 2_000);
    let after = m.recoveries[0].after.expect("recovered");
    assert!(
        after >= secs(10),
        "cannot recover while the server is down: {after:?}"
    );
    assert!(after <= secs(60), "took {after:?}");
    assert_eq!(*m.connected.last().expect("buckets"), 2_000);
}

#[test]
fn jitter_flattens_the_thundering_herd() {
    let tenth = Duration::from_millis(100);
    let without = restart_scenario(Jitter::None).bucket(tenth).run();
    let with = restart_scenario(Jitter::Full).bucket(tenth).run();
    // Without jitter every client retries in the same instant, again and again.
    let peak_after =
        |m: &steadfast_sim::Metrics| m.attempts[601..].iter().copied().max().unwrap_or(0);
    assert!(
        peak_after(&without) >= 1_900,
        "no jitter: {}",
        peak_after(&without)
    );
    assert!(
        peak_after(&with) * 2 < peak_after(&without),
        "jitter {} vs none {}",
        peak_after(&with),
        peak_after(&without)
    );
}

#[test]
fn server_accept_rate_limit_is_never_exceeded() {
    let m = restart_scenario(Jitter::Full)
        .server(ServerModel {
            accept_rate: Some(300),
            ..Default::default()
        })
        .run();
    assert!(
        m.accepts.iter().all(|a| *a <= 300),
        "peak {}",
        m.peak_accept_rate()
    );
    assert!(
        m.recoveries[0].after.is_some(),
        "the fleet still gets back in"
    );
}

#[test]
fn partitioned_clients_are_detected_within_interval_plus_pong_timeout() {
    let m = Scenario::new(500, config(Jitter::Full))
        .seed(3)
        .duration(secs(200))
        .fault(
            secs(100),
            Fault::Partition {
                fraction: 0.5,
                duration: secs(60),
            },
        )
        .run();
    assert_eq!(m.detection.len(), 250, "every cut-off open client noticed");
    let max = *m.detection.last().expect("samples");
    // Plus two one-way delays of the last inbound frame (20 ms + up to 10 ms each).
    assert!(
        max <= secs(40) + Duration::from_millis(60),
        "slowest detection {max:?}"
    );
    assert_eq!(
        *m.connected.last().expect("buckets"),
        500,
        "all back after the partition"
    );
}

#[test]
fn at_least_once_messages_survive_restarts_and_partitions_without_loss() {
    let cfg = Config::builder()
        .heartbeat(HeartbeatConfig {
            interval: secs(10),
            pong_timeout: secs(5),
            ..Default::default()
        })
        .outbox(OutboxConfig {
            delivery: Delivery::AtLeastOnce,
            ..Default::default()
        })
        .build()
        .expect("valid");
    let m = Scenario::new(300, cfg)
        .seed(5)
        .duration(secs(600))
        .messages_every(Duration::from_millis(700))
        .network(NetworkModel {
            loss: 0.0,
            ..Default::default()
        })
        .fault(secs(100), Fault::Restart { down: secs(5) })
        .fault(
            secs(250),
            Fault::Partition {
                fraction: 0.3,
                duration: secs(30),
            },
        )
        .fault(secs(400), Fault::ResetAll)
        .run();
    let msgs = m.messages;
    assert!(msgs.sent > 200_000, "{msgs:?}");
    assert_eq!(msgs.lost, 0, "{msgs:?}");
    assert!(
        msgs.pending < 300,
        "only the last moments' messages still wait: {msgs:?}"
    );
}

#[test]
fn service_restart_close_brings_the_fleet_back_spread_over_the_restart_window() {
    let m = Scenario::new(1_000, config(Jitter::Full))
        .seed(8)
        .duration(secs(120))
        .fault(
            secs(60),
            Fault::CloseAll {
                code: CloseCode::SERVICE_RESTART,
                down: Duration::ZERO,
            },
        )
        .run();
    // The close-all is the hub's shutdown: it closed every session.
    assert_eq!(m.server.shut_down, 1_000, "{:?}", m.server);
    let after = m.recoveries[0].after.expect("recovered");
    assert!(
        after <= RetryConfig::default().restart_spread + secs(1),
        "{after:?}"
    );
    assert!(
        m.attempts[60..66].iter().all(|a| *a < 500),
        "{:?}",
        &m.attempts[60..66]
    );
}

#[test]
fn auth_rejection_fails_clients_instead_of_retrying() {
    let m = Scenario::new(100, config(Jitter::Full))
        .seed(9)
        .duration(secs(120))
        .fault(
            secs(30),
            Fault::RejectHandshakes {
                status: 401,
                retry_after: None,
                duration: secs(60),
            },
        )
        .fault(secs(31), Fault::ResetAll)
        .run();
    assert_eq!(m.failed_clients, 100);
}

#[test]
fn overlapping_restarts_keep_the_server_down_until_the_last_one_ends() {
    let m = Scenario::new(100, config(Jitter::Full))
        .seed(4)
        .duration(secs(120))
        .fault(secs(20), Fault::Restart { down: secs(15) })
        .fault(secs(30), Fault::Restart { down: secs(15) })
        .run();
    // Down from 20 s until 45 s: nobody can be connected in between.
    assert!(
        m.connected[21..45].iter().all(|c| *c == 0),
        "{:?}",
        &m.connected[20..46]
    );
    assert!(m.accepts[21..45].iter().all(|a| *a == 0));
    assert_eq!(m.recoveries.len(), 2);
    assert_eq!(
        m.recoveries[1].target, 100,
        "the second fault aims at the fleet before the first"
    );
    assert_eq!(*m.connected.last().expect("buckets"), 100);
}

/// The simulator resolves every message by its outcome event, so it runs
/// its clients with every outcome reported whatever the scenario's config
/// says: a failures-only config gives the same accounting as the default.
/// Without that override, the deliveries it hides would stay unresolved.
#[test]
fn the_fleet_accounts_every_message_even_when_clients_report_failures_only() {
    let run = |which: OutcomeEvents| {
        let cfg = Config::builder()
            .outbox(OutboxConfig {
                delivery: Delivery::AtLeastOnce,
                outcome_events: which,
                ..Default::default()
            })
            .build()
            .expect("valid");
        Scenario::new(50, cfg)
            .seed(11)
            .duration(secs(120))
            .messages_every(Duration::from_millis(700))
            .fault(secs(30), Fault::Restart { down: secs(5) })
            .run()
            .messages
    };
    let all = run(OutcomeEvents::All);
    assert!(all.acked > 0, "{all:?}");
    assert_eq!(run(OutcomeEvents::Failures), all);
}

/// The server is a real hub: a client cut off for longer than the hub's
/// detection bound has its session reaped; cut off for less, its session
/// lives on until its reconnect replaces it.
#[test]
fn the_hub_reaps_sessions_silent_past_its_bound_and_replaces_them_on_reconnect() {
    let run = |hub_interval: u64| {
        let mut server = ServerModel::default();
        server.hub.liveness = LivenessConfig {
            interval: secs(hub_interval),
            timeout: secs(15),
        };
        Scenario::new(100, config(Jitter::Full))
            .seed(21)
            .duration(secs(400))
            .server(server)
            .fault(
                secs(60),
                Fault::Partition {
                    fraction: 0.3,
                    duration: secs(120),
                },
            )
            .run()
    };
    // Liveness 45 s + 15 s < the 120 s partition: the 30 cut-off sessions
    // are reaped, and nothing is left to replace.
    let short = run(45);
    assert_eq!(short.server.reaped, 30, "{:?}", short.server);
    assert_eq!(short.server.replaced, 0, "{:?}", short.server);
    // Liveness 300 s + 15 s: the hub still holds them when the clients come
    // back, and each reconnect replaces its stale session.
    let long = run(300);
    assert_eq!(long.server.reaped, 0, "{:?}", long.server);
    assert_eq!(long.server.replaced, 30, "{:?}", long.server);
    for m in [&short, &long] {
        assert_eq!(*m.connected.last().expect("buckets"), 100);
    }
}

/// The hub pings only sessions that stay silent for its whole interval: a
/// server that pings less often than its clients never does, one that
/// pings more often does.
#[test]
fn the_hub_pings_only_when_its_clients_are_quieter_than_its_interval() {
    let pings = |hub_interval: u64| {
        let mut server = ServerModel::default();
        server.hub.liveness.interval = secs(hub_interval);
        Scenario::new(50, config(Jitter::Full))
            .seed(5)
            .duration(secs(300))
            .server(server)
            .run()
            .server
            .pings
    };
    assert_eq!(pings(60), 0, "30 s clients always speak first");
    assert!(pings(10) > 50 * 10, "{}", pings(10));
}
