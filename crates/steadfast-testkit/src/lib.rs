//! # steadfast-testkit
//!
//! Real servers on `127.0.0.1:0` started in-process ([`Server`]), a
//! fault-injecting TCP proxy ([`FaultProxy`]), and the adapter conformance
//! scenarios ([`conformance`]) that every steadfast adapter runs in its tests.
//! For `wss://`, [`TestCa`] makes the certificates and [`Server::start_tls`]
//! serves them.
//!
//! ```no_run
//! use steadfast_testkit::{Behaviour, FaultProxy, Server};
//!
//! # async fn run() -> std::io::Result<()> {
//! let server = Server::start(Behaviour::serve()).await?;
//! let proxy = FaultProxy::start(server.addr()).await?;
//! // connect clients to proxy.url(), then break the network:
//! proxy.set_blackhole(true);
//! proxy.reset_all();
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod adapter;
pub mod conformance;
pub mod engine;
pub mod proxy;
pub mod server;
pub mod tls;

pub use adapter::{Adapter, AdapterHandle, EventLog, EventStream, StartOptions, TestClient};
pub use proxy::{Direction, FaultProxy, Faults};
pub use server::{Behaviour, Server, parse_ack, parse_seq};
pub use tls::TestCa;

/// A lock that a panicking test thread cannot poison for the others.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Wait up to `timeout` for `check` to give something, checking again each
/// time `changed` is notified (and once more at the deadline).
pub(crate) async fn wait_on<T>(
    changed: &tokio::sync::Notify,
    timeout: std::time::Duration,
    check: impl Fn() -> Option<T>,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // Created before the check, so a change in between is not missed.
        let notified = changed.notified();
        if let Some(found) = check() {
            return Some(found);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return check();
        }
    }
}

/// The connection tasks of a server or proxy: finished ones are forgotten
/// as new ones arrive, and all can be aborted at once.
#[derive(Clone, Default)]
pub(crate) struct ConnTasks(std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>);

impl ConnTasks {
    /// Spawn a connection's task and keep its handle.
    pub(crate) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let task = tokio::spawn(task);
        let mut tasks = lock(&self.0);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// Connections still running.
    pub(crate) fn live(&self) -> usize {
        let mut tasks = lock(&self.0);
        tasks.retain(|t| !t.is_finished());
        tasks.len()
    }

    /// Abort every connection; their handles, to await the end if wanted.
    pub(crate) fn abort_all(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let tasks: Vec<_> = lock(&self.0).drain(..).collect();
        for task in &tasks {
            task.abort();
        }
        tasks
    }
}
