//! Translation between tungstenite and the core: messages both ways, and
//! handshake and read errors into the core's typed outcomes.

use std::time::{Duration, SystemTime};
use steadfast_core::{
    Bytes, CloseCode, ConnId, Event, Handshake, HandshakeError, Message, MessageId, MessageKind,
    Transmit, TransportError, TransportEvent, parse_retry_after_seconds,
};
use tracing::{debug, info, warn};
use tungstenite::error::{ProtocolError, SubProtocolError, UrlError};
use tungstenite::{self, protocol::frame::Utf8Bytes};

/// What a read of the socket yields.
pub type Frame = Result<tungstenite::Message, tungstenite::Error>;

/// A core message as a tungstenite message.
pub fn to_ws(msg: Message) -> tungstenite::Message {
    match msg.kind() {
        MessageKind::Text => match Utf8Bytes::try_from(msg.into_payload()) {
            Ok(text) => tungstenite::Message::Text(text),
            // Unreachable through the core's constructors; never panic on it.
            Err(_) => tungstenite::Message::Binary(Bytes::new()),
        },
        MessageKind::Binary => tungstenite::Message::Binary(msg.into_payload()),
    }
}

/// A tungstenite data message as a core message (`None` for control frames).
pub fn from_ws(msg: tungstenite::Message) -> Option<Message> {
    match msg {
        tungstenite::Message::Text(text) => Some(Message::text_from_validated(text.into())),
        tungstenite::Message::Binary(bytes) => Some(Message::binary(bytes)),
        _ => None,
    }
}

/// What the server's handshake response said.
pub fn handshake(response: &tungstenite::handshake::client::Response) -> Handshake {
    let headers = response.headers();
    Handshake {
        protocol: headers
            .get(http::header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    Bytes::copy_from_slice(value.as_bytes()),
                )
            })
            .collect(),
    }
}

/// Why a handshake failed, from tungstenite's error.
pub fn handshake_error(err: &tungstenite::Error) -> HandshakeError {
    use std::io::ErrorKind;
    use tungstenite::Error;
    match err {
        Error::Http(response) => HandshakeError::Http {
            status: response.status().as_u16(),
            retry_after: response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| retry_after(v.as_bytes(), SystemTime::now())),
        },
        Error::Io(e) if is_tls_failure(e) => HandshakeError::Tls,
        Error::Io(e) if e.kind() == ErrorKind::TimedOut => HandshakeError::Timeout,
        Error::Io(_) => HandshakeError::Unreachable,
        Error::Tls(_) => HandshakeError::Tls,
        // `wss://` with no TLS to do it with: a TLS failure, not a bad request.
        Error::Url(UrlError::TlsFeatureNotEnabled) => HandshakeError::Tls,
        Error::Url(_) | Error::HttpFormat(_) => HandshakeError::Request,
        // We offered subprotocols and the server chose none, or one we did
        // not offer. (One chosen when none was offered is a server bug: a
        // protocol error.)
        Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(
            SubProtocolError::NoSubProtocol | SubProtocolError::InvalidSubProtocol,
        )) => HandshakeError::Subprotocol,
        _ => HandshakeError::Protocol,
    }
}

/// Whether an I/O error is rustls refusing the peer (certificate, protocol).
/// A peer that merely hangs up during the TLS handshake is not: that is
/// retried like any unreachable server.
fn is_tls_failure(e: &std::io::Error) -> bool {
    #[cfg(feature = "rustls")]
    {
        e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
    }
    #[cfg(not(feature = "rustls"))]
    {
        let _ = e;
        false
    }
}

/// A `Retry-After` value (delta-seconds or HTTP-date) as a delay from `now`.
pub fn retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    if let Some(delay) = parse_retry_after_seconds(value) {
        return Some(delay);
    }
    let date = httpdate::parse_http_date(std::str::from_utf8(value).ok()?.trim()).ok()?;
    Some(
        date.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(steadfast_core::MAX_RETRY_AFTER),
    )
}

/// Why an open connection broke, from tungstenite's read error.
pub fn read_error(err: &tungstenite::Error) -> TransportError {
    use tungstenite::Error;
    match err {
        Error::Capacity(_) => TransportError::MessageTooBig,
        Error::Utf8(_) => TransportError::InvalidUtf8,
        // The TCP stream ended (FIN or RST) without a close frame: 1006, not a protocol breach.
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => TransportError::Reset,
        Error::Protocol(_) | Error::AttackAttempt => TransportError::Protocol,
        _ => TransportError::Reset,
    }
}

/// A core close code and reason as a tungstenite close frame.
pub fn close_frame(code: CloseCode, reason: &str) -> tungstenite::protocol::CloseFrame {
    tungstenite::protocol::CloseFrame {
        code: code.0.into(),
        reason: reason.into(),
    }
}

