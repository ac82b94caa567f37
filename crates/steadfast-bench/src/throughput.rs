//! N connections, each keeping one message in flight (uWebSockets-style load):
//! messages per second, round-trip percentiles and the client's CPU per
//! round trip, steadfast vs raw, over pairs of back-to-back rounds; the
//! median round of each, and the median of the per-pair ratios.

use crate::{ServerProcess, runtime};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};
use steadfast_tokio::core::{Bytes, Config, Event, Message, State};
use steadfast_tokio::{Builder, WebSocketConfig, default_websocket_config};
use tokio_tungstenite::tungstenite;

/// Sets of back-to-back rounds per case, unless the command line says.
const ROUNDS: usize = 9;
pub(crate) const ROUND: Duration = Duration::from_secs(2);

#[derive(Clone, Copy)]
pub(crate) struct Round {
    per_sec: f64,
    p50_us: u64,
    p99_us: u64,
    /// The client thread's CPU time per round trip, in µs: steadier than
    /// wall time on a shared machine, and what the client alone costs.
    cpu_us: f64,
}

/// When a connection stops: at a wall-clock deadline (the timed rounds) or
/// after a number of round trips (`profile`, for callgrind).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Until {
    Deadline(Instant),
    Count(usize),
}

impl Until {
    /// After `count` round trips, or at the end of a timed round from now.
    pub(crate) fn of(count: Option<usize>) -> Until {
        match count {
            Some(n) => Until::Count(n),
            None => Until::Deadline(Instant::now() + ROUND),
        }
    }

    pub(crate) fn more(self, done: usize) -> bool {
        match self {
            Until::Deadline(d) => Instant::now() < d,
            Until::Count(n) => done < n,
        }
    }
}

async fn raw_run(
    url: &str,
    conns: usize,
    payload: Bytes,
    count: Option<usize>,
    ws_config: WebSocketConfig,
) -> Round {
    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(ws_config), true)
            .await
            .expect("raw connect");
        streams.push(ws);
    }
    let until = Until::of(count);
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut ws| {
            let payload = payload.clone();
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).expect("histogram");
                while until.more(hist.len() as usize) {
                    let t = Instant::now();
                    if ws
                        .send(tungstenite::Message::Binary(payload.clone()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    match ws.next().await {
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                    let _ = hist.record(t.elapsed().as_micros() as u64);
                }
                let _ = ws.close(None).await;
                hist
            })
        })
        .collect();
    collect(tasks).await
}

/// A client to measure.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Client {
    /// tokio-tungstenite, sending and reading in one task.
    Raw,
    /// steadfast-tokio with its defaults.
    Steadfast,
}

impl Client {
    /// The clients measured side by side, raw first.
    const ALL: [Client; 2] = [Client::Raw, Client::Steadfast];

    pub(crate) async fn round(
        self,
        url: &str,
        conns: usize,
        payload: Bytes,
        count: Option<usize>,
        ws_config: WebSocketConfig,
    ) -> Round {
        match self {
            Client::Raw => raw_run(url, conns, payload, count, ws_config).await,
            Client::Steadfast => steadfast_run(url, conns, payload, count, ws_config).await,
        }
    }
}

async fn steadfast_run(
    url: &str,
    conns: usize,
    payload: Bytes,
    count: Option<usize>,
    ws_config: WebSocketConfig,
) -> Round {
    let mut clients = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (handle, events) = Builder::new(url)
            .expect("url")
            .config(Config::default())
            .websocket_config(ws_config)
            .connect();
        let mut status = handle.watch();
        let _ = status.wait_for(|s| *s == State::Open).await;
        clients.push((handle, events));
    }
    let until = Until::of(count);
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|(handle, mut events)| {
            let payload = payload.clone();
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).expect("histogram");
                'outer: while until.more(hist.len() as usize) {
                    let t = Instant::now();
                    if handle.send(Message::binary(payload.clone())).is_err() {
                        break;
                    }
                    loop {
                        match events.next().await {
                            Some(Event::Message(_)) => break,
                            Some(_) => continue,
                            None => break 'outer,
                        }
                    }
                    let _ = hist.record(t.elapsed().as_micros() as u64);
                }
                drop(handle);
                hist
            })
        })
        .collect();
    collect(tasks).await
}

