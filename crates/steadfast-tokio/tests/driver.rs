//! Driver behaviour that needs a knob the public API does not have (the
//! engine's `test-hooks` feature).

use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use steadfast_testkit::adapter::{assert_open_on_first_connection, next_matching, wait_until};
use steadfast_testkit::{Behaviour, FaultProxy, Server};
use steadfast_tokio::core::{Config, Event, HeartbeatConfig, Message, State};
use steadfast_tokio::{Builder, Events, Handle};

/// A connection to `url` with this heartbeat, whose driver looks on its
/// own every `hand_back` while the application's task reads.
fn connect(url: String, heartbeat: HeartbeatConfig, hand_back: Duration) -> (Handle, Events) {
    let config = Config::builder()
        .heartbeat(heartbeat)
        .build()
        .expect("config");
    Builder::new(url)
        .expect("url")
        .config(config)
        .hand_back(hand_back)
        .connect()
}

/// Open a connection and exchange two messages with the echo server, this
/// task reading each echo while it waits: two frames within a hand-back
/// interval, so from then on the driver leaves reads to this task.
async fn echoed(handle: &Handle, events: &mut Events) {
    let echoed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut echoes = 0;
        while let Some(ev) = events.next().await {
            match ev {
                Event::StateChanged {
                    to: State::Open, ..
                } => {
                    handle.send(Message::text("echo me")).expect("room");
                }
                Event::Message(_) if echoes == 0 => {
                    echoes = 1;
                    handle.send(Message::text("echo me too")).expect("room");
                }
                Event::Message(_) => return true,
                _ => {}
            }
        }
        false
    })
    .await;
    assert_eq!(echoed, Ok(true), "no echo");
    assert!(
        wait_until(Duration::from_secs(10), || handle
            .test_hooks()
            .driver_looks())
        .await,
        "the driver never left reads to this task"
    );
    // Take what is left, and wait on the events once more (the next frame
    // wakes this task alone); the caller then stops polling them.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), events.next()).await {}
}

