//! A real browser on the chat: headless Chromium loads the served page,
//! joins with its token in the subprotocol and says a line, and a steadfast
//! client in the same room receives it. Then the server restarts
//! gracefully, and the browser and two steadfast clients all come back and
//! chat on.
//!
//! Needs `chromium` on the PATH (`.ci/run` installs Debian's package when
//! it is missing). Without it the test fails under `CI` and is skipped, with
//! a note, elsewhere.

// The skip note, when there is no browser, goes to the test's output.
#![allow(clippy::print_stderr)]

use std::process::{Command, Stdio};
use std::time::Duration;
use steadfast_examples::chat::{self, PROTOCOL, Users, token_protocol};
use steadfast_tokio::Builder;
use steadfast_tokio::core::{CloseCode, Event};
use tokio::time::timeout;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|bin| {
            Command::new(bin)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        })
}

fn client(
    addr: std::net::SocketAddr,
    user: &str,
) -> (steadfast_tokio::Handle, steadfast_tokio::Events) {
    Builder::new(format!("ws://{addr}/chat").as_str())
        .expect("url")
        .subprotocols(&[PROTOCOL, &token_protocol(&format!("{user}-token"))])
        .expect("subprotocols")
        .query("id", user)
        .connect()
}

async fn heard(events: &mut steadfast_tokio::Events, line: &str) -> bool {
    timeout(Duration::from_secs(60), async {
        loop {
            match events.recv().await {
                Some(Event::Message(m)) if m.as_text() == Some(line) => return,
                Some(_) => {}
                None => panic!("events ended"),
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_and_two_steadfast_clients_chat_through_a_server_restart() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing on CI"
        );
        eprintln!("skipped: no chromium on PATH");
        return;
    };
    let (server, events) = chat::bind("127.0.0.1:0", Users::demo(), chat::hub_config())
        .await
        .expect("bind");
    let chat = tokio::spawn(chat::serve(server.clone(), events));
    let addr = server.local_addr();
    let (bob_h, mut bob) = client(addr, "bob");
    let (_alice_h, mut alice) = client(addr, "alice");

    let profile = std::env::temp_dir().join(format!("steadfast-chromium-{}", std::process::id()));
    let mut child = Command::new(browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!(
            "http://{addr}/?id=carol&token=carol-token&say=hello%20from%20the%20browser"
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");

    let from_browser = heard(&mut bob, "carol: hello from the browser").await;
    let carol_connected = server.with_hub(|hub| hub.is_connected(&"carol".to_owned()));

    // A graceful restart: 1012 to everyone over half a second, then a new
    // server on the same port.
    timeout(
        Duration::from_secs(10),
        server.shutdown(CloseCode::SERVICE_RESTART, Duration::from_millis(500)),
    )
    .await
    .expect("every session closed");
    chat.abort();
    let _ = chat.await;
    drop(server);
    let rebind = async {
        loop {
            match chat::bind(&addr.to_string(), Users::demo(), chat::hub_config()).await {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    };
    let (server, events) = timeout(Duration::from_secs(10), rebind)
        .await
        .expect("the port is free again");
    tokio::spawn(chat::serve(server.clone(), events));
    let everyone_back = timeout(Duration::from_secs(30), async {
        let users = ["alice", "bob", "carol"].map(str::to_owned);
        while !server.with_hub(|hub| users.iter().all(|u| hub.is_connected(u))) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .is_ok();
    let online = server.with_hub(|hub| hub.users().cloned().collect::<Vec<_>>());
    bob_h.send("after the restart").expect("send");
    let after = heard(&mut alice, "bob: after the restart").await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(from_browser, "the browser's line never reached bob");
    assert!(
        carol_connected,
        "the browser's session is in the pool as carol"
    );
    assert!(everyone_back, "after the restart only {online:?} came back");
    assert!(after, "alice did not hear bob after the restart");
}
