//! The adapter loop of DESIGN.md, one task per logical connection: drain
//! transmits and do the I/O, drain events to the application, then wait for
//! the first of a socket frame, write progress, a finished handshake, an
//! application command or the core's deadline. It adds no policy.

use crate::clock::Clock;
use crate::connection::{self, Reader, Writer, Ws};
use crate::handle::Status;
use crate::mapping;
use crate::request::RequestProvider;
use futures_util::StreamExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use steadfast_core::{
    Client, ConnId, Event, HandshakeError, MessageId, State, Transmit, TransportError,
    TransportEvent,
};
use tokio::sync::{Notify, mpsc, watch};
use tokio_tungstenite::tungstenite;
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

/// A handshake under way.
type Handshake = Pin<Box<dyn Future<Output = Result<Ws, HandshakeError>> + Send>>;

/// A transport's last words under way (the ids they flushed), and the event
/// to report once they are done.
type Lingering = (
    Pin<Box<dyn Future<Output = Vec<MessageId>> + Send>>,
    TransportEvent,
);

/// The live transport, if any: at most one, owned by the loop.
#[derive(Default)]
struct Link {
    conn: Option<ConnId>,
    /// The handshake under way.
    connecting: Option<Handshake>,
    reader: Option<Reader>,
    writer: Option<Writer>,
    /// Polled in the loop like everything else, so a peer that stops reading
    /// cannot stall commands or deadlines while we say goodbye.
    lingering: Option<Lingering>,
}

impl Link {
    fn is(&self, conn: ConnId) -> bool {
        self.conn == Some(conn)
    }

    /// Drop the transport at once (its socket closes now).
    fn drop_transport(&mut self) {
        *self = Link::default();
    }
}

/// What woke the loop.
enum Input {
    Command,
    Deadline,
    Transport(Io),
}

/// Progress of the transport's I/O.
enum Io {
    Connected(Box<Result<Ws, HandshakeError>>),
    Frame(Option<Result<tungstenite::Message, tungstenite::Error>>),
    Wrote(Result<(), tungstenite::Error>),
    Lingered(Vec<MessageId>),
}

pub(crate) struct Driver {
    pub(crate) shared: Arc<Shared>,
    pub(crate) provider: RequestProvider,
    pub(crate) ws_config: WebSocketConfig,
    /// Bound on the last writes of a transport that is ending (our close
    /// reply, or the close frame for a protocol breach): the core's close timeout.
    pub(crate) linger: std::time::Duration,
    pub(crate) events: mpsc::UnboundedSender<Event>,
}

