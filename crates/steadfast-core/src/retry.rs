//! Retry policy: classification of each failure, exponential backoff with
//! seeded jitter, the attempt budget per outage, the sliding-window budget
//! (circuit breaker), first-connect and never-reconnect policies, Retry-After.

use crate::rng::Rng;
use crate::{
    Budget, Cause, Config, Error, FirstConnect, HandshakeError, Instant, Jitter, OnWindowExhausted,
    Reconnect, RetryClass, RetryConfig, WindowBudget,
};
use alloc::collections::VecDeque;
use core::time::Duration;

/// The delay before the next attempt, and what shaped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) delay: Duration,
    /// A server-advised `Retry-After` that was honoured.
    pub(crate) advised: Option<Duration>,
    /// The sliding-window budget made us wait past the ordinary delay.
    pub(crate) circuit_open: bool,
    /// The delay is a floor the server asked for (Retry-After, 1013, 429) or
    /// the window imposes: coming back online does not skip it.
    pub(crate) hold: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Retry {
    /// Attempts made in the current outage (the backoff's exponent): it
    /// starts over only once a connection stays up for `min_uptime`.
    attempt: u32,
    /// Attempts in a row that failed to open.
    failed: u32,
    /// Connections in a row that opened and were lost within `min_uptime`.
    short_lived: u32,
    prev_delay: Duration,
    /// Start times of the attempts within the window (bounded by its limit).
    recent: VecDeque<Instant>,
    opened_at: Option<Instant>,
    ever_opened: bool,
}

impl Retry {
    pub(crate) fn new(cfg: &RetryConfig) -> Self {
        let cap = cfg.window.map_or(0, |w| w.max_attempts as usize).min(1024);
        Retry {
            attempt: 0,
            failed: 0,
            short_lived: 0,
            prev_delay: Duration::ZERO,
            recent: VecDeque::with_capacity(cap),
            opened_at: None,
            ever_opened: false,
        }
    }

    /// Attempts made in the current outage.
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    pub(crate) fn ever_opened(&self) -> bool {
        self.ever_opened
    }

