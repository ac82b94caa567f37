//! The adapter conformance scenarios, written once and run against every
//! adapter over real loopback sockets (through [`FaultProxy`] where the
//! network misbehaves). Each panics with a message when the adapter fails it.
//!
//! Run them all with [`conformance_tests!`](crate::conformance_tests).

use crate::adapter::{Adapter, AdapterHandle, StartOptions, TestClient};
use crate::proxy::FaultProxy;
use crate::server::{Behaviour, Server};
use crate::tls::TestCa;
use std::time::Duration;
use steadfast_core::{
    AckConfig, AckMatcher, Cause, CloseCode, Config, Delivery, Error, Event, HeartbeatConfig,
    Message, OutboxConfig, PingSchedule, RetryConfig, State, TransportError,
};
use tokio::time::Instant;

/// Heartbeat interval of the scenarios' config.
pub const INTERVAL: Duration = Duration::from_millis(400);
/// Pong deadline of the scenarios' config.
pub const PONG_TIMEOUT: Duration = Duration::from_millis(300);
/// Connect timeout of the scenarios' config.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(800);
/// Slack allowed on real sockets and a loaded 2-core machine.
pub const SLACK: Duration = Duration::from_millis(700);
/// How long a scenario waits for something that should happen soon.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// The scenarios' config: fast heartbeat and retries, seeded.
pub fn config(seed: u64, delivery: Delivery) -> Config {
    Config::builder()
        .seed(seed)
        .connect_timeout(CONNECT_TIMEOUT)
        .close_timeout(Duration::from_secs(1))
        .heartbeat(HeartbeatConfig {
            interval: INTERVAL,
            pong_timeout: PONG_TIMEOUT,
            ..Default::default()
        })
        .retry(RetryConfig {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            min_delay: Duration::from_millis(10),
            restart_spread: Duration::from_millis(500),
            try_again_later_floor: Duration::from_millis(500),
            min_uptime: Duration::from_millis(500),
            ..Default::default()
        })
        .outbox(OutboxConfig {
            delivery,
            ..Default::default()
        })
        .build()
        .unwrap_or_else(|e| panic!("scenario config: {e}"))
}

fn options(url: String, delivery: Delivery) -> StartOptions {
    StartOptions {
        url,
        config: config(1, delivery),
        max_message_size: None,
        tls: None,
        subprotocols: Vec::new(),
    }
}

async fn server(behaviour: Behaviour) -> Server {
    Server::start(behaviour)
        .await
        .unwrap_or_else(|e| panic!("server: {e}"))
}

async fn proxy(server: &Server) -> FaultProxy {
    FaultProxy::start(server.addr())
        .await
        .unwrap_or_else(|e| panic!("proxy: {e}"))
}

fn is_opened(e: &Event) -> bool {
    matches!(e, Event::Opened { .. })
}

fn failed_error(e: &Event) -> Option<Error> {
    match e {
        Event::Failed { error, .. } => Some(error.clone()),
        _ => None,
    }
}

/// Waits for the first reconnect whose cause matches `f`.
async fn reconnect_for<H: AdapterHandle>(
    client: &TestClient<H>,
    f: impl Fn(&Cause) -> bool,
) -> Option<(Instant, Event)> {
    client
        .log
        .wait_for(
            PATIENCE,
            |e| matches!(e, Event::Reconnecting { cause, .. } if f(cause)),
        )
        .await
}

async fn opened<H: AdapterHandle>(client: &TestClient<H>, n: usize) -> Instant {
    match client.log.wait_nth(PATIENCE, n, is_opened).await {
        Some((t, _)) => t,
        None => panic!(
            "connection #{n} never opened; events: {:?}",
            client.log.all()
        ),
    }
}

async fn failure<H: AdapterHandle>(client: &TestClient<H>) -> Error {
    let ev = client
        .log
        .wait_for(PATIENCE, |e| failed_error(e).is_some())
        .await;
    match ev.and_then(|(_, e)| failed_error(&e)) {
        Some(error) => error,
        None => panic!("expected Failed; events: {:?}", client.log.all()),
    }
}

