//! The core's timeline: the runtime's clock plus the time the system spent
//! suspended since the connection was made.
//!
//! The core notices a suspend when `now` arrives far past a pending
//! deadline, so its clock must count suspended time. A runtime's clock does
//! not everywhere: it is std's `Instant`, which is `CLOCK_MONOTONIC` on Linux
//! and Android (stops while suspended) and `CLOCK_UPTIME_RAW` on macOS and
//! iOS (stops while asleep), while Windows' `QueryPerformanceCounter` is
//! reported to keep counting through sleep (std leaves it unspecified).
//!
//! So on Linux and Android this clock adds the growth of
//! `CLOCK_BOOTTIME - CLOCK_MONOTONIC` since it was created: exactly the time
//! spent suspended meanwhile, as the kernel keeps boottime as monotonic plus
//! the total time suspended. Elsewhere it adds nothing (Windows does not
//! need it; on Apple platforms suspend detection does not fire).
//!
//! Sleeps stay the runtime's timers (or a blocking adapter's socket
//! timeouts), converted from core instants, and the suspended time is read
//! from the system, not from the runtime: so a runtime's paused test clock
//! (`tokio::time::pause()`) still drives tests instantly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use steadfast_core::Instant;

/// The core's clock for one connection: a runtime's monotonic clock (or
/// `std::time::Instant::now`) plus the time the system spent suspended.
#[derive(Debug)]
pub struct Clock {
    /// The runtime's clock.
    runtime_now: fn() -> std::time::Instant,
    /// The core's `Instant::ZERO`, on the runtime's clock.
    origin: std::time::Instant,
    /// For [`Clock::system`] on Linux and Android: the origin on
    /// `CLOCK_MONOTONIC` (which std's `Instant` reads there), in
    /// nanoseconds, read directly at each look instead of through
    /// `Instant`'s arithmetic.
    monotonic_origin: Option<std::num::NonZeroU64>,
    suspended: Suspended,
}

impl Clock {
    /// A clock on the runtime's clock `now`.
    pub fn new(now: fn() -> std::time::Instant) -> Self {
        Clock::with_source(now, Source::system(), SUSPEND_LOOK_EVERY)
    }

    /// A clock on the system's monotonic clock, std's
    /// `std::time::Instant::now` (as [`Clock::new`] with it). On Linux and
    /// Android each look reads `CLOCK_MONOTONIC` directly, which is what
    /// std's `Instant` is there, for less work per look. (This relies on
    /// std's choice of clock, which std leaves unspecified: were `Instant`
    /// ever `CLOCK_BOOTTIME`, sleeps converted back would end early by the
    /// time suspended since the clock was made.) Only for a runtime whose
    /// clock is std's `Instant::now`.
    ///
    /// ```
    /// use steadfast_wire::Clock;
    ///
    /// let clock = Clock::system();
    /// let (a, b) = (clock.now(), clock.now());
    /// assert!(a <= b);
    /// ```
    pub fn system() -> Self {
        // Read first, so that from the same origin the core's time is at
        // most a moment ahead of std's: a deadline converted back to an
        // `Instant` comes a moment late, never early.
        let monotonic_origin = monotonic_nanos();
        let mut clock = Clock::new(std::time::Instant::now);
        clock.monotonic_origin = monotonic_origin.and_then(std::num::NonZeroU64::new);
        clock
    }

    /// A clock whose suspended time is whatever the test stores in `fake`
    /// (nanoseconds since the clock was created), read at every look.
    #[cfg(any(test, feature = "test-hooks"))]
    #[doc(hidden)]
    pub fn with_fake(now: fn() -> std::time::Instant, fake: std::sync::Arc<AtomicU64>) -> Self {
        Clock::with_source(now, Source::Fake(fake), 0)
    }

