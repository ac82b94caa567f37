//! The hub behind one lock, and the wiring of its outputs to the tasks:
//! wakes to session writers, aborts to session tasks, events to the
//! application, deadline changes to the timer task.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use steadfast_core::{Epoch, Instant};
use steadfast_hub::{Action, Hub, HubEvent, SessionId};
use tokio::sync::Notify;

/// The user id a server keys its sessions by.
pub trait UserId: Ord + Clone + Debug + Send + Sync + 'static {}
impl<T: Ord + Clone + Debug + Send + Sync + 'static> UserId for T {}

/// What a session's task waits on.
#[derive(Debug, Default)]
pub(crate) struct SessionSignals {
    /// The hub has frames for this session.
    pub(crate) wake: Notify,
    /// The hub forgot this session: drop the transport.
    pub(crate) abort: Notify,
}

#[derive(Debug)]
pub(crate) struct State<U> {
    pub(crate) hub: Hub<U>,
    pub(crate) signals: HashMap<SessionId, Arc<SessionSignals>>,
    events_waker: Option<Waker>,
    /// Nobody takes events any more: they are dropped as they come.
    pub(crate) events_closed: bool,
    /// The handles are gone: the server is stopping.
    pub(crate) stopped: bool,
}

impl<U: UserId> State<U> {
    /// A shutdown has closed every session.
    fn shut_down(&self) -> bool {
        self.hub.is_shutting_down() && self.hub.session_count() == 0
    }
}

/// Everything the server's tasks share.
#[derive(Debug)]
pub(crate) struct Shared<U> {
    state: Mutex<State<U>>,
    epoch: Epoch,
    /// The hub's earliest deadline may have moved earlier.
    pub(crate) timer: Notify,
    /// The application took events: readers held back may go on.
    pub(crate) drained: Notify,
    /// The server stopped, or a shutdown finished.
    pub(crate) changed: Notify,
}

impl<U: UserId> Shared<U> {
    pub(crate) fn new(hub: Hub<U>, epoch: Epoch) -> Self {
        Shared {
            state: Mutex::new(State {
                hub,
                signals: HashMap::new(),
                events_waker: None,
                events_closed: false,
                stopped: false,
            }),
            epoch,
            timer: Notify::new(),
            drained: Notify::new(),
            changed: Notify::new(),
        }
    }

    /// The hub's clock: tokio's (so paused time works in tests).
    pub(crate) fn now(&self) -> Instant {
        self.epoch.instant(tokio::time::Instant::now().into_std())
    }

    pub(crate) fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    fn lock(&self) -> MutexGuard<'_, State<U>> {
        // A panic elsewhere while holding the lock leaves the hub as it
        // was between two calls, which is consistent: go on with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the hub, then carries out what the hub asked for.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut State<U>, Instant) -> R) -> R {
        let now = self.now();
        let mut state = self.lock();
        let before = state.hub.poll_timeout();
        let r = f(&mut state, now);
        self.backpressure(&mut state, now);
        let events_waker = self.dispatch(&mut state);
        if state.hub.poll_timeout() < before
            || (before.is_none() && state.hub.poll_timeout().is_some())
        {
            self.timer.notify_one();
        }
        drop(state);
        // Woken outside the lock: the woken task takes it at once.
        if let Some(w) = events_waker {
            w.wake();
        }
        r
    }

    /// Reads the hub.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Hub<U>) -> R) -> R {
        f(&self.lock().hub)
    }

    /// Readers hold back while the application lags (the hub decides
    /// when); meanwhile the hub's liveness stands still (an unread pong is
    /// not the peer's fault).
    fn backpressure(&self, state: &mut State<U>, now: Instant) {
        let discarding = state.events_closed;
        if state.hub.follow_backlog(discarding, now) {
            self.drained.notify_waiters();
        }
    }

    /// Carries out the hub's actions; returns the events waker to wake
    /// (after the lock is released) when events wait.
    fn dispatch(&self, state: &mut State<U>) -> Option<Waker> {
        let mut waker = None;
        while let Some(action) = state.hub.poll_action() {
            match action {
                Action::Wake(id) => {
                    if let Some(s) = state.signals.get(&id) {
                        s.wake.notify_one();
                    }
                }
                Action::Abort(id) => {
                    if let Some(s) = state.signals.remove(&id) {
                        s.abort.notify_one();
                    }
                }
            }
        }
        if state.events_closed {
            while state.hub.poll_event().is_some() {}
        } else if state.hub.pending_events() > 0 {
            if let Some(w) = state.events_waker.take() {
                waker = Some(w);
            }
        }
        if state.hub.session_count() == 0 {
            self.changed.notify_waiters();
            if state.shut_down() {
                // The events end: wake their reader to see it.
                waker = waker.or_else(|| state.events_waker.take());
            }
        }
        waker
    }

    /// The next event (`Some(None)`: the server stopped), or registers
    /// the waker.
    pub(crate) fn poll_event(&self, waker: &Waker) -> Option<Option<HubEvent<U>>> {
        self.with(|state, _| {
            if let Some(ev) = state.hub.poll_event() {
                return Some(Some(ev));
            }
            if state.stopped || state.shut_down() {
                return Some(None);
            }
            state.events_waker = Some(waker.clone());
            None
        })
    }

    pub(crate) fn close_events(&self) {
        self.with(|state, _| {
            state.events_closed = true;
            while state.hub.poll_event().is_some() {}
        });
    }

    /// Whether this session's reader should hold back for the application:
    /// only live sessions do (a closing one must read its peer's close).
    pub(crate) fn hold_reader(&self, session: SessionId) -> bool {
        let state = self.lock();
        state.hub.is_reading_paused() && state.hub.is_live(session)
    }

    /// Stops the server: every session's transport is dropped.
    pub(crate) fn stop(&self) {
        let mut state = self.lock();
        state.stopped = true;
        for (_, s) in state.signals.drain() {
            s.abort.notify_one();
        }
        let events_waker = state.events_waker.take();
        drop(state);
        if let Some(w) = events_waker {
            w.wake();
        }
        self.timer.notify_one();
        self.changed.notify_waiters();
        self.drained.notify_waiters();
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.lock().stopped
    }
}
