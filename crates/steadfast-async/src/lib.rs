//! Skeleton of the runtime-independent steadfast engine: the [`Runtime`]
//! trait and the [`Tls`] configuration it is handed (the engine itself is
//! written elsewhere and replaces this crate when merged).

pub mod runtime;
pub mod tls;

pub use runtime::{Frame, Runtime};
pub use tls::Tls;
