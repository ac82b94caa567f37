//! Configuration, with documented defaults, validated when it is built.

use crate::{AckConfig, AckMatcher, CloseCodeTable, HttpStatusTable, Message};
use alloc::boxed::Box;
use bytes::Bytes;
use core::time::Duration;

/// How the liveness of an open connection is checked.
#[derive(Debug, Clone)]
pub enum HeartbeatMode {
    /// WebSocket ping frames carrying an 8-byte nonce; the matching pong gives
    /// an RTT sample. Every RFC 6455 server answers these.
    WebSocketPing,
    /// Application-level ping/pong messages, as browser-style servers use
    /// (text `ping` / `pong`, or a JSON heartbeat).
    AppLevel {
        /// The message sent as a ping.
        ping: Message,
        /// Recognises the server's answer.
        pong: PongMatcher,
        /// Whether matched pongs are also delivered as [`Event::Message`](crate::Event::Message).
        forward_pongs: bool,
    },
    /// The server pings us (or simply talks): we send nothing and declare the
    /// peer dead after `interval + (tolerated_missed + 1) × pong_timeout`
    /// without any inbound frame.
    Passive,
}

/// Recognises an application-level pong.
#[derive(Debug, Clone)]
pub enum PongMatcher {
    /// The payload equals these bytes.
    Equals(Bytes),
    /// The payload starts with these bytes.
    StartsWith(Bytes),
    /// The payload contains these bytes (e.g. `"type":"pong"`).
    Contains(Bytes),
    /// A function of the message.
    Fn(fn(&Message) -> bool),
}

impl PongMatcher {
    /// Whether `msg` is a pong.
    ///
    /// ```
    /// use steadfast_core::{Message, PongMatcher};
    /// let m = PongMatcher::Contains(bytes::Bytes::from_static(br#""type":"pong""#));
    /// assert!(m.matches(&Message::text(r#"{"type":"pong","t":1}"#)));
    /// assert!(!m.matches(&Message::text(r#"{"type":"chat"}"#)));
    /// ```
    pub fn matches(&self, msg: &Message) -> bool {
        let payload = msg.payload().as_ref();
        match self {
            PongMatcher::Equals(b) => payload == b.as_ref(),
            PongMatcher::StartsWith(b) => payload.starts_with(b),
            PongMatcher::Contains(b) => {
                b.is_empty() || payload.windows(b.len()).any(|w| w == b.as_ref())
            }
            PongMatcher::Fn(f) => f(msg),
        }
    }
}

/// When pings are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingSchedule {
    /// Only once the link has been quiet (no inbound frame) for the interval.
    WhenQuiet,
    /// Every interval, whatever the traffic.
    Fixed,
}

/// Heartbeat settings.
///
/// **The bound.** A peer that goes silent is declared dead no later than
/// [`detection_bound`](Self::detection_bound) =
/// `interval + (tolerated_missed + 1) × pong_timeout` after the last frame
/// that proved it alive (the last pong, or any frame when
/// `any_frame_is_liveness`), whatever the mode and schedule. With
/// [`PingSchedule::WhenQuiet`] and [`HeartbeatMode::Passive`] it is declared
/// dead exactly then; with [`PingSchedule::Fixed`] the ping may fall due
/// sooner after that frame, so death may come up to `interval` earlier, but
/// never less than `(tolerated_missed + 1) × pong_timeout` after it.
///
/// A peer that answers every ping within `pong_timeout` is never declared
/// dead. Time in which the adapter stopped reading because the application
/// did not take its events does not count against the peer (see
/// [`Client::reading_paused`](crate::Client::reading_paused)).
///
/// ```
/// use core::time::Duration;
/// use steadfast_core::HeartbeatConfig;
///
/// let hb = HeartbeatConfig {
///     interval: Duration::from_secs(10),
///     pong_timeout: Duration::from_secs(5),
///     tolerated_missed: 3,
///     ..Default::default()
/// };
/// assert_eq!(hb.detection_bound(), Duration::from_secs(30));
/// ```
#[derive(Debug, Clone)]
pub struct HeartbeatConfig {
    /// Ping frames, application messages, or passive watching. Default: WebSocket pings.
    pub mode: HeartbeatMode,
    /// Quiet time before a ping (or between pings with [`PingSchedule::Fixed`]). Default 15 s.
    pub interval: Duration,
    /// How long a ping may go unanswered. Default 10 s; at most `interval`.
    pub pong_timeout: Duration,
    /// Unanswered pings tolerated before the peer is declared dead; each miss
    /// sends the next ping at once. Default 0.
    pub tolerated_missed: u32,
    /// When pings are sent. Default [`PingSchedule::WhenQuiet`].
    pub schedule: PingSchedule,
    /// Whether any inbound frame proves liveness (and answers an outstanding
    /// ping), or only pongs do. Default true; must be true in
    /// [`HeartbeatMode::Passive`], which hears no pongs.
    pub any_frame_is_liveness: bool,
}

