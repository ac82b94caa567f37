//! The event queue: a radix heap over `(time, insertion number)` keys.
//!
//! A simulation pops events in time order and never pushes one before the
//! last it popped, so the queue is monotone, and a radix heap fits: an entry
//! goes into the bucket of the highest bit in which its key differs from the
//! last key popped (an append, O(1)); a pop empties the lowest non-empty
//! bucket into lower ones around its minimum. Each entry moves down a few
//! times at most, and every bucket is one contiguous vector, so the memory
//! it touches stays small and in cache (the timing wheel it replaced touched
//! one of 65,536 slot vectors per push). Events pop in (time, insertion)
//! order, so runs are deterministic.

/// Keys are `time << 64 | insertion number`: unique, and ordered as the
/// events must pop.
type Key = u128;

/// One bucket per possible highest differing bit, and one for the key equal
/// to the last popped.
const BUCKETS: usize = 129;

/// A monotone priority queue of timed items, in nanoseconds of virtual time.
///
/// Items pop in order of time, and in insertion order at equal times. An
/// item pushed for a time before the last one popped is due at that time.
/// This is the simulator's own queue, public so that the bench can measure
/// its cost alone (the floor of the simulation's speed).
///
/// ```
/// let mut q = steadfast_sim::EventQueue::new();
/// q.push(30, 'b');
/// q.push(10, 'a');
/// q.push(30, 'c');
/// assert_eq!(q.pop(), Some((10, 'a')));
/// q.push(0, 'd'); // before the last popped: due at once
/// assert_eq!(q.pop(), Some((10, 'd')));
/// assert_eq!(q.pop(), Some((30, 'b')));
/// assert_eq!(q.pop(), Some((30, 'c')));
/// assert_eq!(q.pop(), None);
/// ```
#[derive(Debug, Clone)]
pub struct EventQueue<T> {
    buckets: Vec<Vec<(Key, T)>>,
    /// The key of the last entry popped (buckets are relative to it).
    last: Key,
    /// Bit `i` is set while bucket `i` holds entries, for buckets 0..=127
    /// (bucket 128, for times from 2^63 ns, about 292 years, is looked at
    /// when all others are empty).
    occupied: u128,
    seq: u64,
    len: usize,
}

impl<T: Copy> Default for EventQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy> EventQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        EventQueue {
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            last: 0,
            occupied: 0,
            seq: 0,
            len: 0,
        }
    }

    /// Items queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the queue holds on the heap (its buckets' capacity).
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * size_of::<Vec<(Key, T)>>()
            + self
                .buckets
                .iter()
                .map(|b| b.capacity() * size_of::<(Key, T)>())
                .sum::<usize>()
    }

    /// Queue `item` at `at` nanoseconds. Times before the last one popped
    /// are treated as that time.
    #[inline]
    pub fn push(&mut self, at: u64, item: T) {
        let at = at.max((self.last >> 64) as u64);
        self.seq += 1;
        let key = Key::from(at) << 64 | Key::from(self.seq);
        self.insert(key, item);
        self.len += 1;
    }

    #[inline]
    fn insert(&mut self, key: Key, item: T) {
        let b = bucket(key, self.last);
        self.buckets[b].push((key, item));
        if b < BUCKETS - 1 {
            self.occupied |= 1 << b;
        }
    }

    /// The earliest item and its time.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, T)> {
        if self.occupied & 1 == 0 {
            self.refill()?;
        }
        let (key, item) = self.buckets[0].pop()?;
        // Keys are unique: bucket 0 holds exactly the one equal to `last`.
        self.occupied &= !1;
        self.len -= 1;
        Some(((key >> 64) as u64, item))
    }

    /// Empty the lowest non-empty bucket around its minimum, which lands
    /// alone in bucket 0. `None` when the queue is empty.
    fn refill(&mut self) -> Option<()> {
        let b = match self.occupied {
            0 if self.buckets[BUCKETS - 1].is_empty() => return None,
            0 => BUCKETS - 1,
            bits => bits.trailing_zeros() as usize,
        };
        let mut from = core::mem::take(&mut self.buckets[b]);
        if b < BUCKETS - 1 {
            self.occupied &= !(1 << b);
        }
        self.last = from.iter().map(|(k, _)| *k).min()?;
        for (key, item) in from.drain(..) {
            self.insert(key, item);
        }
        // Give the emptied vector back: its capacity serves the next refill.
        self.buckets[b] = from;
        Some(())
    }
}

/// The bucket of `key` relative to the last key popped: the position of the
/// highest bit in which they differ, plus one (0 when equal).
#[inline]
fn bucket(key: Key, last: Key) -> usize {
    (Key::BITS - (key ^ last).leading_zeros()) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_insertion_order_across_near_and_far_times() {
        let mut q = EventQueue::new();
        let ms = 1_000_000;
        let far = (1 << 16) * ms * 3;
        for (at, tag) in [
            (5 * ms, 'a'),
            (far, 'z'),
            (ms / 2, 'b'),
            (5 * ms, 'c'),
            (5 * ms + 1, 'd'),
            (0, 'e'),
        ] {
            q.push(at, tag);
        }
        let mut order = Vec::new();
        while let Some((at, tag)) = q.pop() {
            order.push(tag);
            if tag == 'a' {
                q.push(at, 'f'); // same time, pushed while draining: after 'c'
            }
        }
        assert_eq!(order, ['e', 'b', 'a', 'c', 'f', 'd', 'z']);
        assert!(q.is_empty());
        // The far end of time: from 2^63 ns up to u64::MAX.
        for (at, tag) in [(u64::MAX, 'y'), (1 << 63, 'x'), (u64::MAX, 'w'), (7, 'v')] {
            q.push(at, tag);
        }
        let order: Vec<_> = core::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            [(far, 'v'), (1 << 63, 'x'), (u64::MAX, 'y'), (u64::MAX, 'w')]
        );
    }

    /// Against a sorted reference: any interleaving of pushes (at or after
    /// the last pop, or before it and clamped) and pops gives the order of
    /// (time, insertion).
    #[test]
    fn matches_a_sorted_reference_over_random_interleavings() {
        let mut rng = steadfast_core::SplitMix64::new(99);
        let mut q = EventQueue::new();
        let mut reference: Vec<(u64, u64)> = Vec::new();
        let (mut now, mut n) = (0u64, 0u64);
        for _ in 0..8_000 {
            if rng.between(0, 2) > 0 {
                let at = match rng.between(0, 3) {
                    0 => now.saturating_sub(rng.between(0, 1_000)),
                    1 => now,
                    2 => now + rng.between(0, 1_000),
                    _ => now + rng.between(0, 1 << 40),
                };
                n += 1;
                q.push(at, n);
                reference.push((at.max(now), n));
            } else {
                let expected = reference
                    .iter()
                    .copied()
                    .enumerate()
                    .min_by_key(|(_, e)| *e)
                    .map(|(i, e)| {
                        reference.swap_remove(i);
                        e
                    });
                let got = q.pop();
                assert_eq!(got, expected);
                if let Some((at, _)) = got {
                    now = at;
                }
            }
            assert_eq!(q.len(), reference.len());
        }
    }
}