    /// `source`, read again once the runtime's clock has moved `every`
    /// nanoseconds since the last reading (0: at every look).
    fn with_source(runtime_now: fn() -> std::time::Instant, source: Source, every: u64) -> Self {
        Clock {
            runtime_now,
            origin: runtime_now(),
            monotonic_origin: None,
            suspended: Suspended {
                source,
                seen: AtomicU64::new(0),
                read_at: AtomicU64::new(0),
                every,
            },
        }
    }

    /// The runtime's time since the origin, plus the time suspended meanwhile.
    pub fn now(&self) -> Instant {
        let since = self.runtime_nanos();
        Instant::from_nanos(since.saturating_add(self.suspended.nanos(since)))
    }

    /// The runtime's time since the origin, in nanoseconds.
    fn runtime_nanos(&self) -> u64 {
        if let Some(since) = self
            .monotonic_origin
            .and_then(|origin| Some(monotonic_nanos()?.saturating_sub(origin.get())))
        {
            return since;
        }
        nanos((self.runtime_now)().saturating_duration_since(self.origin))
    }

    /// When, on the runtime's clock, the core's `at` comes: it counts no
    /// suspended time, so `at` less the time suspended so far. A deadline
    /// that a suspend carried into the past is now.
    pub fn runtime_instant(&self, at: Instant) -> std::time::Instant {
        self.runtime_instant_at(at, (self.runtime_now)())
    }

    /// [`Clock::runtime_instant`], with the runtime's clock read by the
    /// caller, so that one reading serves several conversions. `now` must
    /// not be later than the present (the time suspended is looked up as
    /// of it); a moment ago at most, or the result may be early by the
    /// time suspended since.
    pub fn runtime_instant_at(&self, at: Instant, now: std::time::Instant) -> std::time::Instant {
        let suspended = self
            .suspended
            .nanos(nanos(now.saturating_duration_since(self.origin)));
        let since = at.as_nanos().saturating_sub(suspended);
        self.origin
            .checked_add(Duration::from_nanos(since))
            .map_or_else(|| self.far_future(), |t| t.max(now))
    }

    /// The core's instant for the runtime's `at` (the inverse of
    /// [`Clock::runtime_instant`]): now, if `at` has passed.
    pub fn core_instant(&self, at: std::time::Instant) -> Instant {
        let ahead = at.saturating_duration_since((self.runtime_now)());
        self.now().saturating_add(ahead)
    }

    /// A deadline that never comes (about 30 years away).
    pub fn far_future(&self) -> std::time::Instant {
        (self.runtime_now)() + Duration::from_secs(86_400 * 365 * 30)
    }
}

/// How often the system's suspended time is read, in the runtime's
/// nanoseconds: reading it costs two clock reads, and a clock is read
/// several times per message. A suspend is noticed at most this much
/// runtime time late, which only shifts when the core sees it.
const SUSPEND_LOOK_EVERY: u64 = 20_000_000;

/// Time suspended since the clock was created.
#[derive(Debug)]
struct Suspended {
    source: Source,
    /// The largest reading so far, in nanoseconds: the clock never goes
    /// back, and a deadline's sleep, converted with the time suspended so
    /// far, never ends before the deadline on the core's clock.
    seen: AtomicU64,
    /// The runtime's time (nanoseconds since the origin) of the last reading.
    read_at: AtomicU64,
    /// Read again once the runtime's clock has moved this far (0: always).
    every: u64,
}

impl Suspended {
    /// The time suspended, as of the runtime's time `runtime` (nanoseconds
    /// since the origin).
    fn nanos(&self, runtime: u64) -> u64 {
        let seen = self.seen.load(Ordering::Relaxed);
        let last = self.read_at.load(Ordering::Relaxed);
        if runtime.wrapping_sub(last) < self.every {
            return seen; // looked a moment ago
        }
        self.read_at.store(runtime, Ordering::Relaxed);
        let read = self.source.read();
        if read <= seen {
            return seen; // the common case: no new suspend, a plain load
        }
        self.seen.fetch_max(read, Ordering::Relaxed).max(read)
    }
}

