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
//!
//! Beside the events it keeps one cancellable timer per key (per simulated
//! client): a deadline that moves is unlinked from its slot's list and
//! linked into another's, instead of queueing a fresh entry and leaving the
//! old one to pop stale. At a server restart every client's deadline moves
//! several times while it reconnects; stale entries made up a fifth of the
//! queue's memory at 100,000 clients, and a third of its pops.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

const SLOT_NS: u64 = 1 << 24;
const SLOTS: usize = 1 << 12;

/// The end of a timer list, or a timer in no list.
const NIL: u32 = u32::MAX;

/// What [`EventQueue::pop`] hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due<T> {
    /// An item queued with [`EventQueue::push`].
    Event(T),
    /// The timer of this key, armed with [`EventQueue::set_timer`], is due
    /// (and disarmed).
    Timer(u32),
}

/// One queued item: its time (ns), its insertion number, and its payload.
#[derive(Debug, Clone, Copy)]
struct Entry<T> {
    at: u64,
    seq: u64,
    item: Due<T>,
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

/// One key's timer.
#[derive(Debug, Clone, Copy)]
struct Timer {
    /// When it is due, if armed.
    at: u64,
    /// Its insertion number, from the queue's one sequence (which starts at
    /// 1), or 0 while disarmed: an entry of it in `current` or `far` with
    /// another number is stale.
    seq: u64,
    /// The wheel slot whose list holds it, or [`NIL`] (disarmed, or an
    /// entry in `current` or `far`).
    slot: u32,
    /// Its neighbours in that list.
    prev: u32,
    next: u32,
}

const DISARMED: Timer = Timer {
    at: 0,
    seq: 0,
    slot: NIL,
    prev: NIL,
    next: NIL,
};

/// A priority queue of timed items, in nanoseconds of virtual time, with
/// one cancellable timer per key.
///
/// Items and timers pop in order of time, and in insertion order at equal
/// times (arming a timer counts as inserting it). An item pushed, or a
/// timer armed, for a time before the last one popped is due at that time.
/// This is the simulator's own queue, public so that the bench can measure
/// its cost alone (the floor of the simulation's speed).
///
/// ```
/// use steadfast_sim::{Due, EventQueue};
///
/// let mut q = EventQueue::new();
/// q.push(30, 'b');
/// q.push(10, 'a');
/// q.set_timer(7, Some(20));
/// q.set_timer(8, Some(25));
/// q.set_timer(8, None); // cancelled
/// q.set_timer(7, Some(30)); // moved: now after 'b'
/// assert_eq!(q.pop(), Some((10, Due::Event('a'))));
/// q.push(0, 'd'); // before the last popped: due at once
/// assert_eq!(q.pop(), Some((10, Due::Event('d'))));
/// assert_eq!(q.pop(), Some((30, Due::Event('b'))));
/// assert_eq!(q.pop(), Some((30, Due::Timer(7))));
/// assert_eq!(q.pop(), None);
/// assert!(q.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct EventQueue<T> {
    slots: Vec<Vec<Entry<T>>>,
    /// The first timer of each slot's list, or [`NIL`].
    heads: Vec<u32>,
    /// One bit per slot: set while the slot may hold entries or timers.
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
    /// Entries and timers in the wheel's slots.
    in_wheel: usize,
    /// Time of the last entry popped.
    last: u64,
    /// Entries at or beyond `tick + SLOTS`.
    far: BinaryHeap<Reverse<Entry<T>>>,
    /// The timers, by key.
    timers: Vec<Timer>,
    seq: u64,
    /// Items queued and timers armed.
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
            heads: vec![NIL; SLOTS],
            occupied: vec![0; SLOTS / 64],
            current: Vec::new(),
            head: 0,
            tick: 0,
            in_wheel: 0,
            last: 0,
            far: BinaryHeap::new(),
            timers: Vec::new(),
            seq: 0,
            len: 0,
        }
    }

    /// Items queued and timers armed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued or armed.
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
        self.insert(Entry {
            at,
            seq: self.seq,
            item: Due::Event(item),
        });
    }

    /// Arm the timer of `key` for `at` nanoseconds, move it there if it is
    /// armed, or disarm it (`None`). Re-arming it for the time it is armed
    /// for changes nothing (it keeps its place among equal times). Keys
    /// are small numbers (the queue keeps 32 bytes per key up to the
    /// largest one used).
    #[inline]
    pub fn set_timer(&mut self, key: u32, at: Option<u64>) {
        let k = key as usize;
        if k >= self.timers.len() {
            self.timers.resize(k + 1, DISARMED);
        }
        let at = at.map(|at| at.max(self.last));
        let armed = self.timers[k];
        if (armed.seq != 0).then_some(armed.at) == at {
            return;
        }
        if armed.seq != 0 {
            self.unlink(key);
            self.timers[k] = DISARMED;
            self.len -= 1;
        }
        let Some(at) = at else { return };
        self.len += 1;
        self.seq += 1;
        let seq = self.seq;
        self.timers[k] = Timer {
            at,
            seq,
            ..DISARMED
        };
        let tick = at / SLOT_NS;
        if tick > self.tick && tick < self.tick + SLOTS as u64 {
            // Into the slot's list: no entry, so nothing to go stale.
            let slot = (tick % SLOTS as u64) as usize;
            let next = self.heads[slot];
            if next != NIL {
                self.timers[next as usize].prev = key;
            }
            let t = &mut self.timers[k];
            t.slot = slot as u32;
            t.next = next;
            self.heads[slot] = key;
            self.occupied[slot / 64] |= 1 << (slot % 64);
            self.in_wheel += 1;
        } else {
            // Due within the current slot, or beyond the horizon: an entry,
            // recognised as stale by its number if the timer moves again.
            self.insert(Entry {
                at,
                seq,
                item: Due::Timer(key),
            });
        }
    }

    /// Take a listed timer out of its slot's list (a timer in no list is
    /// left alone: its entry, if any, is stale once the number changes).
    fn unlink(&mut self, key: u32) {
        let Timer {
            slot, prev, next, ..
        } = self.timers[key as usize];
        if slot == NIL {
            return;
        }
        if prev == NIL {
            self.heads[slot as usize] = next;
        } else {
            self.timers[prev as usize].next = next;
        }
        if next != NIL {
            self.timers[next as usize].prev = prev;
        }
        self.in_wheel -= 1;
        let slot = slot as usize;
        if self.heads[slot] == NIL && self.slots[slot].is_empty() {
            self.occupied[slot / 64] &= !(1 << (slot % 64));
        }
    }

    #[inline]
    fn insert(&mut self, entry: Entry<T>) {
        let tick = entry.at / SLOT_NS;
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

    /// The earliest item or timer, and its time.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, Due<T>)> {
        loop {
            while let Some(e) = self.current.get(self.head).copied() {
                self.head += 1;
                if let Due::Timer(key) = e.item {
                    let t = &mut self.timers[key as usize];
                    if t.seq != e.seq {
                        continue; // moved or disarmed since
                    }
                    *t = DISARMED;
                }
                self.last = e.at;
                self.len -= 1;
                // The next pop looks at its timer's entry: fetch it now.
                if let Some(Entry {
                    item: Due::Timer(k),
                    ..
                }) = self.current.get(self.head)
                {
                    prefetch_index::prefetch_index(&self.timers, *k as usize);
                }
                return Some((e.at, e.item));
            }
            self.refill()?;
        }
    }

    /// What will probably pop next: the next entry of the slot being
    /// drained, which may be a timer since moved (then it will not pop), or
    /// `None` when that slot is drained. Only a hint, for prefetching what
    /// the next item will touch; it costs one look at memory already hot.
    #[inline]
    pub fn peek_hint(&self) -> Option<Due<T>> {
        self.current.get(self.head).map(|e| e.item)
    }

    /// Move on to the next slot that holds anything (or the far heap's
    /// earliest), into `current`. `None` when nothing is left.
    fn refill(&mut self) -> Option<()> {
        self.current.clear();
        self.head = 0;
        // The emptied vector becomes the next slot's: a burst (every
        // client's reset at a server restart) must not leave its capacity
        // behind in slot after slot. Keep a few average slots' worth.
        let keep = 4 * (self.len / SLOTS) + 16;
        if self.current.capacity() > 2 * keep {
            self.current.shrink_to(keep);
        }
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
        // The slot's timers become entries, numbered as they were armed.
        let events = self.current.len();
        let mut key = std::mem::replace(&mut self.heads[slot], NIL);
        while key != NIL {
            let t = &mut self.timers[key as usize];
            let (at, seq, next) = (t.at, t.seq, t.next);
            (t.slot, t.prev, t.next) = (NIL, NIL, NIL);
            self.current.push(Entry {
                at,
                seq,
                item: Due::Timer(key),
            });
            self.in_wheel -= 1;
            key = next;
        }
        // The list holds the latest armed first; armed at `now + interval`,
        // the earliest armed tend to be due first: reversed, the sort below
        // finds the timers nearly in order.
        self.current[events..].reverse();
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
        Some(())
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

    /// Pops items only (the tests of items arm no timers).
    fn pop_item<T: Copy>(q: &mut EventQueue<T>) -> Option<(u64, T)> {
        match q.pop()? {
            (at, Due::Event(item)) => Some((at, item)),
            (_, Due::Timer(key)) => panic!("no timer was armed, yet {key} popped"),
        }
    }

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
        while let Some((at, tag)) = pop_item(&mut q) {
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
        let order: Vec<_> = core::iter::from_fn(|| pop_item(&mut q)).collect();
        assert_eq!(
            order,
            [(far, 'v'), (1 << 63, 'x'), (u64::MAX, 'y'), (u64::MAX, 'w')]
        );
    }

    #[test]
    fn a_moved_timer_pops_once_at_its_last_time_and_a_cancelled_one_never() {
        let mut q: EventQueue<()> = EventQueue::new();
        let far = SLOTS as u64 * SLOT_NS * 2;
        q.set_timer(1, Some(3 * SLOT_NS)); // in the wheel
        q.set_timer(2, Some(far)); // beyond the horizon
        q.set_timer(3, Some(0)); // in the current slot
        q.set_timer(1, Some(far + 1)); // wheel -> far
        q.set_timer(2, Some(5 * SLOT_NS)); // far -> wheel
        q.set_timer(3, None);
        q.set_timer(4, Some(5 * SLOT_NS));
        q.set_timer(4, Some(5 * SLOT_NS)); // the same time: keeps its place
        assert_eq!(q.len(), 3);
        let order: Vec<_> = core::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            [
                (5 * SLOT_NS, Due::Timer(2)),
                (5 * SLOT_NS, Due::Timer(4)),
                (far + 1, Due::Timer(1)),
            ]
        );
        assert!(q.is_empty());
    }

    /// Against a sorted reference: any interleaving of pushes and timer
    /// changes (at or after the last pop, or before it and clamped) and pops
    /// gives the order of (time, insertion), each timer at its last setting.
    #[test]
    fn matches_a_sorted_reference_over_random_interleavings() {
        let mut rng = steadfast_core::SplitMix64::new(99);
        let mut q = EventQueue::new();
        // (time, insertion number, item or timer key)
        let mut reference: Vec<(u64, u64, Due<u64>)> = Vec::new();
        let (mut now, mut n, mut seq) = (0u64, 0u64, 0u64);
        for _ in 0..8_000 {
            let at = match rng.between(0, 3) {
                0 => now.saturating_sub(rng.between(0, 1_000)),
                1 => now,
                2 => now + rng.between(0, 100_000_000),
                _ => now + rng.between(0, 1 << 40),
            };
            match rng.between(0, 3) {
                0 | 1 => {
                    n += 1;
                    seq += 1;
                    q.push(at, n);
                    reference.push((at.max(now), seq, Due::Event(n)));
                }
                2 => {
                    let key = rng.between(0, 15) as u32;
                    let at = (rng.between(0, 4) > 0).then_some(at);
                    let old = reference.iter().position(|e| e.2 == Due::Timer(key));
                    let same = old.is_some_and(|i| Some(reference[i].0) == at.map(|a| a.max(now)));
                    if !same {
                        if let Some(i) = old {
                            reference.swap_remove(i);
                        }
                        if let Some(at) = at {
                            seq += 1;
                            reference.push((at.max(now), seq, Due::Timer(key)));
                        }
                    }
                    q.set_timer(key, at);
                }
                _ => {
                    let expected = reference
                        .iter()
                        .copied()
                        .enumerate()
                        .min_by_key(|(_, e)| (e.0, e.1))
                        .map(|(i, e)| {
                            reference.swap_remove(i);
                            (e.0, e.2)
                        });
                    let got = q.pop();
                    assert_eq!(got, expected);
                    if let Some((at, _)) = got {
                        now = at;
                    }
                }
            }
            assert_eq!(q.len(), reference.len());
        }
    }
}