/// Await the connections' tasks (spawned, not yet run: the runtime has
/// one thread) and sum up the round.
pub(crate) async fn collect(tasks: Vec<tokio::task::JoinHandle<Histogram<u64>>>) -> Round {
    let cpu_before = thread_cpu_ns();
    let mut all = Histogram::<u64>::new(3).expect("histogram");
    for t in tasks {
        if let Ok(h) = t.await {
            let _ = all.add(h);
        }
    }
    let cpu = thread_cpu_ns().saturating_sub(cpu_before);
    Round {
        per_sec: all.len() as f64 / ROUND.as_secs_f64(),
        p50_us: all.value_at_quantile(0.5),
        p99_us: all.value_at_quantile(0.99),
        cpu_us: cpu as f64 / 1000.0 / all.len().max(1) as f64,
    }
}

/// CPU time this thread has run, in ns (Linux's schedstat; 0 elsewhere).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

impl Round {
    /// "p50 / p99" in µs, for a table cell.
    fn latency(&self) -> String {
        format!("{} / {}", self.p50_us, self.p99_us)
    }
}

/// The cases (connections, message size, payload), or the one
/// named like `500x16384`.
fn cases(only: Option<&str>) -> impl Iterator<Item = (usize, usize, Bytes)> + '_ {
    [(100, 20), (10, 1024), (10, 16 * 1024), (500, 16 * 1024)]
        .into_iter()
        .filter(move |(conns, size)| only.is_none_or(|o| o == format!("{conns}x{size}")))
        .map(|(conns, size)| (conns, size, Bytes::from(vec![b'x'; size])))
}

/// "10 × 16 KiB", "100 × 20 B".
fn label(conns: usize, size: usize) -> String {
    if size >= 1024 {
        format!("{conns} × {} KiB", size / 1024)
    } else {
        format!("{conns} × {size} B")
    }
}

/// The median round by throughput, and the median CPU per round trip
/// (over all rounds: the two need not come from the same one).
fn median(mut rounds: Vec<Round>) -> Round {
    let cpu_us = median_of(rounds.iter().map(|r| r.cpu_us));
    rounds.sort_by(|a, b| a.per_sec.total_cmp(&b.per_sec));
    Round {
        cpu_us,
        ..rounds[rounds.len() / 2]
    }
}

fn median_of(values: impl Iterator<Item = f64>) -> f64 {
    quartiles(values)[1]
}

/// The 25th, 50th and 75th percentiles (nearest rank).
fn quartiles(values: impl Iterator<Item = f64>) -> [f64; 3] {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    [1, 2, 3].map(|q| {
        values
            .get(values.len() * q / 4)
            .copied()
            .unwrap_or(f64::NAN)
    })
}

/// Client `i` / raw within each set of back-to-back rounds, over the
/// sets: the quartiles of the throughput ratio, and the median ratio of
/// client CPU per round trip. Comparing within a set cancels the drift of a
/// shared machine's speed; comparing medians does not.
fn ratios(sets: &[[Round; 2]], i: usize) -> ([f64; 3], f64) {
    (
        quartiles(sets.iter().map(|s| s[i].per_sec / s[0].per_sec)),
        median_of(sets.iter().map(|s| s[i].cpu_us / s[0].cpu_us)),
    )
}

/// "0.97 (0.94–0.99)": the median ratio and its interquartile range.
fn ratio_cell([q1, median, q3]: [f64; 3]) -> String {
    format!("{median:.3} ({q1:.2}–{q3:.2})")
}

/// `profile <raw|steadfast> <conns> <bytes> <round trips per connection>`:
/// a fixed amount of work, for `valgrind --tool=callgrind` (which counts
/// instructions, so the two clients compare exactly; the server is a child
/// process and is not counted).
pub(crate) fn profile(args: &[String]) {
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (conns, size, count) = (arg(1, 10), arg(2, 1024), arg(3, 2000));
    let server = ServerProcess::start(0);
    let url = server.url();
    let payload = Bytes::from(vec![b'x'; size]);
    let (rt, ws_config) = (runtime(), default_websocket_config());
    let client = match args.first().map(String::as_str) {
        Some("raw") => Client::Raw,
        _ => Client::Steadfast,
    };
    let round = rt.block_on(client.round(&url, conns, payload, Some(count), ws_config));
    println!(
        "{} round trips, p50 {} µs, p99 {} µs",
        round.per_sec * ROUND.as_secs_f64(),
        round.p50_us,
        round.p99_us
    );
}

