//! Fan-out through `steadfast_tokio::server`: one broadcast reaches every
//! session. The server runs in a child process (on its own core where
//! there are two); the clients are raw tokio-tungstenite sockets here, each
//! counting what it reads. Also the server's resident memory per idle
//! session.
//!
//! `cargo run --profile bench -p steadfast-bench -- fanout [SESSIONS] [MESSAGES] [BYTES]`

use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use steadfast_tokio::server::{HubConfig, QueueConfig, Server, Verdict};
use tokio_tungstenite::tungstenite::Message;

/// The server side: accepts everyone as user `n` (a counter), and on
/// `go:N:BYTES` broadcasts N messages of BYTES bytes.
pub(crate) fn serve() {
    let rt = crate::runtime();
    rt.block_on(async {
        let next = std::sync::atomic::AtomicU64::new(0);
        let hub = HubConfig {
            queue: QueueConfig {
                max_messages: 1 << 16,
                max_bytes: 64 << 20,
                ..QueueConfig::default()
            },
            ..HubConfig::default()
        };
        let (server, mut events) = Server::builder(hub)
            .verify(move |_| Verdict::Accept {
                user: next.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                protocol: None,
            })
            .max_pending_events(1 << 16)
            .bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", server.local_addr());
        while let Some(ev) = events.recv().await {
            if let steadfast_tokio::server::HubEvent::Message { msg, .. } = ev {
                let Some(go) = msg.as_text().and_then(|t| t.strip_prefix("go:")) else {
                    continue;
                };
                let mut parts = go.split(':').filter_map(|p| p.parse::<usize>().ok());
                let (n, bytes) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
                let payload = steadfast_tokio::core::Message::text("x".repeat(bytes));
                for i in 0..n {
                    server.broadcast(payload.clone());
                    if i % 64 == 63 {
                        tokio::task::yield_now().await;
                    }
                }
            }
        }
    });
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let sessions: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let messages: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let bytes: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(64);
    let mut child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .arg("fanout-server")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let addr: std::net::SocketAddr = line.trim().parse().map_err(|e| format!("{e}: {line}"))?;
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(200));
    let rss_before = crate::rss_kib_of(&format!("/proc/{pid}/status"));
    let rt = crate::runtime();
    let result = rt.block_on(async {
        let mut sockets = Vec::with_capacity(sessions);
        for _ in 0..sessions {
            let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
                .await
                .map_err(|e| e.to_string())?;
            sockets.push(ws);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_idle = crate::rss_kib_of(&format!("/proc/{pid}/status"));
        let (first, rest) = sockets.split_first_mut().ok_or("no sessions")?;
        let started = Instant::now();
        first
            .send(Message::text(format!("go:{messages}:{bytes}")))
            .await
            .map_err(|e| e.to_string())?;
        let readers = rest
            .iter_mut()
            .chain(std::iter::once(&mut *first))
            .map(|ws| async move {
                let mut got = 0;
                while got < messages {
                    match ws.next().await {
                        Some(Ok(Message::Text(_))) => got += 1,
                        Some(Ok(_)) => {}
                        _ => return Err("a session ended early".to_owned()),
                    }
                }
                Ok::<(), String>(())
            });
        let done = futures_util::future::join_all(readers).await;
        let elapsed = started.elapsed();
        done.into_iter().collect::<Result<Vec<()>, String>>()?;
        Ok::<_, String>((rss_idle, elapsed))
    });
    let _ = child.kill();
    let _ = child.wait();
    let (rss_idle, elapsed) = result?;
    let deliveries = sessions * messages;
    println!(
        "| sessions | messages × bytes | deliveries | time | deliveries/s | server RSS per idle session |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {sessions} | {messages} × {bytes} | {deliveries} | {:.0} ms | {:.0} | {:.1} KiB |",
        elapsed.as_secs_f64() * 1e3,
        deliveries as f64 / elapsed.as_secs_f64(),
        rss_idle.saturating_sub(rss_before) as f64 / sessions as f64,
    );
    Ok(())
}
