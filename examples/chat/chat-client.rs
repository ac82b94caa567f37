//! A chat client on steadfast: lines from stdin go to the room, the room
//! comes to stdout, and it reconnects through server restarts.
//!
//! `cargo run -p steadfast-examples --bin chat-client -- ws://127.0.0.1:8080/chat alice alice-token`
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use steadfast_examples::chat::{PROTOCOL, token_protocol};
use steadfast_tokio::Builder;
use steadfast_tokio::core::{Config, Event};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, user, token] = &args[..] else {
        eprintln!(
            "usage: chat-client URL USER TOKEN (e.g. ws://127.0.0.1:8080/chat alice alice-token)"
        );
        return ExitCode::from(2);
    };
    let builder = match Builder::new(url.as_str())
        .and_then(|b| b.subprotocols(&[PROTOCOL, &token_protocol(token)]))
    {
        Ok(b) => b.query("id", user).config(Config::default()),
        Err(e) => {
            eprintln!("chat-client: {e}");
            return ExitCode::from(2);
        }
    };
    let (handle, mut events) = builder.connect();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(line)) => {
                    if let Err(e) = handle.send(line) {
                        eprintln!("chat-client: not sent: {e}");
                    }
                }
                _ => {
                    // End of input: leave gracefully (close 1000).
                    stdin_open = false;
                    handle.close().await;
                }
            },
            event = events.recv() => match event {
                Some(Event::Message(m)) => println!("{}", m.as_text().unwrap_or("<binary>")),
                Some(Event::Opened { .. }) => eprintln!("chat-client: connected"),
                Some(Event::Reconnecting { delay, cause, .. }) => {
                    eprintln!("chat-client: disconnected ({cause:?}), reconnecting in {delay:?}");
                }
                Some(Event::Failed { error, .. }) => {
                    eprintln!("chat-client: {error}");
                    return ExitCode::FAILURE;
                }
                Some(Event::Closed { .. }) | None => return ExitCode::SUCCESS,
                Some(_) => {}
            },
        }
    }
}
