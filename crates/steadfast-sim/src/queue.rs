//! The event queue: a timing wheel of 4,096 slots of 2^24 ns (16.8 ms), a
//! 68.7 s horizon, with a heap for what lies beyond. A push appends to its
//! slot; the slot whose turn comes is sorted once and drained. Push and pop
//! are O(1) amortized; events pop in (time, insertion) order, so runs are
//! deterministic.
//!
//! The slots are wide on purpose: with 1 ms slots (65,536 of them) a fleet's
//! heartbeats left about one entry per slot, so every push touched a slot
//! vector of its own, a cache miss each; at 16.8 ms a slot holds tens of
//! entries per 10,000 clients and the vectors' headers fit in 96 KiB. A
//! radix heap, tried too, moved each heartbeat deadline (30 s ahead) through
//! a dozen buckets: 250 ns per push and pop against 46 ns here.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

const SLOT_NS: u64 = 1 << 24;
const SLOTS: usize = 1 << 12;

/// One queued item: its time (ns), its insertion number, and its payload.
#[derive(Debug, Clone, Copy)]
struct Entry<T> {
    at: u64,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A priority queue of timed items, in nanoseconds of virtual time.
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
/// assert!(q.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct EventQueue<T> {
    slots: Vec<Vec<Entry<T>>>,
    /// One bit per slot: set while the slot holds entries.
    occupied: Vec<u64>,
    /// The slot being drained, sorted earliest first; `current[..head]`
    /// have been popped. (A slot fills in roughly ascending order, which
    /// the sort takes in one pass; sorting latest first, to pop from the
    /// end, made the insertion sort shift every entry past all the others.)
    current: Vec<Entry<T>>,
    /// The next entry of `current` to pop.
    head: usize,
    /// The tick `current` belongs to.
    tick: u64,
    /// Entries in `slots`.
    in_wheel: usize,
    /// Time of the last entry popped.
    last: u64,
    /// Entries at or beyond `tick + SLOTS`.
    far: BinaryHeap<Reverse<Entry<T>>>,
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
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            occupied: vec![0; SLOTS / 64],
            current: Vec::new(),
            head: 0,
            tick: 0,
            in_wheel: 0,
            last: 0,
            far: BinaryHeap::new(),
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

    /// Queue `item` at `at` nanoseconds. Times before the last one popped
    /// are treated as that time.
    #[inline]
    pub fn push(&mut self, at: u64, item: T) {
        let at = at.max(self.last);
        self.len += 1;
        self.seq += 1;
        let entry = Entry {
            at,
            seq: self.seq,
            item,
        };
        let tick = at / SLOT_NS;
        if tick <= self.tick {
            // Keep what is left of `current` sorted.
            let pos = self.head + self.current[self.head..].partition_point(|e| *e < entry);
            self.current.insert(pos, entry);
        } else if tick < self.tick + SLOTS as u64 {
            let slot = (tick % SLOTS as u64) as usize;
            self.slots[slot].push(entry);
            self.occupied[slot / 64] |= 1 << (slot % 64);
            self.in_wheel += 1;
        } else {
            self.far.push(Reverse(entry));
        }
    }

    /// The earliest item and its time.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, T)> {
        loop {
            if let Some(e) = self.current.get(self.head) {
                self.head += 1;
                self.last = e.at;
                self.len -= 1;
                return Some((e.at, e.item));
            }
            self.current.clear();
            self.head = 0;
            let far_tick = self.far.peek().map(|Reverse(e)| e.at / SLOT_NS);
            let next = match (self.next_occupied_tick(), far_tick) {
                (Some(w), Some(f)) => w.min(f),
                (Some(w), None) => w,
                (None, Some(f)) => f,
                (None, None) => return None,
            };
            self.tick = next.max(self.tick + 1);
            let slot = (self.tick % SLOTS as u64) as usize;
            std::mem::swap(&mut self.current, &mut self.slots[slot]);
            self.occupied[slot / 64] &= !(1 << (slot % 64));
            self.in_wheel -= self.current.len();
            while let Some(Reverse(e)) = self.far.peek() {
                if e.at / SLOT_NS > self.tick {
                    break;
                }
                let Some(Reverse(e)) = self.far.pop() else {
                    break;
                };
                self.current.push(e);
            }
            self.current.sort_unstable();
        }
    }
}

impl<T> EventQueue<T> {
    /// The first tick after `self.tick` whose slot holds entries.
    fn next_occupied_tick(&self) -> Option<u64> {
        if self.in_wheel == 0 {
            return None;
        }
        let start = ((self.tick + 1) % SLOTS as u64) as usize;
        let words = self.occupied.len();
        // Scan the words from `start`, wrapping once around the wheel.
        for k in 0..=words {
            let w = (start / 64 + k) % words;
            let mut bits = self.occupied[w];
            if k == 0 {
                bits &= !0u64 << (start % 64);
            } else if k == words {
                bits &= !(!0u64 << (start % 64));
            }
            if bits != 0 {
                let slot = w * 64 + bits.trailing_zeros() as usize;
                let ahead = (slot + SLOTS - start) % SLOTS;
                return Some(self.tick + 1 + ahead as u64);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_insertion_order_across_slots_and_horizon() {
        let mut q = EventQueue::new();
        let ms = SLOT_NS;
        let far = SLOTS as u64 * ms * 3;
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
        // The far end of time.
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