/// A message sent is echoed back.
pub async fn echo_round_trip<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::serve()).await;
    let client = TestClient::start(adapter, options(server.url(), Delivery::AtMostOnce), false);
    client.handle.send(Message::text("hello")).expect("queued");
    let echoed = client
        .log
        .wait_for(
            PATIENCE,
            |e| matches!(e, Event::Message(m) if m.as_text() == Some("hello")),
        )
        .await;
    assert!(echoed.is_some(), "no echo; events: {:?}", client.log.all());
    assert!(
        client
            .wait_until(PATIENCE, |h| h.stats().written == 1)
            .await
    );
}

/// At least once: the server restarts mid-stream; nothing is lost, every
/// message is acked exactly once, and the server sees them first in order.
pub async fn server_restart_loses_nothing_at_least_once<A: Adapter>(adapter: &A) {
    let mut server = server(Behaviour::serve()).await;
    let mut client = TestClient::start(adapter, options(server.url(), Delivery::AtLeastOnce), true);
    opened(&client, 1).await;
    const N: u64 = 60;
    for i in 0..N {
        client.send_seq().expect("queued");
        tokio::time::sleep(Duration::from_millis(5)).await;
        if i == N / 2 {
            server.stop().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            server.restart().await.expect("restart on the same port");
        }
    }
    let all_acked = client.wait_until(PATIENCE, |h| h.stats().acked == N).await;
    assert!(
        all_acked,
        "acked {} of {N}; events: {:?}",
        client.handle.stats().acked,
        client.log.all()
    );
    let is_acked = |e: &Event| {
        matches!(
            e,
            Event::Outcome {
                outcome: steadfast_core::Outcome::Acked,
                ..
            }
        )
    };
    // The counter moves at the ack; its event may still be on its way to
    // the log behind messages the adapter read meanwhile (a blocking
    // adapter's loop reads eagerly): wait for the N-th, then allow a
    // moment for an extra one that must not come.
    let _ = client.log.wait_nth(PATIENCE, N as usize, is_acked).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let acked_events = client.log.count(is_acked);
    assert_eq!(acked_events as u64, N, "each message acked exactly once");
    assert_eq!(
        server.first_seen_seqs(),
        (0..N).collect::<Vec<_>>(),
        "lost or out of order"
    );
    // The recorder may not have taken the second Opened yet: wait for it.
    opened(&client, 2).await;
}

/// [`options`] with the server's `ack:N` / `nack:N:why` recognised.
fn acked_options(url: String, delivery: Delivery) -> StartOptions {
    let mut opts = options(url, delivery);
    opts.config = opts_with_acks(opts.config);
    opts
}

fn opts_with_acks(config: Config) -> Config {
    let mut b = Config::builder()
        .seed(1)
        .connect_timeout(config.connect_timeout())
        .close_timeout(config.close_timeout())
        .heartbeat(config.heartbeat().clone())
        .retry(config.retry().clone())
        .outbox(config.outbox().clone())
        .acks(AckConfig::new(AckMatcher::ack_nack()));
    if let Some(auth) = config.auth() {
        b = b.auth(auth.clone());
    }
    b.build().unwrap_or_else(|e| panic!("config: {e}"))
}