impl HeartbeatConfig {
    /// The longest a silent peer goes undetected:
    /// `interval + (tolerated_missed + 1) × pong_timeout` (saturating).
    pub fn detection_bound(&self) -> Duration {
        self.interval.saturating_add(
            self.pong_timeout
                .saturating_mul(self.tolerated_missed.saturating_add(1)),
        )
    }
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            mode: HeartbeatMode::WebSocketPing,
            interval: Duration::from_secs(15),
            pong_timeout: Duration::from_secs(10),
            tolerated_missed: 0,
            schedule: PingSchedule::WhenQuiet,
            any_frame_is_liveness: true,
        }
    }
}

/// How the backoff delay is randomised (see the AWS architecture blog's
/// "Exponential Backoff And Jitter").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the exponential delay.
    None,
    /// Uniform in `[0, delay]`.
    Full,
    /// Uniform in `[delay / 2, delay]`.
    Equal,
    /// Uniform in `[initial, 3 × previous delay]`.
    Decorrelated,
}

/// What happens when the sliding-window budget is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnWindowExhausted {
    /// Circuit breaker: wait until the oldest attempt leaves the window.
    Wait,
    /// Give up with [`Error::WindowExhausted`](crate::Error::WindowExhausted).
    Fail,
}

/// At most `max_attempts` connection attempts in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowBudget {
    /// Attempts allowed in one window.
    pub max_attempts: u32,
    /// The window's length.
    pub window: Duration,
    /// What happens when the budget is spent.
    pub on_exhausted: OnWindowExhausted,
}

/// Whether a failed first connection attempt is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstConnect {
    /// Retry it like any reconnect.
    Retry,
    /// Fail at once with [`Error::FirstConnectFailed`](crate::Error::FirstConnectFailed).
    FailFast,
}

/// Whether a connection lost after it opened is re-established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconnect {
    /// Reconnect within the retry budget.
    Always,
    /// Fail at once with [`Error::ReconnectDisabled`](crate::Error::ReconnectDisabled),
    /// e.g. to fall back to polling.
    Never,
}

/// Retry settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// Delay before the first retry of an outage (before jitter). Default 1 s.
    pub initial_delay: Duration,
    /// Cap on any delay (after jitter). Default 30 s.
    pub max_delay: Duration,
    /// Floor on any delay (after jitter). Default 100 ms.
    pub min_delay: Duration,
    /// Growth factor per attempt, at least 1. Default 2.
    pub multiplier: f64,
    /// Randomisation. Default [`Jitter::Full`], which spreads a fleet best.
    pub jitter: Jitter,
    /// Connection attempts in a row that may fail to open before giving up
    /// with [`Error::RetriesExhausted`](crate::Error::RetriesExhausted)
    /// ([`Budget::FailedAttempts`](crate::Budget::FailedAttempts)); `None`
    /// for no limit. A connection that opens starts the count over, however
    /// briefly it lasts. Default `None`.
    pub max_attempts: Option<u32>,
    /// Connections in a row that may open and be lost within `min_uptime`
    /// (a flapping server) before giving up with
    /// [`Budget::ShortLivedConnections`](crate::Budget::ShortLivedConnections);
    /// `None` for no limit. Their delays grow either way. Default `None`:
    /// a server that restarts every few seconds slows its clients down but
    /// never makes them give up.
    pub max_short_lived: Option<u32>,
    /// A budget over a sliding time window (a circuit breaker). Default `None`.
    pub window: Option<WindowBudget>,
    /// A connection must stay open this long before the attempt counter is
    /// reset (a server that accepts and drops at once keeps backing off). Default 10 s.
    pub min_uptime: Duration,
    /// Policy for the very first connection. Default [`FirstConnect::Retry`].
    pub first_connect: FirstConnect,
    /// Policy once a connection was lost. Default [`Reconnect::Always`].
    pub reconnect: Reconnect,
    /// After close code 1012 (service restart), the delay is uniform in
    /// `[min_delay, restart_spread]`, capped at `max_delay`. A server that
    /// restarts again within `min_uptime` widens that range to the
    /// exponential delay of the outage, so repeated restarts back off.
    /// Default 5 s.
    pub restart_spread: Duration,
    /// After 1013 (try again later) or HTTP 429, the delay is at least this
    /// (capped at `max_delay`). Default 15 s.
    pub try_again_later_floor: Duration,
    /// A server's `Retry-After` raises the delay up to this, even beyond
    /// `max_delay` (the event says so). Default 5 min.
    pub max_retry_after: Duration,
    /// Whether a TLS handshake failure is fatal (a bad certificate does not
    /// heal by retrying). Default true.
    pub tls_failure_is_fatal: bool,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            min_delay: Duration::from_millis(100),
            multiplier: 2.0,
            jitter: Jitter::Full,
            max_attempts: None,
            max_short_lived: None,
            window: None,
            min_uptime: Duration::from_secs(10),
            first_connect: FirstConnect::Retry,
            reconnect: Reconnect::Always,
            restart_spread: Duration::from_secs(5),
            try_again_later_floor: Duration::from_secs(15),
            max_retry_after: Duration::from_secs(300),
            tls_failure_is_fatal: true,
        }
    }
}

