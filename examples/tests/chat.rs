//! The chat system over real loopback sockets: steadfast clients, the hub
//! behind `steadfast_tokio::server`, the fault proxy where a fault is needed.

use std::time::Duration;
use steadfast_examples::chat::{self, PROTOCOL, Users, token_protocol};
use steadfast_testkit::FaultProxy;
use steadfast_tokio::core::{
    CloseCode, Config, Error, Event, HeartbeatConfig, HeartbeatMode, RetryConfig,
};
use steadfast_tokio::server::{
    Events, HubConfig, HubEvent, LeaveReason, LivenessConfig, QueueConfig, Server, SlowConsumer,
};
use steadfast_tokio::{Builder, Handle};
use tokio::time::{Instant, timeout};

/// Generous: real sockets on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(10);

async fn start(hub: HubConfig) -> Server<String> {
    start_at("127.0.0.1:0", hub).await
}

async fn start_at(addr: &str, hub: HubConfig) -> Server<String> {
    let (server, events) = chat::bind(addr, Users::demo(), hub).await.expect("bind");
    tokio::spawn(chat::serve(server.clone(), events));
    server
}

fn url(addr: std::net::SocketAddr) -> String {
    format!("ws://{addr}/chat")
}

fn client_config() -> Config {
    Config::builder()
        .seed(7)
        .retry(RetryConfig {
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(500),
            ..Default::default()
        })
        .build()
        .expect("valid client config")
}

fn connect(
    url: &str,
    user: &str,
    token: &str,
    config: Config,
) -> (Handle, steadfast_tokio::Events) {
    Builder::new(url)
        .expect("url")
        .subprotocols(&[PROTOCOL, &token_protocol(token)])
        .expect("subprotocols")
        .query("id", user)
        .config(config)
        .connect()
}

/// The next text message, skipping other events.
async fn next_text(events: &mut steadfast_tokio::Events) -> String {
    timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Some(Event::Message(m)) => return m.as_text().expect("text").to_owned(),
                Some(_) => {}
                None => panic!("events ended"),
            }
        }
    })
    .await
    .expect("a message in time")
}

/// The error the client gave up with, and whether it had opened first.
async fn failure(events: &mut steadfast_tokio::Events) -> (Error, bool) {
    let mut opened = false;
    timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Some(Event::Failed { error, .. }) => return (error, opened),
                Some(Event::Opened { .. }) => opened = true,
                Some(_) => {}
                None => panic!("events ended"),
            }
        }
    })
    .await
    .expect("failed in time")
}