/// `only`: run just the case named like `500x16384` (connections x bytes);
/// `sets`: how many sets of back-to-back rounds (default [`ROUNDS`]).
pub(crate) fn run(only: Option<&str>, sets: Option<usize>) {
    let rounds = sets.unwrap_or(ROUNDS).max(1);
    let server = ServerProcess::start(0);
    let url = server.url();
    let rt = runtime();
    println!(
        "\n### Throughput: N connections, one message in flight each ({rounds} sets of back-to-back {ROUND:?} rounds, medians)\n"
    );
    println!(
        "Ratio: steadfast / raw within each set, the median over the sets (interquartile range).\n"
    );
    println!(
        "| case | raw msg/s | steadfast msg/s | ratio | raw p50 / p99 µs | steadfast p50 / p99 µs | client CPU µs/msg raw / steadfast | CPU ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (conns, size, payload) in cases(only) {
        let ws_config = default_websocket_config();
        let mut sets: Vec<[Round; 2]> = Vec::with_capacity(rounds);
        for i in 0..rounds {
            let mut set = [None; 2];
            // Rotate which goes first, so none always runs warmer.
            for k in 0..Client::ALL.len() {
                let c = (i + k) % Client::ALL.len();
                let round = Client::ALL[c].round(&url, conns, payload.clone(), None, ws_config);
                set[c] = Some(rt.block_on(round));
            }
            sets.push(set.map(|r| r.expect("every client ran")));
        }
        let (ratio, cpu_ratio) = ratios(&sets, 1);
        let m = |i: usize| median(sets.iter().map(|s| s[i]).collect());
        let (raw, sf) = (m(0), m(1));
        println!(
            "| {} | {:.0} | {:.0} | {} | {} | {} | {:.2} / {:.2} | {:.3} |",
            label(conns, size),
            raw.per_sec,
            sf.per_sec,
            ratio_cell(ratio),
            raw.latency(),
            sf.latency(),
            raw.cpu_us,
            sf.cpu_us,
            cpu_ratio
        );
    }
    #[cfg(feature = "ezsockets")]
    vs_ezsockets(&rt, &url, only);
}

/// ezsockets and steadfast against raw tokio-tungstenite, all three at
/// tungstenite's default `WebSocketConfig` (the only one ezsockets' client takes).
#[cfg(feature = "ezsockets")]
fn vs_ezsockets(rt: &tokio::runtime::Runtime, url: &str, only: Option<&str>) {
    println!(
        "\n### ezsockets 0.7 and steadfast vs raw, all at tungstenite's default WebSocketConfig ({ROUNDS} alternating rounds of {ROUND:?}, median)\n"
    );
    println!(
        "| case | raw msg/s | ezsockets msg/s | ezsockets / raw | steadfast msg/s | steadfast / raw | raw p50 / p99 µs | ezsockets p50 / p99 µs | steadfast p50 / p99 µs |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (conns, size, payload) in cases(only) {
        let (mut raw, mut ez, mut sf) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let default = WebSocketConfig::default();
            raw.push(rt.block_on(raw_run(url, conns, payload.clone(), None, default)));
            ez.push(rt.block_on(crate::peer_ezsockets::round(
                url,
                conns,
                payload.clone(),
                None,
            )));
            sf.push(rt.block_on(steadfast_run(url, conns, payload.clone(), None, default)));
        }
        let (raw, ez, sf) = (median(raw), median(ez), median(sf));
        println!(
            "| {} | {:.0} | {:.0} | {:.3} | {:.0} | {:.3} | {} | {} | {} |",
            label(conns, size),
            raw.per_sec,
            ez.per_sec,
            ez.per_sec / raw.per_sec,
            sf.per_sec,
            sf.per_sec / raw.per_sec,
            raw.latency(),
            ez.latency(),
            sf.latency()
        );
    }
}
