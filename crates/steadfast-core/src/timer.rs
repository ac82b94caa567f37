//! One table of named deadlines; [`Client::poll_timeout`](crate::Client::poll_timeout)
//! is its minimum.

use crate::Instant;

/// The deadlines the core keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// The connection attempt must have opened by then.
    Connect,
    /// The application must have confirmed authentication by then.
    Auth,
    /// The next heartbeat ping is due.
    Ping,
    /// The outstanding ping must have been answered by then (or, in passive
    /// mode, some frame must have arrived).
    PongDeadline,
    /// The backoff before the next attempt ends.
    Backoff,
    /// The peer must have answered our close frame by then.
    Close,
    /// The earliest queued message expires.
    Expiry,
    /// The earliest request's reply is overdue.
    Reply,
}

const TIMERS: [Timer; 8] = [
    Timer::Connect,
    Timer::Auth,
    Timer::Ping,
    Timer::PongDeadline,
    Timer::Backoff,
    Timer::Close,
    Timer::Expiry,
    Timer::Reply,
];

/// Deadlines as nanoseconds, [`NEVER`] when unset: one cache line, and a
/// minimum without branches (it is taken on every input).
#[derive(Debug, Clone)]
pub(crate) struct Timers {
    deadlines: [u64; TIMERS.len()],
}

/// An unset deadline. A deadline at [`Instant::MAX`] never comes either,
/// so the two are the same.
const NEVER: u64 = u64::MAX;

impl Default for Timers {
    fn default() -> Self {
        Timers {
            deadlines: [NEVER; TIMERS.len()],
        }
    }
}

impl Timers {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer as usize] = at.as_nanos();
    }

    pub(crate) fn set_opt(&mut self, timer: Timer, at: Option<Instant>) {
        self.deadlines[timer as usize] = at.map_or(NEVER, Instant::as_nanos);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = NEVER;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        deadline(self.deadlines[timer as usize])
    }

    /// The earliest deadline of all.
    pub(crate) fn next(&self) -> Option<Instant> {
        deadline(self.deadlines.iter().fold(NEVER, |min, at| min.min(*at)))
    }

    /// The set of timers due at `now`, for [`Timers::pop_expired`].
    pub(crate) fn due(&self, now: Instant) -> u8 {
        // `at < now + 1`, saturating: `at <= now`, and never for NEVER
        // (u64::MAX), even at `Instant::MAX`. One comparison per timer.
        let bound = now.as_nanos().saturating_add(1);
        self.deadlines
            .iter()
            .enumerate()
            .fold(0, |mask, (i, at)| mask | u8::from(*at < bound) << i)
    }

    /// The earliest timer in `due` that is still expired at `now` (the first
    /// in declaration order among equal deadlines), stopped and removed from
    /// `due` as it is returned.
    pub(crate) fn pop_expired(&mut self, now: Instant, due: &mut u8) -> Option<Timer> {
        let now = now.as_nanos();
        let mut best: Option<(u64, usize)> = None;
        let mut bits = *due;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let at = self.deadlines[i];
            if at != NEVER && at <= now && best.is_none_or(|(earliest, _)| at < earliest) {
                best = Some((at, i));
            }
        }
        let (_, i) = best?;
        *due &= !(1 << i);
        self.deadlines[i] = NEVER;
        Some(TIMERS[i])
    }

    pub(crate) fn stop_connection_timers(&mut self) {
        for t in [
            Timer::Connect,
            Timer::Auth,
            Timer::Ping,
            Timer::PongDeadline,
            Timer::Close,
        ] {
            self.stop(t);
        }
    }
}

fn deadline(nanos: u64) -> Option<Instant> {
    (nanos != NEVER).then_some(Instant::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_the_minimum_of_armed_deadlines() {
        let mut t = Timers::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Ping, Instant::from_secs(30));
        t.set(Timer::Expiry, Instant::from_secs(10));
        assert_eq!(t.next(), Some(Instant::from_secs(10)));
        t.stop(Timer::Expiry);
        assert_eq!(t.next(), Some(Instant::from_secs(30)));
        t.set(Timer::Backoff, Instant::MAX);
        assert_eq!(t.next(), Some(Instant::from_secs(30)));
        t.stop(Timer::Ping);
        assert_eq!(t.next(), None, "a deadline at Instant::MAX never comes");
    }

    #[test]
    fn equal_deadlines_pop_in_declaration_order_and_unset_ones_never() {
        let mut t = Timers::default();
        let now = Instant::MAX;
        assert_eq!(
            t.due(now),
            0,
            "an unset deadline is not due, even at the end of time"
        );
        t.set(Timer::Reply, Instant::from_secs(4));
        t.set(Timer::Ping, Instant::from_secs(4));
        t.set(Timer::Connect, Instant::from_secs(5));
        let mut due = t.due(now);
        assert_eq!(due.count_ones(), 3);
        assert_eq!(t.pop_expired(now, &mut due), Some(Timer::Ping));
        assert_eq!(t.pop_expired(now, &mut due), Some(Timer::Reply));
        assert_eq!(t.pop_expired(now, &mut due), Some(Timer::Connect));
        assert_eq!((t.pop_expired(now, &mut due), due), (None, 0));
    }

    #[test]
    fn expired_timers_pop_in_deadline_order_once_each() {
        let mut t = Timers::default();
        t.set(Timer::Close, Instant::from_secs(2));
        t.set(Timer::Connect, Instant::from_secs(3));
        t.set(Timer::Backoff, Instant::from_secs(9));
        let now = Instant::from_secs(5);
        let mut due = t.due(now);
        assert_eq!(t.pop_expired(now, &mut due), Some(Timer::Close));
        t.set(Timer::Close, now); // re-armed while firing: waits for the next call
        assert_eq!(t.pop_expired(now, &mut due), Some(Timer::Connect));
        assert_eq!(t.pop_expired(now, &mut due), None);
        assert_eq!(t.next(), Some(now));
        assert_eq!(t.pop_expired(now, &mut t.due(now)), Some(Timer::Close));
        assert_eq!(t.next(), Some(Instant::from_secs(9)));
    }
}
