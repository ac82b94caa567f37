//! What only a blocking adapter has to get right: deadlines handled while
//! the caller waits, commands from other threads acted on at once, and a
//! full send buffer that never holds off dead-peer detection. Bounds are
//! generous (seconds); nothing asserts on speed.

use std::time::{Duration, Instant};
use steadfast_blocking::Builder;
use steadfast_blocking::core::{
    AckConfig, AckMatcher, Cause, Config, Delivery, Event, HeartbeatConfig, Jitter, Message,
    OutboxConfig, Outcome, RetryConfig, State,
};
use steadfast_testkit::adapter::wait_until;
use steadfast_testkit::conformance::{INTERVAL, PONG_TIMEOUT, config};
use steadfast_testkit::{Behaviour, FaultProxy, Server};

/// Slack on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(2);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A testkit server with `behaviour`, on `rt`.
fn start(rt: &tokio::runtime::Runtime, behaviour: Behaviour) -> Server {
    rt.block_on(Server::start(behaviour)).expect("server")
}

fn is_heartbeat_timeout(ev: &Event) -> bool {
    matches!(
        ev,
        Event::Reconnecting {
            cause: Cause::HeartbeatTimeout,
            ..
        }
    )
}

/// A silent server (half-open) is declared dead by a deadline that fires
/// while the caller is blocked in one long `next_event`: no call returns
/// before the event, and the detection is within the configured bound.
#[test]
fn a_deadline_fires_while_the_caller_waits_in_next_event() {
    let rt = runtime();
    let server = start(&rt, Behaviour::Silent);
    let config = config(1, Delivery::AtMostOnce);
    let bound = config.heartbeat().detection_bound();
    let mut conn = Builder::new(server.url())
        .expect("url")
        .config(config)
        .connect();
    let mut opened = None;
    let mut calls_since_open = 0;
    let detected = loop {
        let ev = conn
            .next_event(Duration::from_secs(30))
            .expect("next_event")
            .expect("an event within 30 s");
        match ev {
            Event::Opened { .. } => opened = Some(Instant::now()),
            ev if is_heartbeat_timeout(&ev) => break Instant::now(),
            _ if opened.is_some() => calls_since_open += 1,
            _ => {}
        }
    };
    let opened = opened.expect("opened first");
    let took = detected - opened;
    assert!(
        took <= bound + SLACK,
        "detection took {took:?}, bound {bound:?}"
    );
    // The heartbeat ran inside the calls: between the open and the timeout
    // only state changes came back, no timeout without an event.
    assert!(
        calls_since_open <= 3,
        "{calls_since_open} events in between"
    );
}

/// Backoff of 30 s with no jitter: only a command can bring the next
/// attempt forward. `set_online(true)` from another thread makes the
/// background loop connect at once, without waiting for its sleep.
#[test]
fn a_command_from_another_thread_wakes_the_background_loop_at_once() {
    let rt = runtime();
    let server = start(&rt, Behaviour::serve());
    let proxy = rt
        .block_on(FaultProxy::start(server.addr()))
        .expect("proxy");
    proxy.set_down(true);
    let config = Config::builder()
        .seed(1)
        .retry(RetryConfig {
            initial_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(60),
            jitter: Jitter::None,
            ..Default::default()
        })
        .build()
        .expect("config");
    let (handle, mut events) = Builder::new(proxy.url())
        .expect("url")
        .config(config)
        .spawn()
        .expect("spawn");
    let delay = next_matching(&mut events, "no backoff", |ev| match ev {
        Event::Reconnecting { delay, .. } => Some(delay),
        _ => None,
    });
    assert!(delay >= Duration::from_secs(20), "backoff {delay:?}");
    assert_eq!(handle.state(), State::Backoff);
    proxy.set_down(false);
    let other = handle.clone();
    let asked = Instant::now();
    std::thread::spawn(move || {
        other.set_online(false);
        other.set_online(true);
    })
    .join()
    .expect("the commanding thread");
    next_matching(
        &mut events,
        "not reconnected within 10 s of the command",
        |ev| matches!(ev, Event::Opened { .. }).then_some(()),
    );
    assert!(asked.elapsed() < Duration::from_secs(10));
    assert_eq!(server.handshakes(), 1);
}

/// A close whose deadline (1 s) is earlier than the one the loop sleeps
/// for (a ping in 60 s), against a server that never answers: the loop is
/// woken to arm it, and `close` returns at the close timeout.
#[test]
fn an_earlier_deadline_from_another_thread_wakes_the_background_loop() {
    let rt = runtime();
    let server = start(&rt, Behaviour::Silent);
    let (handle, _events) = spawned_open(&server.url(), minute_heartbeat());
    let other = handle.clone();
    let asked = Instant::now();
    std::thread::spawn(move || other.close())
        .join()
        .expect("the closing thread");
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(10), "close took {took:?}");
    assert_eq!(handle.state(), State::Closed);
}

