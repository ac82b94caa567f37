//! # steadfast-sim
//!
//! A deterministic, seeded simulation of many [`steadfast_core`] clients
//! against a server and a network, on a virtual clock: no threads, no
//! sockets, no sleeping. Ask it what your fleet does when the server
//! restarts, before it happens. The server is the real server core,
//! [`steadfast_hub::Hub`] (configured through [`ServerModel::hub`]): what
//! it does to sessions (pings, reaps, replacements, shutdown closes) is in
//! [`Metrics::server`].
//!
//! ```
//! use core::time::Duration;
//! use steadfast_core::{Config, Jitter, RetryConfig};
//! use steadfast_sim::{Fault, Scenario};
//!
//! let config = Config::builder()
//!     .retry(RetryConfig { jitter: Jitter::Full, ..Default::default() })
//!     .build()?;
//! let metrics = Scenario::new(1_000, config)
//!     .seed(1)
//!     .duration(Duration::from_secs(180))
//!     .fault(Duration::from_secs(60), Fault::Restart { down: Duration::from_secs(5) })
//!     .run();
//! println!("{}", metrics.summary());
//! assert_eq!(metrics.failed_clients, 0);
//! assert!(metrics.recoveries[0].after.is_some(), "every client came back");
//! # Ok::<(), steadfast_core::ConfigError>(())
//! ```
//!
//! The core's and the hub's invariants are checked by their own property
//! tests; the simulation reuses both unchanged, so what it shows is what
//! the adapters and a steadfast server do, minus real I/O.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod metrics;
mod queue;
mod scenario;
mod server;
mod world;

pub use metrics::{MessageCounts, Metrics, Recovery, Series, ServerCounts, write_svg_chart};
pub use queue::{Due, EventQueue};
pub use scenario::{Fault, NetworkModel, Scenario, ServerModel};
/// The server's hub config, as [`ServerModel::hub`] takes it.
pub use steadfast_hub::{Duplicates, HubConfig, LivenessConfig};
