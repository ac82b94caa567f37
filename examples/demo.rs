//! The steadfast demo: an in-process acking echo server behind a fault proxy,
//! one client streaming numbered messages at least once while the server
//! restarts, the link is blackholed and then reset. Prints a timeline and a
//! final account; exits non-zero if any message was lost.
//!
//! `cargo run --release -p steadfast-examples --bin demo`
#![allow(clippy::print_stdout, clippy::print_stderr)]

use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use steadfast_testkit::{Behaviour, FaultProxy, Server};
use steadfast_tokio::Builder;
use steadfast_tokio::core::{
    AckConfig, AckMatcher, Config, Delivery, Event, HeartbeatConfig, MessageId, OutboxConfig,
    PingSchedule, RetryConfig, State,
};
use tokio::time::{Instant, sleep};

const MESSAGES: u64 = 400;
const EVERY: Duration = Duration::from_millis(25);

fn config() -> Config {
    Config::builder()
        .seed(2026)
        .connect_timeout(Duration::from_secs(1))
        .heartbeat(HeartbeatConfig {
            interval: Duration::from_millis(800),
            pong_timeout: Duration::from_millis(400),
            // Ping even while traffic flows, so the timeline shows RTT samples.
            schedule: PingSchedule::Fixed,
            ..Default::default()
        })
        .retry(RetryConfig {
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            min_uptime: Duration::from_secs(1),
            ..Default::default()
        })
        .outbox(OutboxConfig {
            delivery: Delivery::AtLeastOnce,
            ..Default::default()
        })
        // The server answers `seq:N` with `ack:N`: that is all the
        // bookkeeping at-least-once needs.
        .acks(AckConfig::new(AckMatcher::ack_nack()))
        .build()
        .expect("valid demo config")
}

struct Timeline {
    start: Instant,
}

