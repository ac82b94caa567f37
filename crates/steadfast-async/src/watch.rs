//! State changes published to any number of watchers, on any runtime:
//! [`StateWatch`], from [`Handle::watch`](crate::Handle::watch).

use event_listener::Event as Notify;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use steadfast_core::State;

/// The latest state and how many changes led to it.
#[derive(Debug)]
struct Latest {
    state: State,
    version: u64,
}

#[derive(Debug)]
struct Channel {
    latest: Mutex<Latest>,
    changed: Notify,
    /// The publisher is gone: nothing will change any more.
    closed: AtomicBool,
}

impl Channel {
    fn latest(&self) -> MutexGuard<'_, Latest> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The driver's end: publishes the state when it changes.
#[derive(Debug)]
pub(crate) struct Publisher(Arc<Channel>);

impl Publisher {
    pub(crate) fn new(state: State) -> Self {
        Publisher(Arc::new(Channel {
            latest: Mutex::new(Latest { state, version: 0 }),
            changed: Notify::new(),
            closed: AtomicBool::new(false),
        }))
    }

    /// Publish `state`, waking every watcher, if it differs from the last.
    pub(crate) fn publish(&self, state: State) {
        {
            let mut latest = self.0.latest();
            if latest.state == state {
                return;
            }
            latest.state = state;
            latest.version += 1;
        }
        self.0.changed.notify(usize::MAX);
    }

    /// A new watcher, which has seen the current state.
    pub(crate) fn subscribe(&self) -> StateWatch {
        let seen = self.0.latest().version;
        StateWatch {
            channel: self.0.clone(),
            seen,
        }
    }
}

/// Sees a connection's [`State`] as it changes: each wait returns the
/// latest state after a change (states passed through quickly may be
/// coalesced). Counters change with every message, so they are read on
/// demand with [`Handle::stats`](crate::Handle::stats). Works on any
/// runtime; cheap to clone; holds nothing while it waits. Once the
/// connection's driver has ended, waits return at once.
///
/// ```no_run
/// # async fn run<R: steadfast_async::Runtime>(handle: steadfast_async::Handle<R>) {
/// use steadfast_async::core::State;
/// let mut watch = handle.watch();
/// let open = watch.wait_for(|s| s == State::Open).await;
/// assert_eq!(open, State::Open);
/// while let Some(state) = watch.changed().await {
///     println!("now {state:?}");
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct StateWatch {
    channel: Arc<Channel>,
    /// The version of the last state this watcher returned.
    seen: u64,
}

impl StateWatch {
    /// The current state (without marking it seen).
    pub fn state(&self) -> State {
        self.channel.latest().state
    }

    /// The next state this watcher has not seen: at once if it changed
    /// since the last call, otherwise when it changes. `None` once the
    /// connection's driver is gone and nothing will change again.
    pub async fn changed(&mut self) -> Option<State> {
        loop {
            let listener = self.channel.changed.listen();
            {
                let latest = self.channel.latest();
                if latest.version != self.seen {
                    self.seen = latest.version;
                    return Some(latest.state);
                }
            }
            if self.channel.closed.load(Ordering::Acquire) {
                return None;
            }
            listener.await;
        }
    }

    /// The first state, current or future, for which `f` holds (the
    /// current one included). If the driver goes away first, the last state.
    pub async fn wait_for(&mut self, mut f: impl FnMut(State) -> bool) -> State {
        let current = {
            let latest = self.channel.latest();
            self.seen = latest.version;
            latest.state
        };
        if f(current) {
            return current;
        }
        loop {
            match self.changed().await {
                Some(state) if f(state) => return state,
                Some(_) => {}
                None => return self.state(),
            }
        }
    }
}

impl Drop for Publisher {
    /// Wake every watcher: nothing will change any more.
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.changed.notify(usize::MAX);
    }
}