/// Reads texts until one satisfies `want`.
async fn text_matching(
    events: &mut steadfast_tokio::Events,
    want: impl Fn(&str) -> bool,
) -> String {
    loop {
        let t = next_text(events).await;
        if want(&t) {
            return t;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_chat_in_the_lobby_and_directly() {
    let server = start(chat::hub_config()).await;
    let (_a, mut alice) = connect(
        &url(server.local_addr()),
        "alice",
        "alice-token",
        client_config(),
    );
    text_matching(&mut alice, |t| t == "* alice joined lobby").await;
    let (bob_h, mut bob) = connect(
        &url(server.local_addr()),
        "bob",
        "bob-token",
        client_config(),
    );
    text_matching(&mut bob, |t| t == "* bob joined lobby").await;
    text_matching(&mut alice, |t| t == "* bob joined lobby").await;

    bob_h.send("hi alice").unwrap();
    assert_eq!(
        text_matching(&mut alice, |t| !t.starts_with('*')).await,
        "bob: hi alice"
    );
    bob_h.send("/to alice just you").unwrap();
    assert_eq!(
        text_matching(&mut alice, |t| !t.starts_with('*')).await,
        "bob → you: just you"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_rejected_before_the_upgrade_and_an_unknown_user_is_told_why() {
    let server = start(chat::hub_config()).await;
    let (_h, mut events) = connect(&url(server.local_addr()), "alice", "wrong", client_config());
    let (failed, opened) = failure(&mut events).await;
    assert!(!opened, "a bad token got in");
    assert_eq!(failed, Error::Unauthorized { status: 401 });
    assert_eq!(
        server.with_hub(|hub| hub.session_count()),
        0,
        "no session was ever opened"
    );

    // An unknown user is upgraded, told, and closed with 1008 (fatal).
    let (_h, mut events) = connect(&url(server.local_addr()), "mallory", "x", client_config());
    assert_eq!(
        next_text(&mut events).await,
        r#"{"type":"error","reason":"unknown user"}"#
    );
    let (failed, _) = failure(&mut events).await;
    assert_eq!(
        failed,
        Error::ClosedByServer {
            code: CloseCode::POLICY,
            reason: "unknown user".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_login_replaces_the_old_session() {
    let server = start(chat::hub_config()).await;
    let (_old_h, mut old) = connect(
        &url(server.local_addr()),
        "alice",
        "alice-token",
        client_config(),
    );
    text_matching(&mut old, |t| t == "* alice joined lobby").await;
    let (_new_h, mut new) = connect(
        &url(server.local_addr()),
        "alice",
        "alice-token",
        client_config(),
    );
    // The old one gets the documented close, which a steadfast client takes as final.
    let (failed, _) = failure(&mut old).await;
    assert_eq!(
        failed,
        Error::ClosedByServer {
            code: steadfast_tokio::server::REPLACED,
            reason: steadfast_tokio::server::REPLACED_REASON.to_owned(),
        }
    );
    // The new one is in the lobby still (rooms survive the replacement) and
    // gets the messages.
    text_matching(&mut new, |t| t == "* welcome back, alice").await;
    let (bob_h, _bob) = connect(
        &url(server.local_addr()),
        "bob",
        "bob-token",
        client_config(),
    );
    text_matching(&mut new, |t| t == "* bob joined lobby").await;
    bob_h.send("still there?").unwrap();
    assert_eq!(
        text_matching(&mut new, |t| !t.starts_with('*')).await,
        "bob: still there?"
    );
    assert_eq!(
        server.with_hub(|hub| hub.sessions_of(&"alice".to_owned()).len()),
        1
    );
}

/// Waits for the server event `want`, returning when it arrived.
async fn server_event(
    events: &mut Events<String>,
    want: impl Fn(&HubEvent<String>) -> bool,
) -> Instant {
    timeout(PATIENCE, async {
        loop {
            let ev = events.recv().await.expect("server running");
            if want(&ev) {
                return Instant::now();
            }
        }
    })
    .await
    .expect("the event in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_client_is_reaped_within_the_detection_bound() {
    let liveness = LivenessConfig {
        interval: Duration::from_millis(400),
        timeout: Duration::from_millis(300),
    };
    let (server, mut events) = chat::bind(
        "127.0.0.1:0",
        Users::demo(),
        HubConfig {
            liveness,
            ..HubConfig::default()
        },
    )
    .await
    .expect("bind");
    let proxy = FaultProxy::start(server.local_addr()).await.expect("proxy");
    // The client itself pings rarely: the server must find the dead link on its own.
    let quiet = Config::builder()
        .heartbeat(HeartbeatConfig {
            mode: HeartbeatMode::Passive,
            interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            ..Default::default()
        })
        .build()
        .expect("config");
    let (_h, _events) = connect(&proxy.url(), "alice", "alice-token", quiet);
    server_event(&mut events, |e| matches!(e, HubEvent::Joined { .. })).await;
    let blackholed = Instant::now();
    proxy.set_blackhole(true);
    let reaped = server_event(&mut events, |e| {
        matches!(
            e,
            HubEvent::Left {
                reason: LeaveReason::Reaped,
                ..
            }
        )
    })
    .await;
    let took = reaped - blackholed;
    let slack = Duration::from_secs(1);
    assert!(
        took <= liveness.detection_bound() + slack,
        "reaped after {took:?}"
    );
    assert!(server.with_hub(|hub| !hub.is_connected(&"alice".to_owned())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_cut_off_while_its_queue_stays_bounded() {
    use futures_util::SinkExt;
    let queue = QueueConfig {
        max_messages: 64,
        max_bytes: 256 * 1024,
        slow_consumer: SlowConsumer::Close(CloseCode::TRY_AGAIN_LATER),
    };
    let (server, mut events) = chat::bind(
        "127.0.0.1:0",
        Users::demo(),
        HubConfig {
            queue,
            ..chat::hub_config()
        },
    )
    .await
    .expect("bind");
    // A raw client that never reads.
    let request = tungstenite_request(server.local_addr(), "carol", "carol-token");
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    ws.flush().await.expect("flush");
    server_event(&mut events, |e| matches!(e, HubEvent::Joined { .. })).await;
    let chunk = "x".repeat(64 * 1024);
    let mut peak = 0;
    let cut = timeout(PATIENCE, async {
        loop {
            if server.send_to(&"carol".to_owned(), chunk.clone()).is_err() {
                return;
            }
            let (_, bytes) = server.with_hub(|hub| {
                hub.sessions_of(&"carol".to_owned())
                    .first()
                    .map_or((0, 0), |&s| hub.queued(s))
            });
            peak = peak.max(bytes);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(cut.is_ok(), "the slow consumer was never cut off");
    assert!(peak <= queue.max_bytes, "queued {peak} bytes");
    server_event(&mut events, |e| {
        matches!(
            e,
            HubEvent::Left {
                reason: LeaveReason::SlowConsumer,
                ..
            }
        )
    })
    .await;
    drop(ws);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_loses_its_oldest_messages_under_drop_oldest_and_stays() {
    let queue = QueueConfig {
        max_messages: 8,
        max_bytes: 1 << 20,
        slow_consumer: SlowConsumer::DropOldest,
    };
    let (server, mut events) = chat::bind(
        "127.0.0.1:0",
        Users::demo(),
        HubConfig {
            queue,
            ..chat::hub_config()
        },
    )
    .await
    .expect("bind");
    let request = tungstenite_request(server.local_addr(), "carol", "carol-token");
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    server_event(&mut events, |e| matches!(e, HubEvent::Joined { .. })).await;
    let chunk = "y".repeat(64 * 1024);
    timeout(PATIENCE, async {
        loop {
            server
                .send_to(&"carol".to_owned(), chunk.clone())
                .expect("carol stays connected");
            let (len, _) =
                server.with_hub(|hub| hub.queued(hub.sessions_of(&"carol".to_owned())[0]));
            assert!(len <= 8);
            if len == 8 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the queue filled");
    server
        .send_to(&"carol".to_owned(), chunk.clone())
        .expect("still connected");
    server_event(&mut events, |e| {
        matches!(
            e,
            HubEvent::Undelivered {
                reason: steadfast_tokio::server::DropReason::QueueFull,
                ..
            }
        )
    })
    .await;
    assert!(server.with_hub(|hub| hub.is_connected(&"carol".to_owned())));
    drop(ws);
}

fn tungstenite_request(
    addr: std::net::SocketAddr,
    user: &str,
    token: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/chat?id={user}")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        format!("{PROTOCOL}, {}", token_protocol(token))
            .parse()
            .expect("header"),
    );
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_survive_a_graceful_restart_without_a_herd() {
    const CLIENTS: usize = 200;
    let users: Users = (0..CLIENTS)
        .map(|i| (format!("u{i}"), format!("t{i}")))
        .collect();
    let (server, events) = chat::bind("127.0.0.1:0", users.clone(), chat::hub_config())
        .await
        .expect("bind");
    let addr = server.local_addr();
    // This run's events are not needed: dropping them discards them, and
    // dropping the server then stops it.
    drop(events);
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let config = Config::builder()
            .retry(RetryConfig {
                initial_delay: Duration::from_millis(100),
                ..Default::default()
            })
            // Each client its own jitter, reproducibly.
            .seed(i as u64 + 1)
            .build()
            .expect("config");
        clients.push(connect(
            &url(addr),
            &format!("u{i}"),
            &format!("t{i}"),
            config,
        ));
    }
    timeout(PATIENCE, async {
        while server.with_hub(|hub| hub.live_count()) < CLIENTS {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("everyone connected");

    // Restart: close everyone with 1012 over 2 s, stop, start again on the same port.
    timeout(
        PATIENCE,
        server.shutdown(CloseCode::SERVICE_RESTART, Duration::from_secs(2)),
    )
    .await
    .expect("every session closed");
    drop(server);
    let rebind = async {
        loop {
            match chat::bind(&addr.to_string(), users.clone(), chat::hub_config()).await {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    };
    let (_server, mut events) = timeout(PATIENCE, rebind)
        .await
        .expect("the port is free again");
    let restarted = Instant::now();
    let mut joined = Vec::new();
    timeout(Duration::from_secs(30), async {
        while joined.len() < CLIENTS {
            if let Some(HubEvent::Joined { .. }) = events.recv().await {
                joined.push(Instant::now() - restarted);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {CLIENTS} came back", joined.len()));
    let window = Duration::from_millis(100);
    let most = joined
        .iter()
        .map(|&start| {
            joined
                .iter()
                .filter(|&&t| t >= start && t < start + window)
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        most <= CLIENTS / 4,
        "{most} of {CLIENTS} reconnected within one 100 ms window"
    );
    drop(clients);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_page_is_served_on_plain_get() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start(chat::hub_config()).await;
    let mut tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut body = String::new();
    tcp.read_to_string(&mut body).await.expect("read");
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(body.contains("new WebSocket(url, [\"chat\", \"token.\" + token])"));
    let mut tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    tcp.write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut body = String::new();
    tcp.read_to_string(&mut body).await.expect("read");
    assert!(body.starts_with("HTTP/1.1 404"), "{body}");
}
