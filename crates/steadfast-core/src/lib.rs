//! # steadfast-core
//!
//! The sans-IO heart of steadfast: a pure, deterministic state machine for one
//! *logical* WebSocket client connection that outlives many transports. It
//! owns the lifecycle (connect, authenticate, open, close), the heartbeat
//! (ping schedule, pong deadline, missed count, RTT), the retry policy
//! (exponential backoff with seeded jitter, budgets, close-code and HTTP
//! classification) and the outbox (bounded queue, overflow policy, TTL,
//! at-most-once or at-least-once delivery with in-order replay).
//!
//! It does no I/O, reads no clock and draws no OS randomness: the adapter
//! (steadfast-tokio, or your own) feeds it inputs with the current
//! [`Instant`] and performs the [`Transmit`]s it asks for. Read the contract
//! on [`Client`].
//!
//! ## Driving it by hand
//!
//! A complete loop against a scripted fake transport, on a virtual clock:
//!
//! ```
//! use core::time::Duration;
//! use steadfast_core::*;
//!
//! let mut now = Instant::ZERO;
//! let config = Config::builder().build()?;
//! let mut client = Client::new(config, now);
//! client.open(now);
//! let id = client.send(Message::text("hello"), now)?; // queued while connecting
//!
//! // The fake transport: it opens every connection, echoes every message,
//! // answers pings, and resets the first connection at t = 20 s.
//! let mut echoed = Vec::new();
//! let mut pings = 0;
//! let mut reset_done = false;
//! while now < Instant::from_secs(60) {
//!     // 1. Perform the I/O the core asks for, in order, feeding back what the
//!     //    transport observes, until the core has nothing more to send.
//!     while let Some(t) = client.poll_transmit() {
//!         let (conn, observed) = match t {
//!             Transmit::Connect { conn, .. } => {
//!                 (conn, vec![TransportEvent::Opened(Handshake::default())])
//!             }
//!             Transmit::Send { conn, id, msg } => {
//!                 (conn, vec![TransportEvent::Written(id), TransportEvent::Message(msg)])
//!             }
//!             Transmit::Ping { conn, payload } => {
//!                 pings += 1;
//!                 (conn, vec![TransportEvent::Pong(Bytes::copy_from_slice(&payload))])
//!             }
//!             Transmit::SendControl { .. } | Transmit::Close { .. } | Transmit::Abort { .. } => {
//!                 continue
//!             }
//!         };
//!         for ev in observed {
//!             client.handle_transport(conn, ev, now);
//!         }
//!     }
//!     // 2. Hand events to the application.
//!     while let Some(ev) = client.poll_event() {
//!         if let Event::Message(m) = ev {
//!             echoed.push(m);
//!         }
//!     }
//!     // 3. Sleep until the next deadline (or a fault), then feed it back.
//!     let next = client.poll_timeout().unwrap_or(now + Duration::from_secs(1));
//!     if !reset_done && next >= Instant::from_secs(20) {
//!         reset_done = true;
//!         now = Instant::from_secs(20);
//!         let conn = client.conn().expect("a live transport");
//!         client.handle_transport(conn, TransportEvent::Error(TransportError::Reset), now);
//!     } else {
//!         now = next;
//!         client.handle_timeout(now);
//!     }
//! }
//! assert_eq!(echoed, [Message::text("hello")]);
//! assert!(pings > 0, "the heartbeat pinged the quiet link");
//! assert_eq!(client.state(), State::Open, "reconnected after the reset");
//! assert_eq!(client.stats().reconnects, 1);
//! # let _ = id;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Features
//!
//! - `std` (default): [`Epoch`] for converting `std::time::Instant`.
//!   Without it the crate is `no_std` + `alloc` (on targets with atomic
//!   pointers: a client keeps its config behind an `Arc`).
//! - `check`: `check::Checker`, which asserts the invariants over a
//!   client's outputs, for tests, fuzzing and simulations.
//! - `prefetch` (implies `std`): `Client::prefetch`, a hint for drivers of
//!   many clients.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod ack;
#[cfg(feature = "check")]
pub mod check;
mod classify;
mod client;
mod close_code;
mod config;
mod event;
mod heartbeat;
mod io;
mod message;
mod outbox;
mod retry;
mod retry_after;
mod rng;
mod slim_queue;
mod time;
mod timer;

pub use ack::{AckConfig, AckMatch, AckMatcher};
pub use classify::{CloseCodeTable, HttpStatusTable, RetryClass};
pub use client::{Client, CloseError, MAX_CLOSE_REASON, READ_GRACE};
pub use close_code::{CloseCode, parse_close_payload};
pub use config::{
    AuthConfig, Config, ConfigBuilder, ConfigError, Delivery, FirstConnect, HeartbeatConfig,
    HeartbeatMode, InboundConfig, Jitter, OnWindowExhausted, OutboxConfig, OutcomeEvents, Overflow,
    PingSchedule, PongMatcher, Reconnect, RetryConfig, SuspendConfig, WindowBudget,
};
pub use event::{
    AckError, Budget, DropReason, Error, Event, Outcome, RttStats, SendError, State, StateError,
    Stats,
};
pub use io::{Cause, Handshake, HandshakeError, Transmit, TransportError, TransportEvent};
pub use message::{ConnId, InvalidUtf8, Message, MessageId, MessageKind};
pub use retry_after::{MAX_RETRY_AFTER, parse_retry_after_seconds};
pub use rng::SplitMix64;
#[cfg(feature = "std")]
pub use time::Epoch;
pub use time::Instant;

/// Re-exported so adapters and applications name one `Bytes`.
pub use bytes::Bytes;
