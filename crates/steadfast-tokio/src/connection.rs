//! One transport: the handshake, then reading and writing until it ends.
//! It decides nothing: it reports what it observes, tagged with its
//! connection id, and writes what the driver hands it.

use crate::mapping;
use crate::request::{RequestProvider, loggable_target};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use steadfast_core::{
    CloseCode, ConnId, HandshakeError, MessageId, TransportError, TransportEvent,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{self, protocol::WebSocketConfig};
use tracing::{debug, info};

/// What the driver asks a transport to write.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Data(tungstenite::Message, Option<MessageId>),
    Ping(steadfast_core::Bytes),
    Close(CloseCode, String),
}

/// Reports to the driver. Bounded: a peer that floods us is read no faster
/// than the driver takes its reports.
pub(crate) type Reports = mpsc::Sender<(ConnId, TransportEvent)>;

/// Capacity of the reports channel.
pub(crate) const REPORTS: usize = 256;

/// Everything one transport needs.
pub(crate) struct Transport {
    pub(crate) conn: ConnId,
    pub(crate) provider: RequestProvider,
    pub(crate) ws_config: WebSocketConfig,
    /// Bound on the last writes of a transport that is ending (our close
    /// reply, or the close frame for a protocol breach): the core's close timeout.
    pub(crate) linger: Duration,
    /// The previous transport's task, aborted: awaited before connecting, so
    /// its socket is gone before this one exists.
    pub(crate) previous: Option<JoinHandle<()>>,
}

pub(crate) async fn run(
    t: Transport,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    reports: Reports,
) {
    let conn = t.conn;
    if let Some(previous) = t.previous {
        let _ = previous.await;
    }
    let request = match t.provider.request().await {
        Ok(request) => request,
        Err(_) => {
            // The error may quote URLs with tokens: leave its text to the application.
            info!("request provider failed");
            let _ = reports
                .send((
                    conn,
                    TransportEvent::HandshakeFailed(HandshakeError::Request),
                ))
                .await;
            return;
        }
    };
    debug!(target_url = %loggable_target(&request), "connecting");
    // TCP_NODELAY on; TLS (with the `rustls` feature) from the URL scheme.
    let ws = match tokio_tungstenite::connect_async_with_config(request, Some(t.ws_config), true)
        .await
    {
        Ok((ws, _response)) => ws,
        Err(e) => {
            let error = mapping::handshake_error(&e);
            info!(?error, "handshake failed");
            let _ = reports
                .send((conn, TransportEvent::HandshakeFailed(error)))
                .await;
            return;
        }
    };
    if reports.send((conn, TransportEvent::Opened)).await.is_err() {
        return;
    }

    let (mut sink, mut stream) = ws.split();
    let end = {
        let writer = async {
            let mut written = Vec::new();
            while let Some(out) = outgoing.recv().await {
                let frame = match out {
                    Outgoing::Data(msg, id) => {
                        written.extend(id);
                        msg
                    }
                    Outgoing::Ping(payload) => tungstenite::Message::Ping(payload),
                    Outgoing::Close(code, reason) => {
                        tungstenite::Message::Close(Some(mapping::close_frame(code, &reason)))
                    }
                };
                // Batch: flush only once the queue is drained.
                let result = if outgoing.is_empty() {
                    sink.send(frame).await
                } else {
                    sink.feed(frame).await
                };
                if let Err(e) = result {
                    debug!(error = %e, "write failed");
                    return TransportEvent::Error(TransportError::Reset);
                }
                if outgoing.is_empty() {
                    for id in written.drain(..) {
                        let _ = reports.send((conn, TransportEvent::Written(id))).await;
                    }
                }
            }
            // The driver dropped the queue: it aborted us.
            TransportEvent::Error(TransportError::Reset)
        };
        let reader = async {
            loop {
                let observed = match stream.next().await {
                    Some(Ok(tungstenite::Message::Close(frame))) => {
                        let (code, reason) = mapping::peer_close(frame);
                        debug!(%code, "close frame received");
                        return TransportEvent::Closed { code, reason };
                    }
                    Some(Ok(tungstenite::Message::Ping(p))) => TransportEvent::Ping(p),
                    Some(Ok(tungstenite::Message::Pong(p))) => TransportEvent::Pong(p),
                    Some(Ok(msg)) => match mapping::from_ws(msg) {
                        Some(msg) => TransportEvent::Message(msg),
                        None => continue,
                    },
                    Some(Err(e)) => {
                        debug!(error = %e, "read failed");
                        return TransportEvent::Error(mapping::read_error(&e));
                    }
                    None => return TransportEvent::Error(TransportError::Reset),
                };
                if reports.send((conn, observed)).await.is_err() {
                    return TransportEvent::Error(TransportError::Reset);
                }
            }
        };
        tokio::select! {
            end = reader => end,
            end = writer => end,
        }
    };
    // Last words, bounded: answer the peer's close (tungstenite queued the
    // reply; a flush sends it), or tell it why we drop it.
    let last_words = async {
        match &end {
            TransportEvent::Closed { .. } => {
                let _ = sink.flush().await;
            }
            TransportEvent::Error(e) => {
                if let Some(code) = mapping::close_code_for(*e) {
                    let frame = tungstenite::Message::Close(Some(mapping::close_frame(code, "")));
                    let _ = sink.send(frame).await;
                }
            }
            _ => {}
        }
    };
    let _ = tokio::time::timeout(t.linger, last_words).await;
    // The socket is gone before the core hears the transport ended.
    drop((sink, stream));
    let _ = reports.send((conn, end)).await;
}