/// What `send` does when the outbox is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Refuse the new message with [`SendError::QueueFull`](crate::SendError::QueueFull).
    RejectNew,
    /// Drop the oldest messages not yet handed to the transport, each
    /// reported as [`Outcome::Dropped`](crate::Outcome::Dropped).
    DropOldest,
}

/// Delivery guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Written once; messages in flight when a connection drops are reported
    /// as dropped. Terminal outcome on success: [`Outcome::Written`](crate::Outcome::Written).
    AtMostOnce,
    /// Kept until [`Client::ack`](crate::Client::ack); the unacked window is
    /// replayed first and in order after a reconnect. Terminal outcome on
    /// success: [`Outcome::Acked`](crate::Outcome::Acked).
    AtLeastOnce,
}

/// Which message outcomes become [`Event::Outcome`](crate::Event::Outcome)s.
/// [`Stats`](crate::Stats) counts every outcome either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeEvents {
    /// Every terminal outcome, deliveries included.
    All,
    /// Only messages that were not delivered:
    /// [`Outcome::Expired`](crate::Outcome::Expired) and
    /// [`Outcome::Dropped`](crate::Outcome::Dropped). For a sender that does
    /// not track each message: it is not woken for every message written or
    /// acked, and still hears of every one lost.
    Failures,
}

/// Outbound queue settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Most messages held (queued, in flight or unacked). Default 1024.
    /// The queue grows to its working size once and keeps it.
    pub max_messages: usize,
    /// Most payload bytes held. Default 4 MiB.
    pub max_bytes: usize,
    /// Most messages handed to the transport and not yet written (at most
    /// once) or acked (at least once). Default 64.
    pub max_in_flight: usize,
    /// What happens when full. Default [`Overflow::RejectNew`].
    pub overflow: Overflow,
    /// TTL applied by [`Client::send`](crate::Client::send); a message not
    /// handed to the transport within it expires. Default `None`.
    pub default_ttl: Option<Duration>,
    /// Delivery guarantee. Default [`Delivery::AtMostOnce`].
    pub delivery: Delivery,
    /// Which outcomes are reported as events. Default [`OutcomeEvents::All`].
    pub outcome_events: OutcomeEvents,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_messages: 1024,
            max_bytes: 4 << 20,
            max_in_flight: 64,
            overflow: Overflow::RejectNew,
            default_ttl: None,
            delivery: Delivery::AtMostOnce,
            outcome_events: OutcomeEvents::All,
        }
    }
}

/// Bounds on the messages received and not yet taken by the application
/// (with [`Client::poll_event`](crate::Client::poll_event)).
///
/// Once either bound is reached, [`Client::reading_paused`](crate::Client::reading_paused)
/// turns true and the adapter stops reading the socket, so TCP pushes back
/// on the server; nothing is dropped. The byte bound may be passed by the
/// one message that reached it. The time reading is paused does not count
/// against the peer's heartbeat: a pong waiting unread behind the backlog is
/// not a missed pong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundConfig {
    /// Most received messages held. Default 1024.
    pub max_messages: usize,
    /// Most received payload bytes held. Default 8 MiB.
    pub max_bytes: usize,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            max_messages: 1024,
            max_bytes: 8 << 20,
        }
    }
}

