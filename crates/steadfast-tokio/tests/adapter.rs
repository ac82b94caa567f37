//! steadfast-tokio specifics beyond the shared conformance scenarios.

use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use steadfast_testkit::adapter::{assert_open_on_first_connection, next_matching, wait_until};
use steadfast_testkit::{Behaviour, Server};
use steadfast_tokio::core::{
    Budget, Cause, Config, Error, Event, HandshakeError, HeartbeatConfig, InboundConfig, Jitter,
    Message, RetryConfig, State,
};
use steadfast_tokio::{Builder, Events, RequestProvider};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn failed(events: &mut Events) -> Error {
    next_matching(events, Duration::from_secs(120), |ev| match ev {
        Event::Failed { error, .. } => Some(error),
        _ => None,
    })
    .await
    .expect("a Failed event")
}

/// Take events until the connection is open.
async fn opened(events: &mut Events) {
    let open = |ev| {
        matches!(
            ev,
            Event::StateChanged {
                to: State::Open,
                ..
            }
        )
        .then_some(())
    };
    assert_eq!(
        next_matching(events, Duration::from_secs(10), open).await,
        Some(()),
        "never opened"
    );
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
        RequestProvider::from_fn(move |_| {
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
        status.wait_for(|s| s == State::Open),
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
    let provider = RequestProvider::from_fn(|_| async { Err("no token service".into()) });
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
        status.wait_for(|s| s == State::Open),
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
    opened(&mut events).await;
    // Take what is left and wait on the events once more (the stream keeps
    // this task's waker), then stop polling them until a pong has been read.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(5), events.next()).await {}
    assert_a_pong_is_read(&handle, "while the application was busy").await;
    assert_open_on_first_connection(handle.status(), &server, "a pong went unread");
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
    next_matching(&mut events, Duration::from_secs(10), |ev| match ev {
        Event::Reconnecting { delay, .. } => Some(delay),
        _ => None,
    })
    .await
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

/// Wait until the connection is open.
async fn wait_open(handle: &steadfast_tokio::Handle) {
    let mut state = handle.watch();
    let opened = matches!(
        tokio::time::timeout(
            Duration::from_secs(10),
            state.wait_for(|s| s == State::Open)
        )
        .await,
        Ok(State::Open)
    );
    assert!(opened, "never opened");
}

/// Every event left on `events`, once it has ended (within 10 s).
async fn rest(events: &mut Events) -> Vec<Event> {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut seen = Vec::new();
        while let Some(ev) = events.next().await {
            seen.push(ev);
        }
        seen
    })
    .await
    .expect("the events stream did not end")
}

/// An application that stops taking its events: the adapter stops reading
/// the socket once the inbound bound is reached (TCP pushes back on the
/// server), keeps writing, holds the heartbeat still (a pong may wait
/// unread: no dead peer for it), and once the events are taken reads
/// again: every echo arrives, in order, on the first connection.
#[tokio::test]
async fn an_application_that_stops_taking_events_pauses_reading_and_loses_nothing() {
    let server = Server::start(Behaviour::Serve {
        echo: true,
        ack: false,
    })
    .await
    .expect("server");
    let bound = 8;
    // Only pongs prove liveness: a ping outstanding when reads pause stays
    // so (its deadline frozen) until its pong, read behind the backlog,
    // comes through; no ping goes out while they are paused.
    let heartbeat = HeartbeatConfig {
        interval: Duration::from_millis(300),
        pong_timeout: Duration::from_millis(200),
        tolerated_missed: 0,
        any_frame_is_liveness: false,
        ..Default::default()
    };
    let config = Config::builder()
        .heartbeat(heartbeat)
        .inbound(InboundConfig {
            max_messages: bound,
            ..Default::default()
        })
        .build()
        .expect("config");
    let (handle, mut events) = Builder::new(server.url())
        .expect("url")
        .config(config)
        .connect();
    wait_open(&handle).await;
    let sent = 200;
    for i in 0..sent {
        handle.send(Message::text(format!("m{i}"))).expect("room");
    }
    // Writes go on while reads are paused.
    assert!(
        wait_until(Duration::from_secs(10), || handle.stats().written
            == sent as u64)
        .await,
        "the sends were not all written while reads were paused"
    );
    // Several heartbeat intervals without taking an event: the heartbeat
    // stands still, and a pong may wait unread behind the backlog.
    let mut most = 0;
    let pause = tokio::time::Instant::now();
    while pause.elapsed() < Duration::from_secs(2) {
        most = most.max(handle.stats().inbound_len);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Exact: each read feeds at most one message, and none is read once
    // the bound is reached.
    assert!(
        most <= bound,
        "{most} messages held, above the bound of {bound}"
    );
    assert_eq!(most, bound, "the bound was never reached");
    assert_eq!(handle.state(), State::Open);
    assert_eq!(handle.stats().attempts, 1, "declared dead while paused");
    let echoes = tokio::time::timeout(Duration::from_secs(10), async {
        let mut echoes = Vec::new();
        while let Some(ev) = events.next().await {
            if let Event::Message(m) = ev {
                echoes.push(m.as_text().unwrap_or_default().to_owned());
                if echoes.len() == sent {
                    break;
                }
            }
        }
        echoes
    })
    .await
    .expect("the echoes did not all arrive once events were taken");
    let expected: Vec<_> = (0..sent).map(|i| format!("m{i}")).collect();
    assert_eq!(echoes, expected);
    // The heartbeat runs on once reading resumes: a pong is read.
    assert_a_pong_is_read(&handle, "after reading resumed").await;
    assert_open_on_first_connection(handle.status(), &server, "declared dead after resuming");
}

/// Taking one event of a full backlog resumes reading at once: the
/// driver reads the next frame though the application's task stays busy
/// (it reads itself only once it has taken everything) and no deadline
/// is near to wake the driver otherwise.
#[tokio::test]
async fn taking_one_event_of_a_full_backlog_resumes_reading_at_once() {
    let server = Server::start(Behaviour::Serve {
        echo: true,
        ack: false,
    })
    .await
    .expect("server");
    let bound = 4;
    // No deadline within the test's waits wakes the driver: not the
    // heartbeat, the end of `min_uptime`, nor the sleep still armed for the
    // connect timeout.
    let heartbeat = HeartbeatConfig {
        interval: Duration::from_secs(120),
        pong_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let retry = RetryConfig {
        min_uptime: Duration::from_secs(120),
        ..Default::default()
    };
    let config = Config::builder()
        .heartbeat(heartbeat)
        .retry(retry)
        .connect_timeout(Duration::from_secs(120))
        .inbound(InboundConfig {
            max_messages: bound,
            ..Default::default()
        })
        .build()
        .expect("config");
    let (handle, mut events) = Builder::new(server.url())
        .expect("url")
        .config(config)
        .connect();
    wait_open(&handle).await;
    for i in 0..2 * bound {
        handle.send(Message::text(format!("m{i}"))).expect("room");
    }
    assert!(
        wait_until(Duration::from_secs(10), || handle.stats().inbound_len
            == bound)
        .await,
        "the backlog never reached the bound"
    );
    // Take events up to the first message, then stop polling.
    let first = next_matching(&mut events, Duration::from_secs(10), |ev| match ev {
        Event::Message(m) => m.as_text().map(str::to_owned),
        _ => None,
    })
    .await;
    assert_eq!(first.as_deref(), Some("m0"));
    assert!(
        wait_until(Duration::from_secs(10), || handle.stats().inbound_len
            == bound)
        .await,
        "taking an event did not resume reading"
    );
    assert_eq!(handle.stats().attempts, 1);
}

/// `while let Some(ev) = events.next().await` ends after a graceful close
/// although the handle lives on: `Closed` is the last event.
#[tokio::test]
async fn the_events_end_after_closed_while_the_handle_lives() {
    let server = Server::start(Behaviour::serve()).await.expect("server");
    let (handle, mut events) = Builder::new(server.url()).expect("url").connect();
    wait_open(&handle).await;
    handle.close().await;
    let seen = rest(&mut events).await;
    assert!(
        matches!(seen.last(), Some(Event::Closed { .. })),
        "the events did not end with Closed: {seen:?}"
    );
    assert!(events.next().await.is_none(), "an ended stream stays ended");
    assert_eq!(handle.state(), State::Closed);
}

/// Likewise after a fatal failure: `Failed` is the last event.
#[tokio::test]
async fn the_events_end_after_failed_while_the_handle_lives() {
    let server = Server::start(Behaviour::Reject(401, None))
        .await
        .expect("server");
    let (handle, mut events) = Builder::new(server.url()).expect("url").connect();
    let seen = rest(&mut events).await;
    assert!(
        matches!(
            seen.last(),
            Some(Event::Failed {
                error: Error::Unauthorized { status: 401 },
                ..
            })
        ),
        "the events did not end with Failed: {seen:?}"
    );
    assert!(events.next().await.is_none(), "an ended stream stays ended");
    assert_eq!(handle.state(), State::Failed);
}

/// Take events from `events` until the connection is open; the events seen.
async fn until_open(events: &mut Events) -> Vec<Event> {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut seen = Vec::new();
        while let Some(ev) = events.next().await {
            let open = matches!(ev, Event::Opened { .. });
            seen.push(ev);
            if open {
                return seen;
            }
        }
        panic!("the events ended before opening: {seen:?}")
    })
    .await
    .expect("never opened")
}

/// `open` on a running connection does nothing and gives no stream; after
/// the events ended with `Closed` it starts a new session whose events
/// (and their end) come on the stream it returns, while the old one stays
/// ended.
#[tokio::test]
async fn open_after_closed_starts_a_new_session_on_a_new_stream() {
    let server = Server::start(Behaviour::serve()).await.expect("server");
    let (handle, mut events) = Builder::new(server.url()).expect("url").connect();
    until_open(&mut events).await;
    assert!(handle.open().is_none(), "open gave a second stream");
    handle.close().await;
    let seen = rest(&mut events).await;
    assert!(
        matches!(seen.last(), Some(Event::Closed { .. })),
        "{seen:?}"
    );

    let mut second = handle.open().expect("a new session");
    until_open(&mut second).await;
    assert!(events.next().await.is_none(), "the old stream came back");
    handle.send(Message::text("again")).expect("room");
    let echoed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = second.next().await {
            if let Event::Message(m) = ev {
                return m.as_text().map(str::to_owned);
            }
        }
        None
    })
    .await
    .expect("no echo");
    assert_eq!(echoed.as_deref(), Some("again"));
    handle.close().await;
    let seen = rest(&mut second).await;
    assert!(
        matches!(seen.last(), Some(Event::Closed { .. })),
        "{seen:?}"
    );
    assert_eq!(server.handshakes(), 2);
}

