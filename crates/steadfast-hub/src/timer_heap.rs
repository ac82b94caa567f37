//! When the hub must next look at each session: a min-heap of
//! `(due, session)`, taken in the order a sorted set would give.
//!
//! Moving a session's deadline pushes a new entry and leaves the old one
//! behind; forgetting a session leaves its entry too. Such an entry is
//! stale (its session is no longer due then) and is dropped when it comes
//! to the top: [`TimerHeap::settle`], which the hub calls after every
//! change, so the top is always current. A stale entry lives at most until
//! its own time, and the hub rebuilds the heap from its sessions once
//! stale entries outnumber current ones (see `Hub`'s `reschedule`).

use alloc::collections::BinaryHeap;
use core::cmp::Reverse;
use steadfast_core::Instant;

use crate::event::SessionId;

/// The hub's deadlines (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct TimerHeap(BinaryHeap<Reverse<(Instant, SessionId)>>);

impl TimerHeap {
    /// Session `id` is due at `at` (any entry it had goes stale).
    pub(crate) fn push(&mut self, at: Instant, id: SessionId) {
        self.0.push(Reverse((at, id)));
    }

    /// Drop the stale entries on top, and return the earliest current one:
    /// `due(id)` is when session `id` is due now (`None`: gone, or nothing
    /// scheduled).
    pub(crate) fn settle(
        &mut self,
        due: impl Fn(SessionId) -> Option<Instant>,
    ) -> Option<(Instant, SessionId)> {
        while let Some(&Reverse((at, id))) = self.0.peek() {
            if due(id) == Some(at) {
                return Some((at, id));
            }
            self.0.pop();
        }
        None
    }

    /// The earliest entry: current, once the heap is settled.
    pub(crate) fn first(&self) -> Option<(Instant, SessionId)> {
        self.0.peek().map(|&Reverse(top)| top)
    }

    /// Take the earliest entry, and any copies of it (a session moved away
    /// from a time and back again has two).
    pub(crate) fn pop(&mut self) {
        let Some(Reverse(top)) = self.0.pop() else {
            return;
        };
        while self.0.peek().is_some_and(|&Reverse(next)| next == top) {
            self.0.pop();
        }
    }

    /// Entries held, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Keep only these entries (the current ones): once stale entries
    /// outnumber them, which a hub whose every deadline moves at once (a
    /// resumed read) can do faster than time drops them.
    pub(crate) fn rebuild(&mut self, current: impl Iterator<Item = (Instant, SessionId)>) {
        self.0 = current.map(Reverse).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use core::time::Duration;
    use proptest::prelude::*;

    fn at(secs: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(secs)
    }

    proptest! {
        /// Against a map of each session's current deadline, with sessions
        /// rescheduled, unscheduled and forgotten at random: the settled
        /// top is always the earliest current `(due, id)`, and popping in
        /// turn yields the current deadlines in sorted order, once each.
        #[test]
        fn the_settled_top_is_the_earliest_current_deadline(
            ops in proptest::collection::vec((0u64..8, proptest::option::of(0u64..20)), 0..200)
        ) {
            let mut heap = TimerHeap::default();
            let mut due: BTreeMap<SessionId, Instant> = BTreeMap::new();
            for (id, when) in ops {
                let id = SessionId(id);
                match when {
                    Some(secs) => {
                        if due.insert(id, at(secs)) != Some(at(secs)) {
                            heap.push(at(secs), id);
                        }
                    }
                    None => {
                        due.remove(&id);
                    }
                }
                let top = heap.settle(|id| due.get(&id).copied());
                let earliest = due.iter().map(|(&id, &t)| (t, id)).min();
                prop_assert_eq!(top, earliest);
                prop_assert_eq!(heap.first(), earliest);
            }
            let mut sorted: alloc::vec::Vec<_> = due.iter().map(|(&id, &t)| (t, id)).collect();
            sorted.sort();
            let mut taken = alloc::vec::Vec::new();
            while let Some((t, id)) = heap.settle(|id| due.get(&id).copied()) {
                heap.pop();
                due.remove(&id);
                taken.push((t, id));
            }
            prop_assert_eq!(taken, sorted);
            prop_assert_eq!(heap.len(), 0);
        }
    }
}