/// Optional authentication phase after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Sent first on every connection; `None` when credentials travel in the
    /// handshake request and only the server's verdict is awaited. It can be
    /// refreshed per attempt with [`Client::set_auth_message`](crate::Client::set_auth_message).
    pub message: Option<Message>,
    /// How long the application may take to call
    /// [`Client::auth_accepted`](crate::Client::auth_accepted); a timeout is
    /// retryable. Default 10 s.
    pub timeout: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            message: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Suspend (laptop sleep) detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuspendConfig {
    /// If `now` is this far past a pending deadline, the process is taken to
    /// have been suspended. Default 10 s.
    pub threshold: Duration,
    /// Deadline of the single probe ping sent after a suspend. Default 3 s.
    pub probe_timeout: Duration,
}

impl Default for SuspendConfig {
    fn default() -> Self {
        SuspendConfig {
            threshold: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(3),
        }
    }
}

/// A configuration value that cannot work, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A duration or count that must be positive is zero.
    #[error("{field} must be greater than zero")]
    Zero {
        /// The field, e.g. `heartbeat.interval`.
        field: &'static str,
    },
    /// A value is below another it must not be below.
    #[error("{field} must not be less than {other}")]
    LessThan {
        /// The field that is too small.
        field: &'static str,
        /// The field it is compared with.
        other: &'static str,
    },
    /// A value is out of range for another reason.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
}

impl ConfigError {
    /// The offending field.
    pub fn field(&self) -> &'static str {
        match self {
            ConfigError::Zero { field }
            | ConfigError::LessThan { field, .. }
            | ConfigError::Invalid { field, .. } => field,
        }
    }
}

/// A validated configuration; build it with [`Config::builder`].
///
/// ```
/// use core::time::Duration;
/// use steadfast_core::{Config, ConfigError, HeartbeatConfig};
///
/// let config = Config::builder()
///     .seed(42)
///     .heartbeat(HeartbeatConfig { interval: Duration::from_secs(30), ..Default::default() })
///     .build()?;
/// assert_eq!(config.heartbeat().interval, Duration::from_secs(30));
///
/// let err = Config::builder()
///     .heartbeat(HeartbeatConfig { interval: Duration::ZERO, ..Default::default() })
///     .build()
///     .unwrap_err();
/// assert_eq!(err.field(), "heartbeat.interval");
/// # Ok::<(), ConfigError>(())
/// ```
// `repr(C)` keeps the settings a client reads on every input (heartbeat,
// inbound bounds, suspend detection, outbox) together at the front: the
// first lines of the config behind the client's `Arc`, which clients that
// share a config share too.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct Config {
    pub(crate) heartbeat: HeartbeatConfig,
    pub(crate) inbound: InboundConfig,
    pub(crate) suspend: Option<SuspendConfig>,
    pub(crate) outbox: OutboxConfig,
    pub(crate) seed: Option<u64>,
    pub(crate) connect_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) retry: RetryConfig,
    // Boxed: most clients have neither, and every client keeps its config,
    // so an unset one costs a pointer rather than its 104 and 56 bytes.
    pub(crate) acks: Option<Box<AckConfig>>,
    pub(crate) auth: Option<Box<AuthConfig>>,
    pub(crate) close_codes: CloseCodeTable,
    pub(crate) http_statuses: HttpStatusTable,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: None,
            connect_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            heartbeat: HeartbeatConfig::default(),
            retry: RetryConfig::default(),
            outbox: OutboxConfig::default(),
            inbound: InboundConfig::default(),
            acks: None,
            auth: None,
            suspend: Some(SuspendConfig::default()),
            close_codes: CloseCodeTable::default(),
            http_statuses: HttpStatusTable::default(),
        }
    }
}

