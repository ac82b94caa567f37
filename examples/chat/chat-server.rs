//! The chat server: users with tokens, rooms, direct messages, duplicate
//! logins replaced, dead clients reaped, and a graceful restart on Ctrl-C
//! (every client closed with 1012, spread over 5 s, so they come back
//! without a herd). A browser client is served at `/`.
//!
//! `cargo run -p steadfast-examples --bin chat-server -- [ADDR] [name:token ...]`
//! (default `127.0.0.1:8080` and the users alice, bob and carol with the
//! tokens `alice-token`, `bob-token`, `carol-token`).
#![allow(clippy::print_stderr)]

use std::process::ExitCode;
use std::time::Duration;
use steadfast_examples::chat::{self, Users};
use steadfast_tokio::core::CloseCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let entries: Result<Vec<_>, _> = args.map(|a| Users::parse_entry(&a)).collect();
    let users = match entries {
        Ok(e) if e.is_empty() => Users::demo(),
        Ok(e) => e.into_iter().collect(),
        Err(e) => {
            eprintln!("chat-server: {e}");
            return ExitCode::from(2);
        }
    };
    let (server, events) = match chat::bind(&addr, users, chat::hub_config()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chat-server: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "chat-server: http://{} (Ctrl-C restarts gracefully)",
        server.local_addr()
    );
    let chat = tokio::spawn(chat::serve(server.clone(), events));
    let _ = tokio::signal::ctrl_c().await;
    let live = server.with_hub(|hub| hub.live_count());
    eprintln!("chat-server: closing {live} sessions with 1012 over 5 s (Ctrl-C again to quit now)");
    tokio::select! {
        () = server.shutdown(CloseCode::SERVICE_RESTART, Duration::from_secs(5)) => {}
        _ = tokio::signal::ctrl_c() => eprintln!("chat-server: quitting now"),
    }
    chat.abort();
    ExitCode::SUCCESS
}
