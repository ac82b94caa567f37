//! steadfast against raw tungstenite, side by side, in one run, against the
//! same echo server (a child process on loopback): steadfast-tokio against
//! tokio-tungstenite, and steadfast-async-std against async-tungstenite on
//! async-std's and smol's executors.
//!
//! `cargo run --profile bench -p steadfast-bench [-- all|throughput [CONNSxBYTES|all] [SETS] [EXECUTOR]|memory [EXECUTOR]|recovery]`,
//! e.g. `-- throughput 500x16384 25` or `-- throughput all 9 smol`, with
//! EXECUTOR `tokio` (the default), `async-std` or `smol`; `profile
//! <raw|steadfast|caller-driven> CONNS BYTES ROUND_TRIPS [EXECUTOR]` runs a fixed amount
//! of work for callgrind; `fanout [SESSIONS] [MESSAGES] [BYTES]` broadcasts
//! through `steadfast_tokio::server`; `hub` (with `--features heap`) counts
//! the heap of the sans-IO hub's idle sessions.
//!
//! Prints markdown tables; BENCHMARKS.md quotes them.
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

mod blocking;
mod echo;
mod exec;
mod fanout;
#[cfg(feature = "heap")]
mod heap;
#[cfg(feature = "heap")]
mod hub;
mod memory;
#[cfg(feature = "ezsockets")]
mod peer_ezsockets;
mod recovery;
mod throughput;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// An echo server in a child process, so its memory and CPU are not the client's.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl ServerProcess {
    pub(crate) fn start(port: u16) -> ServerProcess {
        let exe = std::env::current_exe().expect("own path");
        let mut command = Command::new(exe);
        if let Some(core) = SERVER_CORE.get().copied().flatten() {
            command.env(SERVER_CORE_VAR, core.id.to_string());
        }
        let mut child = command
            .args(["server", &port.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the echo server");
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("server address");
        let addr = line.trim().parse().expect("server prints its address");
        ServerProcess { child, addr }
    }

    /// The server's CPU time so far, in ns (its runtime has one thread).
    pub(crate) fn cpu_ns(&self) -> u64 {
        cpu_ns_of(&format!("/proc/{}/schedstat", self.child.id()))
    }

    pub(crate) fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time in ns from a `schedstat` file (0 where there is none).
pub(crate) fn cpu_ns_of(schedstat: &str) -> u64 {
    std::fs::read_to_string(schedstat)
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The single-threaded runtime every client and the server run on.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Resident memory of this process, in KiB.
pub(crate) fn rss_kib() -> u64 {
    rss_kib_of("/proc/self/status")
}

/// Resident memory from a `/proc/<pid>/status` file, in KiB (0 where there is none).
pub(crate) fn rss_kib_of(status: &str) -> u64 {
    std::fs::read_to_string(status)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The core the echo server runs on, when the clients have another one
/// (set once, at start).
static SERVER_CORE: std::sync::OnceLock<Option<core_affinity::CoreId>> = std::sync::OnceLock::new();

/// The environment variable that tells the echo server its core.
const SERVER_CORE_VAR: &str = "STEADFAST_BENCH_SERVER_CORE";

/// On a machine with two cores or more, the clients run on the first and the
/// echo server on the last: neither migrates or evicts the other's caches,
/// so the figures vary far less from run to run. Both clients compared get
/// the same placement.
fn pin_to_core(server: bool) {
    let core = if server {
        std::env::var(SERVER_CORE_VAR)
            .ok()
            .and_then(|id| id.parse().ok())
            .map(|id| core_affinity::CoreId { id })
    } else {
        let cores = core_affinity::get_core_ids().filter(|c| c.len() >= 2);
        let _ = SERVER_CORE.set(cores.as_ref().and_then(|c| c.last().copied()));
        cores.and_then(|c| c.first().copied())
    };
    if let Some(core) = core
        && !core_affinity::set_for_current(core)
    {
        eprintln!("could not pin to core {}; figures will vary more", core.id);
    }
}

/// Run this program again with async-std's and smol's executors held to one
/// thread (see `exec`), unless they already are.
fn rerun_with_one_thread_executors() {
    if exec::one_thread_env()
        .iter()
        .all(|(name, value)| std::env::var(name).is_ok_and(|v| v == *value))
    {
        return;
    }
    let status = Command::new(std::env::current_exe().expect("own path"))
        .args(std::env::args_os().skip(1))
        .envs(exec::one_thread_env())
        .status()
        .expect("run the bench again");
    std::process::exit(status.code().unwrap_or(1));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("all");
    if mode != "server" && mode != "fanout-server" {
        rerun_with_one_thread_executors();
    }
    pin_to_core(mode == "server" || mode == "fanout-server");
    let executor = |i: usize| args.get(i).map_or("tokio", String::as_str);
    let done = match mode {
        "server" => {
            echo::serve(args.get(1).and_then(|p| p.parse().ok()).unwrap_or(0));
            Ok(())
        }
        "fanout-server" => {
            fanout::serve();
            Ok(())
        }
        "fanout" => fanout::run(&args[1..]),
        "memory-one" => {
            memory::one(&args[1..]);
            Ok(())
        }
        "throughput" => throughput::run(
            args.get(1).map(String::as_str).filter(|c| *c != "all"),
            args.get(2).and_then(|n| n.parse().ok()),
            executor(3),
        ),
        "profile" => throughput::profile(&args[1..]),
        "memory" => memory::run(executor(1)),
        #[cfg(feature = "heap")]
        "hub" => {
            hub::run();
            Ok(())
        }
        #[cfg(not(feature = "heap"))]
        "hub" => Err("hub counts heap bytes: build with `--features heap`".into()),
        "recovery" => {
            recovery::run();
            Ok(())
        }
        "all" => throughput::run(None, None, "tokio")
            .and_then(|()| memory::run("tokio"))
            .map(|()| recovery::run()),
        other => Err(format!(
            "unknown mode {other}: all | throughput [CONNSxBYTES|all] [SETS] [EXECUTOR] | memory [EXECUTOR] | recovery | fanout [SESSIONS] [MESSAGES] [BYTES] | hub | profile <raw|steadfast|caller-driven> CONNS BYTES ROUND_TRIPS [EXECUTOR], EXECUTOR one of {}",
            exec::EXECUTORS.join(", ")
        )),
    };
    if let Err(e) = done {
        eprintln!("{e}");
        std::process::exit(2);
    }
}
