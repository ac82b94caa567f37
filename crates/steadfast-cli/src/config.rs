//! The client configuration as the command takes it, from `connect`'s flags
//! or a scenario file's `[config]` table, mapped onto the core's
//! [`Config`] builder. Every field is optional and defaults to the core's
//! default; the core validates the result, and its typed error is what the
//! user sees.

use crate::duration::Dur;
use serde::Deserialize;
use steadfast_core::{
    AckConfig, AckMatcher, Bytes, CloseCodeTable, Config, ConfigError, Delivery, FirstConnect,
    HeartbeatConfig, HeartbeatMode, Jitter, Message, OutboxConfig, Overflow, PingSchedule,
    PongMatcher, Reconnect, RetryClass, RetryConfig,
};

/// A client configuration; `None` keeps the core's default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigSpec {
    /// Seed of the jitter PRNG (ignored by `sim`, which seeds each client
    /// from the scenario's seed).
    pub(crate) seed: Option<u64>,
    pub(crate) connect_timeout: Option<Dur>,
    pub(crate) close_timeout: Option<Dur>,
    #[serde(default)]
    pub(crate) heartbeat: HeartbeatSpec,
    #[serde(default)]
    pub(crate) retry: RetrySpec,
    #[serde(default)]
    pub(crate) outbox: OutboxSpec,
    /// How the server's acks look, e.g. `ack:{key}`.
    pub(crate) acks: Option<AckSpec>,
    /// Close codes to treat as fatal, beside the defaults.
    #[serde(default)]
    pub(crate) fatal_close_codes: Vec<u16>,
}

/// Heartbeat settings (`[config.heartbeat]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeartbeatSpec {
    pub(crate) mode: Option<HeartbeatModeSpec>,
    /// The application-level ping (mode `app`). Default `ping`.
    pub(crate) ping: Option<String>,
    /// The application-level pong (mode `app`). Default `pong`.
    pub(crate) pong: Option<String>,
    pub(crate) interval: Option<Dur>,
    pub(crate) pong_timeout: Option<Dur>,
    pub(crate) tolerated_missed: Option<u32>,
    pub(crate) schedule: Option<ScheduleSpec>,
}

/// How liveness is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum HeartbeatModeSpec {
    /// WebSocket ping frames (every server answers them).
    Ping,
    /// Application messages: `--ping-message` out, `--pong-message` back.
    App,
    /// Send nothing; any frame from the server proves it alive.
    Passive,
}

/// When pings go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ScheduleSpec {
    /// Only after a quiet interval.
    WhenQuiet,
    /// Every interval, whatever the traffic.
    Fixed,
}

/// Retry settings (`[config.retry]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetrySpec {
    pub(crate) initial_delay: Option<Dur>,
    pub(crate) max_delay: Option<Dur>,
    pub(crate) min_delay: Option<Dur>,
    pub(crate) multiplier: Option<f64>,
    pub(crate) jitter: Option<JitterSpec>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) max_short_lived: Option<u32>,
    pub(crate) min_uptime: Option<Dur>,
    /// Give up at once if the first connection fails, and never reconnect.
    pub(crate) once: Option<bool>,
    pub(crate) restart_spread: Option<Dur>,
    pub(crate) try_again_later_floor: Option<Dur>,
    pub(crate) max_retry_after: Option<Dur>,
}

/// Backoff randomisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum JitterSpec {
    None,
    Full,
    Equal,
    Decorrelated,
}

/// Outbox settings (`[config.outbox]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutboxSpec {
    pub(crate) delivery: Option<DeliverySpec>,
    pub(crate) max_messages: Option<usize>,
    pub(crate) max_bytes: Option<usize>,
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) overflow: Option<OverflowSpec>,
    pub(crate) default_ttl: Option<Dur>,
}

/// Delivery guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum DeliverySpec {
    /// Written once; lost if the connection drops with it in flight.
    AtMostOnce,
    /// Kept until the server acks it; replayed after a reconnect.
    AtLeastOnce,
}

/// What a full outbox does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum OverflowSpec {
    RejectNew,
    DropOldest,
}

/// The shape of the server's acks: patterns with `{key}` at the end.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AckSpec {
    /// e.g. `ack:{key}`: an ack (or a reply, `ack:{key}:...`).
    pub(crate) ack: String,
    /// e.g. `nack:{key}`: a refusal, `nack:{key}:<reason>`.
    pub(crate) nack: Option<String>,
}

