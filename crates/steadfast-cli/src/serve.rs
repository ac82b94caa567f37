//! `steadfast serve MODE`: one of steadfast-testkit's loopback servers on a
//! chosen port, for trying a client by hand.

use crate::exit::{Exit, Failure};
use crate::listen::parse_listen;
use crate::say;
use std::net::SocketAddr;
use std::time::Duration;
use steadfast_testkit::{Behaviour, Server};

/// Serve a test WebSocket server until Ctrl-C.
///
/// Prints the URL to connect to, then each handshake and each message
/// received, one per line (unless --quiet).
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Where to listen: PORT (on 127.0.0.1) or IP:PORT; port 0 picks a free one.
    #[arg(long, alias = "port", default_value = "9001", value_parser = parse_listen)]
    listen: SocketAddr,

    /// Print only the URL, not each handshake and message.
    #[arg(long, short)]
    quiet: bool,

    #[command(subcommand)]
    mode: Mode,
}

/// What the server does with each connection.
#[derive(Debug, Clone, clap::Subcommand)]
enum Mode {
    /// Echo every message back.
    Echo,
    /// Answer 'seq:N...' with 'ack:N' ('seq:N:refuse' with 'nack:N:REASON',
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

/// Serve until Ctrl-C.
pub(crate) async fn run(args: ServeArgs) -> Result<Exit, Failure> {
    let server = Server::start_at(args.listen, args.mode.behaviour())
        .await
        .map_err(|e| {
            Failure::new(
                Exit::Failure,
                format!("cannot listen on {}: {e}", args.listen),
            )
        })?;
    say(&format!("listening on {}", server.url()));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let (mut handshakes, mut messages) = (0, 0);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(Exit::Ok),
            _ = server.wait_until(Duration::from_secs(3600), |s| {
                s.handshakes() != handshakes || s.messages().len() != messages
            }) => {}
        }
        let now = server.handshakes();
        if !args.quiet {
            for n in handshakes + 1..=now {
                say(&format!("handshake {n}"));
            }
        }
        handshakes = now;
        let received = server.messages();
        if !args.quiet {
            for m in received.iter().skip(messages) {
                say(&format!("< {m}"));
            }
        }
        messages = received.len();
    }
}
