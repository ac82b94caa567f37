//! What `connect` prints: messages on stdout; the connection's life on
//! stderr, as a live status line on a terminal or plain lines otherwise;
//! or everything as JSON lines on stdout (`--json`).

use super::args::{BinaryEncoding, ConnectArgs};
use crate::duration::{millis, show};
use crate::exit::Exit;
use crate::say;
use crate::stdin::Line;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};
use steadfast_core::{
    DropReason, Event, Message, MessageId, MessageKind, Outcome, SendError, State,
};
use steadfast_tokio::Handle;

enum Mode {
    /// One JSON object per event on stdout.
    Json,
    /// Lines on stderr.
    Plain,
    /// Lines on stderr above a status line that counts down.
    Live(ProgressBar),
}

/// Renders events as they come, and the status line between them.
pub(crate) struct Report {
    mode: Mode,
    binary: BinaryEncoding,
    start: Instant,
    /// The number of the next connection attempt.
    attempt: u32,
    /// In backoff: when the next attempt starts, and why.
    next_attempt: Option<(Instant, String)>,
    /// The line each message in flight came from.
    lines: HashMap<MessageId, u64>,
}

impl Report {
    pub(crate) fn new(args: &ConnectArgs) -> Report {
        let mode = if args.json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(100));
            Mode::Live(bar)
        } else {
            Mode::Plain
        };
        Report {
            mode,
            binary: args.binary,
            start: Instant::now(),
            attempt: 1,
            next_attempt: None,
            lines: HashMap::new(),
        }
    }

    /// The first line: where to (without the query, which may hold a token).
    pub(crate) fn connecting_to(&mut self, url: &str) {
        let shown = url.split('?').next().unwrap_or(url);
        self.status(
            format!("connecting to {shown}"),
            json!({"event": "start", "url": shown}),
        );
    }

    pub(crate) fn event(&mut self, event: &Event, handle: &Handle) {
        match event {
            Event::Message(m) => self.message(m),
            Event::StateChanged { from, to } => self.state(*from, *to),
            Event::Opened {
                conn,
                reconnect,
                handshake,
            } => {
                self.attempt = 1;
                self.next_attempt = None;
                let mut text = String::from(if *reconnect { "open again" } else { "open" });
                if let Some(p) = &handshake.protocol {
                    text.push_str(&format!(" (subprotocol {p})"));
                }
                self.status(
                    text,
                    json!({"event": "opened", "conn": conn.0, "reconnect": reconnect,
                           "protocol": handshake.protocol}),
                );
            }
            Event::Reconnecting {
                attempt,
                delay,
                cause,
                advised,
                circuit_open,
            } => {
                self.attempt = *attempt;
                let mut why = format!("attempt {attempt}: {cause}");
                if let Some(advised) = advised {
                    why.push_str(&format!("; the server asked for {}", show(*advised)));
                }
                if *circuit_open {
                    why.push_str("; retry budget window spent, waiting");
                }
                self.next_attempt = Some((Instant::now() + *delay, why.clone()));
                self.status(
                    format!("reconnecting in {} ({why})", show(*delay)),
                    json!({"event": "reconnecting", "attempt": attempt, "delay_ms": millis(*delay),
                           "cause": cause.to_string(), "advised_ms": advised.map(millis),
                           "circuit_open": circuit_open}),
                );
            }
            // The live status line shows the RTT; a line per ping is for logs.
            Event::Rtt(_) if matches!(self.mode, Mode::Live(_)) => {}
            Event::Rtt(rtt) => self.status(
                format!(
                    "rtt {} (min {}, smoothed {})",
                    show(rtt.last),
                    show(rtt.min),
                    show(rtt.smoothed)
                ),
                json!({"event": "rtt", "last_ms": millis(rtt.last), "min_ms": millis(rtt.min),
                       "smoothed_ms": millis(rtt.smoothed)}),
            ),
            Event::Outcome { id, outcome } => self.outcome(*id, outcome),
            Event::Suspended { overshoot } => self.status(
                format!(
                    "the machine slept (about {}): probing the connection",
                    show(*overshoot)
                ),
                json!({"event": "suspended", "overshoot_ms": millis(*overshoot)}),
            ),
            Event::Failed { error, undelivered } => {
                let exit = Exit::of_terminal(event).map(|e| e as u8);
                self.status(
                    format!("failed: {error}"),
                    json!({"event": "failed", "error": error.to_string(), "exit_code": exit,
                           "undelivered": self.undelivered_json(undelivered)}),
                );
                self.undelivered(undelivered);
            }
            Event::Closed { code, undelivered } => {
                let exit = Exit::of_terminal(event).map(|e| e as u8);
                self.status(
                    format!("closed ({code})"),
                    json!({"event": "closed", "code": code.0, "exit_code": exit,
                           "undelivered": self.undelivered_json(undelivered)}),
                );
                self.undelivered(undelivered);
            }
        }
        self.tick(handle);
    }

    /// Remember which line a queued message came from.
    pub(crate) fn sent(&mut self, id: MessageId, line: &Line) {
        self.lines.insert(id, line.key);
    }

    pub(crate) fn send_refused(&mut self, line: &Line, error: &SendError) {
        self.status(
            format!("line {} not sent: {error}", line.key),
            json!({"event": "send_refused", "line": line.key, "error": error.to_string()}),
        );
    }

    pub(crate) fn closing_after_stdin(&mut self) {
        self.status(
            "end of input: closing once everything sent is delivered".into(),
            json!({"event": "stdin_closed"}),
        );
    }

    pub(crate) fn interrupted(&mut self) {
        self.status(
            "interrupted: closing".into(),
            json!({"event": "interrupted"}),
        );
    }

    /// Refresh the live status line (a countdown while backing off).
    pub(crate) fn tick(&mut self, handle: &Handle) {
        let Mode::Live(bar) = &self.mode else { return };
        let status = handle.status();
        let stats = status.stats;
        let text = match status.state {
            State::Backoff => match &self.next_attempt {
                Some((at, why)) => format!(
                    "reconnecting in {} ({why})",
                    show(at.saturating_duration_since(Instant::now()))
                ),
                None => "backing off".into(),
            },
            State::Connecting => format!("connecting (attempt {})", self.attempt),
            State::Open => {
                let mut text = format!(
                    "open · sent {} · delivered {} · queued {}",
                    stats.accepted,
                    stats.written + stats.acked,
                    stats.queue_len
                );
                if let Some(rtt) = stats.rtt {
                    text.push_str(&format!(" · rtt {}", show(rtt.smoothed)));
                }
                text
            }
            State::Closing => format!("closing · queued {}", stats.queue_len),
            other => state_name(other).to_owned(),
        };
        bar.set_message(text);
    }

    pub(crate) fn finish(&mut self) {
        if let Mode::Live(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }

    fn message(&mut self, m: &Message) {
        let (line, value) = match (m.kind(), m.as_text()) {
            (MessageKind::Text, Some(text)) => {
                (text.to_owned(), json!({"event": "message", "text": text}))
            }
            _ => {
                let encoded = self.binary.encode(m.payload());
                let encoding = match self.binary {
                    BinaryEncoding::Hex => "hex",
                    BinaryEncoding::Base64 => "base64",
                };
                let value = json!({"event": "message", "binary": encoded, "encoding": encoding});
                (encoded, value)
            }
        };
        match &self.mode {
            Mode::Json => self.json(value),
            Mode::Plain => say(&line),
            Mode::Live(bar) => bar.suspend(|| say(&line)),
        }
    }

    fn state(&mut self, from: State, to: State) {
        // Open, Backoff, Closed and Failed have richer events of their own.
        let text = match to {
            State::Connecting => Some(format!("connecting (attempt {})", self.attempt)),
            State::Authenticating => Some("authenticating".to_owned()),
            State::Offline => Some("offline: waiting for the network".to_owned()),
            State::Closing => Some("closing".to_owned()),
            _ => None,
        };
        let value = json!({"event": "state", "from": state_name(from), "to": state_name(to)});
        match (&self.mode, text) {
            (Mode::Json, _) => self.json(value),
            (_, Some(text)) => self.line(&text),
            (_, None) => {}
        }
    }

    fn outcome(&mut self, id: MessageId, outcome: &Outcome) {
        let line = self.lines.remove(&id);
        let what = line.map_or_else(|| id.to_string(), |key| format!("line {key}"));
        let (text, name) = match outcome {
            Outcome::Written => (None, "written"),
            Outcome::Acked => (Some(format!("{what} acked")), "acked"),
            Outcome::Replied(_) => (Some(format!("{what} answered")), "replied"),
            Outcome::Refused(reason) => (
                Some(format!(
                    "{what} refused by the server: {}",
                    String::from_utf8_lossy(reason)
                )),
                "refused",
            ),
            Outcome::TimedOut => (Some(format!("{what}: no reply in time")), "timed_out"),
            Outcome::Expired => (
                Some(format!("{what} expired before it was sent")),
                "expired",
            ),
            Outcome::Dropped(DropReason::Overflow) => {
                (Some(format!("{what} dropped: queue full")), "dropped")
            }
            Outcome::Dropped(DropReason::Disconnected) => (
                Some(format!(
                    "{what} lost: the connection dropped with it in flight"
                )),
                "dropped",
            ),
        };
        let mut value = json!({"event": "outcome", "id": id.0, "outcome": name, "line": line});
        if let Outcome::Refused(reason) = outcome {
            value["reason"] = Value::from(String::from_utf8_lossy(reason).into_owned());
        }
        match (&self.mode, text) {
            (Mode::Json, _) => self.json(value),
            (_, Some(text)) => self.line(&text),
            (_, None) => {}
        }
    }

    fn undelivered(&mut self, undelivered: &[(MessageId, Message)]) {
        if matches!(self.mode, Mode::Json) || undelivered.is_empty() {
            return;
        }
        self.line(&format!("{} messages undelivered:", undelivered.len()));
        for (_, m) in undelivered {
            let text = match m.as_text() {
                Some(t) => t.to_owned(),
                None => self.binary.encode(m.payload()),
            };
            self.line(&format!("  {text}"));
        }
    }

    fn undelivered_json(&self, undelivered: &[(MessageId, Message)]) -> Value {
        undelivered
            .iter()
            .map(|(id, m)| match m.as_text() {
                Some(t) => json!({"id": id.0, "text": t}),
                None => json!({"id": id.0, "binary": self.binary.encode(m.payload())}),
            })
            .collect()
    }

    /// A status line (or its JSON form).
    fn status(&mut self, text: String, value: Value) {
        match &self.mode {
            Mode::Json => self.json(value),
            _ => self.line(&text),
        }
    }

    /// One line on stderr, stamped with the time since start.
    fn line(&self, text: &str) {
        let stamped = format!("{:>8.3}s  {text}", self.start.elapsed().as_secs_f64());
        match &self.mode {
            Mode::Live(bar) => bar.println(stamped),
            _ => {
                let _ = writeln!(std::io::stderr(), "{stamped}");
            }
        }
    }

    fn json(&self, mut value: Value) {
        value["t"] = Value::from(millis(self.start.elapsed()) / 1e3);
        say(&value.to_string());
    }
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Idle => "idle",
        State::Connecting => "connecting",
        State::Authenticating => "authenticating",
        State::Open => "open",
        State::Closing => "closing",
        State::Closed => "closed",
        State::Backoff => "backoff",
        State::Offline => "offline",
        State::Failed => "failed",
    }
}
