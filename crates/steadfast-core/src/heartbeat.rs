//! Heartbeat: ping schedule, pong deadline, missed count, RTT samples, and
//! liveness from any inbound frame. It arms the `Ping` and `PongDeadline`
//! timers; the client sends what it asks for and acts on its verdict.

use crate::timer::{Timer, Timers};
use crate::{HeartbeatConfig, HeartbeatMode, Instant, PingSchedule, RttStats};
use core::time::Duration;

/// A ping the client must send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ping {
    /// A WebSocket ping frame with this payload.
    Frame([u8; 8]),
    /// The configured application-level ping message.
    App,
}

/// The peer failed its heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dead;

#[derive(Debug, Clone, Default)]
pub(crate) struct Heartbeat {
    next_nonce: u64,
    /// The latest ping not yet answered: its nonce and when it was sent.
    outstanding: Option<(u64, Instant)>,
    missed: u32,
    rtt: Option<RttStats>,
}

impl Heartbeat {
    pub(crate) fn rtt(&self) -> Option<RttStats> {
        self.rtt
    }

    /// A connection opened: start watching it.
    pub(crate) fn start(&mut self, now: Instant, cfg: &HeartbeatConfig, timers: &mut Timers) {
        self.outstanding = None;
        self.missed = 0;
        timers.stop(Timer::Ping);
        self.rearm(now, cfg, timers);
    }

    /// The connection ended.
    pub(crate) fn stop(&mut self, timers: &mut Timers) {
        self.outstanding = None;
        self.missed = 0;
        timers.stop(Timer::Ping);
        timers.stop(Timer::PongDeadline);
    }

    /// A data frame or a ping arrived.
    pub(crate) fn on_inbound(&mut self, now: Instant, cfg: &HeartbeatConfig, timers: &mut Timers) {
        if cfg.any_frame_is_liveness {
            self.missed = 0;
            self.rearm(now, cfg, timers);
        }
    }

    /// A pong arrived: a WebSocket pong with its payload, or a matched
    /// application-level pong (`None`). Returns the RTT statistics when it
    /// answered the outstanding ping.
    pub(crate) fn on_pong(
        &mut self,
        payload: Option<&[u8]>,
        now: Instant,
        cfg: &HeartbeatConfig,
        timers: &mut Timers,
    ) -> Option<RttStats> {
        self.missed = 0;
        self.rearm(now, cfg, timers);
        let (nonce, sent_at) = self.outstanding?;
        if payload.is_some_and(|p| p != nonce.to_be_bytes()) {
            return None;
        }
        self.outstanding = None;
        let sample = now - sent_at;
        let rtt = match self.rtt {
            None => RttStats {
                last: sample,
                min: sample,
                smoothed: sample,
            },
            Some(prev) => RttStats {
                last: sample,
                min: prev.min.min(sample),
                smoothed: (prev.smoothed * 7 + sample) / 8,
            },
        };
        self.rtt = Some(rtt);
        Some(rtt)
    }

    /// The `Ping` timer fired.
    pub(crate) fn on_ping_due(
        &mut self,
        now: Instant,
        cfg: &HeartbeatConfig,
        timers: &mut Timers,
    ) -> Option<Ping> {
        if matches!(cfg.mode, HeartbeatMode::Passive) {
            return None;
        }
        if cfg.schedule == PingSchedule::Fixed {
            timers.set(Timer::Ping, now + cfg.interval);
            if timers.get(Timer::PongDeadline).is_some() {
                // A ping is already awaiting its answer: its deadline stands.
                // Re-arming it here would let a schedule that ticks before
                // (or with) the deadline postpone it forever.
                return None;
            }
        }
        Some(self.send_ping(now, cfg.pong_timeout, cfg, timers))
    }

    /// The `PongDeadline` timer fired: a ping went unanswered (or, passively,
    /// the link stayed silent too long).
    pub(crate) fn on_deadline(
        &mut self,
        now: Instant,
        cfg: &HeartbeatConfig,
        timers: &mut Timers,
    ) -> Result<Option<Ping>, Dead> {
        self.missed = self.missed.saturating_add(1);
        if matches!(cfg.mode, HeartbeatMode::Passive) || self.missed > cfg.tolerated_missed {
            return Err(Dead);
        }
        Ok(Some(self.send_ping(now, cfg.pong_timeout, cfg, timers)))
    }

    /// After a suspend: one probe ping with a short deadline; its miss is fatal.
    pub(crate) fn probe(
        &mut self,
        now: Instant,
        probe_timeout: Duration,
        cfg: &HeartbeatConfig,
        timers: &mut Timers,
    ) -> Ping {
        self.missed = cfg.tolerated_missed;
        if cfg.schedule == PingSchedule::Fixed {
            timers.set(Timer::Ping, now + cfg.interval);
        }
        // Passive mode never pings on its own; its probe is a frame ping.
        self.send_ping(now, probe_timeout, cfg, timers)
    }

