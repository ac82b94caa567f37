//! The core alone: one message cycle (send → transmit → written/acked →
//! outcome) and one heartbeat round (ping due → ping → pong → RTT).
//!
//! `cargo bench -p steadfast-core --bench core`
#![allow(missing_docs)]

use core::time::Duration;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use steadfast_core::*;

/// The integration tests' support: the same client setup as theirs.
#[path = "../tests/support/mod.rs"]
mod support;

fn message_cycle(c: &mut Criterion) {
    for (name, delivery) in [
        ("message_cycle/at_most_once", Delivery::AtMostOnce),
        ("message_cycle/at_least_once", Delivery::AtLeastOnce),
    ] {
        let (mut client, conn) = support::open_client_delivering(delivery);
        let payload = Message::static_text("a twenty byte text!!");
        c.bench_function(name, |b| {
            b.iter(|| {
                let now = Instant::ZERO;
                let id = client.send(payload.clone(), now).expect("room");
                let sent = client.poll_transmit();
                black_box(&sent);
                client.handle_transport(conn, TransportEvent::Written(id), now);
                if delivery == Delivery::AtLeastOnce {
                    client.ack(id, now).expect("held");
                }
                black_box(client.poll_event())
            })
        });
    }
}

fn heartbeat_round(c: &mut Criterion) {
    let (mut client, conn) = support::open_client_delivering(Delivery::AtMostOnce);
    let mut now = Instant::ZERO;
    c.bench_function("heartbeat_round", |b| {
        b.iter(|| {
            now = client.poll_timeout().expect("ping due");
            client.handle_timeout(now);
            let Some(Transmit::Ping { payload, .. }) = client.poll_transmit() else {
                panic!("expected Ping")
            };
            now = now + Duration::from_millis(20);
            // Bytes::copy_from_slice allocates: that is the adapter's cost, counted here too.
            let pong = TransportEvent::Pong(Bytes::copy_from_slice(&payload));
            client.handle_transport(conn, pong, now);
            black_box(client.poll_event())
        })
    });
}

criterion_group!(benches, message_cycle, heartbeat_round);
criterion_main!(benches);