#[derive(Debug)]
enum Source {
    /// `CLOCK_BOOTTIME - CLOCK_MONOTONIC` less this, its value at creation.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    Boottime(Duration),
    /// The platform's monotonic clock is taken as it is.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    None,
    /// Set by a test, in nanoseconds.
    #[cfg(any(test, feature = "test-hooks"))]
    Fake(std::sync::Arc<AtomicU64>),
}

impl Source {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn system() -> Self {
        Source::Boottime(boottime_lead())
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn system() -> Self {
        Source::None
    }

    /// Nanoseconds suspended since creation.
    fn read(&self) -> u64 {
        match self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Source::Boottime(base) => nanos(boottime_lead().saturating_sub(*base)),
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            Source::None => 0,
            #[cfg(any(test, feature = "test-hooks"))]
            Source::Fake(fake) => fake.load(Ordering::Relaxed),
        }
    }
}

/// How far `CLOCK_BOOTTIME` is ahead of `CLOCK_MONOTONIC`: the time spent
/// suspended since boot. Boottime is read first, so a preemption between
/// the two reads can only make this smaller, which the high-water mark in
/// [`Suspended`] ignores.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn boottime_lead() -> Duration {
    use rustix::time::{ClockId, clock_gettime};
    let boot = clock_gettime(ClockId::Boottime);
    let mono = clock_gettime(ClockId::Monotonic);
    Duration::try_from(boot - mono).unwrap_or(Duration::ZERO)
}

/// `CLOCK_MONOTONIC` in nanoseconds, where std's `Instant` is that clock.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn monotonic_nanos() -> Option<u64> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(t.tv_sec).ok()?;
    let nanos = u64::try_from(t.tv_nsec).ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Elsewhere std's `Instant` is read.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn monotonic_nanos() -> Option<u64> {
    None
}