/// The peer stops reading (our send buffer fills) and answers nothing:
/// with megabytes waiting to be written, the dead peer is still detected
/// within interval + pong deadline + slack.
#[test]
fn a_full_send_buffer_does_not_delay_dead_peer_detection() {
    detection_with_a_full_send_buffer(false);
}

/// The same, with the messages sent from another thread while the
/// application's thread already waits in `recv` (reading the socket
/// outside the lock): the loop thread waits for the socket to take writes
/// and runs the heartbeat meanwhile.
#[test]
fn a_full_send_buffer_from_another_thread_does_not_delay_detection_while_the_receiver_waits() {
    detection_with_a_full_send_buffer(true);
}

fn detection_with_a_full_send_buffer(sent_from_another_thread: bool) {
    let rt = runtime();
    let server = start(&rt, Behaviour::serve());
    let proxy = rt
        .block_on(FaultProxy::start(server.addr()))
        .expect("proxy");
    let (handle, mut events) = spawned_open(&proxy.url(), config(1, Delivery::AtMostOnce));
    proxy.update(|f| {
        f.stall_up = true;
        f.blackhole = true;
    });
    let since = Instant::now();
    let sender = handle.clone();
    // How many were queued, and how many of them written right after.
    let send_all = move || {
        let chunk = "x".repeat(256 * 1024);
        let started = Instant::now();
        let queued = (0..64)
            .filter(|_| sender.send(Message::text(chunk.clone())).is_ok())
            .count() as u64;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "sends blocked for {took:?}");
        (queued, sender.stats().written)
    };
    let sending = if sent_from_another_thread {
        let receiver = handle.clone();
        std::thread::spawn(move || {
            until_the_receiver_reads_outside_the_lock(&receiver);
            send_all()
        })
    } else {
        let sent = send_all();
        std::thread::spawn(move || sent)
    };
    next_matching(&mut events, "dead peer not detected", |ev| {
        is_heartbeat_timeout(&ev).then_some(())
    });
    let took = since.elapsed();
    assert!(
        took <= detection_bound(),
        "detection took {took:?} with a full send buffer"
    );
    let (queued, written) = sending.join().expect("the sending thread");
    assert!(
        written < queued,
        "the send buffer never filled: {written} of {queued} written"
    );
}

/// While the application's thread waits in `recv` (reading the socket
/// outside the lock, blind to its waker), another thread closes against a
/// silent server: the loop thread arms and fires the close deadline
/// (1 s, where the next ping is a minute away), and the waiting receiver
/// gets `Closed` from it.
#[test]
fn a_close_from_another_thread_while_the_receiver_waits_in_recv_ends_at_the_close_timeout() {
    let rt = runtime();
    let server = start(&rt, Behaviour::Silent);
    let (handle, mut events) = spawned_open(&server.url(), minute_heartbeat());
    let receiver = std::thread::spawn(move || {
        let since = Instant::now();
        let closed = loop {
            match events.recv_timeout(Duration::from_secs(30)) {
                Ok(Event::Closed { .. }) => break true,
                Ok(_) => {}
                Err(_) => break false,
            }
        };
        (closed, since.elapsed())
    });
    until_the_receiver_reads_outside_the_lock(&handle);
    let asked = Instant::now();
    let other = handle.clone();
    std::thread::spawn(move || other.close())
        .join()
        .expect("the closing thread");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "close took {:?}",
        asked.elapsed()
    );
    let (closed, waited) = receiver.join().expect("the receiver");
    assert!(closed, "the receiver saw no Closed within 30 s");
    assert!(
        waited < Duration::from_secs(10),
        "Closed came after {waited:?}"
    );
}