/// While the application's task waits on its events it reads the socket
/// itself, and frames wake it alone. When that task goes busy elsewhere
/// (its wait timed out), the driver still reads at its next look: here a
/// reset, long before any heartbeat deadline.
#[tokio::test]
async fn a_reset_is_read_at_the_drivers_next_look_while_the_application_is_busy() {
    let server = Server::start(Behaviour::serve()).await.expect("server");
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let heartbeat = HeartbeatConfig {
        interval: Duration::from_secs(120),
        pong_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let (handle, mut events) = connect(proxy.url(), heartbeat, Duration::from_secs(1));
    echoed(&handle, &mut events).await;
    let mut state = handle.watch();
    proxy.reset_all();
    // Generous against the 1 s look, and short of the core's first deadline
    // after opening (`min_uptime`, 10 s), which wakes the driver too.
    let noticed =
        tokio::time::timeout(Duration::from_secs(5), state.wait_for(|s| s != State::Open)).await;
    assert!(
        matches!(noticed, Ok(state) if state != State::Open),
        "the reset went unread while the application was busy"
    );
}

/// A pong that reached the socket while nobody read it (the application's
/// task was woken for it alone and went busy elsewhere; the driver's own
/// look is far off) is read before the pong deadline fires: no reconnect.
#[tokio::test]
async fn an_unread_pong_is_read_before_its_deadline_fires() {
    let server = Server::start(Behaviour::serve()).await.expect("server");
    let heartbeat = HeartbeatConfig {
        interval: Duration::from_millis(300),
        pong_timeout: Duration::from_millis(200),
        tolerated_missed: 0,
        any_frame_is_liveness: false,
        ..Default::default()
    };
    let (handle, mut events) = connect(server.url(), heartbeat, Duration::from_secs(60));
    // From now on the driver leaves reads to this task, and looks only in
    // a minute. The next frame is a pong.
    echoed(&handle, &mut events).await;
    // Stop polling the events until a pong has been read.
    assert!(
        wait_until(Duration::from_secs(10), || handle.stats().rtt.is_some()).await,
        "no pong was read"
    );
    let stats = handle.stats();
    assert_eq!(handle.state(), State::Open);
    assert_eq!(stats.attempts, 1, "reconnected: a pong went unread");
    assert_eq!(server.handshakes(), 1);
}

/// Let the tasks woken with this one run (the driver is woken with the
/// application's task for a frame while it does not look on its own).
async fn let_the_driver_run() {
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

/// Wait until the connection is open.
async fn wait_open(handle: &Handle) {
    let mut state = handle.watch();
    let opened = matches!(
        tokio::time::timeout(
            Duration::from_secs(10),
            state.wait_for(|s| s == State::Open)
        )
        .await,
        Ok(State::Open)
    );
    assert!(opened, "never opened");
}

/// Send `text` and take events until its echo.
async fn echo(handle: &Handle, events: &mut Events, text: &'static str) {
    handle.send(Message::text(text)).expect("room");
    let echo = |ev| matches!(ev, Event::Message(_)).then_some(());
    let got = next_matching(events, Duration::from_secs(10), echo).await;
    assert_eq!(got, Some(()), "no echo of {text}");
}

/// On a connection whose driver looks every `interval` once the hand-back
/// starts: echo twice, `gap` apart, and say after each echo whether the
/// driver has promised to look.
async fn looks_after_two_echoes(interval: Duration, gap: Duration) -> [bool; 2] {
    let server = Server::start(Behaviour::serve()).await.expect("server");
    let (handle, mut events) = connect(server.url(), HeartbeatConfig::default(), interval);
    wait_open(&handle).await;
    echo(&handle, &mut events, "one").await;
    let_the_driver_run().await;
    let after_one = handle.test_hooks().driver_looks();
    tokio::time::sleep(gap).await;
    echo(&handle, &mut events, "two").await;
    let_the_driver_run().await;
    [after_one, handle.test_hooks().driver_looks()]
}

/// Sparse traffic keeps the driver woken for each frame (one quick check),
/// rather than starting a look per frame; two frames read by the
/// application's task within one interval start the hand-back.
#[tokio::test]
async fn the_hand_back_starts_on_the_second_frame_within_an_interval() {
    let looks = looks_after_two_echoes(Duration::from_secs(2), Duration::ZERO).await;
    assert_eq!(looks, [false, true]);
}

/// Two frames further apart than the interval do not start the hand-back
/// (the gap is a precondition, not a bound: any longer gap holds too).
#[tokio::test]
async fn frames_further_apart_than_the_interval_do_not_start_the_hand_back() {
    let looks =
        looks_after_two_echoes(Duration::from_millis(200), Duration::from_millis(300)).await;
    assert_eq!(looks, [false, false]);
}

/// A system suspend on an open connection: the clock counts the suspended
/// time (injected here, 60 s), so at the driver's next deadline the core
/// sees `now` far past it, reports the suspend, and sends one probe ping,
/// which the server answers: the connection stays up, no reconnect.
#[tokio::test]
async fn a_suspend_of_an_open_connection_is_noticed_and_probed() {
    let server = Server::start(Behaviour::serve()).await.expect("server");
    let suspended = Arc::new(AtomicU64::new(0));
    // The first ping, 2 s after opening, is the deadline that wakes the
    // driver after the suspend; no ping goes out before the suspend.
    let heartbeat = HeartbeatConfig {
        interval: Duration::from_secs(2),
        pong_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let config = Config::builder()
        .heartbeat(heartbeat)
        .build()
        .expect("config");
    let (handle, mut events) = Builder::new(server.url())
        .expect("url")
        .config(config)
        .suspended_time(suspended.clone())
        .connect();
    let open = |ev| {
        matches!(
            ev,
            Event::StateChanged {
                to: State::Open,
                ..
            }
        )
        .then_some(())
    };
    let opened = next_matching(&mut events, Duration::from_secs(10), open).await;
    assert_eq!(opened, Some(()), "never opened");

    suspended.store(60_000_000_000, Ordering::Relaxed);
    let mut seen = Vec::new();
    let probed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = events.next().await {
            let rtt = matches!(ev, Event::Rtt(_));
            seen.push(ev);
            if rtt {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(probed, Ok(true), "no pong after the suspend: {seen:?}");
    // The suspend came first, then the probe's pong (the first pong: no
    // ping went out before the suspend).
    let overshoot = seen.iter().find_map(|ev| match ev {
        Event::Suspended { overshoot } => Some(*overshoot),
        _ => None,
    });
    // The driver woke at or after the deadline on tokio's clock, which the
    // suspend did not move: `now` is at least 60 s past it.
    assert!(
        overshoot.is_some_and(|o| o >= Duration::from_secs(60)),
        "no 60 s suspend before the pong: {seen:?}"
    );
    assert_open_on_first_connection(handle.status(), &server, "the probe was not answered");
}

/// A panic in the driver's task (here a test hook, while it holds the
/// lock) fails the connection with a typed error that hands back every
/// queued message, ends the events stream, and leaves the state `Failed`.
#[tokio::test]
async fn a_panicking_driver_fails_the_connection_and_hands_back_the_queue() {
    let server = Server::start(Behaviour::serve()).await.expect("server");
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    proxy.set_down(true);
    let (handle, mut events) = Builder::new(proxy.url()).expect("url").connect();
    let queued: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|text| handle.send(Message::text(text)).expect("room"))
        .collect();
    let mut state = handle.watch();
    let backing_off = matches!(
        tokio::time::timeout(
            Duration::from_secs(10),
            state.wait_for(|s| s == State::Backoff)
        )
        .await,
        Ok(State::Backoff)
    );
    assert!(backing_off, "never backed off");
    handle.test_hooks().panic_in_driver();
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        let mut seen = Vec::new();
        while let Some(ev) = events.next().await {
            seen.push(ev);
        }
        seen
    })
    .await
    .expect("the events stream never ended");
    let Some(Event::Failed { error, undelivered }) = seen.last() else {
        panic!("the events ended without Failed: {seen:?}")
    };
    assert_eq!(*error, steadfast_tokio::core::Error::Internal);
    let handed_back: Vec<_> = undelivered.iter().map(|(id, _)| *id).collect();
    assert_eq!(handed_back, queued);
    assert!(
        handle.test_hooks().lock_poisoned(),
        "the hook did not poison the lock"
    );
    assert_eq!(handle.state(), State::Failed);
    assert_eq!(state.state(), State::Failed);
    // The driver is gone: the watcher sees the end, then hears that nothing
    // will change again, instead of waiting forever.
    let wait = |state: &mut steadfast_tokio::StateWatch| {
        let mut state = state.clone();
        async move { tokio::time::timeout(Duration::from_secs(10), state.changed()).await }
    };
    assert_eq!(wait(&mut state).await, Ok(Some(State::Failed)));
    let _ = state.changed().await;
    assert_eq!(wait(&mut state).await, Ok(None));
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), handle.watch().changed()).await,
        Ok(None),
        "a watcher made after the end"
    );
    assert!(
        events.next().await.is_none(),
        "the stream did not stay ended"
    );
    assert!(
        handle.open().is_none(),
        "open gave a stream for a dead driver"
    );
    assert_eq!(
        handle.state(),
        State::Failed,
        "open restarted a dead driver"
    );
    assert!(matches!(
        handle.send(Message::text("late")),
        Err(steadfast_tokio::core::SendError::Failed(_))
    ));
}