/// What went wrong turning a [`ConfigSpec`] into a [`Config`].
#[derive(Debug)]
pub(crate) enum SpecError {
    /// The core refused the configuration (its message names the field).
    Core(ConfigError),
    /// A value the command cannot map (an ack pattern without `{key}`).
    Spec(String),
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpecError::Core(e) => write!(f, "invalid configuration: {e}"),
            SpecError::Spec(e) => f.write_str(e),
        }
    }
}

/// The prefix of a pattern `<prefix>{key}`: the core matches
/// `<prefix><decimal key>[:rest]`.
pub(crate) fn ack_prefix(pattern: &str) -> Result<Bytes, SpecError> {
    match pattern.strip_suffix("{key}") {
        Some(prefix) if !prefix.contains("{key}") => Ok(Bytes::copy_from_slice(prefix.as_bytes())),
        _ => Err(SpecError::Spec(format!(
            "ack pattern {pattern:?} must end with {{key}}, e.g. 'ack:{{key}}' \
             (it matches <prefix><number> and <prefix><number>:<anything>)"
        ))),
    }
}

impl ConfigSpec {
    /// The core configuration, validated by the core.
    pub(crate) fn build(&self) -> Result<Config, SpecError> {
        let mut b = Config::builder();
        let defaults = Config::default();
        if let Some(seed) = self.seed {
            b = b.seed(seed);
        }
        if let Some(Dur(d)) = self.connect_timeout {
            b = b.connect_timeout(d);
        }
        if let Some(Dur(d)) = self.close_timeout {
            b = b.close_timeout(d);
        }
        b = b.heartbeat(self.heartbeat.build(defaults.heartbeat().clone()));
        b = b.retry(self.retry.build(defaults.retry().clone()));
        b = b.outbox(self.outbox.build(defaults.outbox().clone()));
        if let Some(acks) = &self.acks {
            let matcher = AckMatcher::Prefixed {
                ack: ack_prefix(&acks.ack)?,
                up_to: None,
                nack: acks.nack.as_deref().map(ack_prefix).transpose()?,
            };
            b = b.acks(AckConfig::new(matcher));
        }
        if !self.fatal_close_codes.is_empty() {
            let table = self
                .fatal_close_codes
                .iter()
                .fold(CloseCodeTable::default(), |t, &c| {
                    t.with(c..=c, RetryClass::Fatal)
                });
            b = b.close_codes(table);
        }
        b.build().map_err(SpecError::Core)
    }
}

impl HeartbeatSpec {
    fn build(&self, mut hb: HeartbeatConfig) -> HeartbeatConfig {
        let text = |s: &Option<String>, default: &str| {
            Bytes::copy_from_slice(s.as_deref().unwrap_or(default).as_bytes())
        };
        match self.mode {
            None | Some(HeartbeatModeSpec::Ping) => {}
            Some(HeartbeatModeSpec::Passive) => hb.mode = HeartbeatMode::Passive,
            Some(HeartbeatModeSpec::App) => {
                hb.mode = HeartbeatMode::AppLevel {
                    ping: Message::text(self.ping.as_deref().unwrap_or("ping")),
                    pong: PongMatcher::Equals(text(&self.pong, "pong")),
                    forward_pongs: false,
                }
            }
        }
        if let Some(Dur(d)) = self.interval {
            hb.interval = d;
        }
        if let Some(Dur(d)) = self.pong_timeout {
            hb.pong_timeout = d;
        }
        if let Some(n) = self.tolerated_missed {
            hb.tolerated_missed = n;
        }
        if let Some(s) = self.schedule {
            hb.schedule = match s {
                ScheduleSpec::WhenQuiet => PingSchedule::WhenQuiet,
                ScheduleSpec::Fixed => PingSchedule::Fixed,
            };
        }
        hb
    }
}

