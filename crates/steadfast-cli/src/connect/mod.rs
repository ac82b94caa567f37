//! `steadfast connect URL`: stdin lines out as text messages, messages in to
//! stdout, the connection's life on stderr. steadfast-tokio does the work.

mod args;
mod input;
mod report;

pub(crate) use args::ConnectArgs;

use crate::exit::{Exit, Failure};
use crate::stdin::{self, Line};
use futures_util::StreamExt;
use input::Template;
use report::Report;
use std::time::Duration;
use steadfast_core::{CloseCode, Config, SendError, State};
use steadfast_tokio::{Builder, Handle};

/// Connect and run until the connection ends; the exit code says how.
pub(crate) async fn run(args: ConnectArgs) -> Result<Exit, Failure> {
    let config = args
        .config_spec()?
        .build()
        .map_err(|e| Failure::usage(e.to_string()))?;
    let template = Template::parse(&args.send, config.acks().is_some())?;
    let builder = builder(&args, config)?;

    let mut report = Report::new(&args);
    report.connecting_to(&args.url);
    let (handle, mut events) = builder.connect();
    let mut lines = stdin::spawn_reader();
    let mut stdin_open = true;
    // A line the outbox had no room for, sent again as soon as it has.
    let mut pending: Option<Line> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut interrupted = false;
    let mut closing = false;

    let exit = loop {
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else {
                    // The driver ended without a terminal event (not expected).
                    break Exit::Failure;
                };
                let terminal = Exit::of_terminal(&event);
                report.event(&event, &handle);
                if let Some(exit) = terminal {
                    break if interrupted { Exit::Interrupted } else { exit };
                }
            }
            line = lines.recv(), if stdin_open && pending.is_none() && !closing => match line {
                Some(line) => pending = send(&handle, &template, line, &mut report),
                None => {
                    stdin_open = false;
                    if !args.keep_open {
                        closing = true;
                        report.closing_after_stdin();
                        tokio::spawn(close_when_delivered(handle.clone(), args.drain_timeout));
                    }
                }
            },
            _ = tick.tick() => {
                if let Some(line) = pending.take() {
                    pending = send(&handle, &template, line, &mut report);
                }
                report.tick(&handle);
            }
            _ = &mut ctrl_c, if !interrupted => {
                interrupted = true;
                closing = true;
                report.interrupted();
                let handle = handle.clone();
                tokio::spawn(async move { handle.close().await });
            }
        }
    };
    report.finish();
    Ok(exit)
}

/// The connection as the flags describe it.
fn builder(args: &ConnectArgs, config: Config) -> Result<Builder, Failure> {
    // The library refuses a URL no attempt could use (not ws/wss, no host).
    let mut builder = Builder::new(args.url.as_str())
        .map_err(|e| {
            Failure::usage(format!(
                "{}: {e} (expected ws://HOST[:PORT]/PATH or wss://...)",
                args.url
            ))
        })?
        .config(config);
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| Failure::usage(format!("-H {header:?}: expected 'Name: value'")))?;
        builder = builder
            .header(name.trim(), value.trim())
            .map_err(|e| Failure::usage(e.to_string()))?;
    }
    if let Some(token) = &args.bearer {
        builder = builder
            .bearer(token)
            .map_err(|e| Failure::usage(format!("--bearer: {e}")))?;
    }
    if !args.subprotocols.is_empty() {
        let offered: Vec<&str> = args.subprotocols.iter().map(String::as_str).collect();
        builder = builder
            .subprotocols(&offered)
            .map_err(|e| Failure::usage(format!("--subprotocol: {e}")))?;
    }
    Ok(builder)
}

/// Close once everything queued is delivered, waiting at most `within`.
/// The core closes a connection that is not open at once, so a close asked
/// for while connecting or backing off first waits for the connection to
/// open (within the same time).
async fn close_when_delivered(handle: Handle, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    let mut watch = handle.watch();
    let settled = |s: State| matches!(s, State::Open | State::Closed | State::Failed);
    let _ = tokio::time::timeout_at(deadline, watch.wait_for(settled)).await;
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let _ = handle
        .close_when_delivered(CloseCode::NORMAL, "", left.max(Duration::from_millis(1)))
        .await;
}

/// Queue one line; hand it back if the outbox is full (to try again).
fn send(handle: &Handle, template: &Template, line: Line, report: &mut Report) -> Option<Line> {
    let text = template.render(&line);
    let sent = match (template.keyed(), line.key) {
        (true, key) => handle.send_keyed(key, text),
        (false, _) => handle.send(text),
    };
    match sent {
        Ok(id) => {
            report.sent(id, &line);
            None
        }
        Err(SendError::QueueFull(_)) => Some(line),
        Err(e) => {
            report.send_refused(&line, &e);
            None
        }
    }
}
