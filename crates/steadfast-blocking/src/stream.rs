//! One attempt's blocking handshake (TCP, TLS, WebSocket), bounded by the
//! core's connect deadline, and the stream it leaves: plain TCP or rustls
//! over TCP. Once open, every read and write is non-blocking
//! (`MSG_DONTWAIT`) but a read the caller-driven loop makes on purpose to
//! wait ([`Stream::set_blocking_reads`]), bounded by `SO_RCVTIMEO`.

use rustix::net::{RecvFlags, SendFlags};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};

/// Writes never block, and a peer gone does not raise `SIGPIPE` (Apple
/// platforms have no such flag: std sets `SO_NOSIGPIPE` on their sockets).
#[cfg(not(target_vendor = "apple"))]
const SEND_FLAGS: SendFlags = SendFlags::DONTWAIT.union(SendFlags::NOSIGNAL);
#[cfg(target_vendor = "apple")]
const SEND_FLAGS: SendFlags = SendFlags::DONTWAIT;
use std::time::Instant;
use steadfast_core::{Handshake, HandshakeError};
use steadfast_wire::request::Target;
use steadfast_wire::{Tls, WebSocketConfig, request};
use tungstenite::handshake::client::{Request, Response};
use tungstenite::protocol::WebSocket;

/// The socket under the WebSocket: plain, or TLS.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(Tcp),
    #[cfg(feature = "rustls")]
    Tls(Box<TlsStream>),
}

impl Stream {
    fn tcp(&mut self) -> &mut Tcp {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "rustls")]
            Stream::Tls(s) => &mut s.sock,
        }
    }

    /// Whether a read found the socket empty since the last wait on it
    /// (and so the next read answers `WouldBlock` without asking it).
    pub(crate) fn found_empty(&self) -> bool {
        let tcp = match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "rustls")]
            Stream::Tls(s) => &s.sock,
        };
        tcp.empty == Some(true)
    }

    /// A wait on the socket has ended: it may hold data again.
    pub(crate) fn may_have_data(&mut self) {
        let tcp = self.tcp();
        if tcp.empty.is_some() {
            tcp.empty = Some(false);
        }
    }

    /// Whether the next read blocks (until data, or the socket's read
    /// timeout): the wait itself, instead of `poll(2)` and then a read.
    /// Reads after it do not wait.
    pub(crate) fn set_blocking_reads(&mut self, block: bool) {
        self.tcp().block = block;
    }
}

/// A TCP socket that remembers when a read found it empty: a read that
/// returned fewer bytes than asked for (TCP hands over all it holds, up to
/// the size asked), or `WouldBlock`. Until [`Stream::may_have_data`] (after
/// a wait on the socket, which sees anything that came since), a read
/// answers `WouldBlock` without asking the system: the read that would only
/// find the socket empty after each message is saved. Not during the
/// handshake, whose reads block.
#[derive(Debug)]
pub(crate) struct Tcp {
    sock: TcpStream,
    /// Whether the last read found the socket empty (`None`: not tracked,
    /// during the handshake, whose reads and writes block with timeouts).
    empty: Option<bool>,
    /// The next read blocks (see [`Stream::set_blocking_reads`]).
    block: bool,
}

impl Tcp {
    fn found_empty(&mut self) {
        if self.empty.is_some() {
            self.empty = Some(true);
        }
    }
}

impl Read for Tcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.empty.is_none() {
            return self.sock.read(buf);
        }
        if self.empty == Some(true) && !self.block && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let flags = if self.block {
            // One read waits, at most the read timeout; once it has brought
            // something, the rest of the frame is read without waiting, so
            // a frame arriving in pieces cannot hold the wait past its bound.
            self.block = false;
            RecvFlags::empty()
        } else {
            RecvFlags::DONTWAIT
        };
        let read = loop {
            match rustix::net::recv(&self.sock, &mut *buf, flags) {
                // A signal during a wait ends it (a retry would wait afresh).
                Err(rustix::io::Errno::INTR) if flags.is_empty() => {
                    break Err(io::ErrorKind::Interrupted.into());
                }
                Err(rustix::io::Errno::INTR) => {}
                read => break read.map(|(n, _)| n).map_err(io::Error::from),
            }
        };
        match read {
            Ok(n) => {
                if n > 0 && n < buf.len() {
                    self.found_empty();
                } else if n > 0 && self.empty.is_some() {
                    // Full: the socket may hold more, whatever an earlier
                    // read found (a wait by reading blocks even then).
                    self.empty = Some(false);
                }
                Ok(n)
            }
            Err(e) => {
                if e.kind() == io::ErrorKind::WouldBlock {
                    self.found_empty();
                }
                Err(e)
            }
        }
    }
}

impl Write for Tcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.empty.is_none() {
            return self.sock.write(buf);
        }
        loop {
            match rustix::net::send(&self.sock, buf, SEND_FLAGS) {
                Err(rustix::io::Errno::INTR) => {}
                sent => return sent.map_err(io::Error::from),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "rustls")]
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            #[cfg(feature = "rustls")]
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            #[cfg(feature = "rustls")]
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// rustls over a TCP socket that may be non-blocking. Unlike
/// `rustls::StreamOwned`, a read never waits for pending TLS writes to
/// drain first, so a peer that stops reading cannot stop us reading, and a
/// write that the socket does not take is kept by rustls (its buffer) or
/// refused with `WouldBlock` (tungstenite keeps the frame).
#[cfg(feature = "rustls")]
pub(crate) struct TlsStream {
    conn: rustls::ClientConnection,
    sock: Tcp,
}

