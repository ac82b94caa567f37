//! `steadfast proxy --listen PORT --to HOST:PORT`: steadfast-testkit's
//! fault proxy, its faults switched from stdin or on a timeline.

mod command;

use crate::exit::{Exit, Failure};
use crate::listen::{parse_listen, resolve};
use crate::{say, stdin};
use command::{Command, Timed, parse_at};
use std::io::IsTerminal;
use std::net::SocketAddr;
use steadfast_testkit::FaultProxy;
use tokio::time::Instant;

/// A TCP proxy whose faults you switch while connections run.
///
/// Type a fault on stdin (one per line), or give a timeline with --at.
/// It prints the faults in force after each change. The commands:
#[derive(Debug, clap::Args)]
#[command(after_help = command::HELP)]
pub(crate) struct ProxyArgs {
    /// Where to listen: PORT (on 127.0.0.1) or IP:PORT; port 0 picks a free one.
    #[arg(long, value_parser = parse_listen)]
    listen: SocketAddr,

    /// The server to forward to: HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    to: String,

    /// A fault at a time after start, 'TIME COMMAND' (repeatable), e.g.
    /// --at '5s blackhole' --at '10s heal' --at '30s quit'.
    #[arg(long = "at", value_name = "TIME COMMAND", value_parser = parse_at)]
    timeline: Vec<Timed>,
}

/// Proxy until `quit`, the end of the timeline's `quit`, or Ctrl-C.
pub(crate) async fn run(args: ProxyArgs) -> Result<Exit, Failure> {
    let upstream = resolve(&args.to)
        .await
        .map_err(|e| Failure::usage(format!("--to: {e}")))?;
    let proxy = FaultProxy::start_at(args.listen, upstream)
        .await
        .map_err(|e| {
            Failure::new(
                Exit::Failure,
                format!("cannot listen on {}: {e}", args.listen),
            )
        })?;
    say(&format!("listening on {} -> {upstream}", proxy.url()));
    if std::io::stdin().is_terminal() {
        eprintln!(
            "type a fault (blackhole, reset, latency 200ms, down, heal, ...; help lists them)"
        );
    }
    let start = Instant::now();
    let mut timeline = args.timeline;
    timeline.sort_by_key(|t| t.at);
    let mut timeline = timeline.into_iter().peekable();
    let mut lines = stdin::spawn_reader();
    let mut stdin_open = true;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let next_at = timeline.peek().map(|t| start + t.at);
        let command = tokio::select! {
            _ = &mut ctrl_c => return Ok(Exit::Ok),
            line = lines.recv(), if stdin_open => match line {
                Some(line) if line.text.trim().is_empty() => continue,
                Some(line) => match Command::parse(&line.text) {
                    Ok(command) => command,
                    Err(e) => {
                        eprintln!("{e}");
                        continue;
                    }
                },
                None => {
                    stdin_open = false;
                    continue;
                }
            },
            _ = sleep_until(next_at), if next_at.is_some() => match timeline.next() {
                Some(timed) => {
                    say(&format!("at {}: {}", crate::duration::show(timed.at), timed.text));
                    timed.command
                }
                None => continue,
            },
        };
        if !apply(&proxy, command) {
            return Ok(Exit::Ok);
        }
    }
}

/// Carry out one command; false to stop.
fn apply(proxy: &FaultProxy, command: Command) -> bool {
    match command {
        Command::Change(change) => {
            proxy.update(|f| change.apply(f));
            say(&format!("faults: {}", command::describe(&proxy.faults())));
        }
        Command::Reset => {
            let open = proxy.open_connections();
            proxy.reset_all();
            say(&format!("reset {open} open connection(s)"));
        }
        Command::Status => say(&format!(
            "faults: {}; {} open connection(s)",
            command::describe(&proxy.faults()),
            proxy.open_connections()
        )),
        Command::Help => say(command::HELP),
        Command::Quit => return false,
    }
    true
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
