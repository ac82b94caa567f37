//! `steadfast serve chat`: the chat of steadfast-examples (users with
//! tokens, rooms, a browser page) on a chosen port, with a graceful restart
//! from stdin.

use crate::duration::{parse, show};
use crate::exit::{Exit, Failure};
use crate::{say, stdin};
use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;
use steadfast_examples::chat::{self, Users};
use steadfast_tokio::core::CloseCode;
use steadfast_tokio::server::{Events, HubEvent, Server};

/// How long a `restart` keeps trying to bind the port again.
const REBIND_FOR: Duration = Duration::from_secs(10);

/// `serve chat`'s own arguments.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ChatArgs {
    /// A user who may join, as NAME:TOKEN (repeatable); default: alice, bob
    /// and carol with the tokens alice-token, bob-token and carol-token.
    #[arg(long = "user", value_name = "NAME:TOKEN", value_parser = Users::parse_entry)]
    users: Vec<(String, String)>,

    /// On `restart`, how long the server takes to close every session
    /// with 1012, each at its own moment (so clients come back spread out).
    #[arg(long, value_parser = parse, default_value = "5s", value_name = "DURATION")]
    window: Duration,
}

impl ChatArgs {
    fn users(&self) -> Users {
        if self.users.is_empty() {
            Users::demo()
        } else {
            self.users.iter().cloned().collect()
        }
    }
}

/// A line on `serve chat`'s stdin.
#[derive(Debug, clap::Parser)]
#[command(no_binary_name = true, disable_help_flag = true)]
enum Command {
    /// Close every session with 1012 over the window, then listen again on
    /// the same port after DOWN.
    Restart {
        #[arg(value_parser = parse, default_value = "0s")]
        down: Duration,
    },
}

/// Serve the chat on `listen` until Ctrl-C.
pub(crate) async fn run(listen: SocketAddr, quiet: bool, args: ChatArgs) -> Result<Exit, Failure> {
    let users = args.users();
    let (mut server, mut events) =
        chat::bind(&listen.to_string(), users.clone(), chat::hub_config())
            .await
            .map_err(|e| Failure::new(Exit::Failure, format!("cannot listen on {listen}: {e}")))?;
    announce(&server);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut lines = stdin::spawn_reader();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(Exit::Ok),
            line = lines.recv(), if stdin_open => match line {
                Some(line) => {
                    if let Some(down) = command(&line.text) {
                        // Ctrl-C still quits at once in the middle of a restart.
                        tokio::select! {
                            _ = &mut ctrl_c => return Ok(Exit::Ok),
                            restarted = restart(server, events, &users, quiet, args.window, down) => {
                                (server, events) = restarted?;
                            }
                        }
                    }
                }
                None => stdin_open = false,
            },
            event = events.recv() => match event {
                Some(event) => {
                    if !quiet {
                        report(&event);
                    }
                    chat::handle(&server, event);
                }
                // The server stopped on its own: nothing more will come.
                None => return Ok(Exit::Failure),
            },
        }
    }
}

/// The browser page's URL and how a client connects.
fn announce(server: &Server<String>) {
    let addr = server.local_addr();
    say(&format!(
        "listening on http://{addr}/ (the browser page; clients: ws://{addr}/chat?id=NAME \
         with subprotocols chat and token.TOKEN)"
    ));
}

/// One line per join, leave and message.
fn report(event: &HubEvent<String>) {
    match event {
        HubEvent::Joined { user, .. } => say(&format!("joined {user}")),
        HubEvent::Left { user, reason, .. } => say(&format!("left {user} ({reason:?})")),
        HubEvent::Message { user, msg, .. } => match msg.as_text() {
            Some(text) => say(&format!("< {user}: {text}")),
            None => say(&format!("< {user}: ({} bytes of binary)", msg.len())),
        },
        HubEvent::Undelivered { .. } => {}
    }
}

/// The DOWN of a `restart [DOWN]` line; anything else is explained on stderr.
fn command(line: &str) -> Option<Duration> {
    if line.trim().is_empty() {
        return None;
    }
    match Command::try_parse_from(line.split_whitespace()) {
        Ok(Command::Restart { down }) => Some(down),
        Err(e) => {
            let rendered = e.to_string();
            let first = rendered.lines().next().unwrap_or("not a command");
            eprintln!(
                "{} (the chat takes: restart [DOWN])",
                first.strip_prefix("error: ").unwrap_or(first)
            );
            None
        }
    }
}

/// A graceful restart: every session closed with 1012 over `window` (the
/// events of the old server still handled meanwhile, so leaves are told),
/// the old server dropped, and after `down` a new one on the same port.
async fn restart(
    server: Server<String>,
    mut events: Events<String>,
    users: &Users,
    quiet: bool,
    window: Duration,
    down: Duration,
) -> Result<(Server<String>, Events<String>), Failure> {
    let addr = server.local_addr();
    let live = server.with_hub(|hub| hub.live_count());
    say(&format!(
        "closing {live} sessions with 1012 over {}",
        show(window)
    ));
    let closed = server.shutdown(CloseCode::SERVICE_RESTART, window);
    tokio::pin!(closed);
    loop {
        tokio::select! {
            () = &mut closed => break,
            event = events.recv() => match event {
                Some(event) => {
                    if !quiet {
                        report(&event);
                    }
                    chat::handle(&server, event);
                }
                None => break,
            },
        }
    }
    drop(events);
    drop(server);
    say(&format!("stopped; listening again in {}", show(down)));
    tokio::time::sleep(down).await;
    let server = rebind(addr, users).await?;
    announce(&server.0);
    Ok(server)
}

/// Bind `addr` again, retrying while the old listener lets go of it.
async fn rebind(
    addr: SocketAddr,
    users: &Users,
) -> Result<(Server<String>, Events<String>), Failure> {
    let started = tokio::time::Instant::now();
    loop {
        match chat::bind(&addr.to_string(), users.clone(), chat::hub_config()).await {
            Ok(bound) => return Ok(bound),
            Err(e) if started.elapsed() >= REBIND_FOR => {
                return Err(Failure::new(
                    Exit::Failure,
                    format!("cannot listen again on {addr}: {e}"),
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        chat: ChatArgs,
    }

    #[test]
    fn users_default_to_the_demo_and_are_given_as_name_colon_token() {
        let none = Wrapper::try_parse_from(["x"]).expect("parses");
        assert_eq!(none.chat.users, Vec::<(String, String)>::new());
        assert_eq!(none.chat.window, Duration::from_secs(5));
        let two = Wrapper::try_parse_from(["x", "--user", "dan:secret", "--user", "eve:t:2"])
            .expect("parses");
        assert_eq!(
            two.chat.users,
            [
                ("dan".to_owned(), "secret".to_owned()),
                ("eve".to_owned(), "t:2".to_owned())
            ]
        );
        assert!(Wrapper::try_parse_from(["x", "--user", "nocolon"]).is_err());
    }

    #[test]
    fn only_restart_is_a_chat_command() {
        assert_eq!(command("restart"), Some(Duration::ZERO));
        assert_eq!(command("restart 2s"), Some(Duration::from_secs(2)));
        assert_eq!(command("echo"), None);
        assert_eq!(command("   "), None);
    }
}
