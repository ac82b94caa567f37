//! Test support: an invariant checker that watches every output of a client,
//! and a scripted peer in the quinn-proto `Pair` style that jumps time to the
//! next deadline or delivery.
#![allow(dead_code, unused_imports, unreachable_pub)]

pub mod pair;

pub use pair::{Pair, PeerMode};
pub use steadfast_core::check::Checker;
