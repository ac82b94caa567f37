//! What the hub hands out: events for the application, actions and frames
//! for the adapter, and typed errors.

use alloc::string::String;
use core::fmt;
use steadfast_core::{Bytes, CloseCode, Message};

/// One WebSocket connection in the hub, numbered from 1 in the order the
/// hub opened them. Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// The close code a replaced session gets: 1008 (policy). A steadfast
/// client treats it as fatal, so two copies of one user do not take turns
/// replacing each other.
pub const REPLACED: CloseCode = CloseCode::POLICY;
/// The close reason a replaced session gets.
pub const REPLACED_REASON: &str = "replaced by a newer session";
/// The close reason a session cut off as a slow consumer gets.
pub const SLOW_CONSUMER_REASON: &str = "slow consumer";
/// The close reason sessions get in a [`Hub::shutdown`](crate::Hub::shutdown).
pub const SHUTDOWN_REASON: &str = "server shutting down";

/// Why a session left the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveReason {
    /// The peer closed, or the transport ended (`None`: without a close
    /// frame, e.g. a reset).
    PeerClosed(Option<CloseCode>),
    /// Silent past the liveness deadline; aborted without a close frame.
    Reaped,
    /// The same user connected again under [`Duplicates::Replace`](crate::Duplicates::Replace).
    Replaced,
    /// Its outbound queue overflowed under
    /// [`SlowConsumer::Close`](crate::SlowConsumer::Close).
    SlowConsumer,
    /// [`Hub::shutdown`](crate::Hub::shutdown).
    Shutdown,
    /// The application closed it ([`Hub::close_session`](crate::Hub::close_session)).
    Closed,
}

/// Why a message queued for a session was not written to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// Pushed out of a full queue under
    /// [`SlowConsumer::DropOldest`](crate::SlowConsumer::DropOldest).
    QueueFull,
    /// Larger than the queue's byte bound: it could never be queued.
    TooLarge,
    /// The session left before the message was written.
    SessionEnded(LeaveReason),
}

/// What the hub tells the application.
#[derive(Debug, Clone, PartialEq)]
pub enum HubEvent<U> {
    /// A session joined the pool.
    Joined {
        /// The session.
        session: SessionId,
        /// Its user.
        user: U,
    },
    /// A message arrived from a live session.
    Message {
        /// From which session.
        session: SessionId,
        /// From which user.
        user: U,
        /// The message.
        msg: Message,
    },
    /// A session left the pool; nothing more is routed to it.
    Left {
        /// The session.
        session: SessionId,
        /// Its user.
        user: U,
        /// Why.
        reason: LeaveReason,
    },
    /// A message queued for a session will never be written to it: the
    /// typed outcome of every message that is not delivered.
    Undelivered {
        /// The session it was queued for.
        session: SessionId,
        /// That session's user.
        user: U,
        /// The message.
        msg: Message,
        /// Why.
        reason: DropReason,
    },
}

/// What the adapter must do for a session, from
/// [`Hub::poll_action`](crate::Hub::poll_action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The session has frames to write: call
    /// [`Hub::next_outbound`](crate::Hub::next_outbound) until it returns `None`.
    Wake(SessionId),
    /// Drop the session's transport now, writing nothing more. The hub has
    /// already forgotten the session.
    Abort(SessionId),
}

/// The next frame to write to a session, from
/// [`Hub::next_outbound`](crate::Hub::next_outbound).
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// A message.
    Message(Message),
    /// A liveness ping.
    Ping(Bytes),
    /// A close frame. Nothing follows it; the adapter waits for the peer's
    /// close (the hub aborts the session after its `close_timeout`) and
    /// then reports [`Hub::closed`](crate::Hub::closed).
    Close {
        /// The code.
        code: CloseCode,
        /// The reason.
        reason: String,
    },
}

/// A message the hub could not route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No live session belongs to that user.
    #[error("no live session for that user")]
    NoSuchUser,
    /// The session is unknown or no longer live.
    #[error("no such live session")]
    NoSuchSession,
}
