//! Driver behaviour that needs a knob the public API does not have.

use crate::Builder;
use futures_util::StreamExt;
use std::time::Duration;
use steadfast_core::{Config, Event, HeartbeatConfig, Message, State};
use steadfast_testkit::{Behaviour, Server};

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
    let config = Config::builder()
        .heartbeat(heartbeat)
        .build()
        .expect("config");
    let (handle, mut events) = Builder::new(server.url())
        .expect("url")
        .config(config)
        .hand_back(Duration::from_secs(60))
        .connect();
    let echoed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut sent = false;
        while let Some(ev) = events.next().await {
            match ev {
                Event::StateChanged {
                    to: State::Open, ..
                } if !sent => {
                    handle.send(Message::text("echo me")).expect("room");
                    sent = true;
                }
                // Read by this task while it waited: from now on the
                // driver leaves reads to it, and looks only in a minute.
                Event::Message(_) => return true,
                _ => {}
            }
        }
        false
    })
    .await;
    assert_eq!(echoed, Ok(true), "no echo");
    // Take what is left, and wait on the events once more (the next frame,
    // a pong, wakes this task alone); then stop polling them across several
    // heartbeat rounds.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), events.next()).await {}
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stats = handle.stats();
    assert_eq!(handle.state(), State::Open);
    assert_eq!(stats.attempts, 1, "reconnected: a pong went unread");
    assert!(stats.rtt.is_some(), "no pong was read");
    assert_eq!(server.handshakes(), 1);
}
