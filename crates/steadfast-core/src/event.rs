//! What the core tells the application: [`Event`]s, typed errors, state and stats.

use crate::{Bytes, Cause, CloseCode, ConnId, Handshake, Message, MessageId};
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

/// The lifecycle state of the logical connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Created; `open` not called yet.
    Idle,
    /// A transport is being established.
    Connecting,
    /// The handshake is done; waiting for the application to confirm authentication.
    Authenticating,
    /// Open: messages flow.
    Open,
    /// Closing gracefully at the application's request.
    Closing,
    /// Closed at the application's request; `open` starts again.
    Closed,
    /// Waiting before the next attempt.
    Backoff,
    /// The application said the network is down; waiting for `set_online(true)`.
    Offline,
    /// Gave up; see the [`Event::Failed`] error. `open` starts again.
    Failed,
}

/// Round-trip time statistics from heartbeat round trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttStats {
    /// The latest sample.
    pub last: Duration,
    /// The smallest sample.
    pub min: Duration,
    /// Exponentially smoothed (7/8 old + 1/8 new, as TCP's SRTT).
    pub smoothed: Duration,
}

/// Why a message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Evicted by [`Overflow::DropOldest`](crate::Overflow::DropOldest).
    Overflow,
    /// At-most-once: it was in flight when the connection dropped, so it may
    /// or may not have arrived.
    Disconnected,
}

/// The terminal outcome of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// At-most-once: the transport accepted it.
    Written,
    /// Acknowledged: by the application ([`Client::ack`](crate::Client::ack)),
    /// or by the server's ack of its key.
    Acked,
    /// A request's reply arrived.
    Replied(Message),
    /// The server refused it (a negative ack), with its reason.
    Refused(Bytes),
    /// A request's reply did not come within its deadline.
    TimedOut,
    /// Its TTL ran out before it was handed to a transport.
    Expired,
    /// It was dropped.
    Dropped(DropReason),
}

impl Outcome {
    /// Whether the message did not get where it was going (reported even
    /// under [`OutcomeEvents::Failures`](crate::OutcomeEvents::Failures)).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Outcome::Refused(_) | Outcome::TimedOut | Outcome::Expired | Outcome::Dropped(_)
        )
    }
}

/// Which retry budget [`Error::RetriesExhausted`] spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    /// Attempts in a row that never opened.
    FailedAttempts,
    /// Connections in a row that opened and were lost within `min_uptime`.
    ShortLivedConnections,
}

impl core::fmt::Display for Budget {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Budget::FailedAttempts => "failed attempts",
            Budget::ShortLivedConnections => "connections lost within min_uptime",
        })
    }
}

/// A typed reason to give up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The handshake was refused with 401, 403 or 407 (or another status
    /// classified fatal that means bad credentials).
    #[error("authentication failed: HTTP {status}")]
    Unauthorized {
        /// The HTTP status.
        status: u16,
    },
    /// The application rejected authentication.
    #[error("authentication rejected: {reason}")]
    AuthRejected {
        /// The application's reason.
        reason: String,
    },
    /// The handshake was refused with a status classified fatal.
    #[error("handshake refused: HTTP {status}")]
    HandshakeRejected {
        /// The HTTP status.
        status: u16,
    },
    /// TLS failed and TLS failures are fatal.
    #[error("TLS handshake failed")]
    Tls,
    /// The application's request provider failed and said not to retry.
    #[error("the request provider refused to build a request")]
    RequestRefused,
    /// The request offered subprotocols and the server chose none of them
    /// (or one not offered): fix the configuration or the server.
    #[error("the server chose none of the offered subprotocols")]
    Subprotocol,
    /// The server closed with a code classified fatal.
    #[error("closed by server with {code}: {reason:?}")]
    ClosedByServer {
        /// The close code.
        code: CloseCode,
        /// The close reason.
        reason: String,
    },
    /// The peer broke the protocol in a way the close-code table classifies
    /// fatal: by default invalid UTF-8 (1007) and a message over the size
    /// limit (1009). A plain protocol error (1002) reconnects by default;
    /// see [`CloseCodeTable`](crate::CloseCodeTable).
    #[error("protocol failure ({code})")]
    ProtocolFailure {
        /// The close code describing it.
        code: CloseCode,
    },
    /// A retry budget is spent: too many attempts in a row failed to open
    /// ([`RetryConfig::max_attempts`](crate::RetryConfig::max_attempts)), or
    /// too many connections in a row were lost within `min_uptime`
    /// ([`RetryConfig::max_short_lived`](crate::RetryConfig::max_short_lived)).
    #[error("gave up after {attempts} {budget}; last: {last}")]
    RetriesExhausted {
        /// How many of them: failed attempts, or short-lived connections.
        attempts: u32,
        /// Which budget was spent.
        budget: Budget,
        /// The last failure.
        last: Cause,
    },
    /// The sliding-window budget is spent and configured to fail.
    #[error("{attempts} attempts within {window:?}; last: {last}")]
    WindowExhausted {
        /// The window's attempt limit.
        attempts: u32,
        /// The window's length.
        window: Duration,
        /// The last failure.
        last: Cause,
    },
    /// The first attempt failed and the first-connect policy is fail-fast.
    #[error("first connection failed: {cause}")]
    FirstConnectFailed {
        /// Why.
        cause: Cause,
    },
    /// The connection was lost and the policy is never to reconnect.
    #[error("connection lost, reconnecting disabled: {cause}")]
    ReconnectDisabled {
        /// Why.
        cause: Cause,
    },
    /// The adapter's driver stopped abnormally (a bug, e.g. a panic in its
    /// task), so nothing drives this connection any more. Reported by the
    /// adapter through [`Client::abort_with`](crate::Client::abort_with).
    #[error("the adapter's driver stopped abnormally")]
    Internal,
}

