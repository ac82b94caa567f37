//! The event queue: a timing wheel of 1 ms slots over a 65 s horizon, with a
//! heap for what lies beyond. Push and pop are O(1) amortized; events pop in
//! (time, insertion) order, so runs are deterministic.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

const SLOT_NS: u64 = 1_000_000;
const SLOTS: usize = 1 << 16;

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

pub(crate) struct EventQueue<T> {
    slots: Vec<Vec<Entry<T>>>,
    /// One bit per slot: set while the slot holds entries.
    occupied: Vec<u64>,
    /// The slot being drained, sorted latest first (pop from the end).
    current: Vec<Entry<T>>,
    /// The tick `current` belongs to.
    tick: u64,
    /// Entries in `slots`.
    in_wheel: usize,
    /// Time of the last entry popped.
    last: u64,
    /// Entries at or beyond `tick + SLOTS`.
    far: BinaryHeap<Reverse<Entry<T>>>,
    seq: u64,
}

impl<T: Copy> EventQueue<T> {
    pub(crate) fn new() -> Self {
        EventQueue {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            occupied: vec![0; SLOTS / 64],
            current: Vec::new(),
            tick: 0,
            in_wheel: 0,
            last: 0,
            far: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Queue `item` at `at` nanoseconds. Times before the last one popped
    /// are treated as that time.
    pub(crate) fn push(&mut self, at: u64, item: T) {
        let at = at.max(self.last);
        self.seq += 1;
        let entry = Entry {
            at,
            seq: self.seq,
            item,
        };
        let tick = at / SLOT_NS;
        if tick <= self.tick {
            // Keep `current` sorted latest first.
            let pos = self.current.partition_point(|e| *e > entry);
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
    pub(crate) fn pop(&mut self) -> Option<(u64, T)> {
        loop {
            if let Some(e) = self.current.pop() {
                self.last = e.at;
                return Some((e.at, e.item));
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
            while let Some(Reverse(e)) = self.far.peek() {
                if e.at / SLOT_NS > self.tick {
                    break;
                }
                let Some(Reverse(e)) = self.far.pop() else {
                    break;
                };
                self.current.push(e);
            }
            self.current.sort_unstable_by(|a, b| b.cmp(a));
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
    }
}
