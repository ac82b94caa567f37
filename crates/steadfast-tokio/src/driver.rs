//! The adapter loop of DESIGN.md: drain transmits and do the I/O, drain
//! events to the application, then wait for the first of a transport report,
//! an application command or the core's deadline. It adds no policy.

use crate::clock::Clock;
use crate::connection::{self, Outgoing, REPORTS, Reports};
use crate::handle::Status;
use crate::mapping;
use crate::request::RequestProvider;
use std::sync::{Arc, Mutex, MutexGuard};
use steadfast_core::{Client, ConnId, Event, State, Transmit, TransportEvent};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{Instrument, debug, info, info_span, warn};

/// What the handles and the driver share.
pub(crate) struct Shared {
    pub(crate) client: Mutex<Client>,
    pub(crate) clock: Clock,
    /// Wakes the driver after an application command.
    pub(crate) wake: Notify,
    pub(crate) status: watch::Sender<Status>,
    /// Set when every handle is gone: the driver ends once the client is done.
    pub(crate) abandoned: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// The client, even if a panicking thread poisoned the lock (the core's
    /// state stays consistent: it never panics midway).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Client> {
        self.client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The live transport's task and its write queue.
struct Transport {
    conn: ConnId,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    task: JoinHandle<()>,
}

/// Reports handled per lock of the client, at most.
const REPORTS_PER_LOCK: usize = 64;

pub(crate) struct Driver {
    pub(crate) shared: Arc<Shared>,
    pub(crate) provider: RequestProvider,
    pub(crate) ws_config: WebSocketConfig,
    /// See [`connection::Transport::linger`].
    pub(crate) linger: std::time::Duration,
    pub(crate) events: mpsc::UnboundedSender<Event>,
}

impl Driver {
    pub(crate) async fn run(self) {
        let (reports_tx, mut reports) = mpsc::channel::<(ConnId, TransportEvent)>(REPORTS);
        let mut transport: Option<Transport> = None;
        // An aborted transport's task, until the next one has waited for it.
        let mut retiring: Option<JoinHandle<()>> = None;
        let sleep = tokio::time::sleep_until(self.shared.clock.far_future());
        tokio::pin!(sleep);
        let mut armed: Option<steadfast_core::Instant> = None;
        // Reused every turn of the loop: no allocation per message.
        let (mut transmits, mut events) = (Vec::new(), Vec::new());
        loop {
            // 1. Drain what the core wants, under the lock; act outside it.
            let (deadline, status) = {
                let mut client = self.shared.lock();
                let now = self.shared.clock.now();
                if client.poll_timeout().is_some_and(|d| d <= now) {
                    client.handle_timeout(now);
                }
                transmits.extend(std::iter::from_fn(|| client.poll_transmit()));
                events.extend(std::iter::from_fn(|| client.poll_event()));
                (client.poll_timeout(), Status::of(&client))
            };
            for t in transmits.drain(..) {
                self.perform(t, &mut transport, &mut retiring, &reports_tx);
            }
            for ev in events.drain(..) {
                log_event(&ev);
                let _ = self.events.send(ev);
            }
            let state = status.state;
            self.shared.status.send_if_modified(|s| {
                let changed = *s != status;
                *s = status;
                changed
            });
            let done = matches!(state, State::Closed | State::Failed | State::Idle);
            if done
                && self
                    .shared
                    .abandoned
                    .load(std::sync::atomic::Ordering::Acquire)
            {
                break;
            }
            // 2. Re-arm the sleep only when the deadline moved earlier. A later
            //    one (the heartbeat pushed out by traffic, every message) waits
            //    for the armed sleep: one spurious wake, instead of a timer
            //    reset per message.
            if let Some(d) = deadline {
                if armed.is_none_or(|a| d < a) {
                    armed = Some(d);
                    sleep.as_mut().reset(self.shared.clock.tokio_instant(d));
                }
            }
            // 3. Wait for the first input and feed it to the core.
            tokio::select! {
                () = self.shared.wake.notified() => {}
                Some((conn, ev)) = reports.recv() => {
                    let mut client = self.shared.lock();
                    let now = self.shared.clock.now();
                    client.handle_transport(conn, ev, now);
                    // Take a little more of what has arrived under the same
                    // lock, without starving the handles.
                    for _ in 0..REPORTS_PER_LOCK {
                        let Ok((conn, ev)) = reports.try_recv() else { break };
                        client.handle_transport(conn, ev, now);
                    }
                }
                () = &mut sleep, if armed.is_some() => {
                    armed = None;
                    let now = self.shared.clock.now();
                    self.shared.lock().handle_timeout(now);
                }
            }
        }
        if let Some(t) = transport.take() {
            t.task.abort();
        }
        if let Some(task) = retiring {
            let _ = task.await;
        }
        debug!("driver finished");
    }

    fn perform(
        &self,
        t: Transmit,
        transport: &mut Option<Transport>,
        retiring: &mut Option<JoinHandle<()>>,
        reports: &Reports,
    ) {
        let live = |conn: ConnId| transport.as_ref().filter(|t| t.conn == conn);
        match t {
            Transmit::Connect { conn, attempt } => {
                let previous = match transport.take() {
                    // The core released it already (it ended on its own);
                    // make sure its socket is gone before the next exists.
                    Some(old) => {
                        old.task.abort();
                        Some(old.task)
                    }
                    None => retiring.take(),
                };
                let (outgoing, rx) = mpsc::unbounded_channel();
                let span = info_span!("attempt", %conn, attempt);
                let setup = connection::Transport {
                    conn,
                    provider: self.provider.clone(),
                    ws_config: self.ws_config,
                    linger: self.linger,
                    previous,
                };
                let task =
                    tokio::spawn(connection::run(setup, rx, reports.clone()).instrument(span));
                *transport = Some(Transport {
                    conn,
                    outgoing,
                    task,
                });
            }
            Transmit::Send { conn, id, msg } => {
                if let Some(t) = live(conn) {
                    let _ = t
                        .outgoing
                        .send(Outgoing::Data(mapping::to_ws(msg), Some(id)));
                }
            }
            Transmit::SendControl { conn, msg } => {
                if let Some(t) = live(conn) {
                    let _ = t.outgoing.send(Outgoing::Data(mapping::to_ws(msg), None));
                }
            }
            Transmit::Ping { conn, payload } => {
                if let Some(t) = live(conn) {
                    let payload = steadfast_core::Bytes::copy_from_slice(&payload);
                    let _ = t.outgoing.send(Outgoing::Ping(payload));
                }
            }
            Transmit::Close { conn, code, reason } => {
                if let Some(t) = live(conn) {
                    let _ = t.outgoing.send(Outgoing::Close(code, reason));
                }
            }
            Transmit::Abort { conn } => {
                if transport.as_ref().is_some_and(|t| t.conn == conn) {
                    if let Some(t) = transport.take() {
                        t.task.abort();
                        *retiring = Some(t.task);
                    }
                }
            }
        }
    }
}

fn log_event(ev: &Event) {
    match ev {
        Event::StateChanged { from, to } => debug!(?from, ?to, "state"),
        Event::Reconnecting {
            attempt,
            delay,
            cause,
            ..
        } => info!(attempt, ?delay, %cause, "reconnecting"),
        Event::Failed { error, undelivered } => {
            warn!(%error, undelivered = undelivered.len(), "failed")
        }
        Event::Suspended { overshoot } => info!(?overshoot, "suspend detected"),
        _ => {}
    }
}
