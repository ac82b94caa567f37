//! N connections, each keeping one message in flight (uWebSockets-style load):
//! messages per second, round-trip percentiles and the client's CPU per
//! round trip, steadfast vs raw, over pairs of back-to-back rounds; the
//! median round of each, and the median of the per-pair ratios.

use crate::{ServerProcess, runtime};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};
use steadfast_tokio::core::{Bytes, Config, Event, Message, OutboxConfig, OutcomeEvents, State};
use steadfast_tokio::{Builder, WebSocketConfig, default_websocket_config};
use tokio_tungstenite::tungstenite;

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
    /// steadfast-tokio with default settings but these outcome events.
    Steadfast(OutcomeEvents),
}

impl Client {
    /// The three measured side by side: raw, then steadfast reporting only
    /// failed messages (like raw, which reports nothing per write), then
    /// steadfast with all defaults (an outcome event per message).
    const ALL: [Client; 3] = [
        Client::Raw,
        Client::Steadfast(OutcomeEvents::Failures),
        Client::Steadfast(OutcomeEvents::All),
    ];

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
            Client::Steadfast(outcomes) => {
                steadfast_run(url, conns, payload, count, ws_config, outcomes).await
            }
        }
    }
}

async fn steadfast_run(
    url: &str,
    conns: usize,
    payload: Bytes,
    count: Option<usize>,
    ws_config: WebSocketConfig,
    outcome_events: OutcomeEvents,
) -> Round {
    let outbox = OutboxConfig {
        outcome_events,
        ..Default::default()
    };
    let config = Config::builder().outbox(outbox).build().expect("config");
    let mut clients = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (handle, events) = Builder::new(url)
            .expect("url")
            .config(config.clone())
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
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Client `i` / raw within each set of back-to-back rounds, median over
/// the sets: throughput and client CPU per round trip. Comparing within a
/// set cancels the drift of a shared machine's speed; medians do not.
fn ratios(sets: &[[Round; 3]], i: usize) -> (f64, f64) {
    (
        median_of(sets.iter().map(|s| s[i].per_sec / s[0].per_sec)),
        median_of(sets.iter().map(|s| s[i].cpu_us / s[0].cpu_us)),
    )
}

/// `profile <raw|steadfast|steadfast-all> <conns> <bytes> <round trips per
/// connection>`: a fixed amount of work, for `valgrind --tool=callgrind`
/// (which counts instructions, so the clients compare exactly; the server
/// is a child process and is not counted). `steadfast` reports failed
/// messages only, `steadfast-all` every outcome.
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
        Some("steadfast-all") => Client::Steadfast(OutcomeEvents::All),
        _ => Client::Steadfast(OutcomeEvents::Failures),
    };
    let round = rt.block_on(client.round(&url, conns, payload, Some(count), ws_config));
    println!(
        "{} round trips, p50 {} µs, p99 {} µs",
        round.per_sec * ROUND.as_secs_f64(),
        round.p50_us,
        round.p99_us
    );
}

/// `only`: run just the case named like `500x16384` (connections x bytes).
pub(crate) fn run(only: Option<&str>) {
    let server = ServerProcess::start(0);
    let url = server.url();
    let rt = runtime();
    println!(
        "\n### Throughput: N connections, one message in flight each ({ROUNDS} sets of back-to-back {ROUND:?} rounds, medians)\n"
    );
    println!(
        "steadfast: outcome events for failed messages only; steadfast (all): the default, an outcome event per message.\n"
    );
    println!(
        "| case | raw msg/s | steadfast msg/s | ratio | steadfast (all) msg/s | ratio | raw p50 / p99 µs | steadfast p50 / p99 µs | steadfast (all) p50 / p99 µs | client CPU µs/msg raw / steadfast / (all) | CPU ratios |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (conns, size, payload) in cases(only) {
        let ws_config = default_websocket_config();
        let mut sets: Vec<[Round; 3]> = Vec::with_capacity(ROUNDS);
        for i in 0..ROUNDS {
            let mut set = [None; 3];
            // Rotate which goes first, so none always runs warmer.
            for k in 0..Client::ALL.len() {
                let c = (i + k) % Client::ALL.len();
                let round = Client::ALL[c].round(&url, conns, payload.clone(), None, ws_config);
                set[c] = Some(rt.block_on(round));
            }
            sets.push(set.map(|r| r.expect("every client ran")));
        }
        let ((quiet, quiet_cpu), (all, all_cpu)) = (ratios(&sets, 1), ratios(&sets, 2));
        let m = |i: usize| median(sets.iter().map(|s| s[i]).collect());
        let (raw, sf, sf_all) = (m(0), m(1), m(2));
        println!(
            "| {} | {:.0} | {:.0} | {:.3} | {:.0} | {:.3} | {} | {} | {} | {:.2} / {:.2} / {:.2} | {:.3} / {:.3} |",
            label(conns, size),
            raw.per_sec,
            sf.per_sec,
            quiet,
            sf_all.per_sec,
            all,
            raw.latency(),
            sf.latency(),
            sf_all.latency(),
            raw.cpu_us,
            sf.cpu_us,
            sf_all.cpu_us,
            quiet_cpu,
            all_cpu
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
            let sf_round = steadfast_run(
                url,
                conns,
                payload.clone(),
                None,
                default,
                OutcomeEvents::Failures,
            );
            sf.push(rt.block_on(sf_round));
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
