//! Describing a simulation: the fleet, the server, the network and a fault
//! script over virtual time.

use core::time::Duration;
use steadfast_core::{CloseCode, Config};
use steadfast_hub::HubConfig;

/// A fault injected at a point of virtual time.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// The server process restarts: every connection is reset, and new
    /// connections are refused for `down`.
    Restart {
        /// How long the server stays down.
        down: Duration,
    },
    /// The server closes every connection with `code` (e.g. 1012 service
    /// restart, 1013 try again later), then refuses connections for `down`.
    CloseAll {
        /// The close code sent to every client.
        code: CloseCode,
        /// How long the server then stays down (may be zero).
        down: Duration,
    },
    /// The server refuses handshakes with an HTTP status for `duration`.
    RejectHandshakes {
        /// The HTTP status (401, 429, 503, ...).
        status: u16,
        /// The `Retry-After` it sends.
        retry_after: Option<Duration>,
        /// How long it keeps refusing.
        duration: Duration,
    },
    /// A share of the clients loses its network silently (a blackhole: no
    /// RST, no FIN) for `duration`. The server notices nothing.
    Partition {
        /// Share of the clients cut off, in `0.0..=1.0` (the first ones by
        /// index); other values are clamped, and NaN cuts off nobody.
        fraction: f64,
        /// How long.
        duration: Duration,
    },
    /// Every open connection is reset at once (a load balancer dies).
    ResetAll,
}

/// The simulated server: a real [`steadfast_hub::Hub`] (the server side of
/// steadfast: sessions by user, a reconnect replacing its stale session,
/// silent sessions pinged and reaped, closes at shutdown) behind an
/// application that admits every user, may limit the accept rate, and
/// acknowledges messages.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerModel {
    /// The hub's config. Its liveness decides when the server pings a
    /// silent client and when it reaps a dead one; a server that pings
    /// less often than its clients do is never the first to ask. A config
    /// the hub refuses ([`HubConfig::validate`]) is replaced by the
    /// default; without a seed of its own, the hub is seeded from the
    /// scenario's seed.
    pub hub: HubConfig,
    /// Acknowledge every data message (for at-least-once clients).
    pub ack: bool,
    /// Most handshakes accepted per second; the excess is refused with 503.
    pub accept_rate: Option<u32>,
    /// The `Retry-After` sent with a rate-limit refusal.
    pub rate_limit_retry_after: Option<Duration>,
}

impl Default for ServerModel {
    fn default() -> Self {
        ServerModel {
            hub: HubConfig::default(),
            ack: true,
            accept_rate: None,
            rate_limit_retry_after: Some(Duration::from_secs(1)),
        }
    }
}

/// The simulated network between each client and the server.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkModel {
    /// One-way latency.
    pub latency: Duration,
    /// Extra latency, uniform in `[0, jitter]`, drawn per frame.
    pub jitter: Duration,
    /// Probability that a data or heartbeat frame vanishes (a lossy middlebox).
    pub loss: f64,
}

impl Default for NetworkModel {
    fn default() -> Self {
        NetworkModel {
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(10),
            loss: 0.0,
        }
    }
}

/// A complete simulation: build it, then [`run`](Scenario::run) it.
///
/// ```
/// use core::time::Duration;
/// use steadfast_sim::{Fault, Scenario};
/// use steadfast_core::Config;
///
/// let metrics = Scenario::new(200, Config::default())
///     .seed(7)
///     .duration(Duration::from_secs(300))
///     .fault(Duration::from_secs(60), Fault::Restart { down: Duration::from_secs(10) })
///     .run();
/// assert_eq!(metrics.recoveries.len(), 1);
/// assert!(metrics.recoveries[0].after.is_some(), "the fleet came back");
/// ```
#[derive(Debug, Clone)]
pub struct Scenario {
    pub(crate) clients: u32,
    pub(crate) config: Config,
    pub(crate) seed: u64,
    pub(crate) duration: Duration,
    pub(crate) ramp: Duration,
    pub(crate) bucket: Duration,
    pub(crate) message_every: Option<Duration>,
    pub(crate) server: ServerModel,
    pub(crate) network: NetworkModel,
    pub(crate) faults: Vec<(Duration, Fault)>,
}

impl Scenario {
    /// `clients` clients, each with `config` (and its own seed derived from
    /// the scenario's), against one server. Defaults: 10 minutes, clients
    /// start over the first 10 s, 1 s buckets, no messages, no faults.
    pub fn new(clients: u32, config: Config) -> Self {
        Scenario {
            clients,
            config,
            seed: 0,
            duration: Duration::from_secs(600),
            ramp: Duration::from_secs(10),
            bucket: Duration::from_secs(1),
            message_every: None,
            server: ServerModel::default(),
            network: NetworkModel::default(),
            faults: Vec::new(),
        }
    }

