//! # steadfast-sim
//!
//! A deterministic, seeded simulation of many [`steadfast_core`] clients
//! against a simulated server and network, on a virtual clock: no threads,
//! no sockets, no sleeping. Ask it what your fleet does when the server
//! restarts, before it happens.
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
//! The core's invariants are checked by its own property tests; the
//! simulation reuses the core unchanged, so what it shows is what the
//! adapters do, minus real I/O.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod metrics;
mod queue;
mod scenario;
mod world;

pub use metrics::{MessageCounts, Metrics, Recovery, Series, write_svg_chart};
pub use queue::{Due, EventQueue};
pub use scenario::{Fault, NetworkModel, Scenario, ServerModel};