impl Error {
    /// The failure that made the client give up, when there was one
    /// connection or attempt to blame (`None` for a rejected authentication
    /// or a fatal status, code or TLS failure, which are their own cause).
    ///
    /// ```
    /// use steadfast_core::{Cause, Error};
    /// let e = Error::ReconnectDisabled { cause: Cause::HeartbeatTimeout };
    /// assert_eq!(e.cause(), Some(&Cause::HeartbeatTimeout));
    /// ```
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            Error::RetriesExhausted { last, .. } | Error::WindowExhausted { last, .. } => {
                Some(last)
            }
            Error::FirstConnectFailed { cause } | Error::ReconnectDisabled { cause } => Some(cause),
            _ => None,
        }
    }
}

/// Something the application should know, from
/// [`Client::poll_event`](crate::Client::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The state changed.
    StateChanged {
        /// The old state.
        from: State,
        /// The new state.
        to: State,
    },
    /// A connection opened (after authentication, if configured) and the outbox flushes.
    Opened {
        /// The connection.
        conn: ConnId,
        /// Whether an earlier connection of this client had opened.
        reconnect: bool,
        /// The negotiated subprotocol and the response headers.
        handshake: Handshake,
    },
    /// A message arrived.
    Message(Message),
    /// A connection or attempt ended; the next attempt is scheduled.
    ///
    /// Which close codes reconnect is the [`CloseCodeTable`](crate::CloseCodeTable)'s
    /// call. Application-defined codes (4000–4999) reconnect by default; make
    /// one fatal to stop on it, e.g. a server's 4401 "auth revoked":
    ///
    /// ```
    /// use steadfast_core::{CloseCode, CloseCodeTable, Config, RetryClass};
    /// let config = Config::builder()
    ///     .close_codes(CloseCodeTable::default().with(4401..=4401, RetryClass::Fatal))
    ///     .build()?;
    /// assert_eq!(config.close_codes().classify(CloseCode(4401)), RetryClass::Fatal);
    /// assert_eq!(config.close_codes().classify(CloseCode(4000)), RetryClass::Reconnect);
    /// # Ok::<(), steadfast_core::ConfigError>(())
    /// ```
    ///
    /// A close with a fatal code ends in [`Event::Failed`] with
    /// [`Error::ClosedByServer`] instead.
    Reconnecting {
        /// The number the next attempt will have within the outage.
        attempt: u32,
        /// The delay before it.
        delay: Duration,
        /// Why the last connection or attempt ended.
        cause: Cause,
        /// A server-advised delay (`Retry-After`) that was honoured; the delay
        /// may exceed `max_delay` when this is set.
        advised: Option<Duration>,
        /// The sliding-window budget is spent: the delay waits for the window
        /// and may exceed `max_delay`.
        circuit_open: bool,
    },
    /// A heartbeat round trip completed.
    Rtt(RttStats),
    /// A message reached its terminal outcome (only failures and replies
    /// under [`OutcomeEvents::Failures`](crate::OutcomeEvents::Failures)).
    Outcome {
        /// The message.
        id: MessageId,
        /// What happened to it.
        outcome: Outcome,
    },
    /// `now` jumped this far past a deadline: the process was probably
    /// suspended. A probe ping checks the connection; no attempt is charged.
    Suspended {
        /// How far past the deadline `now` was.
        overshoot: Duration,
    },
    /// Gave up. Every message still held is handed back.
    Failed {
        /// Why.
        error: Error,
        /// Messages accepted by `send` without a terminal outcome, in send order.
        undelivered: Vec<(MessageId, Message)>,
    },
    /// Closed at the application's request. Every message still held is
    /// handed back. (A close by the *server* is not this event: it is a
    /// [`Reconnecting`](Event::Reconnecting), or a [`Failed`](Event::Failed)
    /// for a code classified fatal; application codes 4000–4999 reconnect
    /// unless the [`CloseCodeTable`](crate::CloseCodeTable) says otherwise.)
    /// The client then stays closed until `open` is called again.
    Closed {
        /// The code we closed with.
        code: CloseCode,
        /// Messages accepted by `send` without a terminal outcome, in send order.
        undelivered: Vec<(MessageId, Message)>,
    },
}

