//! One connection's task: the request head, the handshake, then reading
//! and writing the session until it ends.

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use steadfast_async::adapter_api::tungstenite;
use steadfast_hub::{Outbound, Rejection, SessionId, Verdict};
use steadfast_wire::mapping::{close_frame, from_ws, peer_close, to_ws};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, trace, warn};
use tungstenite::Message as WsMessage;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};

use super::Config;
use super::http::{HEAD_TIMEOUT, Replayed, Sniffed, rejection_response, sniff, to_hub_request};
use super::state::{SessionSignals, Shared, UserId};

/// Serves one accepted TCP connection to its end.
pub(crate) async fn serve<U: UserId>(
    shared: Arc<Shared<U>>,
    config: Arc<Config<U>>,
    tcp: TcpStream,
    peer: SocketAddr,
) {
    let _ = tcp.set_nodelay(true);
    let stream = match tokio::time::timeout(HEAD_TIMEOUT, sniff(tcp, config.page.as_ref())).await {
        Ok(Ok(Sniffed::Upgrade(stream))) => stream,
        Ok(Ok(Sniffed::Answered)) => return,
        Ok(Err(e)) => return debug!(%peer, error = %e, "request head unreadable"),
        Err(_) => return debug!(%peer, "request head timed out"),
    };
    let mut verdict: Option<Verdict<U>> = None;
    // The callback's shape is tungstenite's.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        let request = to_hub_request(req);
        let candidate = (config.verifier)(&request);
        let echo = match shared.read(|hub| {
            hub.admit(&request, &candidate)
                .map(|p| p.map(str::to_owned))
        }) {
            Ok(echo) => echo,
            Err(rejection) => {
                if rejection.is_internal_error() {
                    warn!(%peer, status = rejection.status, reason = %rejection.reason, "handshake refused");
                } else {
                    debug!(%peer, status = rejection.status, "handshake rejected");
                }
                return Err(rejection_response(&rejection));
            }
        };
        if let Some(protocol) = echo {
            // Offered by the client, so it came in a header and goes back
            // in one; a client left without the protocol it asked for
            // would misread the session, so a failure here refuses it.
            match http::HeaderValue::from_str(&protocol) {
                Ok(value) => {
                    response
                        .headers_mut()
                        .insert(http::header::SEC_WEBSOCKET_PROTOCOL, value);
                }
                Err(_) => {
                    warn!(%peer, "the chosen subprotocol is not a header value: handshake refused");
                    let rejection = Rejection::new(500, "subprotocol not representable");
                    return Err(rejection_response(&rejection));
                }
            }
        }
        verdict = Some(candidate);
        Ok(response)
    };
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config.websocket));
    let ws = match tokio::time::timeout(HEAD_TIMEOUT, handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => return debug!(%peer, error = %e, "handshake failed"),
        Err(_) => return debug!(%peer, "handshake timed out"),
    };
    let Some(verdict) = verdict else { return };
    let signals = Arc::new(SessionSignals::default());
    let opened = shared.with(|state, now| {
        if state.stopped {
            return None;
        }
        let id = state.hub.open(verdict, now);
        state.signals.insert(id, Arc::clone(&signals));
        Some((id, state.hub.user_of(id).cloned()))
    });
    let Some((id, user)) = opened else { return };
    debug!(%peer, session = %id, ?user, "session opened");
    run(&shared, id, ws, &signals).await;
}

/// Reads and writes a session until its transport ends or the hub aborts it.
async fn run<U: UserId>(
    shared: &Shared<U>,
    id: SessionId,
    ws: WebSocketStream<Replayed>,
    signals: &SessionSignals,
) {
    let (mut sink, mut stream) = ws.split();
    let reader = async {
        let mut peer_code = None;
        loop {
            hold_back(shared, id).await;
            match stream.next().await {
                Some(Ok(WsMessage::Close(frame))) => {
                    // The peer is leaving: the hub hears it now, so nothing
                    // more is routed here and its code is kept.
                    let (code, _) = peer_close(frame);
                    shared.with(|state, now| state.hub.closed(id, Some(code), now));
                    peer_code = Some(code);
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {
                    shared.with(|state, now| state.hub.alive(id, now));
                }
                Some(Ok(frame)) => {
                    if let Some(msg) = from_ws(frame) {
                        shared.with(|state, now| state.hub.received(id, msg, now));
                    }
                }
                Some(Err(e)) => {
                    trace!(session = %id, error = %e, "read ended");
                    return peer_code;
                }
                None => return peer_code,
            }
        }
    };
    let writer = async {
        loop {
            signals.wake.notified().await;
            while let Some(out) = shared.with(|state, now| state.hub.next_outbound(id, now)) {
                let frame = match out {
                    Outbound::Message(msg) => to_ws(msg),
                    Outbound::Ping(payload) => WsMessage::Ping(payload),
                    Outbound::Close { code, reason } => {
                        WsMessage::Close(Some(close_frame(code, &reason)))
                    }
                };
                sink.feed(frame).await?;
            }
            sink.flush().await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), tungstenite::Error>(())
    };
    let ended = tokio::select! {
        code = reader => Some(code),
        result = writer => {
            if let Err(e) = result {
                trace!(session = %id, error = %e, "write ended");
            }
            Some(None)
        }
        () = signals.abort.notified() => None,
    };
    shared.with(|state, now| {
        state.signals.remove(&id);
        match ended {
            Some(code) => state.hub.closed(id, code, now),
            None => debug!(session = %id, "session aborted"),
        }
    });
}

/// Waits while the application has more events to take than the server
/// holds for it: a reader that stops reading pushes back on its peer.
async fn hold_back<U: UserId>(shared: &Shared<U>, id: SessionId) {
    loop {
        let drained = shared.drained.notified();
        tokio::pin!(drained);
        drained.as_mut().enable();
        if !shared.hold_reader(id) || shared.is_stopped() {
            return;
        }
        drained.await;
    }
}