impl Timeline {
    fn line(&self, what: &str, detail: impl std::fmt::Display) {
        let t = self.start.elapsed().as_secs_f64();
        println!("{t:>7.3}s  {what:<11} {detail}");
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut server = Server::start(Behaviour::Serve {
        echo: false,
        ack: true,
    })
    .await
    .expect("start the local server");
    let proxy = FaultProxy::start(server.addr())
        .await
        .expect("start the fault proxy");
    let timeline = Arc::new(Timeline {
        start: Instant::now(),
    });
    println!(
        "steadfast demo: server {} behind fault proxy {}",
        server.addr(),
        proxy.addr()
    );
    println!("streaming {MESSAGES} messages, at least once, one every {EVERY:?}\n");

    let (handle, mut events) = Builder::new(proxy.url())
        .expect("valid url")
        .config(config())
        .connect();

    let acked_ids: Arc<Mutex<Vec<MessageId>>> = Arc::default();
    let events_task = {
        let (acked_ids, tl) = (acked_ids.clone(), timeline.clone());
        tokio::spawn(async move {
            let mut rtt_shown = 0;
            while let Some(ev) = events.next().await {
                match ev {
                    // The server's acks settle messages in the core: none reach here.
                    Event::Message(m) => tl.line("message", format!("{:?}", m.as_text())),
                    Event::Outcome { id, .. } => acked_ids.lock().expect("acked").push(id),
                    Event::StateChanged { from, to } => {
                        tl.line("state", format!("{from:?} -> {to:?}"))
                    }
                    Event::Opened {
                        conn, reconnect, ..
                    } => tl.line(
                        "opened",
                        format!("{conn}{}", if reconnect { " (reconnected)" } else { "" }),
                    ),
                    Event::Reconnecting {
                        attempt,
                        delay,
                        cause,
                        ..
                    } => tl.line(
                        "reconnect",
                        format!("attempt {attempt} in {delay:.0?} after: {cause}"),
                    ),
                    Event::Rtt(rtt) => {
                        rtt_shown += 1;
                        if rtt_shown % 3 == 1 {
                            tl.line(
                                "rtt",
                                format!("last {:.0?}, smoothed {:.0?}", rtt.last, rtt.smoothed),
                            );
                        }
                    }
                    Event::Failed { error, .. } => {
                        tl.line("FAILED", error);
                        break;
                    }
                    Event::Closed { code, undelivered } => {
                        let handed_back = undelivered.len();
                        tl.line("closed", format!("{code}, {handed_back} handed back"));
                        break;
                    }
                    Event::Suspended { overshoot } => {
                        tl.line("suspended", format!("{overshoot:?}"))
                    }
                }
            }
        })
    };

    let sender = {
        let handle = handle.clone();
        tokio::spawn(async move {
            for seq in 0..MESSAGES {
                // The key is what the server's ack names.
                if let Err(e) = handle.send_keyed(seq, format!("seq:{seq}")) {
                    eprintln!("send seq:{seq} refused: {e}");
                }
                sleep(EVERY).await;
            }
        })
    };

    sleep(Duration::from_secs(2)).await;
    timeline.line("FAULT", "server restarts (down for 500 ms)");
    server.stop().await;
    sleep(Duration::from_millis(500)).await;
    server.restart().await.expect("restart the server");

    sleep(Duration::from_millis(2500)).await;
    timeline.line(
        "FAULT",
        "link blackholed for 2.5 s (no RST, no FIN: a dead peer)",
    );
    proxy.set_blackhole(true);
    sleep(Duration::from_millis(2500)).await;
    proxy.set_blackhole(false);
    timeline.line("FAULT", "blackhole lifted");

    sleep(Duration::from_millis(1500)).await;
    timeline.line("FAULT", "link reset (RST both ways)");
    proxy.reset_all();

    sender.await.expect("sender");
    let deadline = Instant::now() + Duration::from_secs(20);
    while handle.stats().acked < MESSAGES && Instant::now() < deadline {
        sleep(Duration::from_millis(20)).await;
    }
    let _ = handle
        .close_with(steadfast_tokio::core::CloseCode::NORMAL, "demo done")
        .await;
    let stats = handle.stats();
    let state = handle.state();
    drop(handle);
    let _ = tokio::time::timeout(Duration::from_secs(2), events_task).await;

    let seqs = server.seqs();
    let unique: BTreeSet<u64> = seqs.iter().copied().collect();
    let lost = (0..MESSAGES).filter(|s| !unique.contains(s)).count();
    let redelivered = seqs.len() - unique.len();
    let acked_ids = acked_ids.lock().expect("acked").clone();
    let distinct_acks: BTreeSet<MessageId> = acked_ids.iter().copied().collect();
    let duplicated = acked_ids.len() - distinct_acks.len();
    let in_order = server.first_seen_seqs().windows(2).all(|w| w[0] < w[1]);

    println!(
        "\nfinal account ({state:?} after {:.1?})",
        timeline.start.elapsed()
    );
    println!("  sent          {MESSAGES}");
    println!("  acked         {}", stats.acked);
    println!("  lost          {lost}");
    println!("  duplicated    {duplicated}   (messages with more than one outcome)");
    println!(
        "  re-delivered  {redelivered}   (replays the server saw again after a lost ack; same id, deduplicable)"
    );
    println!("  in order      {in_order}");
    println!(
        "  attempts      {}   reconnects {}",
        stats.attempts, stats.reconnects
    );
    if let Some(rtt) = stats.rtt {
        println!(
            "  rtt           min {:.0?}, smoothed {:.0?}",
            rtt.min, rtt.smoothed
        );
    }
    if lost == 0 && duplicated == 0 && in_order && stats.acked == MESSAGES && state == State::Closed
    {
        println!("\nOK: nothing lost, nothing duplicated, order kept.");
        ExitCode::SUCCESS
    } else {
        println!("\nFAILED: messages were lost, duplicated or reordered.");
        ExitCode::FAILURE
    }
}
