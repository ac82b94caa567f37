//! The proxy's little language: one fault per line, typed on its stdin or
//! given on a timeline (`--at '5s blackhole'`).

use crate::duration::{parse, show};
use std::time::Duration;
use steadfast_testkit::Faults;

/// What a line asks of the proxy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    /// Change the faults in force.
    Change(Change),
    /// Reset every open connection (RST both ways).
    Reset,
    /// Show the faults in force.
    Status,
    /// List the commands.
    Help,
    /// Stop the proxy.
    Quit,
}

/// A change to the faults in force.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    Blackhole(bool),
    Down(bool),
    Latency(Duration, Duration),
    Bandwidth(Option<u64>),
    Slice(Option<usize>),
    Cut(Option<u64>),
    Stall {
        up: bool,
        down: bool,
    },
    SlowClose(Duration),
    /// Clear every fault.
    Heal,
}

/// The commands, for `help` and `proxy --help`.
pub(crate) const HELP: &str = "\
blackhole [on|off]       swallow all traffic both ways, silently (no RST, no FIN)
reset                    reset every open connection (RST to both ends)
down [on|off] / up       refuse new connections (reset them at once), or stop refusing
latency 200ms [50ms]     delay every chunk by 200 ms plus up to 50 ms (off: none)
bandwidth 10k            forward at most 10,000 bytes/s each way (k, m; off: no limit)
slice 7                  split every write into pieces of at most 7 bytes (off)
cut 1000                 reset a connection once 1000 bytes have crossed it (off)
stall up|down|both|off   stop forwarding client->server, server->client, or both
slow-close 2s            hold the server's FIN this long before passing it on (off)
heal                     clear every fault
status                   show the faults in force
quit                     stop the proxy";

impl Command {
    /// Parse one line, e.g. `latency 200ms 50ms`.
    pub(crate) fn parse(line: &str) -> Result<Command, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&verb, args)) = words.split_first() else {
            return Err("empty command".into());
        };
        let verb = verb.to_ascii_lowercase();
        let arity = |max: usize| {
            if args.len() > max {
                Err(format!("{verb}: too many arguments"))
            } else {
                Ok(())
            }
        };
        let change = match verb.as_str() {
            "blackhole" => {
                arity(1)?;
                Change::Blackhole(switch(args.first().copied())?)
            }
            "down" => {
                arity(1)?;
                Change::Down(switch(args.first().copied())?)
            }
            "up" => {
                arity(0)?;
                Change::Down(false)
            }
            "latency" => {
                arity(2)?;
                match args {
                    [] => return Err("latency: give a delay, e.g. latency 200ms 50ms".into()),
                    ["off"] => Change::Latency(Duration::ZERO, Duration::ZERO),
                    [delay] => Change::Latency(parse(delay)?, Duration::ZERO),
                    [delay, jitter, ..] => Change::Latency(parse(delay)?, parse(jitter)?),
                }
            }
            "bandwidth" => {
                arity(1)?;
                Change::Bandwidth(size_or_off(&verb, args)?)
            }
            "slice" => {
                arity(1)?;
                let size = size_or_off(&verb, args)?;
                Change::Slice(
                    size.map(usize::try_from)
                        .transpose()
                        .map_err(|_| "slice: too large")?,
                )
            }
            "cut" => {
                arity(1)?;
                Change::Cut(size_or_off(&verb, args)?)
            }
            "stall" => {
                arity(1)?;
                let (up, down) = match args.first().copied() {
                    Some("up") => (true, false),
                    Some("down") => (false, true),
                    Some("both") => (true, true),
                    Some("off") => (false, false),
                    _ => return Err("stall: up, down, both or off".into()),
                };
                Change::Stall { up, down }
            }
            "slow-close" => {
                arity(1)?;
                match args.first().copied() {
                    Some("off") => Change::SlowClose(Duration::ZERO),
                    Some(d) => Change::SlowClose(parse(d)?),
                    None => return Err("slow-close: give a duration, e.g. slow-close 2s".into()),
                }
            }
            "heal" => {
                arity(0)?;
                Change::Heal
            }
            "reset" => return arity(0).map(|()| Command::Reset),
            "status" => return arity(0).map(|()| Command::Status),
            "help" | "?" => return Ok(Command::Help),
            "quit" | "exit" => return arity(0).map(|()| Command::Quit),
            other => return Err(format!("unknown command {other:?} (type help)")),
        };
        Ok(Command::Change(change))
    }
}

impl Change {
    /// Apply to the faults in force.
    pub(crate) fn apply(&self, f: &mut Faults) {
        match *self {
            Change::Blackhole(on) => f.blackhole = on,
            Change::Down(on) => f.down = on,
            Change::Latency(delay, jitter) => (f.latency, f.jitter) = (delay, jitter),
            Change::Bandwidth(rate) => f.bandwidth = rate,
            Change::Slice(size) => f.slice = size,
            Change::Cut(bytes) => f.cut_after = bytes,
            Change::Stall { up, down } => (f.stall_up, f.stall_down) = (up, down),
            Change::SlowClose(d) => f.slow_close = d,
            Change::Heal => *f = Faults::default(),
        }
    }
}

/// A command on the timeline (`--at '5s blackhole'`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Timed {
    /// When, from the proxy's start.
    pub(crate) at: Duration,
    /// The command as written.
    pub(crate) text: String,
    pub(crate) command: Command,
}