    /// Start over, as after `open()` from closed or failed. The sliding
    /// window keeps counting: it protects the server across reopenings.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
        self.failed = 0;
        self.short_lived = 0;
        self.prev_delay = Duration::ZERO;
        self.opened_at = None;
        self.ever_opened = false;
    }

    /// Forget the attempts that have left the sliding window.
    fn prune_window(&mut self, now: Instant, w: WindowBudget) {
        while self.recent.front().is_some_and(|t| *t + w.window <= now) {
            self.recent.pop_front();
        }
    }

    /// An attempt starts now.
    pub(crate) fn on_attempt(&mut self, now: Instant, cfg: &RetryConfig) {
        self.attempt = self.attempt.saturating_add(1);
        if let Some(w) = cfg.window {
            self.prune_window(now, w);
            while self.recent.len() >= w.max_attempts as usize {
                self.recent.pop_front();
            }
            self.recent.push_back(now);
        }
    }

    /// The last attempt does not count (it was cut short by a suspend or by
    /// going offline).
    pub(crate) fn refund(&mut self) {
        self.attempt = self.attempt.saturating_sub(1);
        self.recent.pop_back();
    }

    pub(crate) fn on_open(&mut self, now: Instant) {
        self.opened_at = Some(now);
        self.ever_opened = true;
        self.failed = 0;
    }

    /// An attempt ended without opening.
    pub(crate) fn on_failed_attempt(&mut self) {
        self.failed = self.failed.saturating_add(1);
    }

    /// An open connection ended: a new outage starts if it was up long
    /// enough; otherwise it counts as short-lived and the backoff keeps growing.
    pub(crate) fn on_lost(&mut self, now: Instant, cfg: &RetryConfig) {
        if let Some(opened) = self.opened_at.take() {
            if now - opened >= cfg.min_uptime {
                self.attempt = 0;
                self.short_lived = 0;
                self.prev_delay = Duration::ZERO;
            } else {
                self.short_lived = self.short_lived.saturating_add(1);
            }
        }
    }

    /// What to do after `cause`: wait this long and try again, or give up.
    pub(crate) fn plan(
        &mut self,
        cause: &Cause,
        now: Instant,
        config: &Config,
        rng: &mut Rng,
    ) -> Result<Backoff, Error> {
        let cfg = &config.retry;
        let class = classify(cause, config)?;
        if !self.ever_opened && cfg.first_connect == FirstConnect::FailFast {
            return Err(Error::FirstConnectFailed {
                cause: cause.clone(),
            });
        }
        if self.ever_opened && cfg.reconnect == Reconnect::Never {
            return Err(Error::ReconnectDisabled {
                cause: cause.clone(),
            });
        }
        let spent = [
            (cfg.max_attempts, self.failed, Budget::FailedAttempts),
            (
                cfg.max_short_lived,
                self.short_lived,
                Budget::ShortLivedConnections,
            ),
        ]
        .into_iter()
        .find(|(max, used, _)| max.is_some_and(|max| *used >= max));
        if let Some((_, attempts, budget)) = spent {
            return Err(Error::RetriesExhausted {
                attempts,
                budget,
                last: cause.clone(),
            });
        }

        let hold_class = class == RetryClass::ReconnectLater;
        let mut delay = match class {
            // A restart spreads the fleet over the restart window; a server
            // that keeps restarting within min_uptime widens it like any
            // other outage.
            RetryClass::ReconnectSoon => Duration::from_nanos(rng.between(
                nanos(cfg.min_delay),
                nanos(cfg.restart_spread.max(cfg.min_delay)).max(self.exponential(cfg)),
            )),
            RetryClass::ReconnectLater => self.jittered(cfg, rng).max(cfg.try_again_later_floor),
            RetryClass::Reconnect | RetryClass::Fatal => self.jittered(cfg, rng),
        }
        .clamp(cfg.min_delay, cfg.max_delay);

        let mut advised = None;
        if let Cause::Handshake(HandshakeError::Http {
            retry_after: Some(after),
            ..
        }) = cause
        {
            let after = (*after).min(cfg.max_retry_after);
            delay = delay.max(after);
            advised = Some(after);
        }

        let mut circuit_open = false;
        if let Some(w) = cfg.window {
            self.prune_window(now, w);
            let full = self.recent.len() >= w.max_attempts as usize;
            if let (true, Some(&oldest)) = (full, self.recent.front()) {
                let reopens = oldest + w.window;
                if now + delay < reopens {
                    match w.on_exhausted {
                        OnWindowExhausted::Fail => {
                            return Err(Error::WindowExhausted {
                                attempts: w.max_attempts,
                                window: w.window,
                                last: cause.clone(),
                            });
                        }
                        OnWindowExhausted::Wait => {
                            delay = reopens - now;
                            circuit_open = true;
                        }
                    }
                }
            }
        }
        self.prev_delay = delay;
        Ok(Backoff {
            delay,
            advised,
            circuit_open,
            hold: hold_class || advised.is_some() || circuit_open,
        })
    }

    /// The exponential delay in ns for the current attempt count, before
    /// jitter: `initial × multiplier^(attempt - 1)`, capped at `max_delay`.
    fn exponential(&self, cfg: &RetryConfig) -> u64 {
        let max = nanos(cfg.max_delay);
        let mut base = nanos(cfg.initial_delay) as f64;
        for _ in 1..self.attempt {
            base *= cfg.multiplier;
            if base >= max as f64 {
                break;
            }
        }
        if base >= max as f64 { max } else { base as u64 }
    }

    /// The exponential delay for the current attempt count, with jitter.
    fn jittered(&self, cfg: &RetryConfig, rng: &mut Rng) -> Duration {
        let initial = nanos(cfg.initial_delay);
        let max = nanos(cfg.max_delay);
        let base = self.exponential(cfg);
        let drawn = match cfg.jitter {
            Jitter::None => base,
            Jitter::Full => rng.between(0, base),
            Jitter::Equal => base / 2 + rng.between(0, base - base / 2),
            Jitter::Decorrelated => {
                let hi = nanos(self.prev_delay).saturating_mul(3).max(initial);
                rng.between(initial, hi.min(max))
            }
        };
        Duration::from_nanos(drawn)
    }
}

fn nanos(d: Duration) -> u64 {
    crate::time::duration_nanos(d)
}

