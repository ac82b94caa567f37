//! N connections, each keeping one message in flight (uWebSockets-style load):
//! messages per second, round-trip percentiles and the client's CPU per
//! round trip, each client against raw tokio-tungstenite, over sets of
//! back-to-back rounds; the median round of each client, and the median of
//! the ratios within each set.

use crate::ServerProcess;
use crate::exec::{Exec, Joined, RawSocket, raw_async_io, raw_binary, raw_tokio};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use std::future::Future;
use std::time::{Duration, Instant};
use steadfast_async::{Builder, Runtime};
use steadfast_async_std::{AsyncStd, Smol};
use steadfast_tokio::core::{Bytes, Event, Message, State};
use steadfast_tokio::{Tokio, WebSocketConfig, default_websocket_config};

/// Sets of back-to-back rounds per case, unless the command line says.
const SETS: usize = 9;
pub(crate) const ROUND: Duration = Duration::from_secs(2);

#[derive(Clone, Copy)]
pub(crate) struct Round {
    /// Round trips completed (in [`ROUND`], unless a count was asked for).
    round_trips: u64,
    p50_us: u64,
    p99_us: u64,
    /// The client process's CPU time per round trip, in µs: steadier than
    /// wall time on a shared machine, and what the client alone costs (on
    /// tokio's current-thread runtime, its one thread's).
    cpu_us: f64,
    /// The part of [`cpu_us`](Self::cpu_us) spent in user space (the rest
    /// is the kernel's, mostly in the socket calls).
    user_us: f64,
    /// The echo server's CPU time per round trip (its share of the round's
    /// handshakes included), in µs: with the client's,
    /// it shows which side bounds the throughput (both are pinned, one core
    /// each).
    server_cpu_us: f64,
}

/// One load: `conns` connections to `url`, each sending `payload` and
/// awaiting its echo until `until`.
pub(crate) struct Load<'a> {
    pub(crate) url: &'a str,
    pub(crate) conns: usize,
    pub(crate) payload: Bytes,
    /// Round trips per connection (`profile`), or a timed round.
    pub(crate) count: Option<usize>,
    pub(crate) ws_config: WebSocketConfig,
}

/// An empty round-trip histogram (µs, 3 significant digits).
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is valid")
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

/// Open `load.conns` connections with `connect`, then one task each on
/// `exec`, each sending and awaiting its echo in turn.
async fn raw_run<'a, S: RawSocket, F: Future<Output = S>>(
    exec: &Exec,
    load: &Load<'a>,
    connect: impl Fn(&'a str, WebSocketConfig) -> F,
) -> Round {
    let mut streams = Vec::with_capacity(load.conns);
    for _ in 0..load.conns {
        streams.push(connect(load.url, load.ws_config).await);
    }
    let until = Until::of(load.count);
    let meter = Meter::start();
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut ws| {
            let payload = load.payload.clone();
            exec.spawn(async move {
                let mut hist = histogram();
                while until.more(hist.len() as usize) {
                    let t = Instant::now();
                    if ws.send(raw_binary(&payload)).await.is_err() {
                        break;
                    }
                    match ws.next().await {
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                    let _ = hist.record(t.elapsed().as_micros() as u64);
                }
                let _ = ws.close().await;
                hist
            })
        })
        .collect();
    collect(meter, tasks).await
}

/// A client to measure.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Client {
    /// tokio-tungstenite (async-tungstenite on async-std and smol), sending
    /// and reading in one task.
    Raw,
    /// steadfast with its defaults, on the executor's marker (blocking:
    /// steadfast-blocking on its own thread, `spawn`).
    Steadfast,
    /// steadfast-blocking run by the caller's thread (`connect`; blocking only).
    CallerDriven,
    /// ezsockets 0.7, sending from its `on_binary` callback.
    #[cfg(feature = "ezsockets")]
    Ezsockets,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Raw => "raw",
            Client::Steadfast => "steadfast",
            Client::CallerDriven => "caller-driven",
            #[cfg(feature = "ezsockets")]
            Client::Ezsockets => "ezsockets",
        }
    }

    /// One round on `exec` (ezsockets: tokio only).
    pub(crate) async fn round(self, exec: &Exec, load: &Load<'_>) -> Round {
        match (self, exec) {
            (Client::Raw, Exec::Tokio(_)) => raw_run(exec, load, raw_tokio).await,
            (Client::Raw, Exec::AsyncStd | Exec::Smol) => raw_run(exec, load, raw_async_io).await,
            (Client::Steadfast, Exec::Tokio(_)) => steadfast_run::<Tokio>(exec, load).await,
            (Client::Steadfast, Exec::AsyncStd) => steadfast_run::<AsyncStd>(exec, load).await,
            (Client::Steadfast, Exec::Smol) => steadfast_run::<Smol>(exec, load).await,
            (Client::Raw, Exec::Blocking) => crate::blocking::raw(load),
            (Client::Steadfast, Exec::Blocking) => {
                crate::blocking::steadfast(load, crate::blocking::Mode::Background)
            }
            (Client::CallerDriven, Exec::Blocking) => {
                crate::blocking::steadfast(load, crate::blocking::Mode::CallerDriven)
            }
            (Client::CallerDriven, _) => Box::pin(Client::Steadfast.round(exec, load)).await,
            #[cfg(feature = "ezsockets")]
            (Client::Ezsockets, _) => crate::peer_ezsockets::round(exec, load).await,
        }
    }
}