/// `open` right after `close` returns, before the old stream has taken its
/// last events: the old stream still yields them, up to `Closed`, and
/// nothing of the new session; dropping it then leaves the new stream's
/// events alone.
#[tokio::test]
async fn open_before_the_old_stream_saw_closed_leaves_it_its_events() {
    let server = Server::start(Behaviour::serve()).await.expect("server");
    let (handle, mut events) = Builder::new(server.url()).expect("url").connect();
    wait_open(&handle).await;
    handle.close().await;
    let mut second = handle.open().expect("a new session");
    let old = rest(&mut events).await;
    assert!(
        matches!(old.last(), Some(Event::Closed { .. })),
        "the old stream did not end with Closed: {old:?}"
    );
    assert_eq!(
        old.iter()
            .filter(|ev| matches!(ev, Event::Opened { .. }))
            .count(),
        1,
        "the old stream saw the new session: {old:?}"
    );
    drop(events);
    let new = until_open(&mut second).await;
    assert!(
        matches!(
            new.first(),
            Some(Event::StateChanged {
                from: State::Closed,
                to: State::Connecting
            })
        ),
        "the new stream did not start with the new session: {new:?}"
    );
    assert_eq!(handle.state(), State::Open);
}

/// After a fatal failure, `open` starts afresh on a new stream too.
#[tokio::test]
async fn open_after_failed_starts_a_new_session_on_a_new_stream() {
    let server = Server::start(Behaviour::Reject(401, None))
        .await
        .expect("server");
    let (handle, mut events) = Builder::new(server.url()).expect("url").connect();
    let seen = rest(&mut events).await;
    assert!(
        matches!(seen.last(), Some(Event::Failed { .. })),
        "{seen:?}"
    );
    server.set_behaviour(Behaviour::serve());
    let mut second = handle.open().expect("a new session");
    until_open(&mut second).await;
    assert_eq!(handle.state(), State::Open);
    assert!(events.next().await.is_none(), "the old stream came back");
}

