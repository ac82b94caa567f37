//! The client's output queues: a FIFO whose front item is kept inline.

use alloc::collections::VecDeque;

/// A FIFO that holds its front item inline and the rest in a `VecDeque`
/// grown one slot at a time up to three (then as usual).
///
/// Most inputs leave one item to take (a heartbeat's ping, its round
/// trip's `Rtt`), which then lives in the client's own memory instead of a
/// separate heap buffer: one cache line where there were two or three, and
/// no heap buffer at all for a queue that never holds two items at once.
#[derive(Debug, Clone)]
pub(crate) struct SlimQueue<T> {
    /// The front item; `None` only while `rest` is empty too.
    front: Option<T>,
    rest: VecDeque<T>,
}

impl<T> SlimQueue<T> {
    pub(crate) const fn new() -> Self {
        SlimQueue {
            front: None,
            rest: VecDeque::new(),
        }
    }

    /// Append, growing the heap part one slot at a time up to three (the
    /// few items an input leaves at once), by `VecDeque`'s doubling beyond.
    pub(crate) fn push(&mut self, item: T) {
        if self.front.is_none() {
            self.front = Some(item);
            return;
        }
        let rest = &mut self.rest;
        if rest.len() == rest.capacity() && rest.capacity() < 3 {
            rest.reserve_exact(1);
        }
        rest.push_back(item);
    }

    /// Take the front item.
    pub(crate) fn pop(&mut self) -> Option<T> {
        // Asked first: `take` would move the whole (large) slot out even
        // when it holds nothing, the common case of a per-input poll.
        self.front.as_ref()?;
        let item = self.front.take()?;
        if !self.rest.is_empty() {
            self.front = self.rest.pop_front();
        }
        Some(item)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.front.is_none()
    }

    /// Keep only the items `keep` says to, in order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.rest.retain(&mut keep);
        if self.front.as_ref().is_some_and(|f| !keep(f)) {
            self.front = self.rest.pop_front();
        }
    }

    /// Start bringing both parts toward the cache (see `Client::prefetch`).
    #[cfg(feature = "prefetch")]
    #[inline]
    pub(crate) fn prefetch(&self) {
        use core::slice::from_ref;
        prefetch_index::prefetch_index(from_ref(&self.front), 0);
        prefetch_index::prefetch_index(from_ref(&self.rest), 0);
    }

    /// The items, front first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.front.iter().chain(self.rest.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::SlimQueue;
    use alloc::collections::VecDeque;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Push(u8),
        Pop,
        Retain(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<u8>().prop_map(Op::Push),
            Just(Op::Pop),
            (1..5u8).prop_map(Op::Retain),
        ]
    }

    proptest! {
        /// Whatever is pushed, popped or filtered, it behaves as a plain
        /// `VecDeque`: the same items, in the same order.
        #[test]
        fn it_is_a_fifo(ops in prop::collection::vec(op(), 0..64)) {
            let mut slim = SlimQueue::new();
            let mut plain = VecDeque::new();
            for op in ops {
                match op {
                    Op::Push(x) => {
                        slim.push(x);
                        plain.push_back(x);
                    }
                    Op::Pop => prop_assert_eq!(slim.pop(), plain.pop_front()),
                    Op::Retain(m) => {
                        slim.retain(|x| x % m != 0);
                        plain.retain(|x| x % m != 0);
                    }
                }
                prop_assert_eq!(slim.is_empty(), plain.is_empty());
                prop_assert_eq!(
                    slim.iter().collect::<Vec<_>>(),
                    plain.iter().collect::<Vec<_>>()
                );
            }
        }
    }

    #[test]
    fn one_item_at_a_time_never_allocates() {
        let mut q = SlimQueue::new();
        for x in 0..10 {
            q.push(x);
            assert_eq!(q.pop(), Some(x));
        }
        assert_eq!(q.rest.capacity(), 0);
    }

    #[test]
    fn the_heap_part_grows_one_slot_at_a_time_to_three() {
        let mut q = SlimQueue::new();
        q.push(0);
        q.push(1);
        assert_eq!(q.rest.capacity(), 1);
        q.push(2);
        assert_eq!(q.rest.capacity(), 2);
        q.push(3);
        assert_eq!(q.rest.capacity(), 3);
        q.push(4);
        assert!(q.rest.capacity() >= 4);
    }
}
