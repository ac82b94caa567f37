//! A loopback WebSocket server whose behaviour can be switched at run time,
//! modelling the Node `ws` servers steadfast's users talk to: it acks or
//! echoes, closes with chosen codes, rejects handshakes, misbehaves on the
//! wire, goes silent (half-open), and restarts on the same port. The same
//! server runs over TLS ([`Server::start_tls`]) for `wss://` clients.

use crate::{ConnTasks, lock};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tracing::debug;

/// What the server does with each new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Accept; echo data messages if `echo`; answer `seq:N…` (or `id:N…`) text with
    /// `ack:N` if `ack` (`seq:N:refuse` with `nack:N:<reason>`, and
    /// `seq:N:ask` with the reply `ack:N:answer N`). Pings are answered (tungstenite does it).
    Serve {
        /// Echo every data message back.
        echo: bool,
        /// Answer `seq:N…` with `ack:N`.
        ack: bool,
    },
    /// Accept, then close at once with this code and reason.
    CloseWith(u16, String),
    /// Refuse the handshake with an HTTP status and optional `Retry-After` seconds.
    Reject(u16, Option<u64>),
    /// Accept, then write bytes that are not a WebSocket frame.
    Garbage,
    /// Accept, then send a text frame whose payload is not UTF-8.
    InvalidUtf8,
    /// Accept, then send one binary message of this many bytes.
    Oversized(usize),
    /// Accept, then never read again: pings go unanswered (half-open).
    Silent,
}

impl Behaviour {
    /// Acking echo server: the default.
    pub fn serve() -> Self {
        Behaviour::Serve {
            echo: true,
            ack: true,
        }
    }
}

#[derive(Debug, Default)]
struct Record {
    /// `seq` numbers received, in arrival order (duplicates kept).
    seqs: Vec<u64>,
    /// Every data message received, as text (lossy for binary).
    messages: Vec<String>,
    /// TCP connections accepted (including those whose TLS or WebSocket
    /// handshake then failed).
    connections: usize,
    /// Handshakes attempted (including rejected ones).
    handshakes: usize,
    handshake_times: Vec<tokio::time::Instant>,
    /// Close codes received from clients.
    closes: Vec<u16>,
    /// The `authorization` header of each handshake request, if any.
    authorizations: Vec<Option<String>>,
    /// The path and query of each handshake request.
    targets: Vec<String>,
}

struct State {
    behaviour: Mutex<Behaviour>,
    /// Subprotocols the server accepts; it echoes the first one offered.
    subprotocols: Mutex<Vec<String>>,
    record: Mutex<Record>,
    changed: Notify,
}

/// An in-process server on `127.0.0.1`, over plain TCP or TLS. Dropping it stops it.
pub struct Server {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
    conns: ConnTasks,
    /// TLS in front of every connection, for `wss://`.
    tls: Option<TlsAcceptor>,
}

impl Server {
    /// Start on an ephemeral port.
    pub async fn start(behaviour: Behaviour) -> std::io::Result<Server> {
        Server::start_on(behaviour, loopback_any_port(), None).await
    }

    /// Start on a chosen address (port 0 for an ephemeral one), e.g. for a
    /// server a person connects to by hand. The listening socket reuses the
    /// address, so a restarted process gets its port back at once.
    pub async fn start_at(addr: SocketAddr, behaviour: Behaviour) -> std::io::Result<Server> {
        Server::start_on(behaviour, addr, None).await
    }

    /// Start on an ephemeral port behind TLS with this configuration (e.g.
    /// [`TestCa::server_config`](crate::TestCa::server_config)): the same
    /// behaviours, for `wss://` clients. A connection whose TLS handshake
    /// fails counts in [`connections`](Self::connections) only.
    pub async fn start_tls(
        behaviour: Behaviour,
        config: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<Server> {
        Server::start_on(
            behaviour,
            loopback_any_port(),
            Some(TlsAcceptor::from(config)),
        )
        .await
    }

    async fn start_on(
        behaviour: Behaviour,
        addr: SocketAddr,
        tls: Option<TlsAcceptor>,
    ) -> std::io::Result<Server> {
        let state = Arc::new(State {
            behaviour: Mutex::new(behaviour),
            subprotocols: Mutex::default(),
            record: Mutex::default(),
            changed: Notify::new(),
        });
        let mut server = Server {
            addr,
            state,
            accept: None,
            conns: ConnTasks::default(),
            tls,
        };
        server.listen().await?;
        Ok(server)
    }

    async fn listen(&mut self) -> std::io::Result<()> {
        let socket = if self.addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(self.addr)?;
        let listener = socket.listen(1024)?;
        self.addr = listener.local_addr()?;
        let (state, conns) = (self.state.clone(), self.conns.clone());
        let tls = self.tls.clone();
        self.accept = Some(tokio::spawn(accept_loop(listener, state, conns, tls)));
        Ok(())
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/` (`ws://127.0.0.1:PORT/` unless started elsewhere with
    /// [`start_at`](Self::start_at)), or `wss://...` over TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}/", self.addr)
    }

    /// Switch behaviour for connections accepted from now on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *lock(&self.state.behaviour) = behaviour;
    }

