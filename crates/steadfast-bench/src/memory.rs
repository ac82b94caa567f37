//! Resident memory per idle connection, steadfast vs raw, at equal buffers.
//! Each measurement runs in a fresh process so earlier allocations do not blur it.

use crate::{ServerProcess, rss_kib};
use futures_util::StreamExt;
use std::process::Command;
use std::time::Duration;
use steadfast_tokio::core::State;
use steadfast_tokio::{Builder, WebSocketConfig, default_websocket_config};

fn ws_config(buffers: &str) -> WebSocketConfig {
    match buffers {
        "tungstenite" => WebSocketConfig::default(),
        _ => default_websocket_config(),
    }
}

/// `memory-one <raw|steadfast> <tungstenite|steadfast> <n> <url>`: prints KiB per connection.
pub(crate) fn one(args: &[String]) {
    let (kind, buffers, n, url) = (
        &args[0],
        &args[1],
        args[2].parse::<usize>().expect("n"),
        &args[3],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = ws_config(buffers);
    let per_conn = rt.block_on(async {
        let before = rss_kib();
        let mut keep = Vec::with_capacity(n);
        for _ in 0..n {
            if kind == "raw" {
                let (ws, _) =
                    tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
                        .await
                        .expect("raw connect");
                // A raw client keeps a task reading (to answer pings), as real ones do.
                keep.push(tokio::spawn(async move {
                    let (_tx, mut rx) = ws.split();
                    while let Some(Ok(_)) = rx.next().await {}
                    drop(_tx);
                }));
            } else {
                let (handle, events) = Builder::new(url.as_str())
                    .expect("url")
                    .websocket_config(config)
                    .connect();
                let mut status = handle.watch();
                let _ = status.wait_for(|s| *s == State::Open).await;
                keep.push(tokio::spawn(async move {
                    let _keep = (handle, events);
                    std::future::pending::<()>().await
                }));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rss_kib();
        (after.saturating_sub(before)) as f64 / n as f64
    });
    println!("{per_conn:.2}");
}

pub(crate) fn run() {
    println!("\n### Memory: resident KiB per idle connection (client process)\n");
    println!("| connections | buffers | raw | steadfast | steadfast − raw |");
    println!("|---|---|---|---|---|");
    for n in [1_000, 10_000] {
        for buffers in ["tungstenite", "steadfast"] {
            let server = ServerProcess::start(0);
            let measure = |kind: &str| -> f64 {
                let exe = std::env::current_exe().expect("own path");
                let out = Command::new(exe)
                    .args(["memory-one", kind, buffers, &n.to_string(), &server.url()])
                    .output()
                    .expect("memory child");
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .unwrap_or(f64::NAN)
            };
            let (raw, sf) = (measure("raw"), measure("steadfast"));
            let label = if buffers == "tungstenite" {
                "tungstenite default (128 KiB read)"
            } else {
                "steadfast default (4 KiB read)"
            };
            println!("| {n} | {label} | {raw:.1} | {sf:.1} | {:+.1} |", sf - raw);
        }
    }
}