/// At least once with the server's acks recognised by configuration (no
/// map in the application): the server restarts mid-stream, and every
/// keyed message and every request ends with exactly one outcome, none
/// lost, none left unresolved.
pub async fn server_acks_by_key_through_a_restart_lose_nothing<A: Adapter>(adapter: &A) {
    let mut server = server(Behaviour::Serve {
        echo: false,
        ack: true,
    })
    .await;
    let client = TestClient::start(
        adapter,
        acked_options(server.url(), Delivery::AtLeastOnce),
        false,
    );
    opened(&client, 1).await;
    const N: u64 = 40;
    let mut requests = Vec::new();
    for n in 0..N {
        client
            .handle
            .send_keyed(n, Message::text(format!("seq:{n}")))
            .expect("queued");
        if n % 10 == 5 {
            let key = 1000 + n;
            let ask = client.handle.request(
                key,
                Message::text(format!("seq:{key}:ask")),
                Duration::from_secs(10),
            );
            requests.push((key, tokio::spawn(ask)));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        if n == N / 2 {
            server.stop().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            server.restart().await.expect("restart on the same port");
        }
    }
    let all_acked = client.wait_until(PATIENCE, |h| h.stats().acked == N).await;
    assert!(
        all_acked,
        "acked {} of {N}; events: {:?}",
        client.handle.stats().acked,
        client.log.all()
    );
    for (key, ask) in requests {
        let reply = ask.await.unwrap_or_else(|e| panic!("request task: {e}"));
        let reply = reply.unwrap_or_else(|e| panic!("request {key}: {e}"));
        assert_eq!(
            reply.as_text(),
            Some(format!("ack:{key}:answer {key}").as_str())
        );
    }
    let stats = client.handle.stats();
    assert_eq!((stats.queue_len, stats.replied), (0, 4), "unresolved left");
    let acks_as_messages = client.log.count(|e| matches!(e, Event::Message(_)));
    assert_eq!(acks_as_messages, 0, "a matched ack reached the application");
    // The recorder may not have taken the second Opened yet: wait for it.
    opened(&client, 2).await;
}

/// A request whose reply never comes fails at its deadline, typed.
pub async fn a_request_without_a_reply_times_out_at_its_deadline<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::Serve {
        echo: false,
        ack: false,
    })
    .await;
    let client = TestClient::start(
        adapter,
        acked_options(server.url(), Delivery::AtLeastOnce),
        false,
    );
    opened(&client, 1).await;
    let timeout = Duration::from_millis(400);
    let since = Instant::now();
    let asked = client
        .handle
        .request(1, Message::text("seq:1:ask"), timeout);
    let result = tokio::time::timeout(PATIENCE, asked).await;
    assert_eq!(
        result,
        Ok(Err(steadfast_async::RequestError::TimedOut)),
        "no timeout"
    );
    assert!(since.elapsed() >= timeout, "timed out early");
    assert_eq!(client.handle.stats().timed_out, 1);
}

/// A negative ack ends the message with the server's reason, and a
/// refused request fails with it.
pub async fn a_nack_ends_the_message_with_the_servers_reason<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::serve()).await;
    let client = TestClient::start(
        adapter,
        acked_options(server.url(), Delivery::AtLeastOnce),
        false,
    );
    opened(&client, 1).await;
    let id = client
        .handle
        .send_keyed(3, Message::text("seq:3:refuse"))
        .expect("queued");
    let reason = steadfast_core::Bytes::from_static(b"refused by the test server");
    let refused = client
        .log
        .wait_for(PATIENCE, |e| {
            matches!(e, Event::Outcome { id: i, outcome: steadfast_core::Outcome::Refused(r) }
                if *i == id && *r == reason)
        })
        .await;
    assert!(refused.is_some(), "events: {:?}", client.log.all());
    let asked = client
        .handle
        .request(4, Message::text("seq:4:refuse"), Duration::from_secs(10));
    assert_eq!(
        tokio::time::timeout(PATIENCE, asked).await,
        Ok(Err(steadfast_async::RequestError::Refused { reason })),
    );
    assert_eq!(client.handle.stats().refused, 2);
}

/// A blackholed link is declared dead within interval + pong deadline (+ slack) and re-established.
pub async fn blackhole_is_detected_and_reconnected<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::serve()).await;
    let proxy = proxy(&server).await;
    let client = TestClient::start(adapter, options(proxy.url(), Delivery::AtMostOnce), false);
    opened(&client, 1).await;
    let since = Instant::now();
    proxy.set_blackhole(true);
    let detected = reconnect_for(&client, |c| matches!(c, Cause::HeartbeatTimeout)).await;
    let Some((at, _)) = detected else {
        panic!("dead peer never detected; events: {:?}", client.log.all())
    };
    let took = at - since;
    assert!(
        took <= INTERVAL + PONG_TIMEOUT + SLACK,
        "detection took {took:?}"
    );
    proxy.set_blackhole(false);
    opened(&client, 2).await;
}

/// A connection reset mid-stream is retried and re-established.
pub async fn reset_mid_stream_reconnects<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::serve()).await;
    let proxy = proxy(&server).await;
    let client = TestClient::start(adapter, options(proxy.url(), Delivery::AtMostOnce), false);
    opened(&client, 1).await;
    proxy.reset_all();
    let reconnecting = reconnect_for(&client, |c| {
        matches!(c, Cause::Transport(TransportError::Reset))
    })
    .await;
    assert!(
        reconnecting.is_some(),
        "reset not seen; events: {:?}",
        client.log.all()
    );
    opened(&client, 2).await;
}

