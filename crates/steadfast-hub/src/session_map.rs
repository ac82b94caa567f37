//! The hub's sessions by id: a hash map, one probe per lookup where a
//! B-tree searched some forty keys, with a hasher made for ids that count
//! up from 1 (a multiply spreads them over the table; no per-process key
//! is needed, as an id is the hub's own number, never a peer's input).

use core::hash::{BuildHasherDefault, Hasher};

use crate::event::SessionId;

/// Sessions (or anything) by id. Its iteration order is the table's: sort
/// where order matters.
pub(crate) type SessionMap<V> = hashbrown::HashMap<SessionId, V, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing of a `u64`: the id times 2⁶⁴/φ, whose high bits (the
/// ones the table looks at first) depend on every bit of the id.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    /// Anything hashed other than as one `u64`, a byte at a time (not
    /// used by `SessionId`, whose derived `Hash` writes its `u64`).
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_ids_differ_in_their_top_bits() {
        // hashbrown takes its control byte from the top 7 bits and the
        // bucket from the low ones: both must vary across consecutive ids.
        let hash = |id: u64| {
            let mut h = IdHasher::default();
            core::hash::Hash::hash(&SessionId(id), &mut h);
            h.finish()
        };
        let tops: alloc::collections::BTreeSet<u64> = (1..=64).map(|id| hash(id) >> 57).collect();
        let lows: alloc::collections::BTreeSet<u64> = (1..=64).map(|id| hash(id) & 63).collect();
        assert!(tops.len() > 32, "top bits: {}", tops.len());
        assert!(lows.len() > 32, "low bits: {}", lows.len());
    }
}
