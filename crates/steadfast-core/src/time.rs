//! The core's own clock type.
//!
//! [`Instant`] is a point on an arbitrary, caller-chosen timeline measured in
//! nanoseconds, as in smoltcp: tests start at zero, adapters convert from the
//! runtime's clock (see [`Epoch`] with the `std` feature). The core never reads
//! a clock itself.

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time, in nanoseconds since an arbitrary origin chosen by the caller.
///
/// ```
/// use core::time::Duration;
/// use steadfast_core::Instant;
///
/// let t0 = Instant::ZERO;
/// let t1 = t0 + Duration::from_millis(1500);
/// assert_eq!(t1 - t0, Duration::from_millis(1500));
/// assert_eq!(t0 - t1, Duration::ZERO); // saturates, never panics
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    nanos: u64,
}

impl Instant {
    /// The origin of the timeline.
    pub const ZERO: Instant = Instant { nanos: 0 };
    /// The last representable instant (about 584 years after the origin).
    pub const MAX: Instant = Instant { nanos: u64::MAX };

    /// An instant `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant { nanos }
    }

    /// An instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Self {
        Instant {
            nanos: millis.saturating_mul(1_000_000),
        }
    }

    /// An instant `secs` seconds after the origin.
    pub const fn from_secs(secs: u64) -> Self {
        Instant {
            nanos: secs.saturating_mul(1_000_000_000),
        }
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.nanos
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant {
            nanos: self.nanos.saturating_add(duration_nanos(d)),
        }
    }
}

/// A duration in nanoseconds, saturating at `u64::MAX`.
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        self.saturating_add(rhs)
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t+{:?}", Duration::from_nanos(self.nanos))
    }
}

/// Maps `std::time::Instant` onto the core's timeline, with its origin at
/// the moment the epoch was created.
///
/// ```
/// let epoch = steadfast_core::Epoch::new(std::time::Instant::now());
/// let now = epoch.instant(std::time::Instant::now());
/// assert!(now >= steadfast_core::Instant::ZERO);
/// ```
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy)]
pub struct Epoch {
    origin: std::time::Instant,
}

#[cfg(feature = "std")]
impl Epoch {
    /// An epoch whose origin is `origin`.
    pub fn new(origin: std::time::Instant) -> Self {
        Epoch { origin }
    }

    /// The core instant for `t` (instants before the origin map to zero).
    pub fn instant(&self, t: std::time::Instant) -> Instant {
        Instant::from_nanos(duration_nanos(t.saturating_duration_since(self.origin)))
    }

    /// The `std` instant for a core instant; `None` past what the
    /// platform's clock can represent (some platforms overflow long before
    /// [`Instant::MAX`]; adding there would panic).
    pub fn to_std(&self, t: Instant) -> Option<std::time::Instant> {
        self.origin.checked_add(Duration::from_nanos(t.as_nanos()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::ZERO - Instant::from_secs(1), Duration::ZERO);
        assert_eq!(Instant::ZERO + Duration::MAX, Instant::MAX);
    }

    #[cfg(feature = "std")]
    #[test]
    fn epoch_round_trips_std_instants() {
        let origin = std::time::Instant::now();
        let epoch = Epoch::new(origin);
        let later = origin + Duration::from_millis(250);
        let core = epoch.instant(later);
        assert_eq!(core, Instant::from_millis(250));
        assert_eq!(epoch.to_std(core), Some(later));
    }
}