/// The peer's close frame as the core's code and reason (1005 when empty).
pub fn peer_close(frame: Option<tungstenite::protocol::CloseFrame>) -> (CloseCode, String) {
    match frame {
        Some(f) => (CloseCode(f.code.into()), f.reason.as_str().to_owned()),
        None => (CloseCode::NO_STATUS, String::new()),
    }
}

/// What a frame means to the core: `Ok(Some)` for data, pings and pongs,
/// `Ok(None)` for nothing, `Err` with the frame itself for what ends the
/// transport (a close, an error, the end of the stream: `None`), which the
/// adapter handles with [`ending`].
pub fn frame_event(frame: Option<Frame>) -> Result<Option<TransportEvent>, Option<Frame>> {
    match frame {
        Some(Ok(tungstenite::Message::Ping(p))) => Ok(Some(TransportEvent::Ping(p))),
        Some(Ok(tungstenite::Message::Pong(p))) => Ok(Some(TransportEvent::Pong(p))),
        Some(Ok(msg @ tungstenite::Message::Close(_))) => Err(Some(Ok(msg))),
        Some(Ok(msg)) => Ok(from_ws(msg).map(TransportEvent::Message)),
        other => Err(other),
    }
}

/// How a transport ends, from the frame that ended it (see [`frame_event`]).
#[derive(Debug)]
pub enum Ending {
    /// Say goodbye first: flush what is queued (tungstenite's close reply,
    /// after a close frame), then write this frame if any (the close frame
    /// for a protocol breach), bounded by the close timeout; then report
    /// the event and drop the transport.
    Goodbye(Option<tungstenite::Message>, TransportEvent),
    /// The stream ended: drop the transport and report the event.
    Dropped(TransportEvent),
}

/// What the adapter does with a frame that ends the transport.
pub fn ending(frame: Option<Frame>) -> Ending {
    match frame {
        Some(Ok(tungstenite::Message::Close(frame))) => {
            let (code, reason) = peer_close(frame);
            debug!(%code, "close frame received");
            Ending::Goodbye(None, TransportEvent::Closed { code, reason })
        }
        Some(Err(e)) => {
            debug!(error = %e, "read failed");
            let error = read_error(&e);
            // Tell the peer why (1002, 1007, 1009), then the socket goes.
            let last = error
                .close_frame_code()
                .map(|code| tungstenite::Message::Close(Some(close_frame(code, ""))));
            Ending::Goodbye(last, TransportEvent::Error(error))
        }
        _ => Ending::Dropped(TransportEvent::Error(TransportError::Reset)),
    }
}

/// A transmit that writes a frame, as the frame: its transport, the frame,
/// and the outbox id to report written once it is flushed. `Err` hands back
/// what is not a frame (a connect or an abort).
#[allow(clippy::result_large_err)]
pub fn transmit_frame(
    t: Transmit,
) -> Result<(ConnId, tungstenite::Message, Option<MessageId>), Transmit> {
    Ok(match t {
        Transmit::Send { conn, id, msg } => (conn, to_ws(msg), Some(id)),
        Transmit::SendControl { conn, msg } => (conn, to_ws(msg), None),
        Transmit::Ping { conn, payload } => {
            let payload = Bytes::copy_from_slice(&payload);
            (conn, tungstenite::Message::Ping(payload), None)
        }
        Transmit::Close { conn, code, reason } => {
            let frame = close_frame(code, &reason);
            (conn, tungstenite::Message::Close(Some(frame)), None)
        }
        other @ (Transmit::Connect { .. } | Transmit::Abort { .. }) => return Err(other),
    })
}

/// Log the events worth a line, as the application takes them (or as the
/// adapter discards them when nobody listens). Messages, outcomes and RTT
/// samples are not: their path stays short.
pub fn log_event(ev: &Event) {
    if !matches!(
        ev,
        Event::Message(_) | Event::Outcome { .. } | Event::Rtt(_)
    ) {
        log_notable_event(ev);
    }
}

/// The line for a state change, a reconnect, a failure or a suspend; other
/// events (a connection opened, closed) get none.
#[cold]
#[inline(never)]
fn log_notable_event(ev: &Event) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00
        assert_eq!(retry_after(b"120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after(b"Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(b"Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(b"soon", now), None);
    }

    #[test]
    fn text_round_trips_without_losing_its_kind() {
        let ws = to_ws(Message::text("héllo"));
        assert!(matches!(&ws, tungstenite::Message::Text(t) if t.as_str() == "héllo"));
        assert_eq!(from_ws(ws), Some(Message::text("héllo")));
        assert_eq!(
            from_ws(tungstenite::Message::Ping(Bytes::new())),
            None,
            "control frames are not messages"
        );
    }
}