/// 1012 (service restart) reconnects soon; 1013 waits its floor.
pub async fn restart_close_codes_reconnect<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::CloseWith(1012, "restarting".into())).await;
    let client = TestClient::start(adapter, options(server.url(), Delivery::AtMostOnce), false);
    let ev = client
        .log
        .wait_for(PATIENCE, |e| matches!(e, Event::Reconnecting { .. }))
        .await;
    match ev {
        Some((
            _,
            Event::Reconnecting {
                cause: Cause::Closed { code, reason },
                delay,
                ..
            },
        )) => {
            assert_eq!(
                (code, reason.as_str()),
                (CloseCode::SERVICE_RESTART, "restarting")
            );
            assert!(delay <= Duration::from_millis(500), "1012 delay {delay:?}");
        }
        other => panic!("expected a 1012 reconnect, got {other:?}"),
    }
    server.set_behaviour(Behaviour::CloseWith(1013, String::new()));
    let ev = client
        .log
        .wait_for(PATIENCE, |e| {
            matches!(
                e,
                Event::Reconnecting {
                    cause: Cause::Closed {
                        code: CloseCode(1013),
                        ..
                    },
                    ..
                }
            )
        })
        .await;
    match ev {
        Some((_, Event::Reconnecting { delay, .. })) => {
            assert!(delay >= Duration::from_millis(500))
        }
        other => panic!("expected a 1013 reconnect, got {other:?}"),
    }
}

/// A fatal close code (1008 policy violation) ends in Failed with code and reason.
pub async fn fatal_close_code_fails<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::CloseWith(1008, "bad id".into())).await;
    let client = TestClient::start(adapter, options(server.url(), Delivery::AtMostOnce), false);
    let error = failure(&client).await;
    assert_eq!(
        error,
        Error::ClosedByServer {
            code: CloseCode::POLICY,
            reason: "bad id".into()
        }
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.handshakes(), 1, "a fatal close must not be retried");
}

/// 401 at the handshake is a fatal, typed auth error with no retry.
pub async fn unauthorized_is_fatal_without_retry<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::Reject(401, None)).await;
    let client = TestClient::start(adapter, options(server.url(), Delivery::AtMostOnce), false);
    assert_eq!(failure(&client).await, Error::Unauthorized { status: 401 });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.handshakes(), 1);
    assert_eq!(client.handle.state(), State::Failed);
}

/// 503 with Retry-After: the next attempt comes no earlier.
pub async fn retry_after_is_honoured<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::Reject(503, Some(1))).await;
    let client = TestClient::start(adapter, options(server.url(), Delivery::AtMostOnce), false);
    let Some((_, Event::Reconnecting { advised, .. })) = client
        .log
        .wait_for(PATIENCE, |e| matches!(e, Event::Reconnecting { .. }))
        .await
    else {
        panic!("no reconnect after 503; events: {:?}", client.log.all())
    };
    assert_eq!(advised, Some(Duration::from_secs(1)));
    server.set_behaviour(Behaviour::serve());
    opened(&client, 1).await;
    // Measured where the server sees the attempts.
    let times = server.handshake_times();
    assert!(times.len() >= 2, "handshakes: {}", times.len());
    assert!(
        times[1] - times[0] >= Duration::from_secs(1),
        "retried after {:?}",
        times[1] - times[0]
    );
}

/// A proxy that accepts but never answers: the attempt times out and is retried.
pub async fn connect_timeout_is_retried<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::serve()).await;
    let proxy = proxy(&server).await;
    proxy.set_blackhole(true);
    let started = Instant::now();
    let client = TestClient::start(adapter, options(proxy.url(), Delivery::AtMostOnce), false);
    let ev = reconnect_for(&client, |c| matches!(c, Cause::ConnectTimeout)).await;
    let Some((at, _)) = ev else {
        panic!("no connect timeout; events: {:?}", client.log.all())
    };
    assert!(at - started >= CONNECT_TIMEOUT && at - started <= CONNECT_TIMEOUT + SLACK);
    proxy.set_blackhole(false);
    opened(&client, 1).await;
}

/// The failure a misbehaving server causes, with the client's max message size.
async fn failure_against<A: Adapter>(
    adapter: &A,
    behaviour: Behaviour,
    max_message_size: Option<usize>,
) -> Error {
    let server = server(behaviour).await;
    let mut opts = options(server.url(), Delivery::AtMostOnce);
    opts.max_message_size = max_message_size;
    failure(&TestClient::start(adapter, opts, false)).await
}