/// A timeline entry, `TIME COMMAND` (e.g. `5s blackhole`).
pub(crate) fn parse_at(text: &str) -> Result<Timed, String> {
    let (at, command) = text
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(|| format!("{text:?}: expected 'TIME COMMAND', e.g. '5s blackhole'"))?;
    Ok(Timed {
        at: parse(at)?,
        text: command.trim().to_owned(),
        command: Command::parse(command)?,
    })
}

/// The faults in force, in a few words.
pub(crate) fn describe(f: &Faults) -> String {
    let mut parts = Vec::new();
    if f.down {
        parts.push("down (refusing connections)".to_owned());
    }
    if f.blackhole {
        parts.push("blackhole".to_owned());
    }
    if !f.latency.is_zero() || !f.jitter.is_zero() {
        let mut l = format!("latency {}", show(f.latency));
        if !f.jitter.is_zero() {
            l.push_str(&format!(" + up to {}", show(f.jitter)));
        }
        parts.push(l);
    }
    if let Some(rate) = f.bandwidth {
        parts.push(format!("bandwidth {rate} bytes/s"));
    }
    if let Some(size) = f.slice {
        parts.push(format!("slice {size} bytes"));
    }
    if let Some(bytes) = f.cut_after {
        parts.push(format!("cut after {bytes} bytes"));
    }
    match (f.stall_up, f.stall_down) {
        (true, true) => parts.push("stall both ways".to_owned()),
        (true, false) => parts.push("stall up".to_owned()),
        (false, true) => parts.push("stall down".to_owned()),
        (false, false) => {}
    }
    if !f.slow_close.is_zero() {
        parts.push(format!("slow close {}", show(f.slow_close)));
    }
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// `on` (or nothing) and `off`.
fn switch(word: Option<&str>) -> Result<bool, String> {
    match word {
        None | Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(other) => Err(format!("expected on or off, not {other:?}")),
    }
}

/// `1000`, `10k`, `2m`, or `off`.
fn size_or_off(verb: &str, args: &[&str]) -> Result<Option<u64>, String> {
    let Some(&word) = args.first() else {
        return Err(format!("{verb}: give a size, e.g. {verb} 10k (or off)"));
    };
    if word == "off" {
        return Ok(None);
    }
    let lower = word.to_ascii_lowercase();
    let (digits, scale) = match lower.strip_suffix('k') {
        Some(d) => (d, 1_000),
        None => match lower.strip_suffix('m') {
            Some(d) => (d, 1_000_000),
            None => (lower.as_str(), 1),
        },
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{verb}: {word:?} is not a size (try 1000, 10k or 2m)"))?;
    match n.checked_mul(scale) {
        Some(0) => Err(format!("{verb}: must be more than 0 (or off)")),
        Some(size) => Ok(Some(size)),
        None => Err(format!("{verb}: {word:?} is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(line: &str) -> Faults {
        let mut faults = Faults::default();
        match Command::parse(line) {
            Ok(Command::Change(c)) => c.apply(&mut faults),
            other => panic!("{line}: {other:?}"),
        }
        faults
    }

    #[test]
    fn every_fault_of_the_issue_parses_into_the_proxy_faults() {
        assert!(applied("blackhole").blackhole);
        assert!(applied("down").down);
        let f = applied("latency 200ms 50ms");
        assert_eq!(
            (f.latency, f.jitter),
            (Duration::from_millis(200), Duration::from_millis(50))
        );
        assert_eq!(applied("bandwidth 10k").bandwidth, Some(10_000));
        assert_eq!(applied("slice 7").slice, Some(7));
        assert_eq!(applied("cut 1000").cut_after, Some(1000));
        assert!(applied("stall up").stall_up);
        assert_eq!(applied("slow-close 2s").slow_close, Duration::from_secs(2));
        assert_eq!(Command::parse("reset"), Ok(Command::Reset));
    }

    #[test]
    fn heal_and_off_clear_faults() {
        let mut f = applied("blackhole");
        f.latency = Duration::from_secs(1);
        Change::Heal.apply(&mut f);
        assert_eq!(f, Faults::default());
        assert_eq!(applied("bandwidth off").bandwidth, None);
        assert!(!applied("blackhole off").blackhole);
    }

    #[test]
    fn mistakes_get_a_message_not_a_fault() {
        assert!(Command::parse("blackhol").unwrap_err().contains("unknown"));
        assert!(Command::parse("latency soon").is_err());
        assert!(Command::parse("slice 0").is_err());
        assert!(Command::parse("reset now").is_err());
        assert!(Command::parse("").is_err());
    }

    #[test]
    fn timeline_entries_are_a_time_and_a_command() {
        assert_eq!(
            parse_at("1.5s blackhole"),
            Ok(Timed {
                at: Duration::from_millis(1500),
                text: "blackhole".into(),
                command: Command::Change(Change::Blackhole(true))
            })
        );
        assert!(parse_at("blackhole").is_err());
    }

    #[test]
    fn faults_are_described_in_words() {
        assert_eq!(describe(&Faults::default()), "none");
        assert_eq!(
            describe(&applied("latency 200ms 50ms")),
            "latency 200 ms + up to 50 ms"
        );
    }
}
