//! The fleet simulator's speed and memory, on one core:
//!
//! 1. the floor: the bare event queue, one timer popped and armed again per
//!    step, with as many timers armed as the fleet has clients;
//! 2. 10,000 clients × 24 h of virtual time, 30 s heartbeat, a server
//!    restart every hour: wall time, events per second, and that rate as a
//!    fraction of the floor;
//! 3. 100,000 clients × 1 h with two restarts: wall time and peak heap per
//!    simulated client, counted by a counting global allocator around the
//!    run (`allocation-counter`: the bytes requested from the allocator, so
//!    malloc's own bookkeeping per allocation is not in it; its count of
//!    live allocations at the peak is printed beside it).
//!
//! `cargo bench -p steadfast-sim --bench fleet`
//!
//! `FLEET_CLIENTS` and `FLEET_HOURS` scale part 2, `BIG_CLIENTS` part 3;
//! `FLEET_PARTS` (e.g. `2` or `13`) picks the parts to run.
#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)]

use core::time::Duration;
use std::time::Instant;
use steadfast_core::{
    Bytes, Client, Config, Handshake, HeartbeatConfig, SplitMix64, Transmit, TransportError,
    TransportEvent,
};
use steadfast_sim::{Due, EventQueue, Fault, Metrics, Scenario, ServerModel};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every client's config: a 30 s heartbeat with a 10 s pong timeout.
fn fleet_config() -> Config {
    Config::builder()
        .heartbeat(HeartbeatConfig {
            interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            ..Default::default()
        })
        .build()
        .expect("valid config")
}

/// The scenario of part 2 (and, shorter and larger, of part 3).
fn fleet(clients: u32, duration: Duration, restart_every: Duration) -> Scenario {
    // The hub pings a session after a minute of silence: its clients, at
    // 30 s, always ask first.
    let mut server = ServerModel::default();
    server.hub.liveness.interval = Duration::from_secs(60);
    Scenario::new(clients, fleet_config())
        .seed(42)
        .server(server)
        .duration(duration)
        .ramp(Duration::from_secs(30))
        .fault_every(
            restart_every,
            Fault::Restart {
                down: Duration::from_secs(20),
            },
        )
}

/// FNV-1a of the metrics' `Debug` text: equal digests, equal metrics.
fn digest(m: &Metrics) -> u64 {
    format!("{m:?}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// Nanoseconds per step of the bare queue, `queued` keys deep: pop the
/// earliest timer and arm it again a heartbeat later (30 s, plus up to 50
/// ms), as a simulated client's heartbeat does.
fn queue_floor(queued: u32, steps: u64) -> f64 {
    let mut rng = SplitMix64::new(7);
    let mut q = EventQueue::<()>::new();
    let beat = 30_000_000_000;
    for key in 0..queued {
        q.set_timer(key, Some(rng.between(0, beat)));
    }
    let start = Instant::now();
    for _ in 0..steps {
        let Some((at, Due::Timer(key))) = q.pop() else {
            unreachable!("only timers are armed")
        };
        q.set_timer(key, Some(at + beat + rng.between(0, 50_000_000)));
    }
    let wall = start.elapsed();
    std::hint::black_box(&q);
    wall.as_nanos() as f64 / steps as f64
}

/// The heap one core `Client` holds of its own (its queues of transmits
/// and events) once it has connected, answered a heartbeat, lost the
/// connection and connected again, draining its outputs after every input
/// as the simulator does: what each client of part 3 holds besides its
/// `size_of::<Client>()`.
fn client_heap(config: &Config) -> i64 {
    let mut c = Client::new(config.clone().with_seed(1), steadfast_core::Instant::ZERO);
    let mut now = steadfast_core::Instant::ZERO;
    let drain = |c: &mut Client| {
        let mut out = Vec::new();
        while let Some(t) = c.poll_transmit() {
            out.push(t);
        }
        while c.poll_event().is_some() {}
        out
    };
    let heap = allocation_counter::measure(|| {
        c.open(now);
        for _ in 0..2 {
            let Some(Transmit::Connect { conn, .. }) = drain(&mut c).pop() else {
                unreachable!("an attempt starts")
            };
            c.handle_transport(conn, TransportEvent::Opened(Handshake::default()), now);
            drain(&mut c);
            now = c.poll_timeout().unwrap();
            c.handle_timeout(now);
            let Some(Transmit::Ping { payload, .. }) = drain(&mut c).pop() else {
                unreachable!("a ping is due")
            };
            let pong = Bytes::copy_from_slice(&payload);
            c.handle_transport(conn, TransportEvent::Pong(pong), now);
            drain(&mut c);
            c.handle_transport(conn, TransportEvent::Error(TransportError::Reset), now);
            drain(&mut c);
            now = c.poll_timeout().unwrap();
            c.handle_timeout(now);
        }
    });
    std::hint::black_box(&c);
    heap.bytes_current
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: a small run then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let parts = std::env::var("FLEET_PARTS").unwrap_or_else(|_| "123".into());
    let hours = |h| Duration::from_secs(3600 * h);

    let mut floor_ns = None;
    if parts.contains('1') {
        let (queued, steps) = if quick {
            (2_000, 100_000)
        } else {
            (10_000, 50_000_000)
        };
        let ns = queue_floor(queued, steps);
        println!(
            "queue floor: pop + re-arm of a timer, {queued} armed: {ns:.1} ns = {:.1} M/s",
            1e3 / ns
        );
        floor_ns = Some(ns);
    }

    if parts.contains('2') {
        let (clients, h) = if quick {
            (200, 1)
        } else {
            (env("FLEET_CLIENTS", 10_000) as u32, env("FLEET_HOURS", 24))
        };
        let scenario = fleet(clients, hours(h), hours(1));
        let start = Instant::now();
        let metrics = scenario.run();
        let wall = start.elapsed();
        let rate = metrics.events as f64 / wall.as_secs_f64();
        print!(
            "fleet: {clients} clients x {h} h virtual: {} events in {wall:.2?} wall = {:.2} M events/s",
            metrics.events,
            rate / 1e6
        );
        match floor_ns {
            Some(ns) => println!(" = {:.3} of the queue floor", rate * ns / 1e9),
            None => println!(),
        }
        println!("metrics digest {:016x}", digest(&metrics));
        print!("{}", metrics.summary());
    }

    if parts.contains('3') {
        let clients = if quick {
            1_000
        } else {
            env("BIG_CLIENTS", 100_000) as u32
        };
        // Restarts at 20 and 40 minutes.
        let scenario = fleet(clients, hours(1), Duration::from_secs(1200));
        let mut metrics = None;
        let start = Instant::now();
        let heap = allocation_counter::measure(|| metrics = Some(scenario.run()));
        let wall = start.elapsed();
        let metrics = metrics.unwrap();
        let per_client = heap.bytes_max as f64 / f64::from(clients);
        let client = size_of::<Client>() as f64;
        let own = client_heap(&fleet_config()) as f64;
        println!(
            "big fleet: {clients} clients x 1 h virtual, 2 restarts: {} events in {wall:.2?} wall = {:.2} M events/s",
            metrics.events,
            metrics.events as f64 / wall.as_secs_f64() / 1e6
        );
        println!(
            "peak heap {:.1} MiB (at most {} allocations live) = {per_client:.0} B per client: the core Client's {client:.0} B + {:.0} B beyond it, of which {own:.0} B the Client's own queues and {:.0} B the simulator's",
            heap.bytes_max as f64 / (1 << 20) as f64,
            heap.count_max,
            per_client - client,
            per_client - client - own
        );
        print!("{}", metrics.summary());
    }
}