    fn send_ping(
        &mut self,
        now: Instant,
        deadline: Duration,
        cfg: &HeartbeatConfig,
        timers: &mut Timers,
    ) -> Ping {
        let nonce = self.next_nonce;
        self.next_nonce = self.next_nonce.wrapping_add(1);
        self.outstanding = Some((nonce, now));
        timers.set(Timer::PongDeadline, now + deadline);
        if cfg.schedule == PingSchedule::WhenQuiet {
            timers.stop(Timer::Ping);
        }
        match cfg.mode {
            HeartbeatMode::AppLevel { .. } => Ping::App,
            HeartbeatMode::WebSocketPing | HeartbeatMode::Passive => {
                Ping::Frame(nonce.to_be_bytes())
            }
        }
    }

    /// Liveness proven at `now`: push the deadlines out.
    fn rearm(&mut self, now: Instant, cfg: &HeartbeatConfig, timers: &mut Timers) {
        match (&cfg.mode, cfg.schedule) {
            (HeartbeatMode::Passive, _) => {
                timers.set(Timer::PongDeadline, now + cfg.detection_bound());
            }
            (_, PingSchedule::WhenQuiet) => {
                timers.set(Timer::Ping, now + cfg.interval);
                timers.stop(Timer::PongDeadline);
            }
            (_, PingSchedule::Fixed) => {
                if timers.get(Timer::Ping).is_none() {
                    timers.set(Timer::Ping, now + cfg.interval);
                }
                timers.stop(Timer::PongDeadline);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HeartbeatConfig {
        HeartbeatConfig {
            interval: Duration::from_secs(10),
            pong_timeout: Duration::from_secs(5),
            ..Default::default()
        }
    }

    fn t(secs: u64) -> Instant {
        Instant::from_secs(secs)
    }

    #[test]
    fn ping_is_due_after_a_quiet_interval_and_inbound_frames_postpone_it() {
        let (mut hb, mut timers, cfg) = (Heartbeat::default(), Timers::default(), cfg());
        hb.start(t(0), &cfg, &mut timers);
        assert_eq!(timers.get(Timer::Ping), Some(t(10)));
        hb.on_inbound(t(7), &cfg, &mut timers);
        assert_eq!(timers.get(Timer::Ping), Some(t(17)));
        assert_eq!(timers.get(Timer::PongDeadline), None);
    }

    #[test]
    fn unanswered_ping_is_fatal_after_the_pong_deadline() {
        let (mut hb, mut timers, cfg) = (Heartbeat::default(), Timers::default(), cfg());
        hb.start(t(0), &cfg, &mut timers);
        assert_eq!(
            hb.on_ping_due(t(10), &cfg, &mut timers),
            Some(Ping::Frame(0u64.to_be_bytes()))
        );
        assert_eq!(timers.get(Timer::PongDeadline), Some(t(15)));
        assert_eq!(timers.get(Timer::Ping), None);
        assert_eq!(hb.on_deadline(t(15), &cfg, &mut timers), Err(Dead));
    }

    #[test]
    fn tolerated_misses_send_the_next_ping_at_once() {
        let (mut hb, mut timers) = (Heartbeat::default(), Timers::default());
        let cfg = HeartbeatConfig {
            tolerated_missed: 2,
            ..cfg()
        };
        hb.start(t(0), &cfg, &mut timers);
        hb.on_ping_due(t(10), &cfg, &mut timers);
        assert!(matches!(
            hb.on_deadline(t(15), &cfg, &mut timers),
            Ok(Some(Ping::Frame(_)))
        ));
        assert!(matches!(
            hb.on_deadline(t(20), &cfg, &mut timers),
            Ok(Some(_))
        ));
        assert_eq!(hb.on_deadline(t(25), &cfg, &mut timers), Err(Dead));
    }

    #[test]
    fn matching_pong_yields_rtt_samples_with_min_and_smoothing() {
        let (mut hb, mut timers, cfg) = (Heartbeat::default(), Timers::default(), cfg());
        hb.start(t(0), &cfg, &mut timers);
        let Some(Ping::Frame(p)) = hb.on_ping_due(t(10), &cfg, &mut timers) else {
            panic!("expected a frame ping")
        };
        let now = t(10) + Duration::from_millis(80);
        let rtt = hb.on_pong(Some(&p), now, &cfg, &mut timers).expect("rtt");
        assert_eq!(rtt.last, Duration::from_millis(80));
        assert_eq!(timers.get(Timer::PongDeadline), None);
        let Some(Ping::Frame(p)) = hb.on_ping_due(now + cfg.interval, &cfg, &mut timers) else {
            panic!("expected a frame ping")
        };
        let rtt = hb
            .on_pong(
                Some(&p),
                now + cfg.interval + Duration::from_millis(160),
                &cfg,
                &mut timers,
            )
            .expect("rtt");
        assert_eq!(rtt.min, Duration::from_millis(80));
        assert_eq!(rtt.smoothed, Duration::from_millis(90));
    }

    #[test]
    fn pong_with_a_foreign_payload_proves_liveness_but_gives_no_sample() {
        let (mut hb, mut timers, cfg) = (Heartbeat::default(), Timers::default(), cfg());
        hb.start(t(0), &cfg, &mut timers);
        hb.on_ping_due(t(10), &cfg, &mut timers);
        assert_eq!(hb.on_pong(Some(b"other"), t(11), &cfg, &mut timers), None);
        assert_eq!(timers.get(Timer::PongDeadline), None);
    }

    #[test]
    fn passive_mode_never_pings_and_dies_after_silence() {
        let (mut hb, mut timers) = (Heartbeat::default(), Timers::default());
        let cfg = HeartbeatConfig {
            mode: HeartbeatMode::Passive,
            ..cfg()
        };
        hb.start(t(0), &cfg, &mut timers);
        assert_eq!(timers.get(Timer::Ping), None);
        assert_eq!(timers.get(Timer::PongDeadline), Some(t(15)));
        hb.on_inbound(t(12), &cfg, &mut timers);
        assert_eq!(timers.get(Timer::PongDeadline), Some(t(27)));
        assert_eq!(hb.on_deadline(t(27), &cfg, &mut timers), Err(Dead));
    }

    #[test]
    fn only_pongs_count_when_frames_are_not_liveness() {
        let (mut hb, mut timers) = (Heartbeat::default(), Timers::default());
        let cfg = HeartbeatConfig {
            any_frame_is_liveness: false,
            ..cfg()
        };
        hb.start(t(0), &cfg, &mut timers);
        hb.on_ping_due(t(10), &cfg, &mut timers);
        hb.on_inbound(t(12), &cfg, &mut timers);
        assert_eq!(timers.get(Timer::PongDeadline), Some(t(15)));
    }

    #[test]
    fn fixed_schedule_pings_every_interval_despite_traffic() {
        let (mut hb, mut timers) = (Heartbeat::default(), Timers::default());
        let cfg = HeartbeatConfig {
            schedule: PingSchedule::Fixed,
            ..cfg()
        };
        hb.start(t(0), &cfg, &mut timers);
        hb.on_inbound(t(5), &cfg, &mut timers);
        assert_eq!(timers.get(Timer::Ping), Some(t(10)));
        hb.on_ping_due(t(10), &cfg, &mut timers);
        assert_eq!(timers.get(Timer::Ping), Some(t(20)));
    }

    /// Steps a silent peer through the timer table as the client does
    /// (earliest deadline first, `Ping` before `PongDeadline` on a tie) and
    /// returns when the heartbeat declared it dead.
    fn death_of_a_silent_peer(cfg: &HeartbeatConfig) -> Option<Instant> {
        let (mut hb, mut timers) = (Heartbeat::default(), Timers::default());
        hb.start(t(0), cfg, &mut timers);
        for _ in 0..1000 {
            let now = timers.next()?;
            let mut due = timers.due(now);
            while let Some(timer) = timers.pop_expired(now, &mut due) {
                match timer {
                    Timer::Ping => {
                        hb.on_ping_due(now, cfg, &mut timers);
                    }
                    Timer::PongDeadline if hb.on_deadline(now, cfg, &mut timers).is_err() => {
                        return Some(now);
                    }
                    _ => {}
                }
            }
        }
        None
    }

    #[test]
    fn fixed_schedule_with_the_pong_deadline_equal_to_the_interval_still_detects_a_dead_peer() {
        let cfg = HeartbeatConfig {
            schedule: PingSchedule::Fixed,
            interval: Duration::from_secs(10),
            pong_timeout: Duration::from_secs(10),
            ..cfg()
        };
        assert_eq!(death_of_a_silent_peer(&cfg), Some(t(20)));
    }

    #[test]
    fn fixed_schedule_detects_a_dead_peer_within_the_documented_bound() {
        // interval 10 s, pong 5 s, 3 tolerated: 10 + 4 × 5 = 30 s (was 45 s).
        let cfg = HeartbeatConfig {
            schedule: PingSchedule::Fixed,
            tolerated_missed: 3,
            ..cfg()
        };
        assert_eq!(death_of_a_silent_peer(&cfg), Some(t(30)));
        assert_eq!(cfg.detection_bound(), Duration::from_secs(30));
    }

    #[test]
    fn probe_after_suspend_uses_the_short_deadline_and_one_miss_is_fatal() {
        let (mut hb, mut timers) = (Heartbeat::default(), Timers::default());
        let cfg = HeartbeatConfig {
            tolerated_missed: 3,
            ..cfg()
        };
        hb.start(t(0), &cfg, &mut timers);
        hb.probe(t(100), Duration::from_secs(2), &cfg, &mut timers);
        assert_eq!(timers.get(Timer::PongDeadline), Some(t(102)));
        assert_eq!(hb.on_deadline(t(102), &cfg, &mut timers), Err(Dead));
    }
}
