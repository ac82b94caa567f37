//! The scenario file (TOML), and how it maps onto [`steadfast_sim::Scenario`].

use crate::config::{ConfigSpec, SpecError};
use crate::duration::{Dur, show};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;
use steadfast_core::{CloseCode, Config};
use steadfast_sim::{Fault, NetworkModel, Scenario, ServerModel};

/// A fleet scenario: the clients and their configuration, the server, the
/// network, faults on a timeline, how long, and the seed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScenarioFile {
    /// A label for the summary and the chart (default: the file's name).
    pub(crate) name: Option<String>,
    /// How many clients.
    pub(crate) clients: u32,
    /// The seed of everything random (default 0).
    pub(crate) seed: Option<u64>,
    /// Virtual time simulated (default 10 min).
    pub(crate) duration: Option<Dur>,
    /// Clients open at times spread over this window (default 10 s).
    pub(crate) ramp: Option<Dur>,
    /// Width of the metrics' time buckets (default 1 s).
    pub(crate) bucket: Option<Dur>,
    /// Each client sends a message this often (default: none).
    pub(crate) messages_every: Option<Dur>,
    /// The client configuration.
    #[serde(default)]
    pub(crate) config: ConfigSpec,
    #[serde(default)]
    pub(crate) server: ServerSpec,
    #[serde(default)]
    pub(crate) network: NetworkSpec,
    #[serde(default)]
    pub(crate) faults: Vec<FaultSpec>,
}

/// `--compare`'s file: another client configuration for the same scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompareFile {
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) config: ConfigSpec,
}

/// The simulated server (`[server]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerSpec {
    /// Ack every data message (default true).
    ack: Option<bool>,
    /// Most handshakes accepted per second; the excess gets 503.
    accept_rate: Option<u32>,
    /// Retry-After sent with a rate-limit refusal (default 1s; "0s" for none).
    rate_limit_retry_after: Option<Dur>,
    /// Silence after which the server's hub pings a session (default 30s).
    ping_after: Option<Dur>,
    /// Time a pinged session has to answer before the hub reaps it
    /// (default 15s).
    reap_after: Option<Dur>,
}

/// The simulated network (`[network]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkSpec {
    latency: Option<Dur>,
    jitter: Option<Dur>,
    loss: Option<f64>,
}

/// One fault (`[[faults]]`), at a time (`at`) or repeated (`every`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum FaultSpec {
    /// The server restarts: every connection reset, down for `down`.
    Restart {
        at: Option<Dur>,
        every: Option<Dur>,
        down: Dur,
    },
    /// The server closes every connection with `code`, then is down for `down`.
    CloseAll {
        at: Option<Dur>,
        every: Option<Dur>,
        code: u16,
        down: Option<Dur>,
    },
    /// Handshakes refused with `status` for `duration`.
    RejectHandshakes {
        at: Option<Dur>,
        every: Option<Dur>,
        status: u16,
        retry_after: Option<Dur>,
        duration: Dur,
    },
    /// A `fraction` of the clients silently cut off for `duration`.
    Partition {
        at: Option<Dur>,
        every: Option<Dur>,
        fraction: f64,
        duration: Dur,
    },
    /// Every open connection reset at once.
    ResetAll { at: Option<Dur>, every: Option<Dur> },
}

/// When a fault strikes.
enum When {
    At(Duration),
    Every(Duration),
}

impl FaultSpec {
    fn when(&self) -> (Option<Dur>, Option<Dur>) {
        match self {
            FaultSpec::Restart { at, every, .. }
            | FaultSpec::CloseAll { at, every, .. }
            | FaultSpec::RejectHandshakes { at, every, .. }
            | FaultSpec::Partition { at, every, .. }
            | FaultSpec::ResetAll { at, every } => (*at, *every),
        }
    }

    fn schedule(&self) -> Result<When, String> {
        match self.when() {
            (Some(Dur(at)), None) => Ok(When::At(at)),
            (None, Some(Dur(every))) if !every.is_zero() => Ok(When::Every(every)),
            (None, Some(_)) => Err("a fault's `every` must be more than 0".into()),
            _ => Err("each fault needs exactly one of `at` or `every`".into()),
        }
    }

    fn fault(&self) -> Fault {
        let d = |d: &Option<Dur>| d.map_or(Duration::ZERO, |Dur(d)| d);
        match self {
            FaultSpec::Restart { down, .. } => Fault::Restart { down: down.0 },
            FaultSpec::CloseAll { code, down, .. } => Fault::CloseAll {
                code: CloseCode(*code),
                down: d(down),
            },
            FaultSpec::RejectHandshakes {
                status,
                retry_after,
                duration,
                ..
            } => Fault::RejectHandshakes {
                status: *status,
                retry_after: retry_after.map(|Dur(d)| d),
                duration: duration.0,
            },
            FaultSpec::Partition {
                fraction, duration, ..
            } => Fault::Partition {
                fraction: *fraction,
                duration: duration.0,
            },
            FaultSpec::ResetAll { .. } => Fault::ResetAll,
        }
    }

    /// The fault in a few words, for the plan printed before a run.
    pub(crate) fn describe(&self) -> String {
        let when = match self.schedule() {
            Ok(When::At(at)) => format!("at {}", show(at)),
            Ok(When::Every(every)) => format!("every {}", show(every)),
            Err(_) => String::new(),
        };
        let what = match self.fault() {
            Fault::Restart { down } => format!("server restart (down {})", show(down)),
            Fault::CloseAll { code, down } => {
                format!("server closes all with {code} (down {})", show(down))
            }
            Fault::RejectHandshakes {
                status, duration, ..
            } => format!("handshakes refused with {status} for {}", show(duration)),
            Fault::Partition { fraction, duration } => format!(
                "{:.0}% of clients cut off for {}",
                fraction * 100.0,
                show(duration)
            ),
            Fault::ResetAll => "every connection reset".to_owned(),
        };
        format!("{when}: {what}")
    }
}

