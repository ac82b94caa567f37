//! Resident memory per idle connection, steadfast vs raw, at equal buffers.
//! Each measurement runs in a fresh process so earlier allocations do not blur it.

use crate::{ServerProcess, rss_kib};
use futures_util::StreamExt;
use std::process::Command;
use std::time::Duration;
use steadfast_tokio::core::{Event, State};
use steadfast_tokio::{Builder, WebSocketConfig, default_websocket_config};

fn ws_config(buffers: &str) -> WebSocketConfig {
    match buffers {
        "tungstenite" => WebSocketConfig::default(),
        _ => default_websocket_config(),
    }
}

/// What keeps an idle connection alive.
#[expect(dead_code, reason = "held, never read")]
enum Kept {
    Raw(tokio::task::JoinHandle<()>),
    Steadfast(steadfast_tokio::Handle, steadfast_tokio::Events),
}

/// `memory-one <raw|steadfast> <tungstenite|steadfast> <n> <url>`: prints KiB per connection.
pub(crate) fn one(args: &[String]) {
    let (kind, buffers, n, url) = (
        &args[0],
        &args[1],
        args[2].parse::<usize>().expect("n"),
        &args[3],
    );
    let rt = crate::runtime();
    let config = ws_config(buffers);
    let run = || {
        rt.block_on(async {
            let before = rss_kib();
            let mut keep = Vec::with_capacity(n);
            for _ in 0..n {
                if kind == "raw" {
                    let (ws, _) = tokio_tungstenite::connect_async_with_config(
                        url.as_str(),
                        Some(config),
                        true,
                    )
                    .await
                    .expect("raw connect");
                    // A raw client keeps a task reading (to answer pings), as real ones do.
                    keep.push(Kept::Raw(tokio::spawn(async move {
                        let (_tx, mut rx) = ws.split();
                        while let Some(Ok(_)) = rx.next().await {}
                        drop(_tx);
                    })));
                } else {
                    let (handle, mut events) = Builder::new(url.as_str())
                        .expect("url")
                        .websocket_config(config)
                        .connect();
                    // Wait for the open as an application would, on the events.
                    while let Some(ev) = events.next().await {
                        if let Event::StateChanged {
                            to: State::Open, ..
                        } = ev
                        {
                            break;
                        }
                    }
                    // Its driver task reads, answers pings and keeps the heartbeat:
                    // the application needs no task of its own to stay connected.
                    keep.push(Kept::Steadfast(handle, events));
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let after = rss_kib();
            let per_conn = (after.saturating_sub(before)) as f64 / n as f64;
            // Keep the connections (and their heap) until after the count.
            (per_conn, keep)
        })
    };
    #[cfg(feature = "heap")]
    {
        let mut kept = None;
        let info = allocation_counter::measure(|| kept = Some(run()));
        let (per_conn, keep) = kept.expect("ran");
        let heap = info.bytes_current as f64 / n as f64 / 1024.0;
        println!("{per_conn:.2} {heap:.2}");
        drop(keep);
    }
    #[cfg(not(feature = "heap"))]
    println!("{:.2}", run().0);
}

pub(crate) fn run() {
    println!("\n### Memory: resident KiB per idle connection (client process)\n");
    if cfg!(feature = "heap") {
        println!(
            "| connections | buffers | raw | steadfast | steadfast − raw | raw heap | steadfast heap | heap − |"
        );
        println!("|---|---|---|---|---|---|---|---|");
    } else {
        println!("| connections | buffers | raw | steadfast | steadfast − raw |");
        println!("|---|---|---|---|---|");
    }
    for n in [1_000, 10_000] {
        for buffers in ["tungstenite", "steadfast"] {
            let server = ServerProcess::start(0);
            // Resident KiB per connection, and live heap KiB with `--features heap`.
            let measure = |kind: &str| -> (f64, Option<f64>) {
                let exe = std::env::current_exe().expect("own path");
                let out = Command::new(exe)
                    .args(["memory-one", kind, buffers, &n.to_string(), &server.url()])
                    .output()
                    .expect("memory child");
                let out = String::from_utf8_lossy(&out.stdout);
                let mut figures = out.split_whitespace().map(|f| f.parse().ok());
                let rss = figures.next().flatten().unwrap_or(f64::NAN);
                (rss, figures.next().flatten())
            };
            let ((raw, raw_heap), (sf, sf_heap)) = (measure("raw"), measure("steadfast"));
            let label = if buffers == "tungstenite" {
                "tungstenite default (128 KiB read)"
            } else {
                "steadfast default (4 KiB read)"
            };
            let heap = match (raw_heap, sf_heap) {
                (Some(r), Some(s)) => format!(" {r:.2} | {s:.2} | {:+.2} |", s - r),
                _ => String::new(),
            };
            println!(
                "| {n} | {label} | {raw:.1} | {sf:.1} | {:+.1} |{heap}",
                sf - raw
            );
        }
    }
}