/// A duration in nanoseconds, saturating (after some 584 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::sync::Arc;

    thread_local! {
        /// How far this test thread's fake runtime clock has moved.
        static ADVANCED: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    }

    /// A fixed origin for every test thread's fake runtime clock.
    fn base() -> std::time::Instant {
        static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        *BASE.get_or_init(std::time::Instant::now)
    }

    /// The fake runtime clock: it moves only with [`advance`].
    fn fake_now() -> std::time::Instant {
        base() + ADVANCED.with(Cell::get)
    }

    fn advance(by: Duration) {
        ADVANCED.with(|a| a.set(a.get() + by));
    }

    fn secs(s: u64) -> u64 {
        Duration::from_secs(s).as_nanos() as u64
    }

    /// The core's clock is the runtime's plus the time suspended; a
    /// deadline's sleep is the deadline less the time suspended, or now if
    /// a suspend carried it into the past.
    #[test]
    fn suspended_time_moves_now_forward_and_sleeps_back() {
        let fake = Arc::new(AtomicU64::new(0));
        let clock = Clock::with_fake(fake_now, fake.clone());
        let origin = fake_now();
        assert_eq!(clock.now(), Instant::ZERO);

        advance(Duration::from_secs(5));
        assert_eq!(clock.now(), Instant::from_secs(5));
        let deadline = Instant::from_secs(20);
        assert_eq!(
            clock.runtime_instant(deadline),
            origin + Duration::from_secs(20)
        );

        // A 60 s suspend: the runtime's clock did not move.
        fake.store(secs(60), Ordering::Relaxed);
        assert_eq!(clock.now(), Instant::from_secs(65));
        // Past because of the suspend: at once.
        assert_eq!(clock.runtime_instant(deadline), fake_now());
        // Still ahead: 70 s on the core's clock is 10 s on the runtime's.
        assert_eq!(
            clock.runtime_instant(Instant::from_secs(70)),
            origin + Duration::from_secs(10)
        );

        advance(Duration::from_secs(1));
        assert_eq!(clock.now(), Instant::from_secs(66));
        // A lower reading never moves the clock back.
        fake.store(secs(30), Ordering::Relaxed);
        assert_eq!(clock.now(), Instant::from_secs(66));
        // Past what the platform can represent: never.
        assert!(clock.runtime_instant(Instant::MAX) > origin + Duration::from_secs(86_400));
    }

    /// The suspended time is looked at again only once the runtime's clock
    /// has moved the set interval since the last look: a suspend is seen
    /// then, in full.
    #[test]
    fn suspended_time_is_looked_at_once_per_interval() {
        let fake = Arc::new(AtomicU64::new(0));
        let every = Duration::from_millis(20);
        let origin = fake_now();
        let clock = Clock::with_source(fake_now, Source::Fake(fake.clone()), nanos(every));
        advance(Duration::from_secs(1));
        assert_eq!(clock.now(), Instant::from_secs(1));
        fake.store(secs(60), Ordering::Relaxed);
        // Within the interval of the last look: not yet.
        advance(Duration::from_millis(10));
        assert_eq!(clock.now(), Instant::from_millis(1_010));
        // Past it: all 60 s at once, and sleeps convert with them.
        advance(Duration::from_millis(10));
        assert_eq!(clock.now(), Instant::from_millis(61_020));
        assert_eq!(
            clock.runtime_instant(Instant::from_secs(70)),
            origin + Duration::from_secs(10)
        );
        // And back: 10 s on the runtime's clock is 70 s on the core's.
        assert_eq!(
            clock.core_instant(origin + Duration::from_secs(10)),
            Instant::from_secs(70)
        );
    }

    /// Without a suspend, the system's clock is the runtime's (any
    /// suspended time the machine happens to see is all it adds).
    #[test]
    fn the_system_clock_follows_the_runtime() {
        let clock = Clock::new(fake_now);
        advance(Duration::from_secs(3));
        assert!(clock.now() >= Instant::from_secs(3));
    }

    /// `Clock::system` reads the monotonic clock directly where it can, on
    /// the same timeline as std's `Instant`: its time grows as `Instant`s
    /// do, and its time converted back to an `Instant` is never early.
    #[test]
    fn the_direct_system_clock_keeps_to_std_instants() {
        let clock = Clock::system();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert!(clock.monotonic_origin.is_some(), "read directly here");
        // Two readings of the clock, each between two `Instant`s, a
        // millisecond or more apart (spun for, not slept).
        let (outer_start, at_start, inner_start) = (
            std::time::Instant::now(),
            clock.now(),
            std::time::Instant::now(),
        );
        while inner_start.elapsed() < Duration::from_millis(1) {
            std::hint::spin_loop();
        }
        let (inner_end, at_end, outer_end) = (
            std::time::Instant::now(),
            clock.now(),
            std::time::Instant::now(),
        );
        let core = at_end.saturating_duration_since(at_start);
        let (inner, outer) = (inner_end - inner_start, outer_end - outer_start);
        // Slack for a preemption between the reads of the suspended time.
        assert!(
            core <= outer + Duration::from_millis(5),
            "{core:?} on the clock, at most {outer:?} between Instants"
        );
        assert!(core >= inner, "{core:?} on the clock, {inner:?} at least");
        // The instant its `now` stands for, converted without the clamp to
        // the present (an early `now` given): not before it was read.
        let before = std::time::Instant::now();
        let read = clock.now();
        let back = clock.runtime_instant_at(read, clock.origin);
        assert!(back >= before, "converted {:?} early", before - back);
    }

    /// Boottime never trails monotonic.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn boottime_reads_at_least_monotonic() {
        use rustix::time::{ClockId, clock_gettime};
        let mono = clock_gettime(ClockId::Monotonic);
        let boot = clock_gettime(ClockId::Boottime);
        assert!(boot >= mono, "{boot:?} < {mono:?}");
    }
}
