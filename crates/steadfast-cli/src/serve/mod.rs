//! `steadfast serve MODE`: one of steadfast-testkit's loopback servers on a
//! chosen port, for trying a client by hand, or the example chat.

mod chat;

use crate::duration::{parse, show};
use crate::exit::{Exit, Failure};
use crate::listen::parse_listen;
use crate::{say, stdin};
use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;
use steadfast_testkit::{Behaviour, Server};

/// Serve a test WebSocket server until Ctrl-C.
///
/// Prints the URL to connect to, then each handshake and each message
/// received, one per line (unless --quiet). On stdin it takes a new mode
/// for the connections to come (e.g. 'close 1012 restarting', 'reject 503'),
/// or `restart [DOWN]`: drop every connection and listen again on the same
/// port after DOWN (default 0s), as a server process restarting. The chat
/// takes only `restart [DOWN]`, and restarts gracefully: every session is
/// closed with 1012 over --window first.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Where to listen: PORT (on 127.0.0.1) or IP:PORT; port 0 picks a free one.
    #[arg(long, alias = "port", default_value = "9001", value_parser = parse_listen)]
    listen: SocketAddr,

    /// Print only the URL, not each handshake and message.
    #[arg(long, short)]
    quiet: bool,

    #[command(subcommand)]
    mode: ServeMode,
}

/// What to serve.
#[derive(Debug, Clone, clap::Subcommand)]
enum ServeMode {
    #[command(flatten)]
    Test(Mode),
    /// The example chat: users with tokens, rooms, direct messages, and a
    /// browser page at http://ADDR/. A client connects to ws://ADDR/chat?id=NAME
    /// offering the subprotocols 'chat' and 'token.TOKEN'.
    Chat(chat::ChatArgs),
}

/// What the server does with each connection.
#[derive(Debug, Clone, clap::Subcommand)]
enum Mode {
    /// Echo every message back.
    Echo,
    /// Answer 'seq:N...' (or 'id:N...') with 'ack:N' ('seq:N:refuse' with 'nack:N:REASON',
    /// 'seq:N:ask' with 'ack:N:answer N'); connect with
    /// --ack 'ack:{key}' --send 'seq:{key}:{line}'.
    Ack {
        /// Echo messages too.
        #[arg(long)]
        echo: bool,
    },
    /// Accept, then close at once with CODE and REASON.
    Close {
        /// The close code, e.g. 1008 (fatal for clients) or 1012 (restart).
        code: u16,
        /// The close reason.
        #[arg(default_value = "")]
        reason: String,
    },
    /// Refuse every handshake with an HTTP STATUS.
    Reject {
        /// The status, e.g. 401 (auth), 429 or 503 (retry later).
        status: u16,
        /// A Retry-After header, in seconds.
        #[arg(long, value_name = "SECONDS")]
        retry_after: Option<u64>,
    },
    /// Accept, then never read again: pings go unanswered (a half-open peer).
    Silent,
}

impl Mode {
    fn behaviour(&self) -> Behaviour {
        match self {
            Mode::Echo => Behaviour::Serve {
                echo: true,
                ack: false,
            },
            Mode::Ack { echo } => Behaviour::Serve {
                echo: *echo,
                ack: true,
            },
            Mode::Close { code, reason } => Behaviour::CloseWith(*code, reason.clone()),
            Mode::Reject {
                status,
                retry_after,
            } => Behaviour::Reject(*status, *retry_after),
            Mode::Silent => Behaviour::Silent,
        }
    }
}

/// A line on `serve`'s stdin.
#[derive(Debug, clap::Parser)]
#[command(no_binary_name = true, disable_help_flag = true)]
enum Command {
    #[command(flatten)]
    Mode(Mode),
    /// Drop every connection; listen again on the same port after DOWN.
    Restart {
        #[arg(value_parser = parse, default_value = "0s")]
        down: Duration,
    },
}

/// Serve until Ctrl-C.
pub(crate) async fn run(args: ServeArgs) -> Result<Exit, Failure> {
    match args.mode {
        ServeMode::Test(mode) => serve_test(args.listen, args.quiet, mode).await,
        ServeMode::Chat(chat) => chat::run(args.listen, args.quiet, chat).await,
    }
}

/// Serve one of the testkit's servers until Ctrl-C.
async fn serve_test(listen: SocketAddr, quiet: bool, mode: Mode) -> Result<Exit, Failure> {
    let mut server = Server::start_at(listen, mode.behaviour())
        .await
        .map_err(|e| Failure::new(Exit::Failure, format!("cannot listen on {listen}: {e}")))?;
    say(&format!("listening on {}", server.url()));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut lines = stdin::spawn_reader();
    let mut stdin_open = true;
    let (mut handshakes, mut messages) = (0, 0);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(Exit::Ok),
            line = lines.recv(), if stdin_open => match line {
                Some(line) => command(&mut server, &line.text).await,
                None => stdin_open = false,
            },
            _ = server.wait_until(Duration::from_secs(3600), |s| {
                s.handshakes() != handshakes || s.messages().len() != messages
            }) => {}
        }
        let now = server.handshakes();
        if !quiet {
            for n in handshakes + 1..=now {
                say(&format!("handshake {n}"));
            }
        }
        handshakes = now;
        let received = server.messages();
        if !quiet {
            for m in received.iter().skip(messages) {
                say(&format!("< {m}"));
            }
        }
        messages = received.len();
    }
}

/// Carry out one line of stdin: a new mode, or a restart.
async fn command(server: &mut Server, line: &str) {
    if line.trim().is_empty() {
        return;
    }
    match Command::try_parse_from(line.split_whitespace()) {
        Ok(Command::Mode(mode)) => {
            server.set_behaviour(mode.behaviour());
            say(&format!("new connections: {}", line.trim()));
        }
        Ok(Command::Restart { down }) => {
            server.stop().await;
            say(&format!("stopped; listening again in {}", show(down)));
            tokio::time::sleep(down).await;
            match server.restart().await {
                Ok(()) => say(&format!("listening on {}", server.url())),
                Err(e) => eprintln!("cannot listen again on {}: {e}", server.addr()),
            }
        }
        Err(e) => {
            let rendered = e.to_string();
            let first = rendered.lines().next().unwrap_or("not a command");
            eprintln!(
                "{} (try: echo, ack, close CODE [REASON], reject STATUS, silent, restart [DOWN])",
                first.strip_prefix("error: ").unwrap_or(first)
            );
        }
    }
}
