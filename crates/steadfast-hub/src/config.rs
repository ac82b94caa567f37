//! What a hub is told: liveness, duplicate logins, outbound queues, limits.

use core::time::Duration;
use steadfast_core::CloseCode;

/// How the hub finds dead clients: the `ws` README's ping/terminate
/// pattern, owned by the hub.
///
/// A session that has been silent for `interval` (no frame of any kind
/// from its peer) gets a ping. A session still silent `timeout` after that
/// is reaped: its transport is aborted without another byte written. Any
/// inbound frame (message, ping, pong) counts as alive, so a chatty client
/// is never pinged at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessConfig {
    /// Silence after which the hub pings the session.
    pub interval: Duration,
    /// Time the peer has to answer (with anything) once pinged.
    pub timeout: Duration,
}

impl LivenessConfig {
    /// The longest a dead client stays in the pool: it is reaped exactly
    /// `interval + timeout` after the last frame it sent, provided the
    /// adapter calls [`Hub::handle_timeout`](crate::Hub::handle_timeout) at
    /// [`Hub::poll_timeout`](crate::Hub::poll_timeout).
    ///
    /// ```
    /// use core::time::Duration;
    /// let l = steadfast_hub::LivenessConfig::default();
    /// assert_eq!(l.detection_bound(), Duration::from_secs(45));
    /// ```
    pub fn detection_bound(&self) -> Duration {
        self.interval.saturating_add(self.timeout)
    }
}

impl Default for LivenessConfig {
    /// Ping after 30 s of silence; reap 15 s later.
    fn default() -> Self {
        LivenessConfig {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(15),
        }
    }
}

/// What happens when a user connects while already connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Duplicates {
    /// The new session wins. The old one is closed with
    /// [`REPLACED`](crate::REPLACED) and the reason
    /// [`REPLACED_REASON`](crate::REPLACED_REASON); nothing but that close
    /// frame is written to it again, and what was queued for it is reported
    /// [`Undelivered`](crate::HubEvent::Undelivered).
    #[default]
    Replace,
    /// The old session wins: the new one is rejected before the upgrade
    /// with `409 Conflict`.
    RejectNew,
    /// Several live sessions per user; a message to the user goes to each.
    Allow,
}

/// What happens to a session whose outbound queue is full: its peer reads
/// slower than the application writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowConsumer {
    /// Drop the oldest queued message, reported as
    /// [`HubEvent::Undelivered`](crate::HubEvent::Undelivered) with
    /// [`DropReason::QueueFull`](crate::DropReason::QueueFull), and keep the session.
    DropOldest,
    /// Close the session with this code (1008 or 1013 are the usual ones;
    /// a steadfast client treats 1013 as "come back later" and 1008 as
    /// fatal). Everything queued is reported undelivered.
    Close(CloseCode),
}

/// Each session's outbound queue: bounded by count and by bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Most messages queued for one session.
    pub max_messages: usize,
    /// Most payload bytes queued for one session. A single message larger
    /// than this is never queued: it is reported dropped at once.
    pub max_bytes: usize,
    /// What a full queue does.
    pub slow_consumer: SlowConsumer,
}

impl Default for QueueConfig {
    /// 1,024 messages, 4 MiB, and a full queue closes with 1013.
    fn default() -> Self {
        QueueConfig {
            max_messages: 1024,
            max_bytes: 4 << 20,
            slow_consumer: SlowConsumer::Close(CloseCode::TRY_AGAIN_LATER),
        }
    }
}

