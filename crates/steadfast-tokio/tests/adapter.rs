//! steadfast-tokio specifics beyond the shared conformance scenarios.

use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use steadfast_testkit::adapter::wait_until;
use steadfast_testkit::{Behaviour, Server};
use steadfast_tokio::core::{
    Budget, Cause, Config, Error, Event, HandshakeError, HeartbeatConfig, Jitter, Message,
    RetryConfig, State,
};
use steadfast_tokio::{Builder, Events, RequestProvider};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn failed(events: &mut Events) -> Error {
    let wait = async {
        while let Some(ev) = events.next().await {
            if let Event::Failed { error, .. } = ev {
                return Some(error);
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(120), wait)
        .await
        .ok()
        .flatten()
        .expect("a Failed event")
}

#[tokio::test]
async fn request_provider_builds_a_fresh_request_per_attempt() {
    let server = Server::start(Behaviour::Reject(503, None))
        .await
        .expect("server");
    let url = server.url();
    let counter = Arc::new(AtomicU32::new(0));
    let provider = {
        let counter = counter.clone();
        RequestProvider::from_fn(move || {
            let (url, n) = (url.clone(), counter.fetch_add(1, Ordering::SeqCst));
            async move {
                let mut req = url.into_client_request()?;
                req.headers_mut()
                    .insert("authorization", format!("Bearer token-{n}").parse()?);
                Ok(req)
            }
        })
    };
    let config = Config::builder()
        .retry(RetryConfig {
            initial_delay: Duration::from_millis(50),
            ..Default::default()
        })
        .build()
        .expect("config");
    let (handle, _events) = Builder::with_provider(provider).config(config).connect();
    assert!(
        server
            .wait_until(Duration::from_secs(10), |s| s.handshakes() >= 1)
            .await
    );
    server.set_behaviour(Behaviour::serve());
    let mut status = handle.watch();
    let opened = tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| *s == State::Open),
    )
    .await;
    assert!(opened.is_ok(), "never opened");
    let seen = server.authorizations();
    assert!(seen.len() >= 2);
    assert_eq!(seen[0].as_deref(), Some("Bearer token-0"));
    assert_eq!(
        seen[1].as_deref(),
        Some("Bearer token-1"),
        "the token was not refreshed: {seen:?}"
    );
}

#[tokio::test]
async fn a_peer_that_fails_tls_is_a_fatal_tls_error() {
    // Answers the TLS ClientHello with plain HTTP: rustls rejects the record.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    let (_handle, mut events) = Builder::new(format!("wss://localhost:{port}/"))
        .expect("url")
        .connect();
    assert_eq!(failed(&mut events).await, Error::Tls);
}

#[tokio::test(start_paused = true)]
async fn paused_time_runs_a_whole_retry_schedule_instantly() {
    // The provider fails without touching the network, so virtual time only
    // moves through the core's backoff deadlines.
    let provider = RequestProvider::from_fn(|| async { Err("no token service".into()) });
    let retry = RetryConfig {
        initial_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(30),
        jitter: Jitter::None,
        max_attempts: Some(6),
        ..Default::default()
    };
    let config = Config::builder().retry(retry).build().expect("config");
    let start = tokio::time::Instant::now();
    let (_handle, mut events) = Builder::with_provider(provider).config(config).connect();
    let error = failed(&mut events).await;
    assert_eq!(
        error,
        Error::RetriesExhausted {
            attempts: 6,
            budget: Budget::FailedAttempts,
            last: Cause::Handshake(HandshakeError::Request)
        }
    );
    // 1 + 2 + 4 + 8 + 16 s of backoff passed on tokio's (virtual) clock.
    assert!(
        start.elapsed() >= Duration::from_secs(31),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn dropping_the_handle_ends_the_event_stream() {
    let server = Server::start(Behaviour::serve()).await.expect("server");
    let (handle, mut events) = Builder::new(server.url()).expect("url").connect();
    let mut status = handle.watch();
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| *s == State::Open),
    )
    .await;
    drop(handle);
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while events.next().await.is_some() {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the driver kept running after the last handle was dropped"
    );
    assert!(events.next().await.is_none(), "an ended stream stays ended");
}