impl Config {
    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Config::default(),
        }
    }

    /// Seed of the jitter PRNG, if one was given. A [`Client`](crate::Client)
    /// built without one uses 0 (the core draws no randomness of its own),
    /// and one built with
    /// [`Client::with_shared_config`](crate::Client::with_shared_config)
    /// uses the seed given there instead;
    /// the adapters draw one from the OS for every connection instead (see
    /// [`with_os_seed`](Self::with_os_seed)), so a fleet never jitters in
    /// lock-step.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// The same configuration with this seed: the same seed and inputs
    /// replay the same delays.
    pub fn with_seed(mut self, seed: u64) -> Config {
        self.seed = Some(seed);
        self
    }

    /// The same configuration, with a seed drawn from the operating system's
    /// randomness unless one was given. Adapters call this for every
    /// connection they start.
    ///
    /// ```
    /// use steadfast_core::Config;
    /// let a = Config::default().with_os_seed();
    /// let b = Config::default().with_os_seed();
    /// assert!(a.seed().is_some());
    /// assert_ne!(a.seed(), b.seed());
    /// assert_eq!(Config::default().with_seed(7).with_os_seed().seed(), Some(7));
    /// ```
    #[cfg(feature = "std")]
    pub fn with_os_seed(mut self) -> Config {
        if self.seed.is_none() {
            self.seed = Some(crate::rng::os_seed());
        }
        self
    }

    /// The same configuration with other outcome events (see
    /// [`OutboxConfig::outcome_events`]).
    pub fn with_outcome_events(mut self, which: OutcomeEvents) -> Config {
        self.outbox.outcome_events = which;
        self
    }

    /// Deadline for one connection attempt (TCP + TLS + WebSocket handshake).
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    /// How long a graceful close waits for the peer's close frame.
    pub fn close_timeout(&self) -> Duration {
        self.close_timeout
    }
    /// Heartbeat settings.
    pub fn heartbeat(&self) -> &HeartbeatConfig {
        &self.heartbeat
    }
    /// Retry settings.
    pub fn retry(&self) -> &RetryConfig {
        &self.retry
    }
    /// Outbox settings.
    pub fn outbox(&self) -> &OutboxConfig {
        &self.outbox
    }
    /// How the server's acks, nacks and replies are recognised, if at all.
    pub fn acks(&self) -> Option<&AckConfig> {
        self.acks.as_deref()
    }
    /// Bounds on received messages not yet taken.
    pub fn inbound(&self) -> &InboundConfig {
        &self.inbound
    }
    /// Authentication phase, if any.
    pub fn auth(&self) -> Option<&AuthConfig> {
        self.auth.as_deref()
    }
    /// Suspend detection, if enabled.
    pub fn suspend(&self) -> Option<&SuspendConfig> {
        self.suspend.as_ref()
    }
    /// Close-code classification.
    pub fn close_codes(&self) -> &CloseCodeTable {
        &self.close_codes
    }
    /// Handshake HTTP status classification.
    pub fn http_statuses(&self) -> &HttpStatusTable {
        &self.http_statuses
    }

    fn validate(&self) -> Result<(), ConfigError> {
        fn positive(d: Duration, field: &'static str) -> Result<(), ConfigError> {
            if d.is_zero() {
                Err(ConfigError::Zero { field })
            } else {
                Ok(())
            }
        }
        fn at_most(
            small: Duration,
            big: Duration,
            field: &'static str,
            other: &'static str,
        ) -> Result<(), ConfigError> {
            if big < small {
                Err(ConfigError::LessThan { field, other })
            } else {
                Ok(())
            }
        }
        positive(self.connect_timeout, "connect_timeout")?;
        positive(self.close_timeout, "close_timeout")?;

        let hb = &self.heartbeat;
        positive(hb.interval, "heartbeat.interval")?;
        positive(hb.pong_timeout, "heartbeat.pong_timeout")?;
        if hb.pong_timeout > hb.interval {
            return Err(ConfigError::Invalid {
                field: "heartbeat.pong_timeout",
                reason: "longer than heartbeat.interval: raise the interval or tolerate missed pongs",
            });
        }
        if matches!(hb.mode, HeartbeatMode::Passive) && !hb.any_frame_is_liveness {
            return Err(ConfigError::Invalid {
                field: "heartbeat.any_frame_is_liveness",
                reason: "a passive heartbeat sends no pings, so it hears no pongs: any frame must count",
            });
        }
        if let HeartbeatMode::AppLevel { ping, pong, .. } = &hb.mode {
            if ping.is_empty() {
                return Err(ConfigError::Zero {
                    field: "heartbeat.mode.ping",
                });
            }
            if ping.invalid_text().is_some() {
                return Err(ConfigError::Invalid {
                    field: "heartbeat.mode.ping",
                    reason: "text that is not UTF-8",
                });
            }
            if let PongMatcher::StartsWith(b) | PongMatcher::Contains(b) = pong {
                if b.is_empty() {
                    return Err(ConfigError::Invalid {
                        field: "heartbeat.mode.pong",
                        reason: "an empty pattern would swallow every message as a pong",
                    });
                }
            }
        }

        let r = &self.retry;
        positive(r.initial_delay, "retry.initial_delay")?;
        positive(r.max_delay, "retry.max_delay")?;
        at_most(
            r.initial_delay,
            r.max_delay,
            "retry.max_delay",
            "retry.initial_delay",
        )?;
        at_most(
            r.min_delay,
            r.max_delay,
            "retry.max_delay",
            "retry.min_delay",
        )?;
        if !(r.multiplier.is_finite() && r.multiplier >= 1.0) {
            return Err(ConfigError::Invalid {
                field: "retry.multiplier",
                reason: "must be a finite number of at least 1",
            });
        }
        if r.max_attempts == Some(0) {
            return Err(ConfigError::Zero {
                field: "retry.max_attempts",
            });
        }
        if r.max_short_lived == Some(0) {
            return Err(ConfigError::Zero {
                field: "retry.max_short_lived",
            });
        }
        if let Some(w) = &r.window {
            if w.max_attempts == 0 {
                return Err(ConfigError::Zero {
                    field: "retry.window.max_attempts",
                });
            }
            positive(w.window, "retry.window.window")?;
        }

        let o = &self.outbox;
        if o.max_messages == 0 {
            return Err(ConfigError::Zero {
                field: "outbox.max_messages",
            });
        }
        if o.max_bytes == 0 {
            return Err(ConfigError::Zero {
                field: "outbox.max_bytes",
            });
        }
        if o.max_in_flight == 0 {
            return Err(ConfigError::Zero {
                field: "outbox.max_in_flight",
            });
        }
        if let Some(ttl) = o.default_ttl {
            positive(ttl, "outbox.default_ttl")?;
        }
        if let Some(AckConfig {
            matcher: AckMatcher::Prefixed { ack, .. },
            ..
        }) = self.acks.as_deref()
        {
            if ack.is_empty() {
                return Err(ConfigError::Invalid {
                    field: "acks.matcher",
                    reason: "an empty ack prefix would take every message for an ack",
                });
            }
        }
        if self.inbound.max_messages == 0 {
            return Err(ConfigError::Zero {
                field: "inbound.max_messages",
            });
        }
        if self.inbound.max_bytes == 0 {
            return Err(ConfigError::Zero {
                field: "inbound.max_bytes",
            });
        }
        if let Some(auth) = &self.auth {
            positive(auth.timeout, "auth.timeout")?;
            if auth
                .message
                .as_ref()
                .is_some_and(|m| m.invalid_text().is_some())
            {
                return Err(ConfigError::Invalid {
                    field: "auth.message",
                    reason: "text that is not UTF-8",
                });
            }
        }
        if let Some(s) = &self.suspend {
            positive(s.threshold, "suspend.threshold")?;
            positive(s.probe_timeout, "suspend.probe_timeout")?;
        }
        Ok(())
    }
}

