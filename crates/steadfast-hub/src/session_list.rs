//! A user's live sessions, oldest first.

use alloc::vec;
use alloc::vec::Vec;

use crate::event::SessionId;

/// A user's live sessions, oldest first. Nearly every user has exactly one
/// (duplicates are replaced by default), kept without an allocation of its
/// own: a list per user cost about 48 heap bytes per idle session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum SessionList {
    #[default]
    Empty,
    One(SessionId),
    Many(Vec<SessionId>),
}

impl SessionList {
    pub(crate) fn as_slice(&self) -> &[SessionId] {
        match self {
            SessionList::Empty => &[],
            SessionList::One(id) => core::slice::from_ref(id),
            SessionList::Many(ids) => ids,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// Appends the newest session.
    pub(crate) fn push(&mut self, id: SessionId) {
        *self = match core::mem::take(self) {
            SessionList::Empty => SessionList::One(id),
            SessionList::One(first) => SessionList::Many(vec![first, id]),
            SessionList::Many(mut ids) => {
                ids.push(id);
                SessionList::Many(ids)
            }
        };
    }

    /// Takes `id` out, keeping the others in order.
    pub(crate) fn remove(&mut self, id: SessionId) {
        match self {
            SessionList::One(only) if *only == id => *self = SessionList::Empty,
            SessionList::Many(ids) => {
                ids.retain(|&s| s != id);
                if let [only] = ids.as_slice() {
                    *self = SessionList::One(*only);
                } else if ids.is_empty() {
                    *self = SessionList::Empty;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SessionList;
    use crate::event::SessionId;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    proptest! {
        /// Whatever is pushed and removed, it lists what a `Vec` would, and
        /// holds a single session without a `Vec`.
        #[test]
        fn it_lists_what_a_vec_would(ops in prop::collection::vec((any::<bool>(), 0..6u64), 0..40)) {
            let mut list = SessionList::default();
            let mut plain: Vec<SessionId> = Vec::new();
            for (push, n) in ops {
                let id = SessionId(n);
                if push {
                    list.push(id);
                    plain.push(id);
                } else {
                    list.remove(id);
                    plain.retain(|&s| s != id);
                }
                prop_assert_eq!(list.as_slice(), plain.as_slice());
                prop_assert_eq!(list.is_empty(), plain.is_empty());
                prop_assert_eq!(matches!(list, SessionList::Many(_)), plain.len() > 1);
            }
        }
    }
}