/// An oversized message is classified 1009 (fatal by default) without a crash.
pub async fn oversized_message_is_1009<A: Adapter>(adapter: &A) {
    let error = failure_against(adapter, Behaviour::Oversized(64 * 1024), Some(16 * 1024)).await;
    assert_eq!(
        error,
        Error::ProtocolFailure {
            code: CloseCode::TOO_BIG
        }
    );
}

/// Invalid UTF-8 in a text frame is classified 1007.
pub async fn invalid_utf8_is_1007<A: Adapter>(adapter: &A) {
    let error = failure_against(adapter, Behaviour::InvalidUtf8, None).await;
    assert_eq!(
        error,
        Error::ProtocolFailure {
            code: CloseCode::INVALID_PAYLOAD
        }
    );
}

/// Garbage on the wire is a protocol error, and the client reconnects.
pub async fn garbage_is_a_protocol_error_and_reconnects<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::Garbage).await;
    let mut client = TestClient::start(adapter, options(server.url(), Delivery::AtLeastOnce), true);
    let ev = reconnect_for(&client, |c| {
        matches!(c, Cause::Transport(TransportError::Protocol))
    })
    .await;
    assert!(
        ev.is_some(),
        "garbage not classified; events: {:?}",
        client.log.all()
    );
    server.set_behaviour(Behaviour::serve());
    // Only a serving connection acks: proof the client reconnected for real.
    client.send_seq().expect("queued");
    let acked = client.wait_until(PATIENCE, |h| h.stats().acked == 1).await;
    assert!(
        acked,
        "never reconnected after garbage; events: {:?}",
        client.log.all()
    );
}

/// The application closes gracefully: a close frame with its code reaches the server.
pub async fn graceful_close_from_the_app<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::serve()).await;
    let client = TestClient::start(adapter, options(server.url(), Delivery::AtMostOnce), false);
    opened(&client, 1).await;
    client.handle.send(Message::text("last")).expect("queued");
    let closed =
        tokio::time::timeout(PATIENCE, client.handle.close(CloseCode::GOING_AWAY, "bye")).await;
    assert!(
        matches!(closed, Ok(Ok(()))),
        "close did not resolve: {closed:?}"
    );
    assert_eq!(client.handle.state(), State::Closed);
    assert!(
        server.wait_until(PATIENCE, |s| s.closes() == [1001]).await,
        "closes: {:?}",
        server.closes()
    );
    assert!(
        server.messages().contains(&"last".to_owned()),
        "queued message not flushed before close"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server.handshakes(),
        1,
        "reconnected after a deliberate close"
    );
}

/// At least once, a close that waits for deliveries after a burst hands
/// nothing back: every message was acked before the close frame went out.
pub async fn close_when_delivered_after_a_burst_hands_nothing_back<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::serve()).await;
    let mut client = TestClient::start(adapter, options(server.url(), Delivery::AtLeastOnce), true);
    opened(&client, 1).await;
    for _ in 0..200 {
        client.send_seq().expect("queued");
    }
    let closed = tokio::time::timeout(
        PATIENCE,
        client
            .handle
            .close_when_delivered(CloseCode::NORMAL, "bye", Duration::from_secs(10)),
    )
    .await;
    assert!(
        matches!(closed, Ok(Ok(()))),
        "close did not resolve: {closed:?}"
    );
    let handed_back = client
        .log
        .wait_for(PATIENCE, |e| matches!(e, Event::Closed { .. }))
        .await;
    let Some((_, Event::Closed { undelivered, .. })) = handed_back else {
        panic!("no Closed event: {:?}", client.log.all())
    };
    assert!(undelivered.is_empty(), "{} handed back", undelivered.len());
    assert_eq!(client.handle.stats().acked, 200);
    assert_eq!(server.first_seen_seqs(), (0..200).collect::<Vec<_>>());
}

/// Dropping every handle sends a close frame (1000), not an abnormal 1006.
pub async fn dropping_all_handles_closes<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::serve()).await;
    let client = TestClient::start(adapter, options(server.url(), Delivery::AtMostOnce), false);
    opened(&client, 1).await;
    drop(client);
    assert!(
        server.wait_until(PATIENCE, |s| s.closes() == [1000]).await,
        "closes: {:?}",
        server.closes()
    );
}

