//! `steadfast_tokio::server` behaviours the chat example does not show:
//! backpressure that does not reap healthy clients, a subprotocol the
//! client never offered, and the rejection response's headers.
#![cfg(feature = "server")]

use std::time::Duration;
use steadfast_tokio::Builder;
use steadfast_tokio::core::{Config, Event, HeartbeatConfig, HeartbeatMode};
use steadfast_tokio::server::{
    HubConfig, HubEvent, LeaveReason, LivenessConfig, Rejection, Server, Verdict,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_application_holds_readers_back_without_reaping_healthy_clients() {
    let liveness = LivenessConfig {
        interval: Duration::from_millis(200),
        timeout: Duration::from_millis(200),
    };
    let (server, mut events) = Server::builder(HubConfig {
        liveness,
        ..HubConfig::default()
    })
    .verify(|req| Verdict::accept(req.query_param("id").unwrap_or_default().into_owned()))
    .max_pending_events(3)
    .bind("127.0.0.1:0")
    .await
    .expect("bind");
    // Clients that answer pings but never ping on their own.
    let config = Config::builder()
        .heartbeat(HeartbeatConfig {
            mode: HeartbeatMode::Passive,
            ..Default::default()
        })
        .build()
        .expect("config");
    let mut clients = Vec::new();
    for id in ["a", "b", "c"] {
        let (h, e) = Builder::new(format!("ws://{}/", server.local_addr()).as_str())
            .expect("url")
            .query("id", id)
            .config(config.clone())
            .connect();
        clients.push((h, e));
    }
    // The application takes no events for three detection bounds; the
    // three joins fill the three places for pending events (so no join is
    // refused while the readers are held back).
    tokio::time::sleep(liveness.detection_bound() * 3).await;
    assert!(
        server.with_hub(|hub| hub.is_reading_paused()),
        "the readers are held back"
    );
    for (h, _) in &clients {
        let _ = h.send("are you there?");
    }
    // The application catches up: everything until the three messages.
    let mut seen = Vec::new();
    timeout(Duration::from_secs(10), async {
        while seen
            .iter()
            .filter(|e| matches!(e, HubEvent::Message { .. }))
            .count()
            < 3
        {
            seen.push(events.recv().await.expect("events end early"));
        }
    })
    .await
    .expect("the three messages within 10 s");
    let reaped = seen
        .iter()
        .filter(|e| {
            matches!(
                e,
                HubEvent::Left {
                    reason: LeaveReason::Reaped,
                    ..
                }
            )
        })
        .count();
    let messages = seen
        .iter()
        .filter(|e| matches!(e, HubEvent::Message { .. }))
        .count();
    assert_eq!(
        reaped, 0,
        "healthy clients were reaped while the server was not reading"
    );
    assert_eq!(
        messages, 3,
        "every client's message arrived once the application caught up"
    );
    assert_eq!(server.with_hub(|hub| hub.live_count()), 3);
    drop(clients);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verdict_echoing_an_unoffered_subprotocol_is_refused_with_500() {
    let (server, _events) = Server::<String>::builder(HubConfig::default())
        .verify(|_| Verdict::Accept {
            user: "a".into(),
            protocol: Some("chat.v1".into()),
        })
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (_h, mut events) = Builder::new(format!("ws://{}/", server.local_addr()).as_str())
        .expect("url")
        .connect();
    let first = timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Some(Event::Reconnecting { cause, .. }) => return format!("{cause:?}"),
                Some(Event::Failed { error, .. }) => return format!("{error:?}"),
                Some(Event::Opened { .. }) => panic!("opened with a subprotocol it never offered"),
                Some(_) => {}
                None => panic!("events ended"),
            }
        }
    })
    .await
    .expect("an outcome in time");
    assert!(first.contains("500"), "{first}");
    assert_eq!(server.with_hub(|hub| hub.session_count()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_is_a_complete_http_response_with_retry_after() {
    let (server, _events) = Server::<String>::builder(HubConfig::default())
        .verify(|_| Verdict::Reject(Rejection::too_many_requests(Duration::from_millis(2500))))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .expect("write");
    let mut response = String::new();
    timeout(Duration::from_secs(10), tcp.read_to_string(&mut response))
        .await
        .expect("in time")
        .expect("read");
    let lower = response.to_ascii_lowercase();
    assert!(response.starts_with("HTTP/1.1 429"), "{response}");
    assert!(lower.contains("retry-after: 3\r\n"), "{response}");
    assert!(lower.contains("content-length: 17\r\n"), "{response}");
    assert!(lower.contains("connection: close\r\n"), "{response}");
    assert!(response.ends_with("too many requests"), "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_end_once_a_shutdown_has_closed_every_session() {
    let (server, mut events) = Server::builder(HubConfig::default())
        .verify(|req| Verdict::accept(req.query_param("id").unwrap_or_default().into_owned()))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut clients = Vec::new();
    for id in ["a", "b"] {
        clients.push(
            Builder::new(format!("ws://{}/", server.local_addr()).as_str())
                .expect("url")
                .query("id", id)
                .connect(),
        );
    }
    let mut joined = 0;
    while joined < 2 {
        if let Some(HubEvent::Joined { .. }) = timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("joins in time")
        {
            joined += 1;
        }
    }
    let shutdown = tokio::spawn(server.shutdown(
        steadfast_tokio::server::CloseCode::SERVICE_RESTART,
        Duration::from_millis(200),
    ));
    let mut left = 0;
    let ended = timeout(Duration::from_secs(10), async {
        while let Some(ev) = events.recv().await {
            if matches!(
                ev,
                HubEvent::Left {
                    reason: LeaveReason::Shutdown,
                    ..
                }
            ) {
                left += 1;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the event stream never ended");
    assert_eq!(left, 2, "both leaves came before the end");
    timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("the shutdown completes within 10 s")
        .expect("the shutdown future resolved");
    drop(clients);
}
