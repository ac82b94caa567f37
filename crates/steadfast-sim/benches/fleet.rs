//! 10,000 clients × 24 h of virtual time, 30 s heartbeat, a server restart
//! every hour: wall time and events per second on one core.
//!
//! `cargo bench -p steadfast-sim --bench fleet`
#![allow(missing_docs, clippy::print_stdout)]

use core::time::Duration;
use std::time::Instant;
use steadfast_core::{Config, HeartbeatConfig};
use steadfast_sim::{Fault, Scenario};

fn main() {
    // `cargo test --benches` passes `--bench`-less args; run a small fleet then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (clients, hours) = if quick {
        (200, 1)
    } else {
        (env("FLEET_CLIENTS", 10_000) as u32, env("FLEET_HOURS", 24))
    };
    let config = Config::builder()
        .heartbeat(HeartbeatConfig {
            interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            ..Default::default()
        })
        .build()
        .expect("valid config");
    let scenario = Scenario::new(clients, config)
        .seed(42)
        .duration(Duration::from_secs(3600 * hours))
        .ramp(Duration::from_secs(30))
        .fault_every(
            Duration::from_secs(3600),
            Fault::Restart {
                down: Duration::from_secs(20),
            },
        );
    let start = Instant::now();
    let metrics = scenario.run();
    let wall = start.elapsed();
    println!(
        "fleet: {clients} clients x {hours} h virtual: {} events in {:.2?} wall = {:.1} M events/s",
        metrics.events,
        wall,
        metrics.events as f64 / wall.as_secs_f64() / 1e6
    );
    print!("{}", metrics.summary());
}
