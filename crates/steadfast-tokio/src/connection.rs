//! One transport's I/O pieces, for the driver's single loop: the handshake,
//! and a writer that queues frames and flushes them without ever blocking
//! the loop (it is polled in the same `select!` as reads and deadlines).

use crate::mapping;
use crate::request::{RequestProvider, loggable_target};
use crate::woken::Woken;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, StreamExt};
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use steadfast_core::{ConnId, HandshakeError, MessageId};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, protocol::WebSocketConfig};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{debug, info};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the read half yields.
pub(crate) type Frame = Result<tungstenite::Message, tungstenite::Error>;

/// The read half, polled only when the reactor woke it (see [`Woken`]).
pub(crate) struct Reader {
    stream: SplitStream<Ws>,
    gate: Woken,
}

impl Reader {
    pub(crate) fn new(stream: SplitStream<Ws>) -> Self {
        Reader {
            stream,
            gate: Woken::new(),
        }
    }

    /// The next frame (`None`: the stream ended), for the driver. Cancel-safe.
    pub(crate) fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let stream = &mut self.stream;
        self.gate.poll(cx, |cx| stream.poll_next_unpin(cx))
    }

    /// The next frame, for the application's task while it waits on its events.
    pub(crate) fn poll_frame_as_guest(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let stream = &mut self.stream;
        self.gate.poll_as_guest(cx, |cx| stream.poll_next_unpin(cx))
    }

    /// The application's task no longer waits for a frame.
    pub(crate) fn forget_guest(&self) {
        self.gate.forget_guest();
    }
}

/// Build the request and perform the handshake.
pub(crate) async fn connect(
    provider: RequestProvider,
    ws_config: WebSocketConfig,
) -> Result<Ws, HandshakeError> {
    let request = match provider.request().await {
        Ok(request) => request,
        Err(_) => {
            // The error may quote URLs with tokens: leave its text to the application.
            info!("request provider failed");
            return Err(HandshakeError::Request);
        }
    };
    debug!(target_url = %loggable_target(&request), "connecting");
    // TCP_NODELAY on; TLS (with the `rustls` feature) from the URL scheme.
    match tokio_tungstenite::connect_async_with_config(request, Some(ws_config), true).await {
        Ok((ws, _response)) => Ok(ws),
        Err(e) => {
            let error = mapping::handshake_error(&e);
            info!(?error, "handshake failed");
            Err(error)
        }
    }
}

/// The write half and what waits to be written, for one transport.
pub(crate) struct Writer {
    conn: ConnId,
    sink: SplitSink<Ws, tungstenite::Message>,
    queue: VecDeque<(tungstenite::Message, Option<MessageId>)>,
    /// Handed to the sink, not yet flushed.
    unflushed: Vec<MessageId>,
    dirty: bool,
    /// A write failed where nobody could act on it (the application's
    /// task); the driver's next poll reports it.
    failed: Option<tungstenite::Error>,
}

impl Writer {
    pub(crate) fn new(conn: ConnId, sink: SplitSink<Ws, tungstenite::Message>) -> Self {
        Writer {
            conn,
            sink,
            queue: VecDeque::new(),
            unflushed: Vec::new(),
            dirty: false,
            failed: None,
        }
    }

    /// The transport this writer belongs to.
    pub(crate) fn conn(&self) -> ConnId {
        self.conn
    }

    /// Whether this writer belongs to transport `conn`.
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
    /// the flushed ids are then in [`Writer::flushed`]. Cancel-safe.
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), tungstenite::Error>> {
        if let Some(e) = self.failed.take() {
            return Poll::Ready(Err(e));
        }
        while !self.queue.is_empty() {
            ready!(Pin::new(&mut self.sink).poll_ready(cx))?;
            if let Some((frame, id)) = self.queue.pop_front() {
                Pin::new(&mut self.sink).start_send(frame)?;
                self.unflushed.extend(id);
                self.dirty = true;
            }
        }
        if self.dirty {
            ready!(Pin::new(&mut self.sink).poll_flush(cx))?;
            self.dirty = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Write now, from any task, without registering for wake-ups: `true`
    /// when everything was flushed (the ids are in [`Writer::flushed`]). On
    /// `false` the driver must poll [`Writer::poll_write`] (a failure is kept for it).
    pub(crate) fn write_now(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.poll_write(&mut cx) {
            Poll::Ready(Ok(())) => true,
            Poll::Ready(Err(e)) => {
                self.failed = Some(e);
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
        let sink = &mut self.sink;
        let flushed = tokio::time::timeout(linger, async {
            if let Some(frame) = last {
                sink.feed(frame).await?;
            }
            sink.flush().await
        })
        .await;
        match flushed {
            Ok(Ok(())) => self.unflushed,
            _ => Vec::new(),
        }
    }
}