async fn steadfast_run<R: Runtime>(exec: &Exec, load: &Load<'_>) -> Round {
    let mut clients = Vec::with_capacity(load.conns);
    for _ in 0..load.conns {
        let (handle, events) = Builder::<R>::new(load.url)
            .expect("url")
            .websocket_config(load.ws_config)
            .connect();
        let mut status = handle.watch();
        let _ = status.wait_for(|s| s == State::Open).await;
        clients.push((handle, events));
    }
    let until = Until::of(load.count);
    let meter = Meter::start();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|(handle, mut events)| {
            let payload = load.payload.clone();
            exec.spawn(async move {
                let mut hist = histogram();
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
    collect(meter, tasks).await
}

/// The client process's CPU time when the connections' tasks start.
pub(crate) struct Meter {
    cpu_ns: u64,
    user_ns: u64,
}

impl Meter {
    /// Start counting (before the tasks are spawned: on async-std and smol
    /// they start at once, on another thread).
    pub(crate) fn start() -> Meter {
        Meter {
            cpu_ns: process_cpu_ns(),
            user_ns: process_user_ns(),
        }
    }
}

/// Await the connections' tasks and sum up the round (the server's CPU is
/// the caller's to fill in).
pub(crate) async fn collect(meter: Meter, tasks: Vec<Joined<Histogram<u64>>>) -> Round {
    let mut all = histogram();
    for t in tasks {
        if let Some(h) = t.await {
            let _ = all.add(h);
        }
    }
    round_from(meter, Meter::start(), &all)
}

/// The round of `all` round trips, with the CPU spent between `meter` and `end`.
pub(crate) fn round_from(meter: Meter, end: Meter, all: &Histogram<u64>) -> Round {
    let cpu = end.cpu_ns.saturating_sub(meter.cpu_ns);
    let user = end.user_ns.saturating_sub(meter.user_ns);
    Round {
        round_trips: all.len(),
        p50_us: all.value_at_quantile(0.5),
        p99_us: all.value_at_quantile(0.99),
        cpu_us: us_per_round_trip(cpu, all.len()),
        user_us: us_per_round_trip(user, all.len()),
        server_cpu_us: 0.0,
    }
}

/// `ns` of CPU time spread over `round_trips`, in µs each.
fn us_per_round_trip(ns: u64, round_trips: u64) -> f64 {
    ns as f64 / 1000.0 / round_trips.max(1) as f64
}

/// CPU time the client process's threads have run, in ns (Linux's
/// schedstat; 0 elsewhere). On tokio's current-thread runtime that is the
/// one thread's; on async-std and smol, the executor's thread's, the
/// waiting caller's and async-io's fallback reactor thread's.
fn process_cpu_ns() -> u64 {
    std::fs::read_dir("/proc/self/task").map_or(0, |tasks| {
        tasks
            .flatten()
            .map(|t| crate::cpu_ns_of(&t.path().join("schedstat").to_string_lossy()))
            .sum()
    })
}

/// User-space CPU time of the client process, in ns (Linux's `stat`, whose
/// unit is 10 ms: good to 1% over a `profile` run of a second or more).
fn process_user_ns() -> u64 {
    /// Linux's `USER_HZ`, the unit of `utime`: 100 on x86 and Arm.
    const NS_PER_TICK: u64 = 10_000_000;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces), from the
    // third on: `utime` is the 14th.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name
        .split_whitespace()
        .nth(11)
        .and_then(|ticks| ticks.parse::<u64>().ok())
        .map_or(0, |ticks| ticks * NS_PER_TICK)
}

impl ServerProcess {
    /// Run one round, and fill in the server's CPU per round trip.
    fn measure(&self, round: impl FnOnce() -> Round) -> Round {
        let before = self.cpu_ns();
        let mut measured = round();
        let server_ns = self.cpu_ns().saturating_sub(before);
        measured.server_cpu_us = us_per_round_trip(server_ns, measured.round_trips);
        measured
    }
}

impl Round {
    /// Round trips per second, over a timed round.
    fn per_sec(&self) -> f64 {
        self.round_trips as f64 / ROUND.as_secs_f64()
    }

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

/// The median round by throughput, and the median CPU per round trip of
/// client and server (over all rounds: they need not come from the same one).
fn median(mut rounds: Vec<Round>) -> Round {
    let cpu_us = median_of(rounds.iter().map(|r| r.cpu_us));
    let user_us = median_of(rounds.iter().map(|r| r.user_us));
    let server_cpu_us = median_of(rounds.iter().map(|r| r.server_cpu_us));
    rounds.sort_by_key(|r| r.round_trips);
    Round {
        cpu_us,
        user_us,
        server_cpu_us,
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
/// sets: the quartiles of the throughput ratio. Comparing within a set
/// cancels the drift of a shared machine's speed; comparing medians does not.
fn throughput_ratios(sets: &[Vec<Round>], i: usize) -> [f64; 3] {
    quartiles(sets.iter().map(|s| s[i].per_sec() / s[0].per_sec()))
}

/// The median ratio of client CPU per round trip, as [`throughput_ratios`].
fn cpu_ratio(sets: &[Vec<Round>], i: usize) -> f64 {
    median_of(sets.iter().map(|s| s[i].cpu_us / s[0].cpu_us))
}

/// "0.97 (0.94–0.99)": the median ratio and its interquartile range.
fn ratio_cell([q1, median, q3]: [f64; 3]) -> String {
    format!("{median:.3} ({q1:.2}–{q3:.2})")
}

/// `profile <raw|steadfast> <conns> <bytes> <round trips per connection> [tokio|async-std|smol]`:
/// a fixed amount of work, for `valgrind --tool=callgrind` (which counts
/// instructions, so the two clients compare exactly; the server is a child
/// process and is not counted). With `--features heap` it also counts the
/// client's allocations, connecting included.
pub(crate) fn profile(args: &[String]) -> Result<(), String> {
    let client = match args.first().map(String::as_str) {
        Some("raw") => Client::Raw,
        Some("steadfast") => Client::Steadfast,
        Some("caller-driven") => Client::CallerDriven,
        other => {
            return Err(format!(
                "profile: raw, steadfast or caller-driven, not {other:?}"
            ));
        }
    };
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (conns, size, count) = (arg(1, 10), arg(2, 1024), arg(3, 2000));
    let exec = Exec::new(args.get(4).map_or("tokio", String::as_str))?;
    let server = ServerProcess::start(0);
    let load = Load {
        url: &server.url(),
        conns,
        payload: Bytes::from(vec![b'x'; size]),
        count: Some(count),
        ws_config: default_websocket_config(),
    };
    let run = || server.measure(|| exec.block_on(client.round(&exec, &load)));
    #[cfg(feature = "heap")]
    let round = {
        // Connecting included: two counts apart tell what a round trip adds.
        let counter = crate::heap::Counter::start();
        let round = run();
        let allocations = counter.allocations();
        println!(
            "{allocations} allocations in all, {:.3} per round trip",
            allocations as f64 / round.round_trips.max(1) as f64
        );
        round
    };
    #[cfg(not(feature = "heap"))]
    let round = run();
    println!(
        "{} round trips, p50 {} µs, p99 {} µs, CPU per round trip: client {:.2} µs (user {:.2} µs), server {:.2} µs",
        round.round_trips,
        round.p50_us,
        round.p99_us,
        round.cpu_us,
        round.user_us,
        round.server_cpu_us
    );
    Ok(())
}

/// `only`: run just the case named like `500x16384` (connections x bytes);
/// `sets`: how many sets of back-to-back rounds (default [`SETS`]);
/// `exec`: where the clients run (the ezsockets table: tokio only).
pub(crate) fn run(only: Option<&str>, sets: Option<usize>, exec: &str) -> Result<(), String> {
    let cases: Vec<_> = cases(only).collect();
    if cases.is_empty() {
        return Err(format!(
            "no case {only:?}: 100x20, 10x1024, 10x16384, 500x16384 or all"
        ));
    }
    let sets = sets.unwrap_or(SETS).max(1);
    let exec = Exec::new(exec)?;
    let server = ServerProcess::start(0);
    println!(
        "\n### Throughput on {}: N connections, one message in flight each ({sets} sets of back-to-back {ROUND:?} rounds, medians)\n",
        exec.name()
    );
    let clients: &[Client] = match exec {
        Exec::Blocking => &[Client::Raw, Client::Steadfast, Client::CallerDriven],
        _ => &[Client::Raw, Client::Steadfast],
    };
    table(
        &exec,
        &server,
        clients,
        default_websocket_config(),
        &cases,
        sets,
    );
    // ezsockets' client takes no `WebSocketConfig`: all three at tungstenite's default.
    #[cfg(feature = "ezsockets")]
    if let Exec::Tokio(_) = exec {
        println!(
            "\n### ezsockets 0.7 and steadfast vs raw, all at tungstenite's default WebSocketConfig\n"
        );
        let clients = [Client::Raw, Client::Ezsockets, Client::Steadfast];
        table(
            &exec,
            &server,
            &clients,
            WebSocketConfig::default(),
            &cases,
            sets,
        );
    }
    Ok(())
}

/// One table: every case, `sets` sets of one round per client, in an order
/// that rotates from set to set so none always runs warmer. `clients[0]` is
/// the baseline of the ratios.
fn table(
    exec: &Exec,
    server: &ServerProcess,
    clients: &[Client],
    ws_config: WebSocketConfig,
    cases: &[(usize, usize, Bytes)],
    sets: usize,
) {
    let base = clients[0].name();
    let mut header = vec![format!("{base} msg/s")];
    header.extend(
        clients[1..]
            .iter()
            .map(|c| format!("{0} msg/s | {0} / {base}", c.name())),
    );
    header.extend(clients.iter().map(|c| format!("{} p50 / p99 µs", c.name())));
    let names: Vec<_> = clients.iter().map(|c| c.name()).collect();
    header.push(format!("client CPU µs/msg {}", names.join(" / ")));
    header.push("CPU ratio".to_owned());
    header.push(format!("server CPU µs/msg {}", names.join(" / ")));
    let header = header.join(" | ");
    println!(
        "Ratio: each client / {base} within each set, the median over the sets (interquartile range).\n"
    );
    println!("| case | {header} |");
    println!("|---{}|", "|---".repeat(header.matches(" | ").count() + 1));
    for (conns, size, payload) in cases {
        let url = server.url();
        let load = Load {
            url: &url,
            conns: *conns,
            payload: payload.clone(),
            count: None,
            ws_config,
        };
        let mut measured: Vec<Vec<Round>> = Vec::with_capacity(sets);
        for i in 0..sets {
            let mut set = vec![None; clients.len()];
            for k in 0..clients.len() {
                let c = (i + k) % clients.len();
                set[c] = Some(server.measure(|| exec.block_on(clients[c].round(exec, &load))));
            }
            measured.push(
                set.into_iter()
                    .map(|r| r.expect("every client ran"))
                    .collect(),
            );
        }
        let medians: Vec<Round> = (0..clients.len())
            .map(|i| median(measured.iter().map(|s| s[i]).collect()))
            .collect();
        let mut row = vec![format!("{:.0}", medians[0].per_sec())];
        row.extend(medians.iter().enumerate().skip(1).map(|(i, m)| {
            format!(
                "{:.0} | {}",
                m.per_sec(),
                ratio_cell(throughput_ratios(&measured, i))
            )
        }));
        row.extend(medians.iter().map(Round::latency));
        let cpu: Vec<_> = medians.iter().map(|r| format!("{:.2}", r.cpu_us)).collect();
        row.push(cpu.join(" / "));
        let cpu_ratios: Vec<_> = (1..clients.len())
            .map(|i| format!("{:.3}", cpu_ratio(&measured, i)))
            .collect();
        row.push(cpu_ratios.join(" / "));
        let server_cpu: Vec<_> = medians
            .iter()
            .map(|r| format!("{:.2}", r.server_cpu_us))
            .collect();
        row.push(server_cpu.join(" / "));
        println!("| {} | {} |", label(*conns, *size), row.join(" | "));
    }
}