    /// Subprotocols the server accepts: of those a client offers, it echoes
    /// the first it accepts (none by default, like a server that knows none).
    pub fn accept_subprotocols(&self, protocols: &[&str]) {
        *lock(&self.state.subprotocols) = protocols.iter().map(|p| (*p).to_owned()).collect();
    }

    /// Stop listening and drop every connection (the process died). Returns
    /// once the port is free and every connection is gone.
    pub async fn stop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        for conn in self.conns.abort_all() {
            let _ = conn.await;
        }
    }

    /// Listen again on the same port (stopping first if still running).
    ///
    /// While the port was free, something else may have taken it for a
    /// moment: a client's connection attempt to it can get it as its own
    /// source port (a TCP self-connect), or another socket can. Binding is
    /// tried again every 20 ms for up to 2 s before the error is returned.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            match self.listen().await {
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                done => return done,
            }
        }
    }

    /// When each handshake arrived.
    pub fn handshake_times(&self) -> Vec<tokio::time::Instant> {
        lock(&self.state.record).handshake_times.clone()
    }

    /// `seq` numbers received so far, in arrival order.
    pub fn seqs(&self) -> Vec<u64> {
        lock(&self.state.record).seqs.clone()
    }

    /// Each `seq` once, in the order it was first received (replays after
    /// a lost ack left out): what an application would see after deduplication.
    pub fn first_seen_seqs(&self) -> Vec<u64> {
        let mut seen = std::collections::HashSet::new();
        self.seqs()
            .into_iter()
            .filter(|s| seen.insert(*s))
            .collect()
    }

    /// Data messages received so far.
    pub fn messages(&self) -> Vec<String> {
        lock(&self.state.record).messages.clone()
    }

    /// TCP connections accepted so far, whether or not their TLS or
    /// WebSocket handshake succeeded.
    pub fn connections(&self) -> usize {
        lock(&self.state.record).connections
    }

    /// Handshakes attempted so far.
    pub fn handshakes(&self) -> usize {
        lock(&self.state.record).handshakes
    }

    /// Close codes clients sent.
    pub fn closes(&self) -> Vec<u16> {
        lock(&self.state.record).closes.clone()
    }

    /// The `authorization` header of each handshake.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        lock(&self.state.record).authorizations.clone()
    }

    /// The path and query of each handshake request, in order.
    pub fn targets(&self) -> Vec<String> {
        lock(&self.state.record).targets.clone()
    }

    /// Wait until `f` holds for the record, up to `timeout`. Returns whether it did.
    pub async fn wait_until(&self, timeout: Duration, f: impl Fn(&Server) -> bool) -> bool {
        let holds = || f(self).then_some(());
        crate::wait_on(&self.state.changed, timeout, holds)
            .await
            .is_some()
    }
}

/// `127.0.0.1:0`: an ephemeral port on loopback.
fn loopback_any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        self.conns.abort_all();
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    conns: ConnTasks,
    tls: Option<TlsAcceptor>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        lock(&state.record).connections += 1;
        state.changed.notify_waiters();
        let state = state.clone();
        match &tls {
            None => conns.spawn(serve(stream, state)),
            Some(acceptor) => {
                let accepting = acceptor.accept(stream);
                conns.spawn(async move {
                    match accepting.await {
                        Ok(stream) => serve(stream, state).await,
                        Err(e) => debug!(error = %e, "TLS handshake failed"),
                    }
                });
            }
        }
    }
}

