//! Recovery: from the server being back up to every client reconnected and
//! its queue flushed; and dead-peer detection latency against the configured
//! interval + pong deadline.

use crate::ServerProcess;
use futures_util::StreamExt;
use std::time::{Duration, Instant};
use steadfast_testkit::FaultProxy;
use steadfast_tokio::core::{Cause, Config, Event, HeartbeatConfig, Message, RetryConfig, State};
use steadfast_tokio::{Builder, Events, Handle};

const CLIENTS: usize = 100;
const QUEUED: usize = 10;

fn config() -> Config {
    Config::builder()
        .heartbeat(HeartbeatConfig {
            interval: Duration::from_secs(1),
            pong_timeout: Duration::from_millis(500),
            ..Default::default()
        })
        .retry(RetryConfig {
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            ..Default::default()
        })
        .build()
        .expect("valid")
}

async fn open_clients(url: &str) -> Vec<(Handle, Events)> {
    let mut clients = Vec::new();
    for seed in 0..CLIENTS as u64 {
        let (handle, events) = Builder::new(url)
            .expect("url")
            .config(config().with_seed(seed))
            .connect();
        let mut status = handle.watch();
        let _ = status.wait_for(|s| s == State::Open).await;
        clients.push((handle, events));
    }
    clients
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub(crate) fn run() {
    let rt = crate::runtime();
    println!(
        "\n### Recovery ({CLIENTS} clients; heartbeat 1 s + 500 ms; backoff 200 ms … 2 s, full jitter)\n"
    );

    // Server restart: kill it, queue messages, bring it back on the same port.
    let server = ServerProcess::start(0);
    let (url, port) = (server.url(), server.addr.port());
    let flushed = rt.block_on(async {
        let clients = open_clients(&url).await;
        drop(server);
        // Queue only once every client has noticed the outage, so all of
        // its messages wait for the next connection.
        while clients.iter().any(|(h, _)| h.state() == State::Open) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for (handle, _) in &clients {
            for i in 0..QUEUED {
                let _ = handle.send(Message::text(format!("queued {i}")));
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let server = ServerProcess::start(port);
        let back = Instant::now();
        let mut times = Vec::new();
        let waits: Vec<_> = clients
            .into_iter()
            .map(|(handle, mut events)| {
                tokio::spawn(async move {
                    let mut echoed = 0;
                    let all_echoed = async {
                        while echoed < QUEUED {
                            match events.next().await {
                                Some(Event::Message(_)) => echoed += 1,
                                Some(_) => {}
                                None => break,
                            }
                        }
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(60), all_echoed).await;
                    drop(handle);
                    back.elapsed()
                })
            })
            .collect();
        for w in waits {
            if let Ok(t) = w.await {
                times.push(t);
            }
        }
        drop(server);
        times.sort();
        times
    });
    println!("| measure | p50 | p90 | max |");
    println!("|---|---|---|---|");
    println!(
        "| server back up → reconnected and {QUEUED} queued messages echoed | {} ms | {} ms | {} ms |",
        percentile(&flushed, 0.5).as_millis(),
        percentile(&flushed, 0.9).as_millis(),
        flushed.last().copied().unwrap_or_default().as_millis()
    );

    // Dead peer: blackhole the link and time the heartbeat verdict.
    let server = ServerProcess::start(0);
    let detection = rt.block_on(async {
        let proxy = FaultProxy::start(server.addr).await.expect("proxy");
        let clients = open_clients(&proxy.url()).await;
        let start = Instant::now();
        proxy.set_blackhole(true);
        let waits: Vec<_> = clients
            .into_iter()
            .map(|(handle, mut events)| {
                tokio::spawn(async move {
                    while let Some(ev) = events.next().await {
                        if let Event::Reconnecting {
                            cause: Cause::HeartbeatTimeout,
                            ..
                        } = ev
                        {
                            break;
                        }
                    }
                    drop(handle);
                    start.elapsed()
                })
            })
            .collect();
        let mut times = Vec::new();
        for w in waits {
            if let Ok(t) = w.await {
                times.push(t);
            }
        }
        times.sort();
        times
    });
    println!(
        "| blackhole → dead peer declared (bound: interval + pong deadline = 1.5 s) | {} ms | {} ms | {} ms |",
        percentile(&detection, 0.5).as_millis(),
        percentile(&detection, 0.9).as_millis(),
        detection.last().copied().unwrap_or_default().as_millis()
    );
}
