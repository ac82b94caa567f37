//! Waiting on a socket and a waker at once, with a timeout: `poll(2)`
//! through rustix (no unsafe here, no reactor).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Instant;

/// What a socket should be ready for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interest {
    pub(crate) read: bool,
    pub(crate) write: bool,
}

/// Wait until the socket is ready as asked, the waker is woken, or
/// `until` (`None`: no timeout). Returns early on a signal. Whether the
/// waker was woken (then [`drain`] it).
pub(crate) fn wait(
    waker: Option<&UnixStream>,
    sock: Option<(&TcpStream, Interest)>,
    until: Option<Instant>,
) -> io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let timeout = until.map(|until| {
        // Rounded up to the millisecond: a deadline is never woken for a
        // little early, only to wait again.
        let ms = until
            .saturating_duration_since(Instant::now())
            .as_nanos()
            .div_ceil(1_000_000);
        Timespec {
            tv_sec: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
            tv_nsec: i64::try_from(ms % 1000).unwrap_or(0) * 1_000_000,
        }
    });
    let with_waker = waker.is_some();
    let waker = waker.map(|w| PollFd::new(w, PollFlags::IN));
    let sock = sock.map(|(sock, interest)| {
        let mut flags = PollFlags::empty();
        if interest.read {
            flags |= PollFlags::IN;
        }
        if interest.write {
            flags |= PollFlags::OUT;
        }
        PollFd::new(sock, flags)
    });
    let woken = |fd: &PollFd<'_>| !fd.revents().is_empty();
    let polled = match (waker, sock) {
        (Some(a), Some(b)) => {
            let mut fds = [a, b];
            poll(&mut fds, timeout.as_ref()).map(|_| woken(&fds[0]))
        }
        (Some(a), None) => {
            let mut fds = [a];
            poll(&mut fds, timeout.as_ref()).map(|_| woken(&fds[0]))
        }
        (None, Some(a)) => poll(&mut [a], timeout.as_ref()).map(|_| false),
        (None, None) => poll(&mut [], timeout.as_ref()).map(|_| false),
    };
    match polled {
        Ok(woken) => Ok(woken),
        // A signal: look again (and drain, in case).
        Err(rustix::io::Errno::INTR) => Ok(with_waker),
        Err(e) => Err(e.into()),
    }
}

/// Whether `sock` holds data (or its end, or an error) now, without
/// taking any: `poll(2)` with no timeout.
pub(crate) fn readable_now(sock: &TcpStream) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(sock, PollFlags::IN)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // A failed poll counts as readable: the reader finds out what it is.
    poll(&mut fds, Some(&now)).map_or(true, |_| !fds[0].revents().is_empty())
}

/// Both ends of a waker: a command writes a byte to one, the loop thread
/// waits on the other.
pub(crate) fn waker_pair() -> io::Result<(UnixStream, UnixStream)> {
    let (tx, rx) = UnixStream::pair()?;
    tx.set_nonblocking(true)?;
    rx.set_nonblocking(true)?;
    Ok((tx, rx))
}

/// Wake the loop thread (a full buffer means it is woken already).
pub(crate) fn wake(tx: &UnixStream) {
    let _ = (&*tx).write(&[1]);
}

/// Take every wake so far.
pub(crate) fn drain(rx: &UnixStream) {
    let mut buf = [0u8; 64];
    while matches!((&*rx).read(&mut buf), Ok(n) if n > 0) {}
}