/// Everything a [`Hub`](crate::Hub) is configured with. Build it with
/// struct update syntax from the default, and let [`Hub::new`](crate::Hub::new)
/// validate it.
///
/// ```
/// use core::time::Duration;
/// use steadfast_hub::{Duplicates, HubConfig, LivenessConfig};
///
/// let config = HubConfig {
///     liveness: LivenessConfig { interval: Duration::from_secs(10), timeout: Duration::from_secs(5) },
///     duplicates: Duplicates::Replace,
///     max_sessions: Some(10_000),
///     ..HubConfig::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Ping and reap.
    pub liveness: LivenessConfig,
    /// Duplicate logins.
    pub duplicates: Duplicates,
    /// Per-session outbound queues.
    pub queue: QueueConfig,
    /// Most sessions at once; beyond it a handshake is rejected with
    /// `503` and [`retry_after`](Self::retry_after). `None`: no limit.
    pub max_sessions: Option<usize>,
    /// How many events may wait for the application before reading pauses
    /// ([`Hub::follow_backlog`](crate::Hub::follow_backlog)); 0 counts as 1.
    pub max_pending_events: usize,
    /// The `Retry-After` the hub itself sends (at capacity, shutting down).
    pub retry_after: Duration,
    /// How long a session the hub closes may take to finish its closing
    /// handshake (and, for a graceful close, to flush its queue) before its
    /// transport is aborted.
    pub close_timeout: Duration,
    /// Seed for the only randomness the hub has: where in the shutdown
    /// window each session is closed. `None` draws one per hub from the
    /// operating system (with `std`); the same seed replays the same spread.
    pub seed: Option<u64>,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            liveness: LivenessConfig::default(),
            duplicates: Duplicates::default(),
            queue: QueueConfig::default(),
            max_sessions: None,
            max_pending_events: 1024,
            retry_after: Duration::from_secs(5),
            close_timeout: Duration::from_secs(5),
            seed: None,
        }
    }
}

/// A configuration the hub refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubConfigError {
    /// `liveness.interval` or `liveness.timeout` is zero.
    #[error("liveness interval and timeout must be above zero")]
    ZeroLiveness,
    /// `queue.max_messages` or `queue.max_bytes` is zero.
    #[error("queue bounds must allow at least one message and one byte")]
    ZeroQueue,
    /// `close_timeout` is zero.
    #[error("close_timeout must be above zero")]
    ZeroCloseTimeout,
    /// `max_sessions` is `Some(0)`.
    #[error("max_sessions must allow at least one session")]
    ZeroSessions,
    /// The slow-consumer close code cannot be sent in a close frame.
    #[error("close code {0} cannot be sent in a close frame")]
    UnsendableCode(u16),
}

impl HubConfig {
    /// Checks the configuration; [`Hub::new`](crate::Hub::new) calls it.
    pub fn validate(&self) -> Result<(), HubConfigError> {
        if self.liveness.interval.is_zero() || self.liveness.timeout.is_zero() {
            return Err(HubConfigError::ZeroLiveness);
        }
        if self.queue.max_messages == 0 || self.queue.max_bytes == 0 {
            return Err(HubConfigError::ZeroQueue);
        }
        if self.close_timeout.is_zero() {
            return Err(HubConfigError::ZeroCloseTimeout);
        }
        if self.max_sessions == Some(0) {
            return Err(HubConfigError::ZeroSessions);
        }
        if let SlowConsumer::Close(code) = self.queue.slow_consumer {
            if !code.is_sendable() {
                return Err(HubConfigError::UnsendableCode(code.0));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_is_valid() {
        assert_eq!(HubConfig::default().validate(), Ok(()));
    }

    #[test]
    fn zero_bounds_and_unsendable_codes_are_refused() {
        let mut c = HubConfig::default();
        c.liveness.timeout = Duration::ZERO;
        assert_eq!(c.validate(), Err(HubConfigError::ZeroLiveness));
        let mut c = HubConfig::default();
        c.queue.max_bytes = 0;
        assert_eq!(c.validate(), Err(HubConfigError::ZeroQueue));
        let c = HubConfig {
            max_sessions: Some(0),
            ..HubConfig::default()
        };
        assert_eq!(c.validate(), Err(HubConfigError::ZeroSessions));
        let mut c = HubConfig::default();
        c.queue.slow_consumer = SlowConsumer::Close(CloseCode::ABNORMAL);
        assert_eq!(c.validate(), Err(HubConfigError::UnsendableCode(1006)));
        let c = HubConfig {
            close_timeout: Duration::ZERO,
            ..HubConfig::default()
        };
        assert_eq!(c.validate(), Err(HubConfigError::ZeroCloseTimeout));
    }
}