/// Offline pauses reconnects; online reconnects at once.
pub async fn offline_and_online_hints<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::serve()).await;
    let proxy = proxy(&server).await;
    proxy.set_down(true);
    let client = TestClient::start(adapter, options(proxy.url(), Delivery::AtMostOnce), false);
    assert!(
        client
            .wait_until(PATIENCE, |h| h.state() == State::Backoff)
            .await
    );
    client.handle.set_online(false);
    assert_eq!(client.handle.state(), State::Offline);
    proxy.set_down(false);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        client.handle.state(),
        State::Offline,
        "reconnected while offline"
    );
    assert_eq!(server.handshakes(), 0);
    let back = Instant::now();
    client.handle.set_online(true);
    let at = opened(&client, 1).await;
    assert!(
        at - back <= SLACK,
        "online took {:?} to reconnect",
        at - back
    );
}

/// Messages sent while disconnected are delivered after the reconnect, in order.
pub async fn sends_while_disconnected_are_delivered_after_reconnect<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::serve()).await;
    let proxy = proxy(&server).await;
    proxy.set_down(true);
    let mut client = TestClient::start(adapter, options(proxy.url(), Delivery::AtLeastOnce), true);
    for _ in 0..10 {
        client.send_seq().expect("queued while offline");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.seqs(), Vec::<u64>::new());
    proxy.set_down(false);
    assert!(
        client.wait_until(PATIENCE, |h| h.stats().acked == 10).await,
        "events: {:?}",
        client.log.all()
    );
    assert_eq!(server.seqs(), (0..10).collect::<Vec<_>>());
}

/// 200 clients behind one proxy survive a server restart; jitter spreads
/// their reconnects (no 100 ms window holds more than half).
pub async fn fleet_survives_server_restart_with_spread_reconnects<A: Adapter>(adapter: &A) {
    const FLEET: usize = 200;
    let mut server = server(Behaviour::serve()).await;
    let proxy = proxy(&server).await;
    let clients: Vec<_> = (0..FLEET as u64)
        .map(|seed| {
            let mut opts = options(proxy.url(), Delivery::AtMostOnce);
            opts.config = config(seed, Delivery::AtMostOnce);
            TestClient::start(adapter, opts, false)
        })
        .collect();
    for c in &clients {
        opened(c, 1).await;
    }
    server.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart().await.expect("restart on the same port");
    let deadline = Instant::now() + PATIENCE;
    let mut reopened = Vec::with_capacity(FLEET);
    for (i, c) in clients.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.log.wait_nth(left, 2, is_opened).await {
            Some((t, _)) => reopened.push(t),
            None => panic!(
                "client {i} never reconnected; {} of {FLEET} did",
                reopened.len()
            ),
        }
    }
    reopened.sort();
    let first = reopened[0];
    let offsets: Vec<Duration> = reopened.iter().map(|t| *t - first).collect();
    let busiest = offsets
        .iter()
        .map(|start| {
            offsets
                .iter()
                .filter(|t| **t >= *start && **t < *start + Duration::from_millis(100))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        busiest <= FLEET / 2,
        "{busiest} of {FLEET} reconnected within one 100 ms window"
    );
}

/// A server that accepts, then never reads again (half-open: no pongs, no
/// close) is declared dead within interval + pong deadline (+ slack).
pub async fn half_open_server_is_detected<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::Silent).await;
    let opts = options(server.url(), Delivery::AtMostOnce);
    let bound = opts.config.heartbeat().detection_bound();
    let client = TestClient::start(adapter, opts, false);
    detected_within(&client, bound).await;
}

/// The same with pings on a fixed schedule whose pong deadline equals the
/// interval: the ping and the deadline fall due together, and the deadline
/// still counts (a tie once let the ping re-arm it forever).
pub async fn half_open_server_is_detected_with_fixed_pings_and_an_equal_deadline<A: Adapter>(
    adapter: &A,
) {
    let server = server(Behaviour::Silent).await;
    let mut opts = options(server.url(), Delivery::AtMostOnce);
    opts.config = Config::builder()
        .seed(1)
        .heartbeat(HeartbeatConfig {
            interval: INTERVAL,
            pong_timeout: INTERVAL,
            schedule: PingSchedule::Fixed,
            ..Default::default()
        })
        .build()
        .unwrap_or_else(|e| panic!("config: {e}"));
    let bound = opts.config.heartbeat().detection_bound();
    let client = TestClient::start(adapter, opts, false);
    detected_within(&client, bound).await;
}

