//! `FaultProxy`: a TCP proxy on loopback between client and server whose
//! faults can be switched at run time.

use crate::ConnTasks;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use steadfast_core::SplitMix64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A direction of traffic through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

/// The faults in force. Every field can be changed while connections run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Refuse new connections (reset them at once).
    pub down: bool,
    /// Accept, but swallow everything in both directions and answer nothing.
    pub blackhole: bool,
    /// Delay every chunk by this much…
    pub latency: Duration,
    /// …plus up to this much more, drawn per chunk.
    pub jitter: Duration,
    /// Forward at most this many bytes per second in each direction.
    pub bandwidth: Option<u64>,
    /// Split every write into pieces of at most this many bytes.
    pub slice: Option<usize>,
    /// Reset a connection once this many bytes have crossed it (both ways).
    pub cut_after: Option<u64>,
    /// Stop forwarding client → server.
    pub stall_up: bool,
    /// Stop forwarding server → client.
    pub stall_down: bool,
    /// Hold the server's FIN this long before passing it on.
    pub slow_close: Duration,
}

struct Control {
    faults: watch::Sender<Faults>,
    /// Bumped to reset every open connection.
    resets: watch::Sender<u64>,
    seed: AtomicU64,
}

/// A fault-injecting TCP proxy on `127.0.0.1`. Dropping it stops it.
pub struct FaultProxy {
    addr: SocketAddr,
    control: Arc<Control>,
    accept: JoinHandle<()>,
    conns: ConnTasks,
}

impl FaultProxy {
    /// Proxy connections to `upstream`, listening on an ephemeral port of
    /// `127.0.0.1`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        FaultProxy::start_at(SocketAddr::from(([127, 0, 0, 1], 0)), upstream).await
    }

    /// Proxy connections to `upstream`, listening on `listen` (port 0 for an
    /// ephemeral one).
    pub async fn start_at(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let control = Arc::new(Control {
            faults: watch::Sender::new(Faults::default()),
            resets: watch::Sender::new(0),
            seed: AtomicU64::new(0x5eed),
        });
        let conns = ConnTasks::default();
        let accept = tokio::spawn(accept_loop(
            listener,
            upstream,
            control.clone(),
            conns.clone(),
        ));
        Ok(FaultProxy {
            addr,
            control,
            accept,
            conns,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/`: the listening address as a URL.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.control.faults.borrow().clone()
    }

    /// Change the faults in force.
    pub fn update(&self, f: impl FnOnce(&mut Faults)) {
        self.control.faults.send_modify(f);
    }

    /// Refuse (reset) new connections, or stop refusing.
    pub fn set_down(&self, down: bool) {
        self.update(|f| f.down = down);
    }

    /// Swallow all traffic silently, or stop.
    pub fn set_blackhole(&self, on: bool) {
        self.update(|f| f.blackhole = on);
    }

    /// Reset every open connection (RST to both ends).
    pub fn reset_all(&self) {
        self.control.resets.send_modify(|n| *n += 1);
    }

    /// Clear every fault.
    pub fn heal(&self) {
        self.update(|f| *f = Faults::default());
    }

    /// Connections currently proxied.
    pub fn open_connections(&self) -> usize {
        self.conns.live()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.conns.abort_all();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    control: Arc<Control>,
    conns: ConnTasks,
) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                // EMFILE and friends pass; keep accepting.
                tracing::warn!(error = %e, "proxy accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let control = control.clone();
        conns.spawn(async move {
            if control.faults.borrow().down {
                return reset(client);
            }
            let _ = client.set_nodelay(true);
            let server = match TcpStream::connect(upstream).await {
                Ok(s) => s,
                Err(_) => return reset(client),
            };
            let _ = server.set_nodelay(true);
            proxy(client, server, control).await;
        });
    }
}

fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn proxy(client: TcpStream, server: TcpStream, control: Arc<Control>) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let link = Link {
        control,
        crossed: AtomicU64::new(0),
        cut: watch::Sender::new(false),
    };
    tokio::join!(
        pump(client_read, server_write, Direction::Up, &link),
        pump(server_read, client_write, Direction::Down, &link),
    );
}

/// What the two directions of one proxied connection share.
struct Link {
    control: Arc<Control>,
    /// Bytes forwarded both ways.
    crossed: AtomicU64,
    /// Set when this connection must be reset.
    cut: watch::Sender<bool>,
}

/// Forwards one direction until it ends. On a reset (global or this
/// connection's) both sockets are reset (RST), not closed.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, dir: Direction, link: &Link) {
    let mut faults_rx = link.control.faults.subscribe();
    let mut resets = link.control.resets.subscribe();
    let mut cut = link.cut.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    let stalled = |f: &Faults| {
        (dir == Direction::Up && f.stall_up) || (dir == Direction::Down && f.stall_down)
    };
    // Resolves when this connection must be reset.
    macro_rules! or_reset {
        ($fut:expr) => {
            tokio::select! {
                _ = resets.changed() => return rst(from, to),
                _ = cut.changed() => return rst(from, to),
                out = $fut => out,
            }
        };
    }
    // Resolves when no stall applies to this direction.
    macro_rules! until_unstalled {
        () => {
            while stalled(&faults_rx.borrow_and_update()) {
                if or_reset!(faults_rx.changed()).is_err() {
                    return;
                }
            }
        };
    }
    loop {
        // Stalled: read nothing until the stall is lifted.
        until_unstalled!();
        let n = match or_reset!(from.read(&mut buf)) {
            Ok(0) | Err(_) => {
                let faults = faults_rx.borrow().clone();
                if faults.blackhole {
                    // Swallow the FIN too; keep the other side open.
                    to.forget();
                    return;
                }
                if dir == Direction::Down && !faults.slow_close.is_zero() {
                    or_reset!(tokio::time::sleep(faults.slow_close));
                }
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        // A stall or blackhole set while the read was under way applies to its data too.
        until_unstalled!();
        let faults = faults_rx.borrow().clone();
        if faults.blackhole {
            continue;
        }
        let total = link.crossed.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        let mut chunk = &buf[..n];
        if let Some(limit) = faults.cut_after {
            if total > limit {
                let keep = (n as u64).saturating_sub(total - limit) as usize;
                let _ = to.write_all(&chunk[..keep]).await;
                link.cut.send_replace(true);
                return rst(from, to);
            }
        }
        let mut delay = faults.latency;
        if !faults.jitter.is_zero() {
            let draw = link.control.seed.fetch_add(1, Ordering::Relaxed);
            let jitter_ns = u64::try_from(faults.jitter.as_nanos()).unwrap_or(u64::MAX);
            delay += Duration::from_nanos(SplitMix64::new(draw).between(0, jitter_ns));
        }
        if let Some(rate) = faults.bandwidth.filter(|r| *r > 0) {
            delay += Duration::from_secs_f64(n as f64 / rate as f64);
        }
        if !delay.is_zero() {
            or_reset!(tokio::time::sleep(delay));
        }
        let piece = faults.slice.filter(|s| *s > 0).unwrap_or(usize::MAX);
        while !chunk.is_empty() {
            let (now, rest) = chunk.split_at(piece.min(chunk.len()));
            if or_reset!(to.write_all(now)).is_err() {
                return;
            }
            let _ = to.flush().await;
            chunk = rest;
        }
    }
}

/// Reset both sockets this pump touches: zero linger, and no FIN from the
/// write half (the read half's drop, with the other pump's, closes them).
fn rst(from: OwnedReadHalf, to: OwnedWriteHalf) {
    let _ = from.as_ref().set_zero_linger();
    let _ = to.as_ref().set_zero_linger();
    to.forget();
}
