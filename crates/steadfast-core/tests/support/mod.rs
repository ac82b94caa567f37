//! Test support: an invariant checker that watches every output of a client,
//! and a scripted peer in the quinn-proto `Pair` style that jumps time to the
//! next deadline or delivery.
#![allow(dead_code, unused_imports, unreachable_pub)]

pub mod pair;

pub use pair::{Pair, PeerMode};
pub use steadfast_core::check::Checker;

use steadfast_core::{
    Client, Config, ConnId, Delivery, Handshake, Instant, OutboxConfig, Transmit, TransportEvent,
};

/// A bare client opened at time zero on `config`, its events drained.
pub fn open_client(config: Config) -> (Client, ConnId) {
    let mut client = Client::new(config, Instant::ZERO);
    client.open(Instant::ZERO);
    let Some(Transmit::Connect { conn, .. }) = client.poll_transmit() else {
        panic!("expected Connect")
    };
    client.handle_transport(
        conn,
        TransportEvent::Opened(Handshake::default()),
        Instant::ZERO,
    );
    while client.poll_event().is_some() {}
    (client, conn)
}

/// [`open_client`] on the default config with this delivery guarantee.
pub fn open_client_delivering(delivery: Delivery) -> (Client, ConnId) {
    let outbox = OutboxConfig {
        delivery,
        ..Default::default()
    };
    open_client(Config::builder().outbox(outbox).build().expect("valid"))
}
