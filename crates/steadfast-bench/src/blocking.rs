//! The blocking clients: raw tungstenite on `std::net` and
//! steadfast-blocking in both modes, one OS thread per connection. Each
//! thread connects, waits until every connection is open, then sends and
//! waits for its echo in turn; the round is collected like the async ones.

use crate::throughput::{Load, Meter, Round, Until, histogram, round_from};
use hdrhistogram::Histogram;
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};
use steadfast_blocking::core::{Event, Message, State};
use steadfast_tokio::tungstenite;

/// How a steadfast-blocking connection runs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    /// `Builder::spawn`: its own thread; this thread sends and waits on `Events`.
    Background,
    /// `Builder::connect`: this thread runs it while waiting in `next_event`.
    CallerDriven,
}

/// One round of raw blocking tungstenite.
pub(crate) fn raw(load: &Load<'_>) -> Round {
    threads(load, |url, ws_config, payload, start| {
        let (mut ws, _) = tungstenite::client::connect_with_config(url, Some(ws_config), 0)
            .expect("raw blocking connect");
        if let tungstenite::stream::MaybeTlsStream::Plain(tcp) = ws.get_ref() {
            let _ = tcp.set_nodelay(true);
        }
        let until = start();
        let mut hist = histogram();
        while until.more(hist.len() as usize) {
            let t = Instant::now();
            if ws
                .send(tungstenite::Message::Binary(payload.clone()))
                .is_err()
            {
                break;
            }
            loop {
                match ws.read() {
                    Ok(m) if m.is_binary() || m.is_text() => break,
                    Ok(_) => continue,
                    Err(_) => return hist,
                }
            }
            let _ = hist.record(t.elapsed().as_micros() as u64);
        }
        let _ = ws.close(None);
        hist
    })
}

/// One round of steadfast-blocking in `mode`.
pub(crate) fn steadfast(load: &Load<'_>, mode: Mode) -> Round {
    threads(load, move |url, ws_config, payload, start| {
        let builder = steadfast_blocking::Builder::new(url)
            .expect("url")
            .websocket_config(ws_config);
        let mut hist = histogram();
        match mode {
            Mode::Background => {
                let (handle, mut events) = builder.spawn().expect("spawn");
                while handle.state() != State::Open {
                    let _ = events.recv_timeout(Duration::from_millis(10));
                }
                let until = start();
                'outer: while until.more(hist.len() as usize) {
                    let t = Instant::now();
                    if handle.send(Message::binary(payload.clone())).is_err() {
                        break;
                    }
                    loop {
                        match events.recv() {
                            Some(Event::Message(_)) => break,
                            Some(_) => continue,
                            None => break 'outer,
                        }
                    }
                    let _ = hist.record(t.elapsed().as_micros() as u64);
                }
            }
            Mode::CallerDriven => {
                let mut conn = builder.connect();
                while conn.state() != State::Open {
                    let _ = conn.next_event(Duration::from_millis(10));
                }
                let until = start();
                'outer: while until.more(hist.len() as usize) {
                    let t = Instant::now();
                    if conn.send(Message::binary(payload.clone())).is_err() {
                        break;
                    }
                    loop {
                        match conn.next_event(Duration::from_secs(10)) {
                            Ok(Some(Event::Message(_))) => break,
                            Ok(Some(_)) => continue,
                            _ => break 'outer,
                        }
                    }
                    let _ = hist.record(t.elapsed().as_micros() as u64);
                }
            }
        }
        hist
    })
}

/// Run `client` on one thread per connection. `start` (given to each
/// thread) returns once every connection is open, with the round's end;
/// the meter starts then too. The CPU count ends while every thread is
/// still alive (an exited thread's time leaves `/proc/self/task`).
fn threads(
    load: &Load<'_>,
    client: impl Fn(
        &str,
        tungstenite::protocol::WebSocketConfig,
        tungstenite::Bytes,
        &dyn Fn() -> Until,
    ) -> Histogram<u64>
    + Send
    + Sync
    + Clone
    + 'static,
) -> Round {
    let connected = Arc::new(Barrier::new(load.conns + 1));
    let go = Arc::new(Barrier::new(load.conns + 1));
    let done = Arc::new(Barrier::new(load.conns + 1));
    let release = Arc::new(Barrier::new(load.conns + 1));
    let until: Arc<OnceLock<Until>> = Arc::default();
    let handles: Vec<_> = (0..load.conns)
        .map(|_| {
            let (connected, go, until) = (connected.clone(), go.clone(), until.clone());
            let (done, release) = (done.clone(), release.clone());
            let (url, ws_config) = (load.url.to_owned(), load.ws_config);
            let payload = load.payload.clone();
            let client = client.clone();
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let start = || {
                        connected.wait();
                        go.wait();
                        until.get().copied().unwrap_or(Until::Count(0))
                    };
                    let hist = client(&url, ws_config, payload, &start);
                    done.wait();
                    release.wait();
                    hist
                })
                .expect("spawn a client thread")
        })
        .collect();
    connected.wait();
    let _ = until.set(Until::of(load.count));
    let meter = Meter::start();
    go.wait();
    done.wait();
    let end = Meter::start();
    release.wait();
    let mut all = histogram();
    for h in handles {
        if let Ok(hist) = h.join() {
            let _ = all.add(hist);
        }
    }
    round_from(meter, end, &all)
}

/// An idle raw blocking connection as a real client keeps it: a thread
/// reading it (tungstenite answers pings as it reads), with the same stack
/// size as steadfast-blocking's thread.
pub(crate) fn raw_idle(
    url: &str,
    ws_config: tungstenite::protocol::WebSocketConfig,
) -> std::thread::JoinHandle<()> {
    let (mut ws, _) = tungstenite::client::connect_with_config(url, Some(ws_config), 0)
        .expect("raw blocking connect");
    std::thread::Builder::new()
        .stack_size(steadfast_blocking::DEFAULT_STACK_SIZE)
        .spawn(move || while ws.read().is_ok() {})
        .expect("spawn a reader thread")
}

/// An idle steadfast-blocking connection on its own thread, once open.
pub(crate) fn steadfast_idle(
    url: &str,
    ws_config: tungstenite::protocol::WebSocketConfig,
) -> (steadfast_blocking::Handle, steadfast_blocking::Events) {
    let (handle, mut events) = steadfast_blocking::Builder::new(url)
        .expect("url")
        .websocket_config(ws_config)
        .spawn()
        .expect("spawn");
    // Up to `Opened`, as an application takes it (see `memory::steadfast`).
    events
        .by_ref()
        .find(|ev| matches!(ev, Event::Opened { .. }))
        .expect("opened");
    (handle, events)
}
