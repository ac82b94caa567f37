//! `steadfast serve chat` as a user runs it: the real binary serving the
//! example chat, and two `steadfast connect` clients talking through it.

mod support;

use support::Cli;

/// Start `steadfast serve --listen 127.0.0.1:0 chat EXTRA...`; it and the
/// address it listens on (from its first line, the browser page's URL).
async fn serve_chat(extra: &[&str]) -> (Cli, String) {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "chat"];
    args.extend_from_slice(extra);
    let mut server = Cli::spawn(&args);
    let first = server.line().await;
    (server, addr_of(&first))
}

/// The `HOST:PORT` of the `http://HOST:PORT/` on a `listening on` line.
fn addr_of(line: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no http:// URL in {line:?}"))
        .to_owned()
}

/// `steadfast connect` as `user` with `token`, retrying quickly.
fn join(addr: &str, user: &str, token: &str) -> Cli {
    let url = format!("ws://{addr}/chat?id={user}");
    let token = format!("token.{token}");
    Cli::spawn(&[
        "connect",
        &url,
        "--subprotocol",
        "chat",
        "--subprotocol",
        &token,
        "--initial-delay",
        "100ms",
        "--max-delay",
        "500ms",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_exchange_a_line_through_serve_chat_with_the_demo_users() {
    let (mut server, addr) = serve_chat(&[]).await;
    let mut alice = join(&addr, "alice", "alice-token");
    alice.line_where(|l| l == "* alice joined lobby").await;
    let mut bob = join(&addr, "bob", "bob-token");
    bob.line_where(|l| l == "* bob joined lobby").await;
    alice.line_where(|l| l == "* bob joined lobby").await;

    alice.write("hello bob").await;
    bob.line_where(|l| l == "alice: hello bob").await;
    bob.write("/to alice hi alice").await;
    alice.line_where(|l| l == "bob → you: hi alice").await;
    server.line_where(|l| l == "< alice: hello bob").await;

    let alice = alice.finish().await;
    assert_eq!(alice.code, Some(0), "{}", alice.stderr);
    bob.line_where(|l| l == "* alice left (closed)").await;
    server.line_where(|l| l.starts_with("left alice")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_users_replace_the_demo_ones() {
    let (_server, addr) = serve_chat(&["--user", "dan:s3cret"]).await;
    let mut dan = join(&addr, "dan", "s3cret");
    dan.line_where(|l| l == "* dan joined lobby").await;
    // alice is not a user any more: told so, and closed with 1008 (fatal
    // for the client, which exits with its fatal-close code).
    let alice = join(&addr, "alice", "alice-token").exited().await;
    assert!(
        alice.stdout.iter().any(|l| l.contains("unknown user")),
        "{alice:?}"
    );
    assert_eq!(alice.code, Some(5), "{alice:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_closes_with_1012_and_the_clients_come_back_on_the_same_port() {
    let (mut server, addr) = serve_chat(&["--window", "300ms"]).await;
    let mut alice = join(&addr, "alice", "alice-token");
    alice.line_where(|l| l == "* alice joined lobby").await;
    let mut bob = join(&addr, "bob", "bob-token");
    bob.line_where(|l| l == "* bob joined lobby").await;

    server.write("restart 200ms").await;
    server
        .line_where(|l| l == "closing 2 sessions with 1012 over 300 ms")
        .await;
    let again = server.line_where(|l| l.starts_with("listening on")).await;
    assert_eq!(addr_of(&again), addr, "the same port");
    alice.stderr_has("closed by peer with 1012").await;
    bob.stderr_has("closed by peer with 1012").await;

    // Both back on the new server (each sees itself join again), and the
    // chat goes on.
    alice.line_where(|l| l == "* alice joined lobby").await;
    bob.line_where(|l| l == "* bob joined lobby").await;
    server
        .line_where(|l| l == "joined alice" || l == "joined bob")
        .await;
    bob.write("back").await;
    alice.line_where(|l| l == "bob: back").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_quits_in_the_middle_of_a_long_restart() {
    // A minute to close one session, and a minute down: Ctrl-C must not
    // wait for either (`exited` allows 10 s).
    let (mut server, addr) = serve_chat(&["--window", "60s"]).await;
    let mut alice = join(&addr, "alice", "alice-token");
    alice.line_where(|l| l == "* alice joined lobby").await;
    server.write("restart 60s").await;
    server
        .line_where(|l| l.starts_with("closing 1 sessions"))
        .await;
    server.interrupt();
    let finished = server.exited().await;
    assert_eq!(finished.code, Some(0), "{finished:?}");
}