impl Driver {
    pub(crate) async fn run(self) {
        let mut link = Link::default();
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
                self.perform(t, &mut link);
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
            // 3. Wait for the first input.
            let writing = link.writer.as_ref().is_some_and(Writer::has_work);
            let Link {
                connecting,
                reader,
                writer,
                lingering,
                ..
            } = &mut link;
            let input = tokio::select! {
                () = self.shared.wake.notified() => Input::Command,
                res = async { match connecting.as_mut() { Some(f) => f.await, None => std::future::pending().await } },
                    if connecting.is_some() => Input::Transport(Io::Connected(Box::new(res))),
                frame = async { match reader.as_mut() { Some(r) => r.next().await, None => std::future::pending().await } },
                    if reader.is_some() => Input::Transport(Io::Frame(frame)),
                res = std::future::poll_fn(|cx| match writer.as_mut() { Some(w) => w.poll_write(cx), None => Poll::Pending }),
                    if writing => Input::Transport(Io::Wrote(res)),
                ids = async { match lingering.as_mut() { Some((f, _)) => f.await, None => std::future::pending().await } },
                    if lingering.is_some() => Input::Transport(Io::Lingered(ids)),
                () = &mut sleep, if armed.is_some() => Input::Deadline,
            };
            // 4. Feed it to the core.
            let observed = match input {
                Input::Command => continue,
                Input::Deadline => {
                    armed = None;
                    let now = self.shared.clock.now();
                    self.shared.lock().handle_timeout(now);
                    continue;
                }
                Input::Transport(io) => match self.observe(io, &mut link) {
                    Some(observed) => observed,
                    None => continue,
                },
            };
            let mut client = self.shared.lock();
            let now = self.shared.clock.now();
            for (conn, ev) in observed {
                client.handle_transport(conn, ev, now);
            }
        }
        debug!("driver finished");
    }

    /// Turn an input into transport events for the core (`None`: nothing to feed).
    fn observe(&self, io: Io, link: &mut Link) -> Option<Vec<(ConnId, TransportEvent)>> {
        let conn = link.conn?;
        let ev = match io {
            Io::Connected(res) => match *res {
                Ok(ws) => {
                    link.connecting = None;
                    let (sink, stream) = ws.split();
                    link.writer = Some(Writer::new(sink));
                    link.reader = Some(stream);
                    TransportEvent::Opened
                }
                Err(e) => {
                    link.drop_transport();
                    TransportEvent::HandshakeFailed(e)
                }
            },
            Io::Wrote(Ok(())) => {
                let written: Vec<_> = link
                    .writer
                    .as_mut()
                    .map(|w| {
                        w.flushed()
                            .map(|id| (conn, TransportEvent::Written(id)))
                            .collect()
                    })
                    .unwrap_or_default();
                return Some(written);
            }
            Io::Wrote(Err(e)) => {
                debug!(error = %e, "write failed");
                link.drop_transport();
                TransportEvent::Error(TransportError::Reset)
            }
            Io::Frame(Some(Ok(tungstenite::Message::Close(frame)))) => {
                let (code, reason) = mapping::peer_close(frame);
                debug!(%code, "close frame received");
                // Answer it (tungstenite queued the reply), then the socket goes.
                return self.say_goodbye(link, conn, None, TransportEvent::Closed { code, reason });
            }
            Io::Lingered(flushed) => {
                let end = link.lingering.take().map(|(_, end)| end);
                link.drop_transport();
                let mut observed: Vec<_> = flushed
                    .into_iter()
                    .map(|id| (conn, TransportEvent::Written(id)))
                    .collect();
                observed.extend(end.map(|end| (conn, end)));
                return Some(observed);
            }
            Io::Frame(Some(Ok(tungstenite::Message::Ping(p)))) => TransportEvent::Ping(p),
            Io::Frame(Some(Ok(tungstenite::Message::Pong(p)))) => TransportEvent::Pong(p),
            Io::Frame(Some(Ok(msg))) => TransportEvent::Message(mapping::from_ws(msg)?),
            Io::Frame(Some(Err(e))) => {
                debug!(error = %e, "read failed");
                let error = mapping::read_error(&e);
                // Tell the peer why (1002, 1007, 1009), then the socket goes.
                let last = mapping::close_code_for(error)
                    .map(|code| tungstenite::Message::Close(Some(mapping::close_frame(code, ""))));
                return self.say_goodbye(link, conn, last, TransportEvent::Error(error));
            }
            Io::Frame(None) => {
                link.drop_transport();
                TransportEvent::Error(TransportError::Reset)
            }
        };
        Some(vec![(conn, ev)])
    }

    /// End the transport after its last words (bounded by the close
    /// timeout), polled by the loop; `end` is reported once they are done.
    /// With no writer, the end is reported at once.
    fn say_goodbye(
        &self,
        link: &mut Link,
        conn: ConnId,
        last: Option<tungstenite::Message>,
        end: TransportEvent,
    ) -> Option<Vec<(ConnId, TransportEvent)>> {
        let Some(writer) = link.writer.take() else {
            link.drop_transport();
            return Some(vec![(conn, end)]);
        };
        link.reader = None;
        link.lingering = Some((Box::pin(writer.finish(last, self.linger)), end));
        None
    }

    fn perform(&self, t: Transmit, link: &mut Link) {
        match t {
            Transmit::Connect { conn, attempt } => {
                // The core released the previous transport already; its socket
                // closes here, before the next exists.
                link.drop_transport();
                let span = info_span!("attempt", %conn, attempt);
                let handshake =
                    connection::connect(self.provider.clone(), self.ws_config).instrument(span);
                link.conn = Some(conn);
                link.connecting = Some(Box::pin(handshake));
            }
            Transmit::Send { conn, id, msg } => {
                if let (true, Some(w)) = (link.is(conn), link.writer.as_mut()) {
                    w.push(mapping::to_ws(msg), Some(id));
                }
            }
            Transmit::SendControl { conn, msg } => {
                if let (true, Some(w)) = (link.is(conn), link.writer.as_mut()) {
                    w.push(mapping::to_ws(msg), None);
                }
            }
            Transmit::Ping { conn, payload } => {
                if let (true, Some(w)) = (link.is(conn), link.writer.as_mut()) {
                    let payload = steadfast_core::Bytes::copy_from_slice(&payload);
                    w.push(tungstenite::Message::Ping(payload), None);
                }
            }
            Transmit::Close { conn, code, reason } => {
                if let (true, Some(w)) = (link.is(conn), link.writer.as_mut()) {
                    let frame =
                        tungstenite::Message::Close(Some(mapping::close_frame(code, &reason)));
                    w.push(frame, None);
                }
            }
            Transmit::Abort { conn } => {
                if link.is(conn) {
                    link.drop_transport();
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
