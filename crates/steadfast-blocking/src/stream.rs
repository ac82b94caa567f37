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
    fn tcp_ref(&self) -> &Tcp {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "rustls")]
            Stream::Tls(s) => &s.sock,
        }
    }

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
        self.tcp_ref().empty == Some(true)
    }

    /// A wait on the socket has ended: it may hold data again.
    pub(crate) fn may_have_data(&mut self) {
        let tcp = self.tcp();
        if tcp.empty.is_some() {
            tcp.empty = Some(false);
        }
    }

    /// What a receiver read from the socket outside the engine's lock
    /// ([`read_outside`]) into `buf`: the next reads take it first. The
    /// buffer itself is taken (the receiver gets an empty one back, and
    /// [`Stream::give_back`] returns it once read), so nothing is copied.
    /// Fewer bytes than `buf` holds mean the socket held no more. An end
    /// of stream or an error reaches the next read as the socket gave it.
    pub(crate) fn read_ahead(&mut self, read: io::Result<usize>, buf: &mut Vec<u8>) {
        let tcp = self.tcp();
        match read {
            Ok(0) => {
                // The end of the stream: the next read asks the socket,
                // which says so again.
                tcp.empty = Some(false);
            }
            Ok(n) => {
                let n = n.min(buf.len());
                tcp.empty = Some(n < buf.len());
                let ahead = &mut tcp.ahead;
                if ahead.at < ahead.filled {
                    // Not all read yet (not expected): keep both, in order.
                    let mut bytes = ahead.bytes[ahead.at..ahead.filled].to_vec();
                    bytes.extend_from_slice(&buf[..n]);
                    ahead.filled = bytes.len();
                    ahead.bytes = bytes;
                } else {
                    std::mem::swap(&mut ahead.bytes, buf);
                    ahead.filled = n;
                }
                ahead.at = 0;
            }
            Err(e) => tcp.ahead.error = Some(e),
        }
    }

    /// A read outside the lock timed out: the socket was empty (what comes
    /// after it, a wait sees).
    pub(crate) fn found_nothing(&mut self) {
        self.tcp().found_empty();
    }

    /// Whether bytes read outside the lock (or its error) wait to be read.
    pub(crate) fn has_ahead(&self) -> bool {
        let ahead = &self.tcp_ref().ahead;
        ahead.at < ahead.filled || ahead.error.is_some()
    }

    /// The buffer [`Stream::read_ahead`] took, once all it held was read:
    /// back into `buf` (if `buf` has none), so an idle connection keeps no
    /// buffer of its own.
    pub(crate) fn give_back(&mut self, buf: &mut Vec<u8>) {
        let ahead = &mut self.tcp().ahead;
        if ahead.at >= ahead.filled && buf.is_empty() {
            *buf = std::mem::take(&mut ahead.bytes);
            (ahead.at, ahead.filled) = (0, 0);
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
    /// What a receiver read outside the engine's lock, for the next reads.
    ahead: Ahead,
}

/// Bytes (or an error) read from the socket outside the engine's lock,
/// handed out before the socket is asked again.
#[derive(Debug, Default)]
struct Ahead {
    /// The receiver's buffer, while it holds bytes not yet read.
    bytes: Vec<u8>,
    /// How much of `bytes` the read outside the lock filled.
    filled: usize,
    /// How much of that was handed out.
    at: usize,
    error: Option<io::Error>,
}

impl Ahead {
    /// Copy what is ahead into `buf`; `None` if nothing is.
    fn take(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        if self.at < self.filled {
            let n = buf.len().min(self.filled - self.at);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            return Some(Ok(n));
        }
        self.error.take().map(Err)
    }
}

/// One read from `sock` that blocks until data comes or the socket's read
/// timeout passes (`WouldBlock` then), by a receiver that does not hold
/// the engine's lock; what it brings goes to [`Stream::read_ahead`].
pub(crate) fn read_outside(sock: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    match rustix::net::recv(sock, buf, RecvFlags::empty()) {
        Ok((n, _)) => Ok(n),
        // A signal ends the wait, as the socket's timeout would.
        Err(rustix::io::Errno::INTR) => Err(io::ErrorKind::WouldBlock.into()),
        Err(e) => Err(e.into()),
    }
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
        if let Some(read) = self.ahead.take(buf) {
            return read;
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
        ahead: Ahead::default(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// An open socket pair on loopback: ours as a `Stream`, and the peer.
    fn pair() -> (Stream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let ours = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        // Bounds the blocking reads below, should the socket fail them.
        ours.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("read timeout");
        let (peer, _) = listener.accept().expect("accept");
        let tcp = Tcp {
            sock: ours,
            empty: Some(false),
            block: false,
            ahead: Ahead::default(),
        };
        (Stream::Plain(tcp), peer)
    }

    fn read_some(stream: &mut Stream, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; n];
        let got = stream.read(&mut buf)?;
        buf.truncate(got);
        Ok(buf)
    }

    #[test]
    fn bytes_read_outside_the_lock_come_first_then_the_socket_and_the_buffer_goes_back() {
        let (mut stream, mut peer) = pair();
        let mut buf = b"hello\0\0\0".to_vec();
        // A full read: the socket may hold more.
        stream.read_ahead(Ok(buf.len()), &mut buf);
        assert!(buf.is_empty(), "the buffer is taken, not copied");
        peer.write_all(b"world").expect("write");
        assert_eq!(read_some(&mut stream, 3).expect("ahead"), b"hel");
        stream.give_back(&mut buf);
        assert!(buf.is_empty(), "not back while bytes wait in it");
        assert_eq!(read_some(&mut stream, 16).expect("ahead"), b"lo\0\0\0");
        stream.give_back(&mut buf);
        assert_eq!(buf.len(), 8, "back once read");
        // Then the socket, as it was left: a read that waits for the
        // peer's bytes, then finds no more.
        stream.set_blocking_reads(true);
        assert_eq!(read_some(&mut stream, 16).expect("the socket"), b"world");
        assert_eq!(
            read_some(&mut stream, 16).expect_err("no more").kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn a_short_read_outside_the_lock_marks_the_socket_empty_and_an_error_comes_next() {
        let (mut stream, mut peer) = pair();
        peer.write_all(b"unasked").expect("write");
        let mut buf = b"ab\0\0".to_vec();
        stream.read_ahead(Ok(2), &mut buf);
        assert_eq!(read_some(&mut stream, 8).expect("ahead"), b"ab");
        // Short: the socket is taken as empty, and not asked.
        assert_eq!(
            read_some(&mut stream, 8).expect_err("empty").kind(),
            io::ErrorKind::WouldBlock
        );
        let mut none = Vec::new();
        stream.read_ahead(Err(io::ErrorKind::ConnectionReset.into()), &mut none);
        assert_eq!(
            read_some(&mut stream, 8).expect_err("the error").kind(),
            io::ErrorKind::ConnectionReset
        );
    }
}
