//! Resident memory per idle connection, steadfast vs raw, at equal buffers.
//! Each measurement runs in a fresh process so earlier allocations do not blur it.

use crate::exec::{Exec, Joined, RawSocket, raw_async_io, raw_tokio};
use crate::{ServerProcess, rss_kib};
use futures_util::StreamExt;
use std::future::Future;
use std::process::Command;
use std::time::Duration;
use steadfast_async::{Builder, Events, Handle, Runtime};
use steadfast_async_std::{AsyncStd, Smol};
use steadfast_tokio::core::Event;
use steadfast_tokio::{Tokio, WebSocketConfig, default_websocket_config};

fn ws_config(buffers: &str) -> WebSocketConfig {
    match buffers {
        "tungstenite" => WebSocketConfig::default(),
        _ => default_websocket_config(),
    }
}

/// What keeps an idle connection alive.
#[expect(dead_code, reason = "held, never read")]
enum Kept {
    Raw(Joined<()>),
    Tokio(Handle<Tokio>, Events<Tokio>),
    AsyncStd(Handle<AsyncStd>, Events<AsyncStd>),
    Smol(Handle<Smol>, Events<Smol>),
    RawThread(std::thread::JoinHandle<()>),
    Blocking(steadfast_blocking::Handle, steadfast_blocking::Events),
}

/// A raw connection and a task reading it (to answer pings), as real
/// clients keep.
async fn raw<'a, S: RawSocket, F: Future<Output = S>>(
    exec: &Exec,
    url: &'a str,
    config: WebSocketConfig,
    connect: impl Fn(&'a str, WebSocketConfig) -> F,
) -> Kept {
    let ws = connect(url, config).await;
    Kept::Raw(exec.spawn(async move {
        let (_tx, mut rx) = ws.split();
        while let Some(Ok(_)) = rx.next().await {}
        drop(_tx);
    }))
}

/// A steadfast connection, open. Its driver task reads, answers pings and
/// keeps the heartbeat: the application needs no task of its own to stay
/// connected.
async fn steadfast<R: Runtime>(url: &str, config: WebSocketConfig) -> (Handle<R>, Events<R>) {
    let (handle, mut events) = Builder::<R>::new(url)
        .expect("url")
        .websocket_config(config)
        .connect();
    // Wait for the open as an application would, on the events, up to
    // `Opened` (it comes right after the state change): an application
    // takes it, and with it the handshake's headers, which raw's connect
    // hands back and the bench drops.
    while let Some(ev) = events.next().await {
        if let Event::Opened { .. } = ev {
            break;
        }
    }
    (handle, events)
}

/// `memory-one <tokio|async-std|smol|blocking> <raw|steadfast> <tungstenite|steadfast> <n> <url>`:
/// prints KiB per connection: resident, then, with `--features heap`, live
/// heap (every thread's allocations: see `crate::heap`).
pub(crate) fn one(args: &[String]) {
    let (exec, kind, buffers, n, url) = (
        Exec::new(&args[0]).expect("executor"),
        &args[1],
        &args[2],
        args[3].parse::<usize>().expect("n"),
        args[4].as_str(),
    );
    let config = ws_config(buffers);
    #[cfg(feature = "heap")]
    let counter = crate::heap::Counter::start();
    let live_heap = || -> Option<usize> {
        #[cfg(feature = "heap")]
        return Some(counter.live_bytes());
        #[cfg(not(feature = "heap"))]
        None
    };
    let (per_conn, heap_per_conn, keep) = exec.block_on(async {
        let before = (rss_kib(), live_heap());
        let mut keep = Vec::with_capacity(n);
        for _ in 0..n {
            keep.push(match (kind == "raw", &exec) {
                (true, Exec::Tokio(_)) => raw(&exec, url, config, raw_tokio).await,
                (true, Exec::AsyncStd | Exec::Smol) => raw(&exec, url, config, raw_async_io).await,
                (false, Exec::Tokio(_)) => {
                    let (handle, events) = steadfast(url, config).await;
                    Kept::Tokio(handle, events)
                }
                (false, Exec::AsyncStd) => {
                    let (handle, events) = steadfast(url, config).await;
                    Kept::AsyncStd(handle, events)
                }
                (false, Exec::Smol) => {
                    let (handle, events) = steadfast(url, config).await;
                    Kept::Smol(handle, events)
                }
                (true, Exec::Blocking) => Kept::RawThread(crate::blocking::raw_idle(url, config)),
                (false, Exec::Blocking) => {
                    let (handle, events) = crate::blocking::steadfast_idle(url, config);
                    Kept::Blocking(handle, events)
                }
            });
        }
        exec.sleep(Duration::from_millis(500)).await;
        let after = (rss_kib(), live_heap());
        let per_conn = after.0.saturating_sub(before.0) as f64 / n as f64;
        let heap_per_conn = after
            .1
            .zip(before.1)
            .map(|(after, before)| after.saturating_sub(before) as f64 / n as f64 / 1024.0);
        // Keep the connections (and their heap) until after the count.
        (per_conn, heap_per_conn, keep)
    });
    match heap_per_conn {
        Some(heap) => println!("{per_conn:.2} {heap:.2}"),
        None => println!("{per_conn:.2}"),
    }
    // The counter first: dhat's profile, when asked for, then shows what
    // the open connections hold.
    #[cfg(feature = "heap")]
    drop(counter);
    drop(keep);
}

/// The table for clients on `exec` (`tokio`, `async-std`, `smol` or
/// `blocking`; the heap columns with `--features heap`).
pub(crate) fn run(exec: &str) -> Result<(), String> {
    // Check the name before the children need it.
    let _ = Exec::new(exec)?;
    let heap = cfg!(feature = "heap");
    println!("\n### Memory on {exec}: resident KiB per idle connection (client process)\n");
    if heap {
        println!(
            "Live heap: KiB per connection allocated by every thread and still live. Resident: \
             this build's, which includes dhat's own bookkeeping per live block; quote \
             resident figures from a build without `heap`.\n"
        );
    }
    if heap {
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
                    .args([
                        "memory-one",
                        exec,
                        kind,
                        buffers,
                        &n.to_string(),
                        &server.url(),
                    ])
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
            let heap_cells = match (raw_heap, sf_heap) {
                (Some(r), Some(s)) => format!(" {r:.2} | {s:.2} | {:+.2} |", s - r),
                _ => String::new(),
            };
            println!(
                "| {n} | {label} | {raw:.1} | {sf:.1} | {:+.1} |{heap_cells}",
                sf - raw
            );
        }
    }
    Ok(())
}