/// `send` refused a message; the message is handed back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The outbox is full (count or bytes) and the policy rejects new messages.
    #[error("outbox full")]
    QueueFull(Message),
    /// The message alone exceeds the outbox's byte limit.
    #[error("message larger than the outbox byte limit")]
    TooLarge(Message),
    /// The client was closed by the application; call `open` first.
    #[error("client closed")]
    Closed(Message),
    /// The client failed; call `open` first.
    #[error("client failed")]
    Failed(Message),
    /// A text message (made with
    /// [`Message::text_from_validated`](crate::Message::text_from_validated))
    /// whose payload is not UTF-8: it could only go out as a different frame.
    #[error("text message is not valid UTF-8 (valid up to byte {valid_up_to})")]
    InvalidText {
        /// The refused message.
        msg: Message,
        /// Length of the payload's longest valid prefix.
        valid_up_to: usize,
    },
}

impl SendError {
    /// The refused message.
    pub fn into_message(self) -> Message {
        match self {
            SendError::QueueFull(m)
            | SendError::TooLarge(m)
            | SendError::Closed(m)
            | SendError::Failed(m)
            | SendError::InvalidText { msg: m, .. } => m,
        }
    }
}

/// `ack` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// The client delivers at most once; there is nothing to ack.
    #[error("acks need at-least-once delivery")]
    NotAtLeastOnce,
    /// No message with this id is held (never sent, or already resolved).
    #[error("unknown message id {0}")]
    Unknown(MessageId),
}

/// A call that is not valid in the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not valid in state {state:?}")]
pub struct StateError {
    /// The state the client was in.
    pub state: State,
}

/// Counters since the client was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Connection attempts (`Connect` transmits).
    pub attempts: u64,
    /// Connections that opened after an earlier one had.
    pub reconnects: u64,
    /// Messages accepted by `send`.
    pub accepted: u64,
    /// Messages handed to a transport (replays count again).
    pub transmitted: u64,
    /// Messages written (at most once).
    pub written: u64,
    /// Messages acked (by the application or the server).
    pub acked: u64,
    /// Requests answered.
    pub replied: u64,
    /// Messages the server refused.
    pub refused: u64,
    /// Requests whose reply did not come in time.
    pub timed_out: u64,
    /// Messages dropped.
    pub dropped: u64,
    /// Messages expired.
    pub expired: u64,
    /// Messages held now.
    pub queue_len: usize,
    /// Payload bytes held now.
    pub queue_bytes: usize,
    /// Received messages not yet taken by the application.
    pub inbound_len: usize,
    /// Their payload bytes.
    pub inbound_bytes: usize,
    /// Latest RTT statistics.
    pub rtt: Option<RttStats>,
}
