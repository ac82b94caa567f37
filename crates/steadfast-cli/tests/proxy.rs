//! `steadfast proxy` and `steadfast serve` as a user runs them, with the
//! real binary, and `connect` through the proxy.

mod support;

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use steadfast_testkit::{Behaviour, Server};
use support::{Cli, WAIT, url_of};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn echo_server() -> Server {
    Server::start(Behaviour::Serve {
        echo: true,
        ack: false,
    })
    .await
    .expect("server")
}

/// Start `steadfast proxy` in front of `server`; the proxy and its URL.
async fn proxy(server: &Server, extra: &[&str]) -> (Cli, String) {
    let to = server.addr().to_string();
    let mut args = vec!["proxy", "--listen", "127.0.0.1:0", "--to", &to];
    args.extend_from_slice(extra);
    let mut cli = Cli::spawn(&args);
    let url = url_of(&cli.line().await);
    (cli, url)
}

async fn open(url: &str) -> Ws {
    let (ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect in time")
        .expect("handshake");
    ws
}

/// Send `text` and wait up to `within` for its echo.
async fn echoes(ws: &mut Ws, text: &str, within: Duration) -> bool {
    ws.send(Message::text(text)).await.expect("send");
    let reply = timeout(within, async {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(t) = msg {
                return Some(t.as_str().to_owned());
            }
        }
        None
    })
    .await;
    reply == Ok(Some(text.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_typed_on_stdin_applies_to_the_connections_it_carries() {
    let server = echo_server().await;
    let (mut proxy, url) = proxy(&server, &[]).await;
    let mut ws = open(&url).await;
    assert!(
        echoes(&mut ws, "through", WAIT).await,
        "a healthy proxy forwards"
    );

    proxy.write("blackhole").await;
    assert_eq!(proxy.line().await, "faults: blackhole");
    assert!(
        !echoes(&mut ws, "swallowed", Duration::from_millis(300)).await,
        "nothing crosses a blackhole"
    );

    proxy.write("heal").await;
    assert_eq!(proxy.line().await, "faults: none");
    let mut fresh = open(&url).await;
    assert!(echoes(&mut fresh, "healed", WAIT).await);

    proxy.write("latency 200ms 50ms").await;
    assert_eq!(proxy.line().await, "faults: latency 200 ms + up to 50 ms");
    proxy.write("down").await;
    assert_eq!(
        proxy.line().await,
        "faults: down (refusing connections), latency 200 ms + up to 50 ms"
    );
    let refused = timeout(WAIT, tokio_tungstenite::connect_async(url.as_str()))
        .await
        .expect("answered in time");
    assert!(
        refused.is_err(),
        "a proxy that is down refuses new connections"
    );

    proxy.write("reset").await;
    // The blackholed connection and the fresh one.
    assert_eq!(proxy.line().await, "reset 2 open connection(s)");
    proxy.write("quit").await;
    let done = proxy.exited().await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_fault_gets_one_line_and_changes_nothing() {
    let server = echo_server().await;
    let (mut proxy, url) = proxy(&server, &[]).await;
    proxy.write("blackhol").await;
    proxy
        .stderr_has("unknown command \"blackhol\" (type help)")
        .await;
    proxy.write("status").await;
    assert_eq!(proxy.line().await, "faults: none; 0 open connection(s)");
    let mut ws = open(&url).await;
    assert!(echoes(&mut ws, "still fine", WAIT).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_switches_faults_on_time_and_quits() {
    let server = echo_server().await;
    let (proxy, url) = proxy(
        &server,
        &["--at", "1s quit", "--at", "200ms down", "--at", "600ms up"],
    )
    .await;
    let done = timeout(Duration::from_secs(5), proxy.exited())
        .await
        .expect("the timeline's quit ends the proxy");
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(
        done.stdout,
        [
            format!("listening on {url} -> {}", server.addr()),
            "at 200 ms: down".to_owned(),
            "faults: down (refusing connections)".to_owned(),
            "at 600 ms: up".to_owned(),
            "faults: none".to_owned(),
            "at 1.0 s: quit".to_owned(),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_through_the_proxy_detects_a_blackhole_and_reconnects_after_heal() {
    // The README's walk-through, with a server in this process.
    let server = Server::start(Behaviour::Serve {
        echo: false,
        ack: true,
    })
    .await
    .expect("server");
    let (mut proxy, url) = proxy(&server, &[]).await;
    let mut client = Cli::spawn(&[
        "connect",
        &url,
        "--ack",
        "ack:{key}",
        "--send",
        "seq:{key}:{line}",
        "--heartbeat-interval",
        "300ms",
        "--pong-timeout",
        "200ms",
        "--initial-delay",
        "100ms",
        "--max-delay",
        "300ms",
        "--connect-timeout",
        "300ms",
    ]);
    client.write("first").await;
    client.stderr_has("line 1 acked").await;

    proxy.write("blackhole").await;
    assert_eq!(proxy.line().await, "faults: blackhole");
    client.write("second").await;
    client.stderr_has("heartbeat timeout").await;
    client.stderr_has("reconnecting in").await;

    proxy.write("heal").await;
    assert_eq!(proxy.line().await, "faults: none");
    client.stderr_has("open again").await;
    client.stderr_has("line 2 acked").await;

    let done = client.finish().await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(server.first_seen_seqs(), [1, 2], "nothing lost, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_ack_answers_seq_with_ack_and_shows_what_it_receives() {
    let mut serve = Cli::spawn(&["serve", "--listen", "127.0.0.1:0", "ack"]);
    let url = url_of(&serve.line().await);
    let mut ws = open(&url).await;
    ws.send(Message::text("seq:5:hello")).await.expect("send");
    let reply = timeout(WAIT, ws.next()).await.expect("reply in time");
    assert!(
        matches!(&reply, Some(Ok(Message::Text(t))) if t.as_str() == "ack:5"),
        "{reply:?}"
    );
    assert_eq!(serve.line().await, "handshake 1");
    assert_eq!(serve.line().await, "< seq:5:hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_close_makes_connect_exit_with_the_fatal_close_code() {
    let mut serve = Cli::spawn(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "close",
        "1008",
        "go away",
    ]);
    let url = url_of(&serve.line().await);
    let client = Cli::spawn(&["connect", &url]);
    let done = client.exited().await;
    assert_eq!(done.code, Some(5), "{}", done.stderr);
    assert!(
        done.stderr
            .contains("closed by server with 1008: \"go away\""),
        "{}",
        done.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_proxy_refuse_a_bad_address_with_exit_2() {
    let done = support::run(&["serve", "--listen", "localhost", "echo"]).await;
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    let done = support::run(&["proxy", "--listen", "0", "--to", "nowhere"]).await;
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(done.stderr.contains("--to"), "{}", done.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_a_new_mode_and_restarts_from_stdin() {
    let mut serve = Cli::spawn(&["serve", "--listen", "127.0.0.1:0", "--quiet", "echo"]);
    let url = url_of(&serve.line().await);
    let mut first = open(&url).await;
    assert!(echoes(&mut first, "echoed", WAIT).await);

    serve.write("close 1008 bye").await;
    assert_eq!(serve.line().await, "new connections: close 1008 bye");
    let mut closed = open(&url).await;
    let frame = timeout(WAIT, closed.next()).await.expect("close in time");
    assert!(
        matches!(&frame, Some(Ok(Message::Close(Some(f)))) if u16::from(f.code) == 1008),
        "{frame:?}"
    );

    serve.write("restart").await;
    assert_eq!(serve.line().await, "stopped; listening again in 0 s");
    assert_eq!(serve.line().await, format!("listening on {url}"));
    let dropped = timeout(WAIT, first.next()).await.expect("dropped in time");
    assert!(
        !matches!(dropped, Some(Ok(Message::Text(_)))),
        "the old connection is gone: {dropped:?}"
    );

    serve.write("bogus").await;
    serve.stderr_has("unrecognized subcommand 'bogus'").await;
}