// tungstenite fixes the handshake callback's error type.
#[allow(clippy::result_large_err)]
async fn serve<S>(stream: S, state: Arc<State>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let behaviour = lock(&state.behaviour).clone();
    let callback = |req: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let mut record = lock(&state.record);
        record.handshakes += 1;
        record.handshake_times.push(tokio::time::Instant::now());
        record.targets.push(
            req.uri()
                .path_and_query()
                .map_or_else(String::new, |pq| pq.as_str().to_owned()),
        );
        record.authorizations.push(
            req.headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        );
        drop(record);
        state.changed.notify_waiters();
        match &behaviour {
            Behaviour::Reject(status, retry_after) => {
                let mut builder = http::Response::builder().status(*status);
                if let Some(secs) = retry_after {
                    builder = builder.header("retry-after", secs.to_string());
                }
                Err(builder
                    .body(None)
                    .unwrap_or_else(|_| ErrorResponse::new(None)))
            }
            _ => {
                let mut response = response;
                let accepted = lock(&state.subprotocols);
                let chosen = req
                    .headers()
                    .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(',').map(str::trim))
                    .find(|offered| accepted.iter().any(|a| a == offered))
                    .and_then(|p| http::HeaderValue::from_str(p).ok());
                let headers = response.headers_mut();
                if let Some(chosen) = chosen {
                    headers.insert(http::header::SEC_WEBSOCKET_PROTOCOL, chosen);
                }
                headers.insert(
                    "x-served-by",
                    http::HeaderValue::from_static("steadfast-testkit"),
                );
                Ok(response)
            }
        }
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    match behaviour {
        Behaviour::Serve { echo, ack } => {
            while let Some(Ok(msg)) = ws.next().await {
                let reply = on_message(&state, &msg, echo, ack);
                for r in reply {
                    if ws.send(r).await.is_err() {
                        return;
                    }
                }
                if msg.is_close() {
                    // Keep reading until tungstenite has answered the close.
                    continue;
                }
            }
        }
        Behaviour::CloseWith(code, reason) => {
            let frame = CloseFrame {
                code: code.into(),
                reason: reason.into(),
            };
            let _ = ws.send(Message::Close(Some(frame))).await;
            while let Some(Ok(_)) = ws.next().await {}
        }
        Behaviour::Reject(..) => {}
        Behaviour::Garbage => {
            let raw = ws.get_mut();
            let _ = raw.write_all(&[0xff; 32]).await;
            let _ = raw.flush().await;
            while let Some(Ok(_)) = ws.next().await {}
        }
        Behaviour::InvalidUtf8 => {
            // FIN + text, unmasked, 2-byte payload that is not UTF-8.
            let raw = ws.get_mut();
            let _ = raw.write_all(&[0x81, 0x02, 0xc3, 0x28]).await;
            let _ = raw.flush().await;
            while let Some(Ok(_)) = ws.next().await {}
        }
        Behaviour::Oversized(len) => {
            let _ = ws.send(Message::Binary(Bytes::from(vec![0u8; len]))).await;
            while let Some(Ok(_)) = ws.next().await {}
        }
        Behaviour::Silent => std::future::pending::<()>().await,
    }
}

fn on_message(state: &State, msg: &Message, echo: bool, ack: bool) -> Vec<Message> {
    let mut replies = Vec::new();
    let mut record = lock(&state.record);
    match msg {
        Message::Text(text) => {
            record.messages.push(text.as_str().to_owned());
            if let Some(seq) = parse_seq(text.as_str()) {
                record.seqs.push(seq);
                if ack {
                    // `seq:N:refuse` is refused; `seq:N:ask` gets a reply.
                    let reply = if text.as_str().ends_with(":refuse") {
                        format!("nack:{seq}:refused by the test server")
                    } else if text.as_str().ends_with(":ask") {
                        format!("ack:{seq}:answer {seq}")
                    } else {
                        format!("ack:{seq}")
                    };
                    replies.push(Message::text(reply));
                }
            }
            if echo {
                replies.push(msg.clone());
            }
        }
        Message::Binary(b) => {
            record
                .messages
                .push(String::from_utf8_lossy(b).into_owned());
            if echo {
                replies.push(msg.clone());
            }
        }
        Message::Close(frame) => {
            record
                .closes
                .push(frame.as_ref().map_or(1005, |f| f.code.into()));
        }
        _ => {}
    }
    drop(record);
    state.changed.notify_waiters();
    replies
}

/// The `N` of a `seq:N…` message (or `id:N…`, the other common spelling).
pub fn parse_seq(text: &str) -> Option<u64> {
    let rest = text
        .strip_prefix("seq:")
        .or_else(|| text.strip_prefix("id:"))?;
    let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

/// The `N` of an `ack:N` message.
pub fn parse_ack(text: &str) -> Option<u64> {
    text.strip_prefix("ack:")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_seq;

    #[test]
    fn seq_and_id_messages_carry_their_number_and_others_none() {
        assert_eq!(parse_seq("seq:12:hello"), Some(12));
        assert_eq!(parse_seq("id:7"), Some(7));
        assert_eq!(parse_seq("ack:7"), None);
        assert_eq!(parse_seq("id:x"), None);
    }
}
