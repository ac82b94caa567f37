//! The hub's behaviours, one scenario each, on a virtual clock.

use core::time::Duration;
use steadfast_core::{CloseCode, Instant, Message};
use steadfast_hub::{
    Action, DropReason, Duplicates, Hub, HubConfig, HubEvent, LeaveReason, LivenessConfig,
    Outbound, QueueConfig, REPLACED, REPLACED_REASON, Rejection, SHUTDOWN_REASON, SessionId,
    SlowConsumer, Verdict,
};

fn accept(user: &'static str) -> Verdict<&'static str> {
    Verdict::Accept {
        user,
        protocol: None,
    }
}

/// A hub seeded 1 with this liveness.
fn live_hub(liveness: LivenessConfig) -> Hub<&'static str> {
    hub(HubConfig {
        liveness,
        ..HubConfig::default()
    })
}

fn hub(config: HubConfig) -> Hub<&'static str> {
    Hub::new(
        HubConfig {
            seed: Some(1),
            ..config
        },
        Instant::ZERO,
    )
    .expect("valid config")
}

fn events(hub: &mut Hub<&'static str>) -> Vec<HubEvent<&'static str>> {
    std::iter::from_fn(|| hub.poll_event()).collect()
}

fn actions(hub: &mut Hub<&'static str>) -> Vec<Action> {
    std::iter::from_fn(|| hub.poll_action()).collect()
}

fn drain(hub: &mut Hub<&'static str>, s: SessionId, now: Instant) -> Vec<Outbound> {
    std::iter::from_fn(|| hub.next_outbound(s, now)).collect()
}

/// Runs every deadline up to `until`, in order, as an adapter does.
fn run_until(hub: &mut Hub<&'static str>, until: Instant) {
    while let Some(t) = hub.poll_timeout().filter(|&t| t <= until) {
        hub.handle_timeout(t);
    }
}

fn text(s: &str) -> Message {
    Message::text(s.to_owned())
}

#[test]
fn a_silent_session_is_pinged_then_reaped_exactly_at_the_detection_bound() {
    for (interval, timeout) in [(30_000, 15_000), (1_000, 5_000), (10, 10), (7, 3)] {
        let liveness = LivenessConfig {
            interval: Duration::from_millis(interval),
            timeout: Duration::from_millis(timeout),
        };
        let mut hub = live_hub(liveness);
        let s = hub.open(accept("a"), Instant::ZERO);
        actions(&mut hub);
        assert_eq!(hub.deadline_of(s), Some(Instant::ZERO + liveness.interval));
        let bound = Instant::ZERO + liveness.detection_bound();
        run_until(&mut hub, Instant::from_nanos(bound.as_nanos() - 1));
        assert_eq!(hub.deadline_of(s), Some(bound), "pinged: the reap is next");
        assert!(
            hub.is_live(s),
            "not reaped before the bound ({interval}/{timeout})"
        );
        assert_eq!(actions(&mut hub), [Action::Wake(s)], "pinged once");
        assert_eq!(
            drain(&mut hub, s, Instant::ZERO + liveness.interval),
            [Outbound::Ping(Default::default())]
        );
        run_until(&mut hub, bound);
        assert!(
            !hub.is_live(s),
            "reaped at the bound ({interval}/{timeout})"
        );
        assert_eq!(actions(&mut hub), [Action::Abort(s)]);
        assert_eq!(hub.deadline_of(s), None, "forgotten");
        let left = events(&mut hub).pop();
        assert_eq!(
            left,
            Some(HubEvent::Left {
                session: s,
                user: "a",
                reason: LeaveReason::Reaped
            })
        );
        assert_eq!(
            hub.next_outbound(s, bound),
            None,
            "nothing is written to a reaped session"
        );
    }
}

#[test]
fn an_active_session_never_wakes_the_hub_and_is_still_reaped_once_it_falls_silent() {
    // Signs of life a third of an interval apart: the session's deadline
    // moves along with them, so the hub's next deadline is never earlier
    // than half an interval past the latest one (no early wake-ups to
    // reschedule), and no ping goes out.
    let liveness = LivenessConfig {
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(15),
    };
    let mut hub = live_hub(liveness);
    let s = hub.open(accept("a"), Instant::ZERO);
    actions(&mut hub);
    let mut now = Instant::ZERO;
    for _ in 0..300 {
        now = now + Duration::from_secs(10);
        run_until(&mut hub, now);
        assert!(
            hub.poll_timeout().is_some_and(|t| t > now),
            "the hub was due before {now:?}: {:?}",
            hub.poll_timeout()
        );
        hub.alive(s, now);
        let next = hub.poll_timeout().expect("a live session has a deadline");
        assert!(
            next >= now + liveness.interval / 2,
            "{next:?} after {now:?}"
        );
    }
    assert!(actions(&mut hub).is_empty(), "never pinged");
    // Silent from here: pinged at the interval, reaped at the bound.
    let bound = now + liveness.detection_bound();
    run_until(&mut hub, Instant::from_nanos(bound.as_nanos() - 1));
    assert!(hub.is_live(s));
    assert_eq!(actions(&mut hub), [Action::Wake(s)], "pinged once");
    run_until(&mut hub, bound);
    assert!(!hub.is_live(s), "reaped at the bound");
}

#[test]
fn a_peer_that_answers_within_the_timeout_is_never_reaped() {
    let liveness = LivenessConfig {
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(5),
    };
    let mut hub = live_hub(liveness);
    let s = hub.open(accept("a"), Instant::ZERO);
    let mut pings = 0;
    let mut now = Instant::ZERO;
    while now < Instant::from_secs(3600) {
        now = hub.poll_timeout().expect("a live session has a deadline");
        hub.handle_timeout(now);
        for out in drain(&mut hub, s, now) {
            if let Outbound::Ping(_) = out {
                pings += 1;
                // The pong comes back just inside the timeout.
                hub.alive(s, now + (liveness.timeout - Duration::from_millis(1)));
            }
        }
    }
    assert!(hub.is_live(s));
    assert!(pings > 200, "the quiet link was pinged all along ({pings})");
}

#[test]
fn inbound_traffic_counts_as_alive_and_a_chatty_peer_is_never_pinged() {
    let mut hub = hub(HubConfig::default());
    let s = hub.open(accept("a"), Instant::ZERO);
    actions(&mut hub);
    for sec in 1..=600 {
        let now = Instant::from_secs(sec);
        run_until(&mut hub, now);
        hub.received(s, text("hi"), now);
    }
    assert!(hub.is_live(s));
    assert_eq!(actions(&mut hub), [], "no ping was needed");
}

#[test]
fn a_duplicate_login_replaces_the_old_session_which_gets_only_its_close() {
    let mut hub = hub(HubConfig::default());
    let old = hub.open(accept("a"), Instant::ZERO);
    hub.send_to(&"a", text("for the old one")).unwrap();
    let new = hub.open(accept("a"), Instant::from_secs(1));
    assert_eq!(hub.sessions_of(&"a"), [new]);
    assert_eq!(
        drain(&mut hub, old, Instant::from_secs(1)),
        [Outbound::Close {
            code: REPLACED,
            reason: REPLACED_REASON.into()
        }]
    );
    hub.send_to(&"a", text("for the new one")).unwrap();
    assert_eq!(
        drain(&mut hub, new, Instant::from_secs(1)),
        [Outbound::Message(text("for the new one"))]
    );
    let evs = events(&mut hub);
    assert!(evs.contains(&HubEvent::Left {
        session: old,
        user: "a",
        reason: LeaveReason::Replaced
    }));
    assert!(evs.contains(&HubEvent::Undelivered {
        session: old,
        user: "a",
        msg: text("for the old one"),
        reason: DropReason::SessionEnded(LeaveReason::Replaced),
    }));
    // The old peer never answers its close: it is aborted at the close timeout.
    let deadline = Instant::from_secs(1) + hub.config().close_timeout;
    run_until(&mut hub, deadline);
    assert!(actions(&mut hub).contains(&Action::Abort(old)));
}

#[test]
fn reject_new_refuses_a_second_login_before_the_upgrade_and_allow_keeps_both() {
    let mut hub1 = hub(HubConfig {
        duplicates: Duplicates::RejectNew,
        ..HubConfig::default()
    });
    hub1.open(accept("a"), Instant::ZERO);
    assert_eq!(hub1.check(&accept("a")).map_err(|r| r.status), Err(409));
    assert!(hub1.check(&accept("b")).is_ok());

    let mut hub2 = hub(HubConfig {
        duplicates: Duplicates::Allow,
        ..HubConfig::default()
    });
    let s1 = hub2.open(accept("a"), Instant::ZERO);
    let s2 = hub2.open(accept("a"), Instant::ZERO);
    assert_eq!(hub2.send_to(&"a", text("both")), Ok(2));
    assert_eq!(
        drain(&mut hub2, s1, Instant::ZERO),
        [Outbound::Message(text("both"))]
    );
    assert_eq!(
        drain(&mut hub2, s2, Instant::ZERO),
        [Outbound::Message(text("both"))]
    );
}

#[test]
fn a_refused_session_writes_its_error_then_closes_and_never_joins() {
    let mut hub = hub(HubConfig::default());
    let verdict = Verdict::Refuse {
        message: Some(text(r#"{"type":"error"}"#)),
        code: CloseCode::POLICY,
        reason: "unknown user".into(),
        protocol: None,
    };
    assert!(hub.check(&verdict).is_ok());
    let s = hub.open(verdict, Instant::ZERO);
    assert!(!hub.is_live(s));
    assert_eq!(
        drain(&mut hub, s, Instant::ZERO),
        [
            Outbound::Message(text(r#"{"type":"error"}"#)),
            Outbound::Close {
                code: CloseCode::POLICY,
                reason: "unknown user".into()
            }
        ]
    );
    assert_eq!(events(&mut hub), []);
    hub.closed(s, Some(CloseCode::POLICY), Instant::ZERO);
    assert_eq!(hub.session_count(), 0);
}

#[test]
fn application_rejections_and_capacity_are_answered_before_the_upgrade() {
    let mut hub = hub(HubConfig {
        max_sessions: Some(1),
        ..HubConfig::default()
    });
    let reject: Verdict<&str> = Verdict::Reject(Rejection::unauthorized());
    assert_eq!(hub.check(&reject), Err(Rejection::unauthorized()));
    hub.open(accept("a"), Instant::ZERO);
    let full = hub.check(&accept("b")).unwrap_err();
    assert_eq!((full.status, full.retry_after_secs()), (503, Some(5)));
    // A handshake that slipped past check is closed with 1013, never pooled.
    let late = hub.open(accept("b"), Instant::ZERO);
    assert!(!hub.is_live(late));
    assert!(matches!(
        drain(&mut hub, late, Instant::ZERO)[..],
        [Outbound::Close {
            code: CloseCode::TRY_AGAIN_LATER,
            ..
        }]
    ));
}

#[test]
fn a_full_queue_drops_the_oldest_and_reports_each_drop() {
    let queue = QueueConfig {
        max_messages: 2,
        max_bytes: 1 << 20,
        slow_consumer: SlowConsumer::DropOldest,
    };
    let mut hub = hub(HubConfig {
        queue,
        ..HubConfig::default()
    });
    let s = hub.open(accept("a"), Instant::ZERO);
    for m in ["1", "2", "3", "4"] {
        hub.send_to(&"a", text(m)).unwrap();
    }
    assert_eq!(hub.queued(s), (2, 2));
    let dropped: Vec<_> = events(&mut hub)
        .into_iter()
        .filter_map(|e| match e {
            HubEvent::Undelivered {
                msg,
                reason: DropReason::QueueFull,
                ..
            } => Some(msg),
            _ => None,
        })
        .collect();
    assert_eq!(dropped, [text("1"), text("2")]);
    assert_eq!(
        drain(&mut hub, s, Instant::ZERO),
        [Outbound::Message(text("3")), Outbound::Message(text("4"))]
    );
    assert!(hub.is_live(s));
}

#[test]
fn a_slow_consumer_over_its_byte_bound_is_closed_with_the_configured_code() {
    let queue = QueueConfig {
        max_messages: 100,
        max_bytes: 10,
        slow_consumer: SlowConsumer::Close(CloseCode::TRY_AGAIN_LATER),
    };
    let mut hub = hub(HubConfig {
        queue,
        ..HubConfig::default()
    });
    let s = hub.open(accept("a"), Instant::ZERO);
    hub.send_to(&"a", text("123456")).unwrap();
    hub.send_to(&"a", text("789012")).unwrap();
    assert!(!hub.is_live(s));
    assert!(matches!(
        drain(&mut hub, s, Instant::ZERO)[..],
        [Outbound::Close {
            code: CloseCode::TRY_AGAIN_LATER,
            ..
        }]
    ));
    let evs = events(&mut hub);
    assert!(evs.contains(&HubEvent::Left {
        session: s,
        user: "a",
        reason: LeaveReason::SlowConsumer
    }));
    let undelivered = evs
        .iter()
        .filter(|e| matches!(e, HubEvent::Undelivered { .. }))
        .count();
    assert_eq!(undelivered, 2, "both queued messages are reported");
    assert_eq!(
        hub.send_to(&"a", text("late")),
        Err(steadfast_hub::SendError::NoSuchUser)
    );
}

#[test]
fn a_message_larger_than_the_byte_bound_is_reported_at_once() {
    let queue = QueueConfig {
        max_bytes: 4,
        ..QueueConfig::default()
    };
    let mut hub = hub(HubConfig {
        queue,
        ..HubConfig::default()
    });
    let s = hub.open(accept("a"), Instant::ZERO);
    hub.send_to(&"a", text("too large")).unwrap();
    assert!(hub.is_live(s), "the session stays");
    assert!(events(&mut hub).iter().any(|e| matches!(
        e,
        HubEvent::Undelivered {
            reason: DropReason::TooLarge,
            ..
        }
    )));
}

#[test]
fn shutdown_spreads_the_closes_over_the_window_and_flushes_queues_first() {
    let mut hub = hub(HubConfig::default());
    let sessions: Vec<_> = (0..200)
        .map(|i| {
            hub.open(
                accept(Box::leak(format!("u{i}").into_boxed_str())),
                Instant::ZERO,
            )
        })
        .collect();
    actions(&mut hub);
    hub.broadcast(text("bye"));
    let window = Duration::from_secs(10);
    hub.shutdown(CloseCode::SERVICE_RESTART, window, Instant::ZERO);
    assert_eq!(hub.check(&accept("late")).map_err(|r| r.status), Err(503));
    let mut closed_at = Vec::new();
    let mut written: std::collections::BTreeMap<SessionId, Vec<Outbound>> = Default::default();
    let mut now = Instant::ZERO;
    loop {
        for a in actions(&mut hub) {
            if let Action::Wake(s) = a {
                let out = drain(&mut hub, s, now);
                let closing = out.iter().any(|o| matches!(o, Outbound::Close { .. }));
                written.entry(s).or_default().extend(out);
                if closing {
                    closed_at.push(now);
                    hub.closed(s, Some(CloseCode::SERVICE_RESTART), now);
                }
            }
        }
        match hub.poll_timeout().filter(|&t| t <= Instant::ZERO + window) {
            Some(t) => {
                now = t;
                hub.handle_timeout(t);
            }
            None => break,
        }
    }
    let bye_then_close = [
        Outbound::Message(text("bye")),
        Outbound::Close {
            code: CloseCode::SERVICE_RESTART,
            reason: SHUTDOWN_REASON.into(),
        },
    ];
    for s in &sessions {
        assert_eq!(
            written[s], bye_then_close,
            "{s} got its queue, then its close"
        );
    }
    assert_eq!(
        closed_at.len(),
        sessions.len(),
        "every session closed within the window"
    );
    // Spread: no tenth of the window holds more than a quarter of them.
    for w in 0..10 {
        let lo = Instant::from_secs(w);
        let hi = Instant::from_secs(w + 1);
        let n = closed_at.iter().filter(|&&t| lo <= t && t < hi).count();
        assert!(n <= sessions.len() / 4, "{n} closes in second {w}");
    }
    assert_eq!(hub.session_count(), 0);
}

#[test]
fn the_same_seed_spreads_a_shutdown_the_same_way() {
    let run = |seed| {
        let mut hub = Hub::new(
            HubConfig {
                seed: Some(seed),
                ..HubConfig::default()
            },
            Instant::ZERO,
        )
        .unwrap();
        for i in 0..20u32 {
            hub.open(
                Verdict::Accept {
                    user: i,
                    protocol: None,
                },
                Instant::ZERO,
            );
        }
        hub.shutdown(CloseCode::GOING_AWAY, Duration::from_secs(5), Instant::ZERO);
        let mut times = Vec::new();
        while let Some(t) = hub.poll_timeout().filter(|&t| t <= Instant::from_secs(5)) {
            hub.handle_timeout(t);
            times.push(t);
        }
        times
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

#[test]
fn rooms_survive_a_replacement_and_end_with_the_users_last_session() {
    let mut hub = hub(HubConfig::default());
    let a = hub.open(accept("a"), Instant::ZERO);
    hub.open(accept("b"), Instant::ZERO);
    hub.join(&"a", "lobby").unwrap();
    hub.join(&"b", "lobby").unwrap();
    assert_eq!(
        hub.join(&"nobody", "lobby"),
        Err(steadfast_hub::SendError::NoSuchUser)
    );
    let a2 = hub.open(accept("a"), Instant::from_secs(1));
    assert_eq!(hub.room_members("lobby").collect::<Vec<_>>(), [&"a", &"b"]);
    assert_eq!(hub.send_to_room("lobby", text("x")), 2);
    assert_eq!(hub.queued(a), (0, 0), "the replaced session got nothing");
    assert_eq!(hub.queued(a2), (1, 1));
    hub.closed(a2, None, Instant::from_secs(2));
    assert_eq!(hub.room_members("lobby").collect::<Vec<_>>(), [&"b"]);
    assert_eq!(hub.rooms_of(&"a").count(), 0);
    assert!(hub.leave(&"b", "lobby"));
    assert_eq!(
        hub.send_to_room("lobby", text("y")),
        0,
        "an emptied room is gone"
    );
}

#[test]
fn a_graceful_close_is_aborted_when_the_peer_never_answers() {
    let mut hub = hub(HubConfig::default());
    let s = hub.open(accept("a"), Instant::ZERO);
    hub.close_session(s, CloseCode::NORMAL, "bye").unwrap();
    assert_eq!(
        drain(&mut hub, s, Instant::ZERO),
        [Outbound::Close {
            code: CloseCode::NORMAL,
            reason: "bye".into()
        }]
    );
    let deadline = Instant::ZERO + hub.config().close_timeout;
    run_until(&mut hub, deadline);
    assert!(actions(&mut hub).contains(&Action::Abort(s)));
    assert_eq!(hub.session_count(), 0);
}

#[test]
fn unsendable_codes_and_long_reasons_are_made_sendable() {
    let mut hub = hub(HubConfig::default());
    let s = hub.open(accept("a"), Instant::ZERO);
    hub.close_session(s, CloseCode::ABNORMAL, &"é".repeat(100))
        .unwrap();
    match &drain(&mut hub, s, Instant::ZERO)[..] {
        [Outbound::Close { code, reason }] => {
            assert_eq!(*code, CloseCode::GOING_AWAY);
            assert!(reason.len() <= steadfast_core::MAX_CLOSE_REASON);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn while_reading_is_paused_nobody_is_reaped_and_resuming_credits_the_time_left() {
    let mut hub = hub(HubConfig::default()); // 30 s + 15 s
    let s = hub.open(accept("a"), Instant::ZERO);
    hub.pause_reading(Instant::from_secs(10));
    run_until(&mut hub, Instant::from_secs(600));
    assert!(
        hub.is_live(s),
        "not reaped while the adapter could not read"
    );
    assert_eq!(
        hub.poll_timeout(),
        None,
        "no liveness deadline while paused"
    );
    hub.resume_reading(Instant::from_secs(600));
    // 10 s of silence were spent before the pause: 35 s are left.
    run_until(&mut hub, Instant::from_secs(634));
    assert!(hub.is_live(s));
    run_until(&mut hub, Instant::from_secs(635));
    assert!(!hub.is_live(s), "reaped once the credited time ran out");
}

#[test]
fn reading_follows_the_backlog_and_resumes_for_good_once_events_are_discarded() {
    let mut hub = hub(HubConfig {
        max_pending_events: 11,
        ..HubConfig::default()
    });
    let s = hub.open(accept("a"), Instant::ZERO);
    events(&mut hub);
    for _ in 0..10 {
        hub.received(s, text("m"), Instant::ZERO);
    }
    assert!(!hub.follow_backlog(false, Instant::ZERO), "10 < 11");
    assert!(!hub.is_reading_paused());
    hub.received(s, text("m"), Instant::ZERO);
    assert!(!hub.follow_backlog(false, Instant::ZERO));
    assert!(hub.is_reading_paused(), "paused at the bound");
    // Nobody takes events any more: reading resumes with all 11 waiting.
    assert!(hub.follow_backlog(true, Instant::from_secs(1)));
    assert!(!hub.is_reading_paused());
    assert!(
        !hub.follow_backlog(true, Instant::from_secs(2)),
        "and stays on"
    );
    assert!(!hub.is_reading_paused());
}

#[test]
fn what_a_reaped_or_closed_session_still_had_queued_is_reported_with_that_reason() {
    let mut hub = hub(HubConfig::default());
    let reaped = hub.open(accept("a"), Instant::ZERO);
    let closed = hub.open(accept("b"), Instant::ZERO);
    hub.send_to(&"a", text("for a")).unwrap();
    hub.send_to(&"b", text("for b")).unwrap();
    hub.closed(closed, Some(CloseCode::GOING_AWAY), Instant::from_secs(1));
    hub.alive(reaped, Instant::from_secs(1)); // a keeps to the schedule a little longer
    let bound = Instant::from_secs(1) + hub.config().liveness.detection_bound();
    run_until(&mut hub, bound);
    let reasons: Vec<_> = events(&mut hub)
        .into_iter()
        .filter_map(|e| match e {
            HubEvent::Undelivered {
                session, reason, ..
            } => Some((session, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (
                closed,
                DropReason::SessionEnded(LeaveReason::PeerClosed(Some(CloseCode::GOING_AWAY)))
            ),
            (reaped, DropReason::SessionEnded(LeaveReason::Reaped)),
        ]
    );
}

#[test]
fn pausing_and_resuming_again_and_again_keeps_the_hubs_timers_bounded() {
    // Each resume moves every live session's deadline at once, leaving its
    // old timer entry stale; `CheckedHub` asserts after every call that the
    // entries stay within two per session (plus a few), and that the next
    // deadline is the earliest of the sessions'.
    let mut hub = steadfast_hub::check::CheckedHub::new(
        HubConfig {
            seed: Some(7),
            ..HubConfig::default()
        },
        Instant::ZERO,
    )
    .unwrap();
    // Opened a millisecond apart, last first: the latest deadline is the
    // first session's, and the hub moves them in its own order, not theirs.
    let mut now = Instant::ZERO;
    for i in (0..50).rev() {
        now = now + Duration::from_millis(1);
        hub.open(
            Verdict::Accept {
                user: format!("u{i:02}"),
                protocol: None,
            },
            now,
        );
    }
    for _ in 0..1_000 {
        now = now + Duration::from_millis(1);
        hub.pause_reading(now);
        now = now + Duration::from_millis(1);
        hub.resume_reading(now);
    }
    assert_eq!(
        hub.hub().live_count(),
        50,
        "two seconds in, nobody is reaped"
    );
    // And no deadline was lost in the rebuilds: silent from here, every
    // session is reaped by the bound.
    let bound = now + HubConfig::default().liveness.detection_bound();
    while let Some(t) = hub.hub().poll_timeout().filter(|&t| t <= bound) {
        hub.handle_timeout(t);
    }
    assert_eq!(hub.hub().live_count(), 0, "all reaped by the bound");
}
