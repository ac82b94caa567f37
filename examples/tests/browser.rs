//! A real browser on the chat: headless Chromium loads the served page,
//! joins with its token in the subprotocol and says a line, and a steadfast
//! client in the same room receives it.
//!
//! Needs `chromium` on the PATH (`.ci/run` installs Debian's package when
//! it is missing). Without it the test fails under `CI` and is skipped, with
//! a note, elsewhere.

use std::process::{Command, Stdio};
use std::time::Duration;
use steadfast_examples::chat::{self, PROTOCOL, Users, token_protocol};
use steadfast_tokio::Builder;
use steadfast_tokio::core::Event;
use tokio::time::timeout;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"].into_iter().find(|bin| {
        Command::new(bin).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_typed_in_the_browser_reaches_a_steadfast_client() {
    let Some(browser) = chromium() else {
        assert!(std::env::var_os("CI").is_none(), "chromium is missing on CI");
        eprintln!("skipped: no chromium on PATH");
        return;
    };
    let (server, events) = chat::bind("127.0.0.1:0", Users::demo(), chat::hub_config()).await.expect("bind");
    tokio::spawn(chat::serve(server.clone(), events));
    let addr = server.local_addr();

    let (_bob_h, mut bob) = Builder::new(format!("ws://{addr}/chat").as_str())
        .expect("url")
        .subprotocols(&[PROTOCOL, &token_protocol("bob-token")])
        .expect("subprotocols")
        .query("id", "bob")
        .connect();

    let profile = std::env::temp_dir().join(format!("steadfast-chromium-{}", std::process::id()));
    let mut child = Command::new(browser)
        .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("http://{addr}/?id=carol&token=carol-token&say=hello%20from%20the%20browser"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");

    let heard = timeout(Duration::from_secs(60), async {
        loop {
            match bob.recv().await {
                Some(Event::Message(m)) if m.as_text() == Some("carol: hello from the browser") => return,
                Some(_) => {}
                None => panic!("bob's events ended"),
            }
        }
    })
    .await;
    let carol_connected = server.with_hub(|hub| hub.is_connected(&"carol".to_owned()));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(heard.is_ok(), "the browser's line never reached bob");
    assert!(carol_connected, "the browser's session is in the pool as carol");
}