#[cfg(feature = "rustls")]
impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream").finish_non_exhaustive()
    }
}

#[cfg(feature = "rustls")]
impl TlsStream {
    /// Write what rustls holds, until it holds nothing or the socket blocks.
    fn write_pending(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.sock)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }
}

#[cfg(feature = "rustls")]
impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            let eof = self.conn.read_tls(&mut self.sock)? == 0;
            self.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            // Alerts or key updates it produced go out if the socket takes them.
            let _ = self.write_pending();
            if eof {
                // rustls now reports a clean close (0) or a truncation.
                return self.conn.reader().read(buf);
            }
        }
    }
}

#[cfg(feature = "rustls")]
impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Older records first; while they do not drain, take nothing new.
        if let Err(e) = self.write_pending() {
            if e.kind() != io::ErrorKind::WouldBlock || self.conn.wants_write() {
                return Err(e);
            }
        }
        let n = self.conn.writer().write(buf)?;
        match self.write_pending() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ if n == 0 && !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
            _ => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.writer().flush()?;
        self.write_pending()?;
        self.sock.flush()
    }
}

/// An open WebSocket, and a second handle on its TCP socket to wait on.
pub(crate) type Opened = (WebSocket<Stream>, TcpStream, Handshake);

/// Perform one attempt: connect to the request's host (each resolved
/// address in turn), TLS for `wss://` with `tls`, then the WebSocket
/// handshake, all bounded by `deadline` (the core's connect deadline;
/// name resolution is the system's and is not bounded). The socket is
/// non-blocking once open.
pub(crate) fn handshake(
    request: Request,
    ws_config: WebSocketConfig,
    tls: Tls,
    deadline: Instant,
) -> Result<Opened, HandshakeError> {
    let result = open(request, ws_config, tls, deadline);
    let (ws, tcp, handshake) =
        request::handshake_outcome(result.map(|(ws, tcp, response)| ((ws, tcp), response)))
            .map(|((ws, tcp), handshake)| (ws, tcp, handshake))?;
    Ok((ws, tcp, handshake))
}

/// The time left until `deadline`, or a timeout error.
fn left(deadline: Instant) -> io::Result<std::time::Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    Ok(left)
}

/// A socket timeout (`WouldBlock` on Unix) as the timeout it is.
fn timed_out(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::ErrorKind::TimedOut.into()
    } else {
        e
    }
}

type Opening = (WebSocket<Stream>, TcpStream, Response);

fn open(
    request: Request,
    ws_config: WebSocketConfig,
    tls: Tls,
    deadline: Instant,
) -> Result<Opening, tungstenite::Error> {
    let Target { host, port, secure } = Target::of(request.uri())?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    let mut tcp = None;
    for addr in (host.as_str(), port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, left(deadline)?) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let tcp = tcp.ok_or(last)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(left(deadline)?))?;
    tcp.set_write_timeout(Some(left(deadline)?))?;
    let waiter = tcp.try_clone()?;
    let tcp = Tcp {
        sock: tcp,
        empty: None,
        block: false,
    };
    let stream = if secure {
        tls_stream(tcp, &host, &tls, deadline)?
    } else {
        Stream::Plain(tcp)
    };
    let (ws, response) =
        match tungstenite::client::client_with_config(request, stream, Some(ws_config)) {
            Ok(done) => done,
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Io(e))) => {
                return Err(tungstenite::Error::Io(timed_out(e)));
            }
            Err(tungstenite::HandshakeError::Failure(e)) => return Err(e),
            Err(tungstenite::HandshakeError::Interrupted(_)) => {
                return Err(tungstenite::Error::Io(io::ErrorKind::TimedOut.into()));
            }
        };
    // The socket stays in blocking mode: each read and write says whether
    // it may wait.
    waiter.set_read_timeout(None)?;
    waiter.set_write_timeout(None)?;
    let mut ws = ws;
    ws.get_mut().tcp().empty = Some(false);
    Ok((ws, waiter, response))
}

#[cfg(feature = "rustls")]
fn tls_stream(
    mut sock: Tcp,
    host: &str,
    tls: &Tls,
    deadline: Instant,
) -> Result<Stream, tungstenite::Error> {
    // Refused as rustls errors, which the mapping classifies as TLS failures.
    let refused = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
    let Some(config) = tls.config() else {
        return Err(refused(rustls::Error::General("no TLS configuration".into())).into());
    };
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| refused(rustls::Error::General("not a server name".into())))?;
    let mut conn = rustls::ClientConnection::new(config.clone(), name).map_err(refused)?;
    while conn.is_handshaking() {
        left(deadline)?;
        conn.complete_io(&mut sock).map_err(timed_out)?;
    }
    Ok(Stream::Tls(Box::new(TlsStream { conn, sock })))
}

#[cfg(not(feature = "rustls"))]
fn tls_stream(
    _sock: Tcp,
    _host: &str,
    _tls: &Tls,
    _deadline: Instant,
) -> Result<Stream, tungstenite::Error> {
    Err(tungstenite::Error::Url(
        tungstenite::error::UrlError::TlsFeatureNotEnabled,
    ))
}