/// Read a TOML file into `T`, the error naming the file and place.
pub(crate) fn load<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A label: the file's `name`, or its stem.
pub(crate) fn label(name: &Option<String>, path: &Path) -> String {
    name.clone().unwrap_or_else(|| {
        path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        )
    })
}

impl ScenarioFile {
    /// The scenario, with `config` for every client (this file's own, or
    /// `--compare`'s).
    pub(crate) fn scenario(&self, config: &ConfigSpec) -> Result<Scenario, SpecError> {
        let config: Config = config.build()?;
        let mut s = Scenario::new(self.clients, config).seed(self.seed.unwrap_or(0));
        // The duration first: `fault_every` repeats up to it.
        if let Some(Dur(d)) = self.duration {
            s = s.duration(d);
        }
        if let Some(Dur(d)) = self.ramp {
            s = s.ramp(d);
        }
        if let Some(Dur(d)) = self.bucket {
            s = s.bucket(d);
        }
        if let Some(Dur(d)) = self.messages_every {
            s = s.messages_every(d);
        }
        s = s.server(self.server.model()?).network(self.network.model());
        for spec in &self.faults {
            s = match spec.schedule().map_err(SpecError::Spec)? {
                When::At(at) => s.fault(at, spec.fault()),
                When::Every(every) => s.fault_every(every, spec.fault()),
            };
        }
        Ok(s)
    }

    /// Virtual time simulated.
    pub(crate) fn duration(&self) -> Duration {
        // The simulator's documented default.
        self.duration.map_or(Duration::from_secs(600), |Dur(d)| d)
    }
}

impl ServerSpec {
    /// The server model, or why the hub would refuse its liveness.
    fn model(&self) -> Result<ServerModel, SpecError> {
        let mut m = ServerModel::default();
        if let Some(ack) = self.ack {
            m.ack = ack;
        }
        m.accept_rate = self.accept_rate.or(m.accept_rate);
        if let Some(Dur(d)) = self.rate_limit_retry_after {
            m.rate_limit_retry_after = (!d.is_zero()).then_some(d);
        }
        if let Some(Dur(d)) = self.ping_after {
            m.hub.liveness.interval = d;
        }
        if let Some(Dur(d)) = self.reap_after {
            m.hub.liveness.timeout = d;
        }
        m.hub
            .validate()
            .map_err(|e| SpecError::Spec(format!("[server] ping_after/reap_after: {e}")))?;
        Ok(m)
    }
}

impl NetworkSpec {
    fn model(&self) -> NetworkModel {
        let mut m = NetworkModel::default();
        if let Some(Dur(d)) = self.latency {
            m.latency = d;
        }
        if let Some(Dur(d)) = self.jitter {
            m.jitter = d;
        }
        if let Some(loss) = self.loss {
            m.loss = loss;
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ScenarioFile, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn a_scenario_file_maps_every_section() {
        let file = parse(
            r#"
            clients = 50
            seed = 3
            duration = "30s"
            [config.retry]
            jitter = "none"
            [server]
            accept_rate = 100
            [network]
            latency = "5ms"
            [[faults]]
            kind = "restart"
            at = "10s"
            down = "2s"
            [[faults]]
            kind = "reset-all"
            every = "12s"
            "#,
        )
        .expect("valid file");
        assert_eq!(file.faults.len(), 2);
        assert_eq!(
            file.faults[0].describe(),
            "at 10.0 s: server restart (down 2.0 s)"
        );
        let metrics = file.scenario(&file.config).expect("valid").run();
        // The restart at 10 s and the resets at 12 and 24 s.
        assert_eq!(metrics.recoveries.len(), 3);
        assert_eq!(metrics.recoveries[0].at, Duration::from_secs(10));
    }

    #[test]
    fn the_server_section_sets_the_hubs_liveness() {
        let file = parse(
            r#"
            clients = 1
            [server]
            ping_after = "90s"
            reap_after = "20s"
            "#,
        )
        .expect("valid file");
        let hub = file.server.model().expect("valid").hub;
        assert_eq!(hub.liveness.interval, Duration::from_secs(90));
        assert_eq!(hub.liveness.timeout, Duration::from_secs(20));
        let default = parse("clients = 1").expect("valid file").server.model();
        assert_eq!(
            default.expect("valid").hub,
            steadfast_sim::HubConfig::default()
        );
        // A liveness the hub refuses is named, not replaced.
        let zero = parse("clients = 1\n[server]\nping_after = \"0s\"").expect("parses");
        let err = zero
            .scenario(&zero.config)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("ping_after"), "{err}");
    }

    #[test]
    fn unknown_fields_and_bad_durations_are_named() {
        let err = parse("clients = 1\nclinets = 2").unwrap_err().to_string();
        assert!(err.contains("clinets"), "{err}");
        let err = parse("clients = 1\nduration = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("soon"), "{err}");
        let err = parse(
            "clients = 1\n[[faults]]\nkind = \"restart\"\nat = \"1s\"\ndown = \"1s\"\ndwn = 1",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("dwn"), "{err}");
    }

    #[test]
    fn a_fault_needs_one_time() {
        let file = parse("clients = 1\n[[faults]]\nkind = \"reset-all\"").expect("parses");
        match file.scenario(&file.config) {
            Err(SpecError::Spec(e)) => assert!(e.contains("`at` or `every`"), "{e}"),
            other => panic!("expected a spec error, got {other:?}"),
        }
    }
}
