//! The core's only source of randomness: a SplitMix64 generator seeded from
//! [`Config::seed`](crate::Config::seed), so the same seed gives the same jitter.
//! Public so simulations and test kits draw from the same generator.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough for
/// jitter and simulations; not for cryptography.
///
/// ```
/// let mut a = steadfast_core::SplitMix64::new(7);
/// let mut b = steadfast_core::SplitMix64::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!((10..=20).contains(&a.between(10, 20)));
/// ```
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

pub(crate) type Rng = SplitMix64;

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// A generator seeded from the operating system's randomness: distinct
    /// per call and per process, for anything that must not move in step
    /// across a fleet.
    #[cfg(feature = "std")]
    pub fn from_os() -> Self {
        SplitMix64::new(os_seed())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `lo..=hi` (`lo` when the range is empty or inverted).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo;
        let draw = self.next_u64();
        if span == u64::MAX {
            return draw;
        }
        // Lemire's multiply-shift; the tiny bias is irrelevant for jitter.
        lo + ((u128::from(draw) * u128::from(span + 1)) >> 64) as u64
    }

    /// True with probability `p` (never for `p <= 0`, always for `p >= 1`).
    /// Draws nothing for `p <= 0`, so a lossless simulation uses up no
    /// randomness on it.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// 64 bits from the operating system's randomness (`getrandom`). Should
/// the OS refuse, std's per-process random hash keys, which also come from
/// the OS, mixed with a per-call counter and the wall clock: distinct per
/// call and per process either way.
#[cfg(feature = "std")]
pub(crate) fn os_seed() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        use core::sync::atomic::{AtomicU64, Ordering};
        use std::hash::{BuildHasher, Hasher};
        static CALLS: AtomicU64 = AtomicU64::new(0);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
        if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        h.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_sequence() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn between_stays_within_bounds_and_covers_both_ends() {
        let mut r = Rng::new(1);
        let (mut saw_lo, mut saw_hi) = (false, false);
        for _ in 0..10_000 {
            let v = r.between(3, 6);
            assert!((3..=6).contains(&v));
            saw_lo |= v == 3;
            saw_hi |= v == 6;
        }
        assert!(saw_lo && saw_hi);
        assert_eq!(r.between(9, 2), 9);
        let _ = r.between(0, u64::MAX);
    }
}
