//! # steadfast-hub
//!
//! The server side of steadfast: a sans-IO, deterministic state machine
//! for every WebSocket session of a server. It decides; an adapter (such as
//! `steadfast_tokio::server`) does the I/O.
//!
//! It owns what hand-written servers get wrong:
//!
//! - **Admission** from what the handshake carried ([`Request`]) and the
//!   application's [`Verdict`]: accept with a subprotocol to echo, reject
//!   before the upgrade with an HTTP status (401/403/429 + `Retry-After`),
//!   or accept, send an error message and close.
//! - **Duplicates** by user id ([`Duplicates`]): a reconnecting user
//!   replaces its stale session by default.
//! - **Liveness** ([`LivenessConfig`]): silent sessions are pinged and then
//!   reaped; a dead client leaves the pool within
//!   [`LivenessConfig::detection_bound`].
//! - **Routing** to a session, a user, a room or everyone, through
//!   per-session queues bounded by count and bytes, with a slow-consumer
//!   policy ([`SlowConsumer`]). A message that is not delivered is reported
//!   ([`HubEvent::Undelivered`]), never silently lost.
//! - **Graceful shutdown** ([`Hub::shutdown`]): every session closed with
//!   1012 or 1001 at its own moment in a window, so clients do not come
//!   back as a herd.
//!
//! See [`Hub`] for the adapter's contract and an example.
//!
//! ## Features
//!
//! - `std` (default): a per-hub seed from the OS when none is configured.
//!   Without it the crate is `no_std` + `alloc` (and the seed defaults to 0).
//! - `check`: `check::CheckedHub`, which asserts the invariants after
//!   every call, for tests and fuzzing.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod admission;
#[cfg(feature = "check")]
pub mod check;
mod config;
mod event;
mod hub;
mod session;
mod session_list;
mod session_map;
mod timer_heap;

pub use admission::{Rejection, Request, Verdict};
pub use config::{
    Duplicates, HubConfig, HubConfigError, LivenessConfig, QueueConfig, SlowConsumer,
};
pub use event::{
    Action, DropReason, HubEvent, LeaveReason, Outbound, REPLACED, REPLACED_REASON,
    SHUTDOWN_REASON, SLOW_CONSUMER_REASON, SendError, SessionId,
};
pub use hub::Hub;