impl RetrySpec {
    fn build(&self, mut r: RetryConfig) -> RetryConfig {
        let set = |field: &mut std::time::Duration, value: Option<Dur>| {
            if let Some(Dur(d)) = value {
                *field = d;
            }
        };
        set(&mut r.initial_delay, self.initial_delay);
        set(&mut r.max_delay, self.max_delay);
        set(&mut r.min_delay, self.min_delay);
        set(&mut r.min_uptime, self.min_uptime);
        set(&mut r.restart_spread, self.restart_spread);
        set(&mut r.try_again_later_floor, self.try_again_later_floor);
        set(&mut r.max_retry_after, self.max_retry_after);
        if let Some(m) = self.multiplier {
            r.multiplier = m;
        }
        if let Some(j) = self.jitter {
            r.jitter = match j {
                JitterSpec::None => Jitter::None,
                JitterSpec::Full => Jitter::Full,
                JitterSpec::Equal => Jitter::Equal,
                JitterSpec::Decorrelated => Jitter::Decorrelated,
            };
        }
        if self.max_attempts.is_some() {
            r.max_attempts = self.max_attempts;
        }
        if self.max_short_lived.is_some() {
            r.max_short_lived = self.max_short_lived;
        }
        if self.once == Some(true) {
            r.first_connect = FirstConnect::FailFast;
            r.reconnect = Reconnect::Never;
        }
        r
    }
}

impl OutboxSpec {
    fn build(&self, mut o: OutboxConfig) -> OutboxConfig {
        if let Some(d) = self.delivery {
            o.delivery = match d {
                DeliverySpec::AtMostOnce => Delivery::AtMostOnce,
                DeliverySpec::AtLeastOnce => Delivery::AtLeastOnce,
            };
        }
        if let Some(n) = self.max_messages {
            o.max_messages = n;
        }
        if let Some(n) = self.max_bytes {
            o.max_bytes = n;
        }
        if let Some(n) = self.max_in_flight {
            o.max_in_flight = n;
        }
        if let Some(p) = self.overflow {
            o.overflow = match p {
                OverflowSpec::RejectNew => Overflow::RejectNew,
                OverflowSpec::DropOldest => Overflow::DropOldest,
            };
        }
        if let Some(Dur(ttl)) = self.default_ttl {
            o.default_ttl = Some(ttl);
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn unset_fields_keep_the_core_defaults() {
        let config = ConfigSpec::default().build().expect("defaults are valid");
        let defaults = Config::default();
        assert_eq!(config.heartbeat().interval, defaults.heartbeat().interval);
        assert_eq!(config.retry(), defaults.retry());
        assert_eq!(config.outbox(), defaults.outbox());
        assert!(config.acks().is_none());
    }

    #[test]
    fn the_core_validates_and_names_the_field() {
        let spec = ConfigSpec {
            heartbeat: HeartbeatSpec {
                interval: Some(Dur(Duration::from_secs(1))),
                pong_timeout: Some(Dur(Duration::from_secs(2))),
                ..Default::default()
            },
            ..Default::default()
        };
        match spec.build() {
            Err(SpecError::Core(e)) => assert_eq!(e.field(), "heartbeat.pong_timeout"),
            other => panic!("expected the core's error, got {other:?}"),
        }
    }

    #[test]
    fn ack_patterns_map_onto_the_prefix_matcher() {
        assert_eq!(ack_prefix("ack:{key}").expect("valid"), "ack:".as_bytes());
        assert!(ack_prefix("{key}:ack").is_err());
        assert!(ack_prefix("ack").is_err());
        let spec = ConfigSpec {
            acks: Some(AckSpec {
                ack: "ok {key}".into(),
                nack: Some("no {key}".into()),
            }),
            ..Default::default()
        };
        let config = spec.build().expect("valid");
        let matcher = &config.acks().expect("acks").matcher;
        assert_eq!(
            matcher.matches(&Message::text("ok 7")),
            Some(steadfast_core::AckMatch::Ack(7))
        );
        assert!(matches!(
            matcher.matches(&Message::text("no 8:full")),
            Some(steadfast_core::AckMatch::Nack { key: 8, .. })
        ));
    }

    #[test]
    fn once_never_reconnects() {
        let spec = ConfigSpec {
            retry: RetrySpec {
                once: Some(true),
                ..Default::default()
            },
            ..Default::default()
        };
        let config = spec.build().expect("valid");
        assert_eq!(config.retry().first_connect, FirstConnect::FailFast);
        assert_eq!(config.retry().reconnect, Reconnect::Never);
    }
}