/// While the application's thread waits in `recv` (reading the socket
/// outside the lock), another thread sends a message with a 300 ms TTL
/// that cannot go out (the in-flight window of one is taken by an unacked
/// message, and the server is silent): the deadline a command set fires,
/// and its `Expired` reaches the waiting receiver soon after, though no
/// frame arrives and the next ping is a minute away.
#[test]
fn an_outcome_from_another_threads_command_reaches_the_receiver_waiting_in_recv() {
    let rt = runtime();
    let server = start(&rt, Behaviour::Silent);
    let config = Config::builder()
        .seed(1)
        .heartbeat(HeartbeatConfig {
            interval: Duration::from_secs(60),
            pong_timeout: Duration::from_secs(10),
            ..Default::default()
        })
        .outbox(OutboxConfig {
            max_in_flight: 1,
            delivery: Delivery::AtLeastOnce,
            ..Default::default()
        })
        .build()
        .expect("config");
    let (handle, mut events) = spawned_open(&server.url(), config);
    handle.send("in flight, never acked").expect("send");
    let receiver = std::thread::spawn(move || {
        next_matching(&mut events, "no Expired", |ev| match ev {
            Event::Outcome {
                outcome: Outcome::Expired,
                ..
            } => Some(Instant::now()),
            _ => None,
        })
    });
    until_the_receiver_reads_outside_the_lock(&handle);
    let sent = Instant::now();
    handle
        .send_with_ttl("waits behind it", Duration::from_millis(300))
        .expect("send");
    let expired = receiver.join().expect("the receiver");
    let took = expired.saturating_duration_since(sent);
    assert!(took < SLACK, "Expired reached the receiver after {took:?}");
}

/// Until the events receiver (another thread) waits in a read of the
/// socket outside the lock, so that what follows meets it there; at most
/// `SLACK`.
fn until_the_receiver_reads_outside_the_lock(handle: &steadfast_blocking::Handle) {
    let since = Instant::now();
    while !handle.receiver_reads_outside_the_lock() {
        assert!(
            since.elapsed() < SLACK,
            "the receiver never read outside the lock"
        );
        std::thread::yield_now();
    }
}

/// Spawned with `config` and opened.
fn spawned_open(
    url: &str,
    config: Config,
) -> (steadfast_blocking::Handle, steadfast_blocking::Events) {
    let (handle, mut events) = Builder::new(url)
        .expect("url")
        .config(config)
        .spawn()
        .expect("spawn");
    next_matching(&mut events, "never opened", |ev| {
        matches!(ev, Event::Opened { .. }).then_some(())
    });
    (handle, events)
}

/// What `pick` picks from the events within 10 s, the others skipped (as
/// the testkit's `next_matching` does for a stream); panics with `missing`
/// when nothing is picked in that time, however many events come.
fn next_matching<T>(
    events: &mut steadfast_blocking::Events,
    missing: &str,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> T {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(ev) => {
                if let Some(picked) = pick(ev) {
                    return picked;
                }
            }
            Err(e) => panic!("{missing}: {e}"),
        }
    }
}

/// The events waiting to be taken, taken without waiting.
fn drain(events: &mut steadfast_blocking::Events) -> Vec<Event> {
    std::iter::from_fn(|| events.try_recv().ok()).collect()
}

/// How long a silent peer may take to be declared dead in these tests.
fn detection_bound() -> Duration {
    INTERVAL + PONG_TIMEOUT + SLACK
}

/// A heartbeat a minute apart (so no deadline comes within a test), a
/// close timeout of 1 s, and acks by key (`ack:<key>`).
fn minute_heartbeat() -> Config {
    Config::builder()
        .seed(1)
        .acks(AckConfig::new(AckMatcher::ack_nack()))
        .close_timeout(Duration::from_secs(1))
        .heartbeat(HeartbeatConfig {
            interval: Duration::from_secs(60),
            pong_timeout: Duration::from_secs(10),
            ..Default::default()
        })
        .build()
        .expect("config")
}

/// While the application waits in `recv` with the link open (its own
/// thread then drives the connection, or the loop thread does: this test
/// does not tell them apart), a silent peer is declared dead within the
/// bound, and nothing but state changes comes before.
#[test]
fn a_silent_peer_is_declared_dead_while_the_receiver_waits_in_recv() {
    let rt = runtime();
    let server = start(&rt, Behaviour::Silent);
    let (_handle, mut events) = spawned_open(&server.url(), config(1, Delivery::AtMostOnce));
    let since = Instant::now();
    loop {
        let ev = events
            .recv_timeout(Duration::from_secs(30))
            .expect("an event within 30 s");
        if is_heartbeat_timeout(&ev) {
            break;
        }
        assert!(matches!(ev, Event::StateChanged { .. }), "{ev:?}");
    }
    let took = since.elapsed();
    assert!(took <= detection_bound(), "detection took {took:?}");
}

/// The application waits in `recv` once (its thread drives meanwhile),
/// then stops taking events: the loop thread takes the connection back by
/// itself, and the heartbeat still declares the silent peer dead with
/// nobody in `recv`.
#[test]
fn once_the_receiver_stops_waiting_the_loop_thread_takes_over() {
    let rt = runtime();
    let server = start(&rt, Behaviour::Silent);
    let (handle, mut events) = spawned_open(&server.url(), config(1, Delivery::AtMostOnce));
    let since = Instant::now();
    assert!(matches!(
        events.recv_timeout(INTERVAL / 4),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout)
    ));
    // Polled, not taken from `events`: taking would drive the connection.
    let left = detection_bound().saturating_sub(since.elapsed());
    assert!(
        rt.block_on(wait_until(left, || handle.state() != State::Open)),
        "still open with nobody in recv"
    );
    // The events it produced meanwhile wait to be taken.
    let queued = drain(&mut events);
    assert!(queued.iter().any(is_heartbeat_timeout), "{queued:?}");
}

