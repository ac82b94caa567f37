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
use tokio_tungstenite::tungstenite::{self, protocol::WebSocketConfig};
use tracing::{debug, info};

/// What the driver asks a transport to write.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Data(tungstenite::Message, Option<MessageId>),
    Ping(steadfast_core::Bytes),
    Close(CloseCode, String),
}

pub(crate) type Reports = mpsc::UnboundedSender<(ConnId, TransportEvent)>;

/// Bound on finishing a close handshake once the peer's close frame (or a
/// fatal read error) has been seen: flushing our reply must not hang.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

pub(crate) async fn run(
    conn: ConnId,
    provider: RequestProvider,
    ws_config: WebSocketConfig,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    reports: Reports,
) {
    let report = |ev: TransportEvent| {
        let _ = reports.send((conn, ev));
    };
    let request = match provider.request().await {
        Ok(request) => request,
        Err(e) => {
            info!(error = %e, "request provider failed");
            return report(TransportEvent::HandshakeFailed(HandshakeError::Request));
        }
    };
    debug!(target_url = %loggable_target(&request), "connecting");
    let ws = match tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(ws_config),
        true,
        None,
    )
    .await
    {
        Ok((ws, _response)) => ws,
        Err(e) => {
            let error = mapping::handshake_error(&e);
            info!(?error, "handshake failed");
            return report(TransportEvent::HandshakeFailed(error));
        }
    };
    report(TransportEvent::Opened);

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
                let flushed = if outgoing.is_empty() {
                    sink.send(frame).await
                } else {
                    sink.feed(frame).await
                };
                if let Err(e) = flushed {
                    debug!(error = %e, "write failed");
                    return TransportEvent::Error(TransportError::Reset);
                }
                if outgoing.is_empty() {
                    written
                        .drain(..)
                        .for_each(|id| report(TransportEvent::Written(id)));
                }
            }
            // The driver dropped us (abort): nothing to report.
            TransportEvent::Error(TransportError::Reset)
        };
        let reader = async {
            loop {
                match stream.next().await {
                    Some(Ok(tungstenite::Message::Close(frame))) => {
                        let (code, reason) = mapping::peer_close(frame);
                        debug!(%code, "close frame received");
                        // Keep reading so tungstenite flushes its reply, briefly.
                        let _ = tokio::time::timeout(CLOSE_FLUSH, async {
                            while let Some(Ok(_)) = stream.next().await {}
                        })
                        .await;
                        return TransportEvent::Closed { code, reason };
                    }
                    Some(Ok(tungstenite::Message::Ping(p))) => report(TransportEvent::Ping(p)),
                    Some(Ok(tungstenite::Message::Pong(p))) => report(TransportEvent::Pong(p)),
                    Some(Ok(msg)) => {
                        if let Some(msg) = mapping::from_ws(msg) {
                            report(TransportEvent::Message(msg));
                        }
                    }
                    Some(Err(e)) => {
                        debug!(error = %e, "read failed");
                        return TransportEvent::Error(mapping::read_error(&e));
                    }
                    None => return TransportEvent::Error(TransportError::Reset),
                }
            }
        };
        tokio::select! {
            end = reader => end,
            end = writer => end,
        }
    };
    if let TransportEvent::Error(e) = &end {
        if let Some(code) = mapping::close_code_for(*e) {
            let frame = tungstenite::Message::Close(Some(mapping::close_frame(code, "")));
            let _ = tokio::time::timeout(CLOSE_FLUSH, sink.send(frame)).await;
        }
    }
    report(end);
}