/// The application's task reads the socket itself while it waits on its
/// events; one that waited once and then stopped polling (a `select!` whose
/// other branch runs long) must not starve the heartbeat: the driver reads
/// the pongs, so the connection is never declared dead.
#[tokio::test]
async fn a_task_that_stops_polling_events_does_not_stall_the_heartbeat() {
    let server = Server::start(Behaviour::serve()).await.expect("server");
    let heartbeat = HeartbeatConfig {
        interval: Duration::from_millis(150),
        pong_timeout: Duration::from_millis(100),
        tolerated_missed: 0,
        ..Default::default()
    };
    let config = Config::builder()
        .heartbeat(heartbeat)
        .build()
        .expect("config");
    let (handle, mut events) = Builder::new(server.url())
        .expect("url")
        .config(config)
        .connect();
    let opened = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = events.next().await {
            if let Event::StateChanged {
                to: State::Open, ..
            } = ev
            {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(opened, Ok(true), "never opened");
    // Take what is left and wait on the events once more (the stream keeps
    // this task's waker), then stop polling them until a pong has been read.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(5), events.next()).await {}
    assert!(
        wait_until(Duration::from_secs(10), || handle.stats().rtt.is_some()).await,
        "no pong was read while the application was busy"
    );
    assert_eq!(handle.state(), State::Open);
    assert_eq!(
        handle.stats().attempts,
        1,
        "reconnected: a pong went unread"
    );
    assert_eq!(server.handshakes(), 1);
}

/// The in-flight window frees up as the driver's writes complete; the rest
/// of a backlog must follow at once, with no other input (no inbound frame,
/// no command: taking events reads nothing here, the server stays silent).
#[tokio::test]
async fn a_backlog_larger_than_the_in_flight_window_is_written_without_other_input() {
    let server = Server::start(Behaviour::Serve {
        echo: false,
        ack: false,
    })
    .await
    .expect("server");
    let (handle, mut events) = Builder::new(server.url()).expect("url").connect();
    let window = Config::default().outbox().max_in_flight;
    let backlog = 3 * window + 5;
    for i in 0..backlog {
        handle
            .send(Message::text(format!("queued {i}")))
            .expect("room");
    }
    let mut outcomes = 0;
    let all_written = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(ev) = events.next().await {
            outcomes += usize::from(matches!(ev, Event::Outcome { .. }));
            if outcomes == backlog {
                break;
            }
        }
    })
    .await;
    assert!(
        all_written.is_ok(),
        "only {outcomes} of {backlog} written (window {window}): the rest waited for a deadline"
    );
    assert_eq!(handle.stats().written, backlog as u64);
}

/// The delay before the second attempt of a client whose first attempt the
/// server refuses (503, retryable), with full jitter.
async fn first_retry_delay(server: &Server, config: Config) -> Duration {
    let (_handle, mut events) = Builder::new(server.url())
        .expect("url")
        .config(config)
        .connect();
    let wait = async {
        while let Some(ev) = events.next().await {
            if let Event::Reconnecting { delay, .. } = ev {
                return Some(delay);
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .ok()
        .flatten()
        .expect("a Reconnecting event")
}

#[tokio::test]
async fn default_clients_draw_their_own_jitter_and_an_explicit_seed_replays() {
    let server = Server::start(Behaviour::Reject(503, None))
        .await
        .expect("server");
    let retry = || RetryConfig {
        initial_delay: Duration::from_secs(30),
        max_delay: Duration::from_secs(30),
        jitter: Jitter::Full,
        ..Default::default()
    };
    let default = || Config::builder().retry(retry()).build().expect("config");
    let a = first_retry_delay(&server, default()).await;
    let b = first_retry_delay(&server, default()).await;
    assert_ne!(a, b, "two default clients drew the same jitter");

    let seeded = || {
        Config::builder()
            .retry(retry())
            .seed(42)
            .build()
            .expect("config")
    };
    let c = first_retry_delay(&server, seeded()).await;
    let d = first_retry_delay(&server, seeded()).await;
    assert_eq!(c, d, "an explicit seed replays exactly");
}

#[tokio::test]
async fn send_takes_str_string_vec_and_bytes() {
    let server = Server::start(Behaviour::serve()).await.expect("server");
    let (handle, _events) = Builder::new(server.url()).expect("url").connect();
    handle.send("a str").expect("&str");
    handle.send(String::from("a String")).expect("String");
    handle.send(vec![1u8, 2, 3]).expect("Vec<u8>");
    handle
        .send(steadfast_tokio::core::Bytes::from_static(b"bytes"))
        .expect("Bytes");
    assert!(
        wait_until(Duration::from_secs(10), || server.messages().len() >= 2).await,
        "the text messages arrived"
    );
    assert_eq!(server.messages()[..2], ["a str", "a String"]);
    assert_eq!(handle.stats().accepted, 4);
}