    /// The seed of everything random: network jitter, client seeds, start times.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How much virtual time to simulate.
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration = d;
        self
    }

    /// Clients open at uniformly spread times within this window.
    pub fn ramp(mut self, d: Duration) -> Self {
        self.ramp = d;
        self
    }

    /// Width of the time buckets of the metrics (at least 1 ms; a run
    /// longer than 4,194,304 buckets gets wider ones).
    pub fn bucket(mut self, d: Duration) -> Self {
        self.bucket = d.max(Duration::from_millis(1));
        self
    }

    /// Each client sends one message this often.
    pub fn messages_every(mut self, d: Duration) -> Self {
        self.message_every = Some(d.max(Duration::from_millis(1)));
        self
    }

    /// The server model.
    pub fn server(mut self, server: ServerModel) -> Self {
        self.server = server;
        self
    }

    /// The network model.
    pub fn network(mut self, network: NetworkModel) -> Self {
        self.network = network;
        self
    }

    /// Inject `fault` at `at` (virtual time from the start).
    pub fn fault(mut self, at: Duration, fault: Fault) -> Self {
        self.faults.push((at, fault));
        self
    }

    /// Inject `fault` every `every`, starting at `every`.
    pub fn fault_every(mut self, every: Duration, fault: Fault) -> Self {
        if every.is_zero() {
            return self;
        }
        let mut at = every;
        while at < self.duration {
            self.faults.push((at, fault.clone()));
            at += every;
        }
        self
    }

    /// Simulate and return the metrics. Same scenario, same metrics.
    pub fn run(&self) -> crate::Metrics {
        self.run_with_progress(|_, _| {})
    }

    /// [`run`](Scenario::run), telling `on_progress(now, total)` how far the
    /// virtual clock has got: `now` is the virtual time reached and `total`
    /// the scenario's duration. It is called each time the clock crosses
    /// another hundredth of the duration (so at most about 100 times, with
    /// increasing `now`), and last with `now == total`. The metrics are the
    /// same as [`run`](Scenario::run)'s.
    ///
    /// ```
    /// use core::time::Duration;
    /// use steadfast_core::Config;
    /// use steadfast_sim::Scenario;
    ///
    /// let mut last = Duration::ZERO;
    /// let metrics = Scenario::new(10, Config::default())
    ///     .duration(Duration::from_secs(60))
    ///     .run_with_progress(|now, total| {
    ///         assert!(now <= total);
    ///         last = now;
    ///     });
    /// assert_eq!(last, Duration::from_secs(60));
    /// assert_eq!(metrics.failed_clients, 0);
    /// ```
    pub fn run_with_progress(&self, on_progress: impl FnMut(Duration, Duration)) -> crate::Metrics {
        crate::world::World::new(self).run(on_progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restarting_fleet() -> Scenario {
        Scenario::new(50, Config::default())
            .seed(3)
            .duration(Duration::from_secs(120))
            .messages_every(Duration::from_secs(5))
            .fault(
                Duration::from_secs(40),
                Fault::Restart {
                    down: Duration::from_secs(5),
                },
            )
    }

    #[test]
    fn progress_rises_through_virtual_time_to_the_duration() {
        let scenario = restarting_fleet();
        let total = Duration::from_secs(120);
        let mut calls = Vec::new();
        scenario.run_with_progress(|now, of| calls.push((now, of)));
        assert!(calls.iter().all(|(_, of)| *of == total), "{calls:?}");
        let times: Vec<Duration> = calls.iter().map(|(now, _)| *now).collect();
        assert!(
            times.windows(2).all(|w| w[0] < w[1]),
            "strictly increasing: {times:?}"
        );
        assert_eq!(times.last(), Some(&total), "ends at the duration");
        // Every hundredth of the run is reported (the fleet has events all
        // along), and no more often than that.
        assert!(
            (90..=101).contains(&times.len()),
            "{} calls: {times:?}",
            times.len()
        );
        assert!(times[0] < total / 50, "the first report comes early");
    }

    #[test]
    fn progress_changes_nothing_in_the_metrics() {
        let scenario = restarting_fleet();
        let mut calls = 0;
        let with = scenario.run_with_progress(|_, _| calls += 1);
        assert!(calls > 0);
        assert_eq!(with, scenario.run());
    }

    #[test]
    fn a_zero_length_run_still_reports_its_end() {
        let mut calls = Vec::new();
        Scenario::new(5, Config::default())
            .duration(Duration::ZERO)
            .run_with_progress(|now, total| calls.push((now, total)));
        assert_eq!(calls, vec![(Duration::ZERO, Duration::ZERO)]);
    }
}
