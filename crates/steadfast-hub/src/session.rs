//! One session's state: its phase, outbound queue and liveness clock.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use steadfast_core::{CloseCode, Instant, Message};

use crate::config::LivenessConfig;
use crate::event::LeaveReason;

/// Where a session is in its life.
#[derive(Debug)]
pub(crate) enum Phase {
    /// In the pool: routed to, pinged, reaped when silent.
    Live,
    /// Leaving: nothing new is routed to it; it writes what `flush` allows,
    /// then its close frame, and is aborted at its deadline. Boxed: most
    /// sessions never close while the hub holds them, and every session
    /// keeps the field (40 bytes inline, 8 boxed).
    Closing(Box<Closing>),
}

/// A leaving session's close.
#[derive(Debug)]
pub(crate) struct Closing {
    pub(crate) reason: LeaveReason,
    pub(crate) code: CloseCode,
    pub(crate) message: String,
    pub(crate) close_sent: bool,
    pub(crate) deadline: Instant,
}

#[derive(Debug)]
pub(crate) struct Session<U> {
    /// `None` for a refused session, which never joins the pool.
    pub(crate) user: Option<U>,
    pub(crate) phase: Phase,
    pub(crate) queue: VecDeque<Message>,
    pub(crate) queued_bytes: usize,
    /// The last frame of any kind from the peer (or the open).
    pub(crate) last_seen: Instant,
    /// A ping went out (or is due out) since `last_seen`.
    pub(crate) pinged: bool,
    /// A ping is waiting for the writer.
    pub(crate) ping_pending: bool,
    /// When a shutdown closes this session (`Instant::MAX`: no shutdown;
    /// not an `Option`, which would take 8 more bytes per session).
    pub(crate) close_at: Instant,
    /// An [`Action::Wake`](crate::Action::Wake) is out and the writer has
    /// not yet drained the session.
    pub(crate) wake_outstanding: bool,
    /// This session's key in the hub's timer set (`Instant::MAX`: none,
    /// as `due` says for "never").
    pub(crate) scheduled: Instant,
}

impl<U> Session<U> {
    pub(crate) fn new(user: Option<U>, phase: Phase, now: Instant) -> Self {
        Session {
            user,
            phase,
            queue: VecDeque::new(),
            queued_bytes: 0,
            last_seen: now,
            pinged: false,
            ping_pending: false,
            close_at: Instant::MAX,
            wake_outstanding: false,
            scheduled: Instant::MAX,
        }
    }

    /// This session's key in the hub's timer set, if it has one.
    pub(crate) fn scheduled(&self) -> Option<Instant> {
        (self.scheduled != Instant::MAX).then_some(self.scheduled)
    }

    pub(crate) fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Live)
    }

    pub(crate) fn push(&mut self, msg: Message) {
        self.queued_bytes += msg.len();
        self.queue.push_back(msg);
    }

    pub(crate) fn pop(&mut self) -> Option<Message> {
        let msg = self.queue.pop_front()?;
        self.queued_bytes -= msg.len();
        Some(msg)
    }

    /// Whether the writer has something to take.
    pub(crate) fn wants_write(&self) -> bool {
        match &self.phase {
            Phase::Live => self.ping_pending || !self.queue.is_empty(),
            Phase::Closing(c) => !c.close_sent,
        }
    }

    /// When the hub next has to look at this session (`Instant::MAX`:
    /// never, for now). While reading is paused, liveness stands still.
    pub(crate) fn due(&self, liveness: &LivenessConfig, reading_paused: bool) -> Instant {
        match &self.phase {
            Phase::Live if reading_paused => self.close_at,
            Phase::Live => {
                let reap = self.last_seen.saturating_add(liveness.detection_bound());
                let ping = if self.pinged {
                    Instant::MAX
                } else {
                    self.last_seen.saturating_add(liveness.interval)
                };
                reap.min(ping).min(self.close_at)
            }
            Phase::Closing(c) => c.deadline,
        }
    }
}