/// Builds a [`Config`]; every setter has a documented default.
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    config: Config,
}

impl ConfigBuilder {
    /// Seed of the jitter PRNG, to replay a run exactly. Default: none, and
    /// the adapters draw one from the OS per connection (see
    /// [`Config::seed`]). Give each client of a fleet its own.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = Some(seed);
        self
    }
    /// Deadline for one connection attempt. Default 10 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }
    /// How long a graceful close waits for the peer. Default 5 s.
    pub fn close_timeout(mut self, d: Duration) -> Self {
        self.config.close_timeout = d;
        self
    }
    /// Heartbeat settings.
    pub fn heartbeat(mut self, heartbeat: HeartbeatConfig) -> Self {
        self.config.heartbeat = heartbeat;
        self
    }
    /// Retry settings.
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.config.retry = retry;
        self
    }
    /// Outbox settings.
    pub fn outbox(mut self, outbox: OutboxConfig) -> Self {
        self.config.outbox = outbox;
        self
    }
    /// Recognise the server's acks, nacks and replies in incoming
    /// messages, so messages sent with a key
    /// ([`Client::send_keyed`](crate::Client::send_keyed),
    /// [`Client::request`](crate::Client::request)) settle without the
    /// application calling `ack`. Default: none.
    ///
    /// ```
    /// use steadfast_core::{AckConfig, AckMatcher, Config, Delivery, OutboxConfig};
    /// let config = Config::builder()
    ///     .outbox(OutboxConfig { delivery: Delivery::AtLeastOnce, ..Default::default() })
    ///     .acks(AckConfig::new(AckMatcher::ack_nack())) // `ack:<key>`, `nack:<key>:<why>`
    ///     .build()?;
    /// # Ok::<(), steadfast_core::ConfigError>(())
    /// ```
    pub fn acks(mut self, acks: AckConfig) -> Self {
        self.config.acks = Some(Box::new(acks));
        self
    }
    /// Bounds on received messages the application has not taken yet.
    pub fn inbound(mut self, inbound: InboundConfig) -> Self {
        self.config.inbound = inbound;
        self
    }
    /// Enable the authentication phase. Default: none.
    pub fn auth(mut self, auth: AuthConfig) -> Self {
        self.config.auth = Some(Box::new(auth));
        self
    }
    /// Suspend detection; `None` disables it. Default enabled.
    pub fn suspend(mut self, suspend: Option<SuspendConfig>) -> Self {
        self.config.suspend = suspend;
        self
    }
    /// Close-code classification.
    pub fn close_codes(mut self, table: CloseCodeTable) -> Self {
        self.config.close_codes = table;
        self
    }
    /// Handshake HTTP status classification.
    pub fn http_statuses(mut self, table: HttpStatusTable) -> Self {
        self.config.http_statuses = table;
        self
    }
    /// Validates and returns the configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(builder: ConfigBuilder) -> &'static str {
        builder.build().map(|_| "ok").unwrap_or_else(|e| e.field())
    }

    #[test]
    fn defaults_are_valid() {
        assert!(Config::builder().build().is_ok());
    }

    #[test]
    fn zero_intervals_are_rejected_naming_the_field() {
        let hb = |interval, pong_timeout| HeartbeatConfig {
            interval,
            pong_timeout,
            ..Default::default()
        };
        let s = Duration::from_secs(1);
        assert_eq!(
            field_of(Config::builder().heartbeat(hb(Duration::ZERO, s))),
            "heartbeat.interval"
        );
        assert_eq!(
            field_of(Config::builder().heartbeat(hb(s, Duration::ZERO))),
            "heartbeat.pong_timeout"
        );
        assert_eq!(
            field_of(Config::builder().connect_timeout(Duration::ZERO)),
            "connect_timeout"
        );
    }

    #[test]
    fn pong_deadline_longer_than_interval_is_rejected() {
        let hb = HeartbeatConfig {
            interval: Duration::from_secs(5),
            pong_timeout: Duration::from_secs(6),
            ..Default::default()
        };
        let err = Config::builder().heartbeat(hb).build().unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                field: "heartbeat.pong_timeout",
                ..
            }
        ));
    }

    #[test]
    fn max_delay_below_initial_is_rejected() {
        let retry = RetryConfig {
            initial_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(5),
            ..Default::default()
        };
        let err = Config::builder().retry(retry).build().unwrap_err();
        assert_eq!(
            err,
            ConfigError::LessThan {
                field: "retry.max_delay",
                other: "retry.initial_delay"
            }
        );
    }

    #[test]
    fn empty_budgets_and_bad_multipliers_are_rejected() {
        let retry = |r: RetryConfig| Config::builder().retry(r);
        assert_eq!(
            field_of(retry(RetryConfig {
                max_attempts: Some(0),
                ..Default::default()
            })),
            "retry.max_attempts"
        );
        assert_eq!(
            field_of(retry(RetryConfig {
                window: Some(WindowBudget {
                    max_attempts: 0,
                    window: Duration::from_secs(60),
                    on_exhausted: OnWindowExhausted::Wait
                }),
                ..Default::default()
            })),
            "retry.window.max_attempts"
        );
        for m in [0.5, f64::NAN, f64::INFINITY] {
            assert_eq!(
                field_of(retry(RetryConfig {
                    multiplier: m,
                    ..Default::default()
                })),
                "retry.multiplier"
            );
        }
        assert_eq!(
            field_of(Config::builder().outbox(OutboxConfig {
                max_messages: 0,
                ..Default::default()
            })),
            "outbox.max_messages"
        );
    }
}
