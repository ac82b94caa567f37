//! One transport's I/O: the handshake, then the open WebSocket, read only
//! when the socket woke it and written from a queue without ever blocking
//! (by the driver, or at once by the application's task).

use crate::request::{RequestExtras, RequestProvider};
use crate::runtime::{Frame, Runtime};
use crate::woken::{Poller, Woken};
use futures_util::{Sink, StreamExt};
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use steadfast_core::{ConnId, Handshake, HandshakeError, MessageId};
use steadfast_wire::Tls;
use steadfast_wire::request;
use tungstenite::protocol::WebSocketConfig;

/// Build the request and perform the handshake on runtime `R`.
pub(crate) async fn connect<R: Runtime>(
    provider: RequestProvider,
    extras: RequestExtras,
    attempt: u32,
    ws_config: WebSocketConfig,
    tls: Tls,
) -> Result<(R::Socket, Handshake), HandshakeError> {
    let built = provider.request(attempt).await;
    let (request, tls) = request::prepare(built, &extras, &tls)?;
    request::handshake_outcome(R::connect(request, ws_config, tls).await)
}

/// An open WebSocket and what waits to be written to it. Both directions
/// are polled under the same lock, so the stream is not split.
pub(crate) struct Transport<R: Runtime> {
    conn: ConnId,
    ws: R::Socket,
    /// Reads are polled only after the socket woke this gate.
    gate: Woken,
    queue: VecDeque<(tungstenite::Message, Option<MessageId>)>,
    /// Handed to the sink, not yet flushed.
    unflushed: Vec<MessageId>,
    dirty: bool,
    /// A write failed where nobody could act on it (the application's
    /// task); the driver's next poll reports it.
    /// Boxed: rare, and an open connection keeps the field for life.
    failed: Option<Box<tungstenite::Error>>,
}

impl<R: Runtime> Transport<R> {
    pub(crate) fn new(conn: ConnId, ws: R::Socket) -> Self {
        Transport {
            conn,
            ws,
            gate: Woken::new(),
            queue: VecDeque::new(),
            unflushed: Vec::new(),
            dirty: false,
            failed: None,
        }
    }

    /// The next frame (`None`: the stream ended), for the driver or for the
    /// application's task while it waits on its events. Cancel-safe.
    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
        poller: Poller,
    ) -> Poll<Option<Frame>> {
        let ws = &mut self.ws;
        self.gate.poll(cx, poller, |cx| ws.poll_next_unpin(cx))
    }

    /// The read gate, for the driver's lock-free check.
    pub(crate) fn gate(&self) -> &Woken {
        &self.gate
    }

    /// The application's task no longer waits for a frame.
    pub(crate) fn forget_guest(&self) {
        self.gate.forget_guest();
    }

    /// Which transport this is.
    pub(crate) fn conn(&self) -> ConnId {
        self.conn
    }

    /// Whether this is transport `conn`.
    pub(crate) fn is(&self, conn: ConnId) -> bool {
        self.conn == conn
    }

    pub(crate) fn push(&mut self, frame: tungstenite::Message, id: Option<MessageId>) {
        self.queue.push_back((frame, id));
    }

    pub(crate) fn has_work(&self) -> bool {
        self.dirty || !self.queue.is_empty() || self.failed.is_some()
    }

    /// Feed the queue into the sink and flush it. Ready once all is flushed;
    /// the flushed ids are then in [`Transport::flushed`]. Cancel-safe.
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), tungstenite::Error>> {
        if let Some(e) = self.failed.take() {
            return Poll::Ready(Err(*e));
        }
        while !self.queue.is_empty() {
            ready!(Pin::new(&mut self.ws).poll_ready(cx))?;
            if let Some((frame, id)) = self.queue.pop_front() {
                Pin::new(&mut self.ws).start_send(frame)?;
                self.unflushed.extend(id);
                self.dirty = true;
            }
        }
        if self.dirty {
            ready!(Pin::new(&mut self.ws).poll_flush(cx))?;
            self.dirty = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Write now, from any task, without registering for wake-ups: `true`
    /// when everything was flushed (the ids are in [`Transport::flushed`]). On
    /// `false` the driver must poll [`Transport::poll_write`] (a failure is kept for it).
    pub(crate) fn write_now(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.poll_write(&mut cx) {
            Poll::Ready(Ok(())) => true,
            Poll::Ready(Err(e)) => {
                self.failed = Some(Box::new(e));
                false
            }
            Poll::Pending => false,
        }
    }

    /// Ids of the messages flushed by the last completed write.
    pub(crate) fn flushed(&mut self) -> std::vec::Drain<'_, MessageId> {
        self.unflushed.drain(..)
    }

    /// Last words, within `linger`: optionally one more frame, then a flush
    /// (which also sends tungstenite's queued close reply). Returns the ids
    /// whose frames were flushed; none if the flush did not finish in time.
    pub(crate) async fn finish(
        mut self,
        last: Option<tungstenite::Message>,
        linger: std::time::Duration,
    ) -> Vec<MessageId> {
        use futures_util::SinkExt;
        let sink = &mut self.ws;
        let flush = async {
            if let Some(frame) = last {
                sink.feed(frame).await?;
            }
            sink.flush().await
        };
        // A close timeout too long to represent never comes.
        let now = R::now();
        let until = now
            .checked_add(linger)
            .unwrap_or_else(|| now + std::time::Duration::from_secs(86_400 * 365 * 30));
        let (flush, deadline) = (std::pin::pin!(flush), std::pin::pin!(R::timer(until)));
        match futures_util::future::select(flush, deadline).await {
            futures_util::future::Either::Left((Ok(()), _)) => self.unflushed,
            _ => Vec::new(),
        }
    }
}
