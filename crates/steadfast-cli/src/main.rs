//! # steadfast
//!
//! The `steadfast` command puts the workspace's libraries behind one tool:
//!
//! - `steadfast connect URL`: a WebSocket client that stays up
//!   (steadfast-tokio). Lines from stdin go out as text messages; messages
//!   in go to stdout; heartbeats, reconnects and RTT are reported on stderr.
//! - `steadfast serve MODE`: the testkit's loopback servers (echo, ack,
//!   close-with-code, reject-with-status, silent) on a chosen port, or the
//!   example chat (steadfast-examples) with its browser page and a graceful
//!   restart from stdin.
//! - `steadfast proxy --listen PORT --to HOST:PORT`: the testkit's fault
//!   proxy, its faults switched from stdin or on a timeline.
//! - `steadfast sim SCENARIO.toml`: a fleet simulation (steadfast-sim) from
//!   a file, with a progress bar in virtual time (on a terminal), a summary
//!   table and an SVG chart.
//!
//! The command holds no logic of its own: it parses, wires the libraries
//! together and prints. Exit codes are listed in `steadfast connect --help`.
#![forbid(unsafe_code)]
// A command line tool: printing is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod config;
mod connect;
mod duration;
mod exit;
mod listen;
mod proxy;
mod serve;
mod sim;
mod stdin;

use clap::{Parser, Subcommand};
use exit::Exit;
use std::process::ExitCode;

/// A WebSocket client that stays up, the servers and fault proxy to test
/// one against, and fleet simulations from a file.
#[derive(Debug, Parser)]
#[command(name = "steadfast", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Connect(Box<connect::ConnectArgs>),
    Serve(serve::ServeArgs),
    Proxy(proxy::ProxyArgs),
    Sim(sim::SimArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            if !e.use_stderr() {
                let _ = e.print();
                return Exit::Ok.into();
            }
            // No command at all: the help, in full.
            if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                return Exit::Usage.into();
            }
            eprintln!("steadfast: {}", one_line(&e.render().to_string()));
            return Exit::Usage.into();
        }
    };
    let result = match cli.command {
        Command::Sim(args) => sim::run(args),
        Command::Connect(args) => with_runtime(|| connect::run(*args)),
        Command::Serve(args) => with_runtime(|| serve::run(args)),
        Command::Proxy(args) => with_runtime(|| proxy::run(args)),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(failure) => {
            eprintln!("steadfast: {}", failure.message);
            failure.exit.into()
        }
    }
}

/// clap's error on one line: its first paragraph and its tip, if any, and
/// where to look for more.
fn one_line(error: &str) -> String {
    let mut lines = error.lines().map(str::trim);
    let text: Vec<&str> = lines
        .by_ref()
        .take_while(|l| !l.is_empty())
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect();
    let mut text = text.join(" ");
    for tip in lines.filter(|l| l.starts_with("tip:")) {
        text.push_str("; ");
        text.push_str(tip);
    }
    format!("{text} (see --help)")
}

/// Run `f`'s future on a single-threaded tokio runtime, and do not wait for
/// tasks still blocked (on stdin, say) once it is done.
fn with_runtime<F>(f: impl FnOnce() -> F) -> Result<Exit, exit::Failure>
where
    F: std::future::Future<Output = Result<Exit, exit::Failure>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| exit::Failure::new(Exit::Failure, format!("cannot start tokio: {e}")))?;
    let result = runtime.block_on(f());
    runtime.shutdown_background();
    result
}

/// One line on stdout, flushed at once (a closed stdout is ignored, so a
/// reader that went away ends nothing).
pub(crate) fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_fit_on_one_line_with_their_tip() {
        let rendered = "error: unexpected argument '--pong-timout' found\n\n  \
                        tip: a similar argument exists: '--pong-timeout'\n\n\
                        Usage: steadfast connect <URL>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "unexpected argument '--pong-timout' found; \
             tip: a similar argument exists: '--pong-timeout' (see --help)"
        );
    }
}
