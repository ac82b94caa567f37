//! `steadfast connect` as a user runs it: the real binary against servers
//! in this process (steadfast-testkit) on 127.0.0.1:0.

mod support;

use std::time::Duration;
use steadfast_testkit::{Behaviour, Server, TestCa};
use support::{Cli, run};

/// Quick heartbeats and retries, so a test sees a reconnect in well under
/// a second.
const FAST: &[&str] = &[
    "--heartbeat-interval",
    "300ms",
    "--pong-timeout",
    "200ms",
    "--initial-delay",
    "50ms",
    "--max-delay",
    "300ms",
];

fn echo() -> Behaviour {
    Behaviour::Serve {
        echo: true,
        ack: false,
    }
}

fn args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["connect", url];
    all.extend_from_slice(FAST);
    all.extend_from_slice(extra);
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_in_echoes_out_and_a_normal_close_exits_zero() {
    let server = Server::start(echo()).await.expect("server");
    let url = server.url();
    let mut cli = Cli::spawn(&args(&url, &[]));
    cli.write("hello").await;
    assert_eq!(cli.line().await, "hello");
    cli.write("second line").await;
    assert_eq!(cli.line().await, "second line");
    let done = cli.finish().await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(done.stderr.contains("closed (1000)"), "{}", done.stderr);
    assert_eq!(server.messages(), ["hello", "second line"]);
    assert_eq!(server.closes(), [1000]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_piped_before_the_connection_opens_are_delivered_before_the_close() {
    // stdin ends before the connection is open: the close waits for it.
    let server = Server::start(echo()).await.expect("server");
    let url = server.url();
    let mut cli = Cli::spawn(&args(&url, &[]));
    for n in 0..20 {
        cli.write(&format!("line {n}")).await;
    }
    let done = cli.finish().await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let expected: Vec<String> = (0..20).map(|n| format!("line {n}")).collect();
    assert_eq!(server.messages(), expected);
    assert_eq!(done.stdout, expected, "every echo printed before the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_closes_only_after_the_server_acked_every_line() {
    let server = Server::start(Behaviour::Serve {
        echo: false,
        ack: true,
    })
    .await
    .expect("server");
    let url = server.url();
    let extra = ["--ack", "ack:{key}", "--send", "seq:{key}:{line}"];
    let mut cli = Cli::spawn(&args(&url, &extra));
    for word in ["one", "two", "three"] {
        cli.write(word).await;
    }
    let done = cli.finish().await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(server.seqs(), [1, 2, 3]);
    assert_eq!(server.messages(), ["seq:1:one", "seq:2:two", "seq:3:three"]);
    assert!(done.stderr.contains("line 3 acked"), "{}", done.stderr);
    assert!(done.stdout.is_empty(), "acks are not printed as messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_session_reconnects_and_the_session_goes_on() {
    let mut server = Server::start(echo()).await.expect("server");
    let url = server.url();
    let mut cli = Cli::spawn(&args(&url, &[]));
    cli.write("before").await;
    assert_eq!(cli.line().await, "before");

    server.restart().await.expect("restart on the same port");
    cli.stderr_has("reconnecting in").await;
    cli.stderr_has("open again").await;
    cli.write("after").await;
    assert_eq!(cli.line().await, "after");

    let done = cli.finish().await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(
        done.stderr.contains(": transport error Reset (1006))"),
        "the cause is named: {}",
        done.stderr
    );
    assert!(
        server.handshakes() >= 2,
        "reconnected to the restarted server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_mode_writes_one_parseable_object_per_event() {
    let server = Server::start(echo()).await.expect("server");
    let url = server.url();
    let mut cli = Cli::spawn(&args(&url, &["--json"]));
    cli.write("hi").await;
    cli.line_where(|l| l.contains(r#""text":"hi""#)).await;
    let done = cli.finish().await;
    assert_eq!(done.code, Some(0));
    let events: Vec<serde_json::Value> = done
        .stdout
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(names.len(), events.len(), "every object names its event");
    for expected in ["start", "state", "opened", "outcome", "message", "closed"] {
        assert!(names.contains(&expected), "no {expected} in {names:?}");
    }
    let message = events
        .iter()
        .find(|e| e["event"] == "message")
        .expect("message");
    assert_eq!(message["text"], "hi");
    let closed = events.last().expect("events");
    assert_eq!(
        (closed["event"].as_str(), closed["exit_code"].as_u64()),
        (Some("closed"), Some(0))
    );
    assert!(
        done.stderr.is_empty(),
        "--json leaves stderr alone: {}",
        done.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_messages_print_as_hex_or_base64() {
    // The server sends one binary message of three zero bytes.
    let server = Server::start(Behaviour::Oversized(3))
        .await
        .expect("server");
    let url = server.url();
    let mut hex = Cli::spawn(&args(&url, &[]));
    assert_eq!(hex.line().await, "000000");
    let mut base64 = Cli::spawn(&args(&url, &["--binary", "base64"]));
    assert_eq!(base64.line().await, "AAAA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_fails_fast_when_the_server_goes_silent() {
    // Half-open: the server never answers a ping; the heartbeat finds out.
    let server = Server::start(Behaviour::Silent).await.expect("server");
    let url = server.url();
    let cli = Cli::spawn(&args(&url, &["--once"]));
    cli.stderr_has("open").await;
    let done = tokio::time::timeout(Duration::from_secs(5), cli.exited())
        .await
        .expect("detected within the heartbeat bound");
    assert_eq!(done.code, Some(7), "{}", done.stderr);
    assert!(done.stderr.contains("heartbeat timeout"), "{}", done.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_open_outlives_the_end_of_stdin() {
    let mut server = Server::start(echo()).await.expect("server");
    let url = server.url();
    let mut cli = Cli::spawn(&args(&url, &["--keep-open", "--once"]));
    cli.write("hi").await;
    assert_eq!(cli.line().await, "hi");
    cli.close_stdin();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(cli.running(), "the end of stdin closed nothing");
    assert!(server.closes().is_empty(), "no close frame went out");
    // The connection, not stdin, ends the run.
    server.stop().await;
    let done = cli.exited().await;
    assert_eq!(done.code, Some(7), "{}", done.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_closes_gracefully_and_exits_130() {
    let server = Server::start(echo()).await.expect("server");
    let url = server.url();
    let mut cli = Cli::spawn(&args(&url, &[]));
    cli.write("hi").await;
    assert_eq!(cli.line().await, "hi");
    cli.interrupt();
    let done = cli.exited().await;
    assert_eq!(done.code, Some(130), "{}", done.stderr);
    assert!(
        done.stderr.contains("interrupted: closing"),
        "{}",
        done.stderr
    );
    assert_eq!(server.closes(), [1000], "the server got a normal close");
}

/// The exit code of a connection to a server behaving so.
async fn exit_code_against(behaviour: Behaviour, extra: &[&str]) -> (Option<i32>, String) {
    let server = Server::start(behaviour).await.expect("server");
    let url = server.url();
    let mut cli = Cli::spawn(&args(&url, extra));
    // Stdin stays open: the connection itself must end the run.
    cli.write("hello").await;
    let done = cli.exited().await;
    (done.code, done.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_rejected_exits_3() {
    let (code, stderr) = exit_code_against(Behaviour::Reject(401, None), &[]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("authentication failed: HTTP 401"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_retry_budget_exits_4() {
    // Nothing listens on this port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("probe")
        .port();
    let url = format!("ws://127.0.0.1:{port}/");
    let done = run(&args(&url, &["--max-attempts", "2"])).await;
    assert_eq!(done.code, Some(4), "{}", done.stderr);
    assert!(
        done.stderr.contains("gave up after 2 failed attempts"),
        "{}",
        done.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_close_code_exits_5() {
    let (code, stderr) = exit_code_against(Behaviour::CloseWith(1008, "policy".into()), &[]).await;
    assert_eq!(code, Some(5), "{stderr}");
    // An application code is fatal when the user says so.
    let (code, stderr) = exit_code_against(
        Behaviour::CloseWith(4401, "revoked".into()),
        &["--fatal-code", "4401"],
    )
    .await;
    assert_eq!(code, Some(5), "{stderr}");
    assert!(stderr.contains("4401"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_exits_6() {
    let ca = TestCa::new().expect("test CA");
    let server = Server::start_tls(echo(), ca.server_config(&["localhost"]).expect("config"))
        .await
        .expect("server");
    let url = format!("wss://localhost:{}/", server.addr().port());
    let done = run(&args(&url, &[])).await;
    assert_eq!(done.code, Some(6), "{}", done.stderr);
    assert!(done.stderr.contains("TLS"), "{}", done.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_7_when_the_connection_is_lost() {
    let mut server = Server::start(echo()).await.expect("server");
    let url = server.url();
    let mut cli = Cli::spawn(&args(&url, &["--once"]));
    cli.write("hi").await;
    assert_eq!(cli.line().await, "hi");
    server.stop().await;
    let done = cli.exited().await;
    assert_eq!(done.code, Some(7), "{}", done.stderr);
    assert!(
        done.stderr.contains("reconnecting disabled"),
        "{}",
        done.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_left_unacked_at_the_close_exit_8_and_are_listed() {
    // The server never acks.
    let server = Server::start(echo()).await.expect("server");
    let url = server.url();
    let extra = [
        "--ack",
        "ack:{key}",
        "--send",
        "seq:{key}:{line}",
        "--drain-timeout",
        "300ms",
    ];
    let mut cli = Cli::spawn(&args(&url, &extra));
    cli.write("unanswered").await;
    let done = cli.finish().await;
    assert_eq!(done.code, Some(8), "{}", done.stderr);
    assert!(
        done.stderr.contains("1 messages undelivered"),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("seq:1:unanswered"), "{}", done.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_refused_for_another_reason_exits_1() {
    let (code, stderr) = exit_code_against(Behaviour::Reject(404, None), &[]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("HTTP 404"), "{stderr}");
}

/// Bad arguments: exit 2, one line on stderr, no panic or backtrace.
async fn bad_arguments(args: &[&str], says: &str) {
    let done = run(args).await;
    assert_eq!(done.code, Some(2), "{args:?}: {}", done.stderr);
    assert!(done.stderr.contains(says), "{args:?}: {}", done.stderr);
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    assert!(!done.stderr.contains("backtrace"), "{}", done.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_and_flags_exit_2_with_one_clear_line() {
    let one_line = |args: &'static [&'static str]| async move {
        let done = run(args).await;
        assert_eq!(done.stderr.trim_end().lines().count(), 1, "{}", done.stderr);
    };
    bad_arguments(&["connect", "http://example.com/"], "http://example.com/").await;
    one_line(&["connect", "http://example.com/"]).await;
    bad_arguments(&["connect", "not a url"], "not a url").await;
    // The core's own validation, its error as it is.
    bad_arguments(
        &[
            "connect",
            "ws://127.0.0.1:1/",
            "--heartbeat-interval",
            "1s",
            "--pong-timeout",
            "2s",
        ],
        "heartbeat.pong_timeout: longer than heartbeat.interval",
    )
    .await;
    one_line(&["connect", "ws://127.0.0.1:1/", "--heartbeat-interval", "0s"]).await;
    bad_arguments(
        &[
            "connect",
            "ws://127.0.0.1:1/",
            "--heartbeat-interval",
            "soon",
        ],
        "soon",
    )
    .await;
    bad_arguments(
        &["connect", "ws://127.0.0.1:1/", "-H", "no colon"],
        "Name: value",
    )
    .await;
    bad_arguments(
        &["connect", "ws://127.0.0.1:1/", "--ack", "ack:{key}"],
        "{key}",
    )
    .await;
    bad_arguments(
        &[
            "connect",
            "ws://127.0.0.1:1/",
            "--delivery",
            "at-least-once",
        ],
        "--ack",
    )
    .await;
    bad_arguments(
        &["connect", "ws://127.0.0.1:1/", "--pong-timout", "1s"],
        "--pong-timeout",
    )
    .await;
    one_line(&["connect", "ws://127.0.0.1:1/", "--pong-timout", "1s"]).await;
    one_line(&["connect"]).await;
}