#[tokio::test]
async fn the_builder_adds_a_bearer_token_headers_and_query_to_every_attempt() {
    let server = Server::start(Behaviour::serve()).await.expect("server");
    let (handle, _events) = Builder::new(format!("{}chat?v=1", server.url()))
        .expect("url")
        .bearer("t0k3n")
        .expect("token")
        .header("x-client", "kiosk")
        .expect("header")
        .query("room", "lobby & friends")
        .connect();
    wait_open(&handle).await;
    assert_eq!(server.authorizations(), [Some("Bearer t0k3n".to_owned())]);
    assert_eq!(server.targets(), ["/chat?v=1&room=lobby+%26+friends"]);
}

#[tokio::test]
async fn a_provider_that_says_not_to_retry_fails_at_once() {
    let server = Server::start(Behaviour::serve()).await.expect("server");
    let url = server.url();
    let provider = RequestProvider::from_fn(move |attempt| {
        let url = url.clone();
        async move {
            if attempt > 0 {
                return Err(steadfast_tokio::ProviderError::fatal("signed out"));
            }
            Ok(url.into_client_request()?)
        }
    });
    let (handle, mut events) = Builder::with_provider(provider).connect();
    assert_eq!(failed(&mut events).await, Error::RequestRefused);
    assert_eq!(handle.stats().attempts, 1);
    assert_eq!(server.handshakes(), 0);
}

/// A heartbeat round trip completes (within 10 s): the pong was read.
async fn assert_a_pong_is_read(handle: &steadfast_tokio::Handle, when: &str) {
    assert!(
        wait_until(Duration::from_secs(10), || handle.stats().rtt.is_some()).await,
        "no pong was read {when}"
    );
}