/// The client's heartbeat declares the silent server dead within `bound`
/// (what its configuration documents) of opening.
async fn detected_within<H: AdapterHandle>(client: &TestClient<H>, bound: Duration) {
    let since = opened(client, 1).await;
    let detected = reconnect_for(client, |c| matches!(c, Cause::HeartbeatTimeout)).await;
    let Some((at, _)) = detected else {
        panic!(
            "half-open server never detected; events: {:?}",
            client.log.all()
        )
    };
    assert!(
        at - since <= bound + SLACK,
        "detection took {:?}, bound {bound:?}",
        at - since
    );
}

/// Messages survive a link that delays and slices every write into 7-byte pieces.
pub async fn echo_over_a_slow_sliced_link<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::serve()).await;
    let proxy = proxy(&server).await;
    proxy.update(|f| {
        f.slice = Some(7);
        f.latency = Duration::from_millis(20);
        f.jitter = Duration::from_millis(20);
    });
    let client = TestClient::start(adapter, options(proxy.url(), Delivery::AtMostOnce), false);
    let big = "x".repeat(10_000);
    client
        .handle
        .send(Message::text(big.clone()))
        .expect("queued");
    let echoed = client
        .log
        .wait_for(
            PATIENCE,
            |e| matches!(e, Event::Message(m) if m.as_text() == Some(big.as_str())),
        )
        .await;
    assert!(
        echoed.is_some(),
        "no intact echo; events: {:?}",
        client.log.all()
    );
}

fn test_ca() -> TestCa {
    TestCa::new().unwrap_or_else(|e| panic!("test CA: {e}"))
}

/// A `wss://` server with a leaf for `names` signed by `ca`.
async fn tls_server(ca: &TestCa, names: &[&str]) -> Server {
    let config = ca
        .server_config(names)
        .unwrap_or_else(|e| panic!("server certificate: {e}"));
    Server::start_tls(Behaviour::serve(), config)
        .await
        .unwrap_or_else(|e| panic!("TLS server: {e}"))
}

/// `wss://` with a certificate the client trusts (its own CA, passed as
/// the TLS configuration): the connection opens and a message round-trips.
pub async fn wss_with_a_trusted_certificate_round_trips<A: Adapter>(adapter: &A) {
    let ca = test_ca();
    let server = tls_server(&ca, &["localhost", "127.0.0.1"]).await;
    assert!(server.url().starts_with("wss://127.0.0.1:"));
    let mut opts = options(server.url(), Delivery::AtMostOnce);
    opts.tls = Some(ca.client_config());
    let client = TestClient::start(adapter, opts, false);
    client
        .handle
        .send(Message::text("over tls"))
        .expect("queued");
    let echoed = client
        .log
        .wait_for(
            PATIENCE,
            |e| matches!(e, Event::Message(m) if m.as_text() == Some("over tls")),
        )
        .await;
    assert!(
        echoed.is_some(),
        "no echo over TLS; events: {:?}",
        client.log.all()
    );
    assert_eq!(server.messages(), ["over tls"]);
    assert_eq!(client.handle.state(), State::Open);
}

/// The subprotocol the server chose and its response headers arrive with
/// `Opened`.
pub async fn negotiated_subprotocol_and_response_headers_reach_the_app<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::serve()).await;
    server.accept_subprotocols(&["chat.v2"]);
    let mut opts = options(server.url(), Delivery::AtMostOnce);
    opts.subprotocols = vec!["chat.v1".into(), "chat.v2".into()];
    let client = TestClient::start(adapter, opts, false);
    let Some((_, Event::Opened { handshake, .. })) = client.log.wait_for(PATIENCE, is_opened).await
    else {
        panic!("never opened; events: {:?}", client.log.all())
    };
    assert_eq!(handshake.protocol.as_deref(), Some("chat.v2"));
    assert_eq!(
        handshake.header("x-served-by").map(|v| v.as_ref()),
        Some(&b"steadfast-testkit"[..])
    );
}

