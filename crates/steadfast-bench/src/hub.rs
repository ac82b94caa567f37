//! Live heap per idle session of the sans-IO hub (`steadfast-hub`): a
//! `Hub<u64>` holding N accepted sessions, one user each, that nobody
//! writes to. Counted by the same process-wide allocator as `memory`'s heap
//! columns (`--features heap`, see `crate::heap`).

use steadfast_hub::{Hub, HubConfig, Verdict};
use steadfast_tokio::core::Instant;

/// The room every user joins in the "in one room" column.
const ROOM: &str = "lobby";

/// A hub with `n` idle accepted sessions (users `0..n`), each user in
/// [`ROOM`] when `room`, its events and actions drained as an adapter
/// would.
fn idle_hub(n: u64, room: bool) -> Hub<u64> {
    let now = Instant::ZERO;
    let config = HubConfig {
        seed: Some(1),
        ..HubConfig::default()
    };
    let mut hub = Hub::new(config, now).expect("the default configuration is valid");
    for user in 0..n {
        hub.open(
            Verdict::Accept {
                user,
                protocol: None,
            },
            now,
        );
        if room {
            hub.join(&user, ROOM).expect("the user is connected");
        }
        while hub.poll_event().is_some() {}
        while hub.poll_action().is_some() {}
    }
    assert_eq!(hub.live_count() as u64, n, "every session is live");
    hub
}

/// Live heap bytes per session, and the peak per session while the hub
/// was built.
fn per_session(n: u64, room: bool) -> (f64, f64) {
    let counter = crate::heap::Counter::start();
    let kept = idle_hub(n, room);
    let (live, peak) = (counter.live_bytes(), counter.peak_bytes());
    drop(kept);
    (live as f64 / n as f64, peak as f64 / n as f64)
}

/// `hub`: the table of heap bytes per idle session.
pub(crate) fn run() {
    println!("\n### Hub: live heap bytes per idle session (`Hub<u64>`, default configuration)\n");
    println!(
        "| sessions | no room: live | no room: peak | one room: live | one room: peak | room − no room |"
    );
    println!("|---|---|---|---|---|---|");
    for n in [1_000, 10_000, 100_000] {
        let ((bare, bare_max), (room, room_max)) = (per_session(n, false), per_session(n, true));
        println!(
            "| {n} | {bare:.1} | {bare_max:.1} | {room:.1} | {room_max:.1} | {:+.1} |",
            room - bare
        );
    }
}
