//! Durations as people type them (`200ms`, `2.5s`, `1m 30s`) in flags and
//! scenario files, and as the command prints them (`2.3 s`, `250 ms`).

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Parse `200ms`, `2s`, `1m 30s` (humantime's syntax), or `2.5s`.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Some(secs) = text.strip_suffix('s').and_then(|n| n.parse::<f64>().ok()) {
        // humantime takes no fractions; `2.5s` is common enough to allow.
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("invalid duration {text:?}: out of range"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("invalid duration {text:?}: {e} (try 250ms, 2s or 1m)"))
}

/// A duration in a scenario file, written as a string (`"10s"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dur(pub(crate) Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map(Dur).map_err(serde::de::Error::custom)
    }
}

/// `250 ms` under a second, `2.3 s` above, `4 min 10 s` above a minute.
pub(crate) fn show(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if d.is_zero() {
        "0 s".to_owned()
    } else if secs < 0.01 {
        format!("{:.2} ms", secs * 1e3)
    } else if secs < 1.0 {
        format!("{:.0} ms", secs * 1e3)
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else if d.as_secs() % 60 == 0 && d.subsec_nanos() == 0 {
        format!("{} min", d.as_secs() / 60)
    } else {
        format!("{} min {:.0} s", d.as_secs() / 60, secs % 60.0)
    }
}

/// Whole milliseconds, for JSON.
pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_durations_parse() {
        assert_eq!(parse("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse("fast").unwrap_err().contains("\"fast\""));
        assert!(parse("-1s").is_err());
    }

    #[test]
    fn printed_durations_read_well() {
        assert_eq!(show(Duration::from_millis(2345)), "2.3 s");
        assert_eq!(show(Duration::from_millis(250)), "250 ms");
        assert_eq!(show(Duration::from_micros(420)), "0.42 ms");
        assert_eq!(show(Duration::from_secs(250)), "4 min 10 s");
        assert_eq!(show(Duration::from_secs(120)), "2 min");
        assert_eq!(show(Duration::ZERO), "0 s");
    }
}
