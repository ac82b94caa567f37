//! Steady state costs no heap allocation per message beyond the payload the
//! caller hands in: the outbox, event and transmit queues grow to their
//! working size during warm-up and keep it.
//! Payloads here are static, so any allocation counted is the core's own.

use core::time::Duration;
use steadfast_core::*;

mod support;

/// One full message cycle: send, transmit, written (and acked), outcome drained.
fn cycle(client: &mut Client, conn: ConnId, now: Instant, ack: bool) {
    let id = client
        .send(Message::static_text("steady"), now)
        .expect("room");
    let Some(Transmit::Send { id: sent, msg, .. }) = client.poll_transmit() else {
        panic!("expected Send")
    };
    assert_eq!((sent, msg.len()), (id, 6));
    client.handle_transport(conn, TransportEvent::Written(id), now);
    if ack {
        client.ack(id, now).expect("held");
    }
    let Some(Event::Outcome { .. }) = client.poll_event() else {
        panic!("expected an outcome")
    };
}

fn allocations_per_cycle(delivery: Delivery) -> u64 {
    let (mut client, conn) = support::open_client_delivering(delivery);
    let now = Instant::ZERO;
    let ack = delivery == Delivery::AtLeastOnce;
    for _ in 0..100 {
        cycle(&mut client, conn, now, ack); // warm up
    }
    let info = allocation_counter::measure(|| {
        for _ in 0..10_000 {
            cycle(&mut client, conn, now, ack);
        }
    });
    info.count_total
}

#[test]
fn at_most_once_message_cycle_allocates_nothing() {
    assert_eq!(allocations_per_cycle(Delivery::AtMostOnce), 0);
}

#[test]
fn at_least_once_message_cycle_allocates_nothing() {
    assert_eq!(allocations_per_cycle(Delivery::AtLeastOnce), 0);
}

#[test]
fn heartbeat_round_allocates_nothing() {
    let (mut client, conn) = support::open_client_delivering(Delivery::AtMostOnce);
    let mut now = Instant::ZERO;
    // Pong payloads echo the ping nonces 0, 1, 2, ...; built before measuring.
    let mut pongs = (0u64..1_001).map(|n| Bytes::copy_from_slice(&n.to_be_bytes()));
    let mut rtt_samples = 0;
    let mut round = |now: &mut Instant, pong: Bytes| {
        *now = client.poll_timeout().expect("ping due");
        client.handle_timeout(*now);
        let Some(Transmit::Ping { payload, .. }) = client.poll_transmit() else {
            panic!("expected Ping")
        };
        assert_eq!(payload.as_slice(), pong.as_ref());
        *now = *now + Duration::from_millis(20);
        client.handle_transport(conn, TransportEvent::Pong(pong), *now);
        while let Some(ev) = client.poll_event() {
            rtt_samples += u32::from(matches!(ev, Event::Rtt(_)));
        }
    };
    round(&mut now, pongs.next().expect("pong"));
    let pongs: Vec<Bytes> = pongs.collect();
    let info = allocation_counter::measure(|| {
        for pong in pongs {
            round(&mut now, pong);
        }
    });
    assert_eq!(info.count_total, 0);
    assert_eq!(rtt_samples, 1_001, "every round produced an RTT sample");
}

#[test]
fn a_message_acked_by_the_servers_ack_allocates_nothing() {
    let outbox = OutboxConfig {
        delivery: Delivery::AtLeastOnce,
        ..Default::default()
    };
    let acks = AckConfig::new(AckMatcher::ack_nack());
    let config = Config::builder().outbox(outbox).acks(acks).build();
    let (mut client, conn) = support::open_client(config.expect("valid"));
    let now = Instant::ZERO;
    // The server's acks, built before measuring (the transport would
    // allocate the received frames).
    let acks: Vec<Message> = (0u64..10_100)
        .map(|k| Message::text(format!("ack:{k}")))
        .collect();
    let mut acks = acks.into_iter();
    let mut cycle = |key: u64, ack: Message| {
        let id = client
            .send_keyed(key, Message::static_text("steady"), now)
            .expect("room");
        let Some(Transmit::Send { id: sent, .. }) = client.poll_transmit() else {
            panic!("expected Send")
        };
        assert_eq!(sent, id);
        client.handle_transport(conn, TransportEvent::Written(id), now);
        client.handle_transport(conn, TransportEvent::Message(ack), now);
        let Some(Event::Outcome {
            outcome: Outcome::Acked,
            ..
        }) = client.poll_event()
        else {
            panic!("expected Acked")
        };
    };
    for key in 0..100 {
        cycle(key, acks.next().expect("ack")); // warm up
    }
    let rest: Vec<Message> = acks.collect();
    let info = allocation_counter::measure(|| {
        for (key, ack) in (100..).zip(rest) {
            cycle(key, ack);
        }
    });
    assert_eq!(info.count_total, 0);
}

#[test]
fn an_idle_open_client_keeps_two_event_slots_and_its_config_on_the_heap() {
    // Everything an idle connection's core holds on the heap after opening
    // and one heartbeat round, counted from before it was created.
    let mut client = None;
    let info = allocation_counter::measure(|| {
        let (mut opened, conn) = support::open_client_delivering(Delivery::AtMostOnce);
        let now = opened.poll_timeout().expect("ping due");
        opened.handle_timeout(now);
        let Some(Transmit::Ping { payload, .. }) = opened.poll_transmit() else {
            panic!("expected Ping")
        };
        // The first ping's nonce is 0 (a static pong: no allocation of the test's).
        assert_eq!(payload.as_slice(), &[0; 8]);
        let pong = Bytes::from_static(&[0; 8]);
        opened.handle_transport(conn, TransportEvent::Pong(pong), now);
        let mut rtt = 0;
        while let Some(ev) = opened.poll_event() {
            rtt += u32::from(matches!(ev, Event::Rtt(_)));
        }
        assert_eq!(rtt, 1, "the round completed");
        assert!(opened.poll_transmit().is_none(), "nothing left to send");
        client = Some(opened);
    });
    // Two event slots beyond the one kept inline (the opening's two state
    // changes and `Opened` were taken together), not `VecDeque`'s usual
    // four; no control slot (the connect and the ping each came alone, and
    // lived inline); and the config, behind its `Arc` (two counts beside it).
    let expected = 2 * size_of::<Event>() + size_of::<Config>() + 2 * size_of::<usize>();
    assert_eq!(info.bytes_current as usize, expected);
    drop(client);
}