/// A subprotocol (e.g. a token in `Sec-WebSocket-Protocol`) that the server
/// does not echo is a configuration error: fatal, typed, one attempt.
pub async fn a_subprotocol_the_server_does_not_echo_is_fatal<A: Adapter>(adapter: &A) {
    let server = server(Behaviour::serve()).await;
    let mut opts = options(server.url(), Delivery::AtMostOnce);
    opts.subprotocols = vec!["token.abc".into()];
    let client = TestClient::start(adapter, opts, false);
    assert_eq!(failure(&client).await, Error::Subprotocol);
    // `Failed` is final: no attempt can follow it, so none is waited for.
    assert_eq!(
        client.handle.stats().attempts,
        1,
        "a subprotocol mismatch was retried"
    );
    assert_eq!(client.handle.state(), State::Failed);
}

/// The client refuses the server's certificate: a typed, fatal
/// [`Error::Tls`] after exactly one attempt, and the state is `Failed`.
async fn refused_certificate_fails_once<A: Adapter>(adapter: &A, trusted: &TestCa, server: Server) {
    let mut opts = options(server.url(), Delivery::AtMostOnce);
    opts.tls = Some(trusted.client_config());
    let client = TestClient::start(adapter, opts, false);
    assert_eq!(failure(&client).await, Error::Tls);
    assert_eq!(client.handle.state(), State::Failed);
    // `Failed` is final: no attempt can follow it, so none is waited for.
    assert_eq!(
        client.handle.stats().attempts,
        1,
        "a TLS failure was retried"
    );
    assert_eq!(server.connections(), 1, "a TLS failure was retried");
    assert_eq!(
        server.handshakes(),
        0,
        "a refused certificate reached the WebSocket handshake"
    );
    assert_eq!(client.log.count(|e| failed_error(e).is_some()), 1);
}

/// `wss://` to a server whose certificate comes from a CA the client does
/// not trust: fatal [`Error::Tls`], one attempt.
pub async fn wss_with_an_untrusted_certificate_fails_as_tls<A: Adapter>(adapter: &A) {
    let (trusted, other) = (test_ca(), test_ca());
    let server = tls_server(&other, &["localhost", "127.0.0.1"]).await;
    refused_certificate_fails_once(adapter, &trusted, server).await;
}

/// `wss://127.0.0.1` to a server whose certificate (from a trusted CA)
/// names only another host: fatal [`Error::Tls`], one attempt.
pub async fn wss_with_a_certificate_for_another_host_fails_as_tls<A: Adapter>(adapter: &A) {
    let ca = test_ca();
    let server = tls_server(&ca, &["other.example"]).await;
    refused_certificate_fails_once(adapter, &ca, server).await;
}

/// Generates one `#[tokio::test]` per conformance scenario for `$adapter`.
/// The calling crate needs tokio with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! conformance_tests {
    ($adapter:expr) => {
        $crate::conformance_tests!(@each $adapter;
            echo_round_trip,
            server_restart_loses_nothing_at_least_once,
            blackhole_is_detected_and_reconnected,
            reset_mid_stream_reconnects,
            restart_close_codes_reconnect,
            fatal_close_code_fails,
            unauthorized_is_fatal_without_retry,
            retry_after_is_honoured,
            connect_timeout_is_retried,
            oversized_message_is_1009,
            invalid_utf8_is_1007,
            garbage_is_a_protocol_error_and_reconnects,
            graceful_close_from_the_app,
            close_when_delivered_after_a_burst_hands_nothing_back,
            server_acks_by_key_through_a_restart_lose_nothing,
            a_request_without_a_reply_times_out_at_its_deadline,
            a_nack_ends_the_message_with_the_servers_reason,
            dropping_all_handles_closes,
            offline_and_online_hints,
            sends_while_disconnected_are_delivered_after_reconnect,
            fleet_survives_server_restart_with_spread_reconnects,
            half_open_server_is_detected,
            half_open_server_is_detected_with_fixed_pings_and_an_equal_deadline,
            echo_over_a_slow_sliced_link,
            wss_with_a_trusted_certificate_round_trips,
            wss_with_an_untrusted_certificate_fails_as_tls,
            wss_with_a_certificate_for_another_host_fails_as_tls,
            negotiated_subprotocol_and_response_headers_reach_the_app,
            a_subprotocol_the_server_does_not_echo_is_fatal
        );
    };
    (@each $adapter:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::conformance::$name(&$adapter).await;
            }
        )*
    };
}
