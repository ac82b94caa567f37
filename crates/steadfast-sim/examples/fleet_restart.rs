//! What do 50,000 clients do when the server restarts? Simulates the fleet
//! with and without jitter, prints both accounts, and writes
//! `fleet_restart.svg` (reconnect attempts per 100 ms).
//!
//! `cargo run --release -p steadfast-sim --example fleet_restart`
#![allow(clippy::print_stdout)]

use core::time::Duration;
use steadfast_core::{Config, Jitter, RetryConfig};
use steadfast_sim::{Fault, Scenario, Series, write_svg_chart};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fleet = |jitter| -> Result<_, steadfast_core::ConfigError> {
        let config = Config::builder()
            .retry(RetryConfig {
                jitter,
                ..Default::default()
            })
            .build()?;
        Ok(Scenario::new(50_000, config)
            .seed(2026)
            .duration(Duration::from_secs(120))
            .ramp(Duration::from_secs(30))
            .bucket(Duration::from_millis(100))
            .fault(
                Duration::from_secs(60),
                Fault::Restart {
                    down: Duration::from_secs(10),
                },
            )
            .run())
    };
    let (with, without) = (fleet(Jitter::Full)?, fleet(Jitter::None)?);
    println!("== with full jitter (the default)\n{}", with.summary());
    println!("== without jitter\n{}", without.summary());
    let path = std::path::Path::new("fleet_restart.svg");
    write_svg_chart(
        path,
        "50,000 clients, server restart at 60 s (down 10 s)",
        with.bucket,
        "connection attempts per 100 ms",
        &[
            Series {
                label: "full jitter",
                values: &with.attempts,
            },
            Series {
                label: "no jitter",
                values: &without.attempts,
            },
        ],
    )?;
    println!("chart written to {}", path.display());
    Ok(())
}