/// How to react to `cause`: a retry class, or the fatal error it amounts to.
pub(crate) fn classify(cause: &Cause, config: &Config) -> Result<RetryClass, Error> {
    let not_fatal = |class: RetryClass, error: Error| match class {
        RetryClass::Fatal => Err(error),
        other => Ok(other),
    };
    match cause {
        Cause::Handshake(HandshakeError::Http { status, .. }) => {
            let status = *status;
            let error = if matches!(status, 401 | 403 | 407) {
                Error::Unauthorized { status }
            } else {
                Error::HandshakeRejected { status }
            };
            not_fatal(config.http_statuses.classify(status), error)
        }
        Cause::Handshake(HandshakeError::Tls) if config.retry.tls_failure_is_fatal => {
            Err(Error::Tls)
        }
        Cause::Handshake(HandshakeError::Subprotocol) => Err(Error::Subprotocol),
        Cause::Handshake(HandshakeError::RequestRefused) => Err(Error::RequestRefused),
        Cause::Closed { code, reason } => not_fatal(
            config.close_codes.classify(*code),
            Error::ClosedByServer {
                code: *code,
                reason: reason.clone(),
            },
        ),
        Cause::Transport(e) => not_fatal(
            config.close_codes.classify(e.close_code()),
            Error::ProtocolFailure {
                code: e.close_code(),
            },
        ),
        Cause::AuthRejected { reason } => Err(Error::AuthRejected {
            reason: reason.clone(),
        }),
        Cause::Handshake(_)
        | Cause::ConnectTimeout
        | Cause::HeartbeatTimeout
        | Cause::AuthTimeout => Ok(RetryClass::Reconnect),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CloseCode, TransportError};
    use alloc::string::String;

    fn config(retry: RetryConfig) -> Config {
        Config::builder()
            .retry(retry)
            .build()
            .expect("valid config")
    }

    fn no_jitter() -> RetryConfig {
        RetryConfig {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            min_delay: Duration::ZERO,
            jitter: Jitter::None,
            ..Default::default()
        }
    }

    /// Fails `n` attempts in a row and returns the planned delays.
    fn delays(config: &Config, n: usize, seed: u64) -> alloc::vec::Vec<Duration> {
        let (mut retry, mut rng) = (Retry::new(&config.retry), Rng::new(seed));
        let mut now = Instant::ZERO;
        (0..n)
            .map(|_| {
                retry.on_attempt(now, &config.retry);
                retry.on_failed_attempt();
                let b = retry
                    .plan(&Cause::ConnectTimeout, now, config, &mut rng)
                    .expect("retry");
                now = now + b.delay;
                b.delay
            })
            .collect()
    }

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap() {
        let c = config(no_jitter());
        let secs: alloc::vec::Vec<u64> = delays(&c, 7, 0).iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn every_jitter_mode_stays_within_min_and_max() {
        for jitter in [
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
            Jitter::None,
        ] {
            let retry = RetryConfig {
                jitter,
                min_delay: Duration::from_millis(200),
                ..Default::default()
            };
            let c = config(retry.clone());
            for d in delays(&c, 50, 9) {
                assert!(
                    d >= retry.min_delay && d <= retry.max_delay,
                    "{jitter:?} {d:?}"
                );
            }
        }
    }

    #[test]
    fn jitter_is_reproducible_from_the_seed_and_differs_between_seeds() {
        let c = config(RetryConfig::default());
        assert_eq!(delays(&c, 10, 1), delays(&c, 10, 1));
        assert_ne!(delays(&c, 10, 1), delays(&c, 10, 2));
    }

    #[test]
    fn attempts_per_outage_are_capped() {
        let c = config(RetryConfig {
            max_attempts: Some(3),
            ..no_jitter()
        });
        let (mut retry, mut rng) = (Retry::new(&c.retry), Rng::new(0));
        for _ in 0..2 {
            retry.on_attempt(Instant::ZERO, &c.retry);
            retry.on_failed_attempt();
            assert!(
                retry
                    .plan(&Cause::ConnectTimeout, Instant::ZERO, &c, &mut rng)
                    .is_ok()
            );
        }
        retry.on_attempt(Instant::ZERO, &c.retry);
        retry.on_failed_attempt();
        let err = retry
            .plan(&Cause::ConnectTimeout, Instant::ZERO, &c, &mut rng)
            .unwrap_err();
        assert_eq!(
            err,
            Error::RetriesExhausted {
                attempts: 3,
                budget: Budget::FailedAttempts,
                last: Cause::ConnectTimeout
            }
        );
    }

    #[test]
    fn attempt_counter_resets_only_after_min_uptime() {
        let c = config(no_jitter());
        let mut retry = Retry::new(&c.retry);
        retry.on_attempt(Instant::ZERO, &c.retry);
        retry.on_attempt(Instant::ZERO, &c.retry);
        retry.on_open(Instant::from_secs(1));
        retry.on_lost(Instant::from_secs(5), &c.retry); // up 4 s < 10 s
        assert_eq!(retry.attempt(), 2);
        retry.on_open(Instant::from_secs(6));
        retry.on_lost(Instant::from_secs(16), &c.retry);
        assert_eq!(retry.attempt(), 0);
    }

    #[test]
    fn service_restart_spreads_reconnects_over_the_restart_window() {
        let c = config(RetryConfig {
            restart_spread: Duration::from_secs(5),
            ..Default::default()
        });
        let cause = Cause::Closed {
            code: CloseCode::SERVICE_RESTART,
            reason: String::new(),
        };
        let mut rng = Rng::new(3);
        let mut seen = alloc::vec::Vec::new();
        for _ in 0..200 {
            let mut retry = Retry::new(&c.retry);
            let b = retry
                .plan(&cause, Instant::ZERO, &c, &mut rng)
                .expect("retry");
            assert!(b.delay >= c.retry.min_delay && b.delay <= Duration::from_secs(5));
            seen.push(b.delay.as_millis() / 1000);
        }
        seen.sort_unstable();
        seen.dedup();
        assert!(seen.len() >= 4, "delays not spread: {seen:?}");
    }

    #[test]
    fn short_lived_connections_do_not_spend_the_failed_attempt_budget_but_have_their_own() {
        let c = config(RetryConfig {
            max_attempts: Some(3),
            max_short_lived: Some(5),
            ..no_jitter()
        });
        let (mut retry, mut rng) = (Retry::new(&c.retry), Rng::new(0));
        let restart = Cause::Closed {
            code: CloseCode::SERVICE_RESTART,
            reason: String::new(),
        };
        // Five restarts 8 s apart: each reconnect opens at once, up < 10 s.
        for i in 0..5u64 {
            retry.on_attempt(Instant::from_secs(8 * i), &c.retry);
            retry.on_open(Instant::from_secs(8 * i));
            retry.on_lost(Instant::from_secs(8 * i + 7), &c.retry);
            let plan = retry.plan(&restart, Instant::from_secs(8 * i + 7), &c, &mut rng);
            if i < 4 {
                assert!(plan.is_ok(), "gave up after {} healthy reconnects", i + 1);
            } else {
                assert_eq!(
                    plan,
                    Err(Error::RetriesExhausted {
                        attempts: 5,
                        budget: Budget::ShortLivedConnections,
                        last: restart.clone(),
                    })
                );
            }
        }
    }

    #[test]
    fn a_server_that_keeps_restarting_gets_growing_delays() {
        let c = config(RetryConfig::default());
        let restart = Cause::Closed {
            code: CloseCode::SERVICE_RESTART,
            reason: String::new(),
        };
        let mut rng = Rng::new(5);
        let mut retry = Retry::new(&c.retry);
        let mut now = Instant::ZERO;
        let mut total = Duration::ZERO;
        // 30 accept-then-1012 cycles, each connection up for 1 s.
        for _ in 0..30 {
            retry.on_attempt(now, &c.retry);
            retry.on_open(now);
            now = now + Duration::from_secs(1);
            retry.on_lost(now, &c.retry);
            let b = retry.plan(&restart, now, &c, &mut rng).expect("retry");
            assert!(b.delay <= c.retry.max_delay);
            total += b.delay;
            now = now + b.delay;
        }
        // Within the restart window alone, 30 cycles take about 30 × 2.5 s.
        assert!(total > Duration::from_secs(200), "30 cycles in {total:?}");
    }

    #[test]
    fn try_again_later_waits_at_least_the_floor() {
        let c = config(RetryConfig {
            try_again_later_floor: Duration::from_secs(20),
            ..Default::default()
        });
        let cause = Cause::Closed {
            code: CloseCode::TRY_AGAIN_LATER,
            reason: String::new(),
        };
        let mut rng = Rng::new(3);
        for _ in 0..50 {
            let b = Retry::new(&c.retry)
                .plan(&cause, Instant::ZERO, &c, &mut rng)
                .expect("retry");
            assert!(b.delay >= Duration::from_secs(20));
        }
    }

    #[test]
    fn retry_after_raises_the_delay_and_may_pass_the_cap_up_to_its_own_limit() {
        let c = config(no_jitter());
        let mut rng = Rng::new(0);
        let http = |after| {
            Cause::Handshake(HandshakeError::Http {
                status: 503,
                retry_after: Some(Duration::from_secs(after)),
            })
        };
        let b = Retry::new(&c.retry)
            .plan(&http(7), Instant::ZERO, &c, &mut rng)
            .expect("retry");
        assert_eq!(
            (b.delay, b.advised),
            (Duration::from_secs(7), Some(Duration::from_secs(7)))
        );
        let b = Retry::new(&c.retry)
            .plan(&http(10_000), Instant::ZERO, &c, &mut rng)
            .expect("retry");
        assert_eq!(b.delay, c.retry.max_retry_after);
    }

    #[test]
    fn auth_statuses_fail_without_retry() {
        let c = config(RetryConfig::default());
        let mut rng = Rng::new(0);
        for (status, want) in [
            (401, Error::Unauthorized { status: 401 }),
            (403, Error::Unauthorized { status: 403 }),
            (404, Error::HandshakeRejected { status: 404 }),
        ] {
            let cause = Cause::Handshake(HandshakeError::Http {
                status,
                retry_after: None,
            });
            let got = Retry::new(&c.retry).plan(&cause, Instant::ZERO, &c, &mut rng);
            assert_eq!(got, Err(want));
        }
    }

    #[test]
    fn protocol_failures_follow_the_close_code_table() {
        let c = config(RetryConfig::default());
        assert_eq!(
            classify(&Cause::Transport(TransportError::MessageTooBig), &c),
            Err(Error::ProtocolFailure {
                code: CloseCode::TOO_BIG
            })
        );
        assert_eq!(
            classify(&Cause::Transport(TransportError::InvalidUtf8), &c),
            Err(Error::ProtocolFailure {
                code: CloseCode::INVALID_PAYLOAD
            })
        );
        assert_eq!(
            classify(&Cause::Transport(TransportError::Protocol), &c),
            Ok(RetryClass::Reconnect)
        );
        assert_eq!(
            classify(&Cause::Handshake(HandshakeError::Tls), &c),
            Err(Error::Tls)
        );
    }

    #[test]
    fn fail_fast_first_connect_and_never_reconnect_policies_give_up_at_once() {
        let mut rng = Rng::new(0);
        let c = config(RetryConfig {
            first_connect: FirstConnect::FailFast,
            ..Default::default()
        });
        let mut retry = Retry::new(&c.retry);
        assert!(matches!(
            retry.plan(&Cause::ConnectTimeout, Instant::ZERO, &c, &mut rng),
            Err(Error::FirstConnectFailed { .. })
        ));
        retry.on_open(Instant::ZERO);
        assert!(
            retry
                .plan(&Cause::HeartbeatTimeout, Instant::ZERO, &c, &mut rng)
                .is_ok()
        );

        let c = config(RetryConfig {
            reconnect: Reconnect::Never,
            ..Default::default()
        });
        let mut retry = Retry::new(&c.retry);
        assert!(
            retry
                .plan(&Cause::ConnectTimeout, Instant::ZERO, &c, &mut rng)
                .is_ok()
        );
        retry.on_open(Instant::ZERO);
        assert!(matches!(
            retry.plan(&Cause::HeartbeatTimeout, Instant::ZERO, &c, &mut rng),
            Err(Error::ReconnectDisabled { .. })
        ));
    }

    #[test]
    fn window_budget_waits_for_the_window_or_fails() {
        let window = |on_exhausted| WindowBudget {
            max_attempts: 3,
            window: Duration::from_secs(60),
            on_exhausted,
        };
        let mut rng = Rng::new(0);
        let c = config(RetryConfig {
            window: Some(window(OnWindowExhausted::Wait)),
            ..no_jitter()
        });
        let mut retry = Retry::new(&c.retry);
        for s in [0, 2, 6] {
            retry.on_attempt(Instant::from_secs(s), &c.retry);
        }
        let b = retry
            .plan(&Cause::ConnectTimeout, Instant::from_secs(6), &c, &mut rng)
            .expect("wait");
        assert!(b.circuit_open);
        assert_eq!(b.delay, Duration::from_secs(54));

        let c = config(RetryConfig {
            window: Some(window(OnWindowExhausted::Fail)),
            ..no_jitter()
        });
        let mut retry = Retry::new(&c.retry);
        for s in [0, 2, 6] {
            retry.on_attempt(Instant::from_secs(s), &c.retry);
        }
        assert!(matches!(
            retry.plan(&Cause::ConnectTimeout, Instant::from_secs(6), &c, &mut rng),
            Err(Error::WindowExhausted { attempts: 3, .. })
        ));
    }
}