/// With no deadline near (a ping a minute away), the loop thread still
/// takes the connection back soon after the application stops waiting in
/// `recv`: an echo that arrives then is read (and waits to be taken)
/// without anyone in `recv` and without the next deadline.
#[test]
fn the_loop_thread_reads_what_arrives_after_the_receiver_left() {
    let rt = runtime();
    let server = start(&rt, Behaviour::serve());
    let (handle, mut events) = spawned_open(&server.url(), minute_heartbeat());
    // Waits (and drives) briefly, then leaves.
    assert!(events.recv_timeout(Duration::from_millis(50)).is_err());
    handle.send("echo me").expect("send");
    assert!(
        rt.block_on(wait_until(SLACK, || handle.stats().inbound_len > 0)),
        "the echo was not read within {SLACK:?} with nobody in recv"
    );
    let queued = drain(&mut events);
    assert!(
        queued
            .iter()
            .any(|ev| matches!(ev, Event::Message(m) if m.as_text() == Some("echo me"))),
        "{queued:?}"
    );
}

/// The application waits in `recv` once (its thread drives, then leaves);
/// then another thread makes a request that no reply answers, with no
/// other deadline near: the loop thread is woken for the request's
/// deadline, and the request times out at it, not at the next heartbeat.
#[test]
fn a_request_after_the_receiver_left_times_out_at_its_deadline() {
    let rt = runtime();
    let server = start(
        &rt,
        Behaviour::Serve {
            echo: false,
            ack: false,
        },
    );
    let (handle, mut events) = spawned_open(&server.url(), minute_heartbeat());
    assert!(events.recv_timeout(Duration::from_millis(50)).is_err());
    let timeout = Duration::from_millis(300);
    let asked = Instant::now();
    let other = handle.clone();
    let answered = std::thread::spawn(move || other.request(1, "ask", timeout))
        .join()
        .expect("the requesting thread");
    let took = asked.elapsed();
    assert!(
        matches!(answered, Err(steadfast_blocking::RequestError::TimedOut)),
        "{answered:?}"
    );
    assert!(took >= timeout, "timed out early: {took:?}");
    assert!(took <= timeout + SLACK, "timed out late: {took:?}");
}

/// A server that sends one 4,000-byte binary frame in 100-byte pieces,
/// 25 ms apart (about a second in all; each piece comes well within the
/// socket's read timeout). Caller-driven, every `next_event` with a 100 ms
/// timeout returns within its bound while the frame trickles in (a wait
/// blocks in one read, not until the frame is whole), and the message
/// comes whole in the end.
#[test]
fn next_event_keeps_its_timeout_while_a_frame_arrives_in_pieces() {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept");
        let mut ws = tungstenite::accept(sock).expect("handshake");
        let mut frame = vec![0x82, 126, 0x0f, 0xa0]; // FIN + binary, 4,000 bytes
        frame.extend(std::iter::repeat_n(b'x', 4_000));
        for piece in frame.chunks(100) {
            ws.get_mut().write_all(piece).expect("write");
            std::thread::sleep(Duration::from_millis(25));
        }
        // Keep the connection until the client goes.
        while ws.read().is_ok() {}
    });
    let mut conn = Builder::new(format!("ws://{addr}/"))
        .expect("url")
        .config(minute_heartbeat())
        .connect();
    // The handshake is not what is timed.
    while !matches!(
        conn.next_event(Duration::from_secs(10))
            .expect("next_event"),
        Some(Event::Opened { .. })
    ) {}
    let since = Instant::now();
    let mut longest = Duration::ZERO;
    let message = loop {
        assert!(since.elapsed() < Duration::from_secs(10), "no message");
        let asked = Instant::now();
        let ev = conn
            .next_event(Duration::from_millis(100))
            .expect("next_event");
        longest = longest.max(asked.elapsed());
        if let Some(Event::Message(m)) = ev {
            break m;
        }
    };
    assert_eq!(message.len(), 4_000);
    assert!(
        longest <= Duration::from_millis(100) + Duration::from_millis(500),
        "a 100 ms next_event took {longest:?}"
    );
    drop(conn);
    server.join().expect("server");
}
