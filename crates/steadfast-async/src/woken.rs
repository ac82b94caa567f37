//! A waker that remembers it fired, so the loop polls a source only when
//! that source asked to be polled (the way `FuturesUnordered` tracks its
//! futures). It matters for the socket's read half: tungstenite zeroes its
//! read buffer on every poll, so polling it on every turn of the loop (after
//! each command or write) cost more than the read itself.
//!
//! Two tasks may poll through one gate: its owner (the driver) and a guest
//! (the application's task waiting on its events), woken first while it
//! waits, so it can read without a hop through the driver. The owner is
//! woken too, unless it has promised to look at the source on its own soon
//! ([`Woken::set_owner_looks`]): under load the guest then reads alone, and
//! a guest that stops polling delays a read by at most the owner's interval.

use futures_util::task::AtomicWaker;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

struct Flag {
    woken: AtomicBool,
    task: AtomicWaker,
    guest: AtomicWaker,
    /// The owner looks at the source on its own within a bounded time, so
    /// a wake may go to a waiting guest alone.
    owner_looks: AtomicBool,
    /// A guest was woken since the owner last asked.
    guest_woken: AtomicBool,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // SeqCst throughout: the owner clears `guest_woken`, then
        // `owner_looks`, then reads `woken`; a wake that saw `owner_looks`
        // set is then always seen by the owner's look.
        self.woken.store(true, Ordering::SeqCst);
        if let Some(guest) = self.guest.take() {
            self.guest_woken.store(true, Ordering::SeqCst);
            guest.wake();
            if self.owner_looks.load(Ordering::SeqCst) {
                return;
            }
        }
        self.task.wake();
    }
}

/// Who polls through a gate.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Poller {
    /// The owner (the driver), which keeps its waker until the next wake.
    Owner,
    /// The guest (the application's task waiting on its events), which
    /// keeps its waker until the source wakes or
    /// [`forget_guest`](Woken::forget_guest).
    Guest,
}

/// Gates polls of one source on its own waker having fired.
#[derive(Clone)]
pub(crate) struct Woken {
    flag: Arc<Flag>,
    waker: Waker,
}

impl Woken {
    /// A gate that lets the first poll through.
    pub(crate) fn new() -> Self {
        let flag = Arc::new(Flag {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
            guest: AtomicWaker::new(),
            owner_looks: AtomicBool::new(false),
            guest_woken: AtomicBool::new(false),
        });
        Woken {
            waker: Waker::from(flag.clone()),
            flag,
        }
    }

    /// Poll `f` with this gate's waker if the source woke (or has not been
    /// polled yet); otherwise `Pending`, with the poller's waker kept for
    /// when it does. After a `Ready` the next call polls again: the source
    /// may have more buffered without waking anyone.
    pub(crate) fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        poller: Poller,
        f: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        match poller {
            Poller::Owner => self.flag.task.register(cx.waker()),
            Poller::Guest => self.flag.guest.register(cx.waker()),
        }
        if !self.flag.woken.swap(false, Ordering::SeqCst) {
            return Poll::Pending;
        }
        let ready = f(&mut Context::from_waker(&self.waker));
        if ready.is_ready() {
            self.flag.woken.store(true, Ordering::SeqCst);
        }
        ready
    }

    /// Keep the owner's waker for the next wake; `true` if the source has
    /// woken since it was last polled (so the owner should poll it).
    pub(crate) fn register_owner_if_quiet(&self, cx: &Context<'_>) -> bool {
        self.flag.task.register(cx.waker());
        self.flag.woken.load(Ordering::SeqCst)
    }

    /// Whether a guest was woken since the last call.
    pub(crate) fn guest_was_woken(&self) -> bool {
        self.flag.guest_woken.swap(false, Ordering::SeqCst)
    }

    /// Whether the owner looks at the source on its own (polling it if it
    /// woke) within a bounded time: while it does, a waiting guest alone
    /// is woken. Set before the look that keeps the promise.
    pub(crate) fn set_owner_looks(&self, looks: bool) {
        self.flag.owner_looks.store(looks, Ordering::SeqCst);
    }

    /// Whether the owner has promised to look.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn owner_looks(&self) -> bool {
        self.flag.owner_looks.load(Ordering::SeqCst)
    }

    /// Whether `other` is this gate.
    pub(crate) fn is(&self, other: &Woken) -> bool {
        Arc::ptr_eq(&self.flag, &other.flag)
    }

    /// The guest no longer waits (it got what it wanted elsewhere).
    pub(crate) fn forget_guest(&self) {
        drop(self.flag.guest.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn polls_the_source_only_after_its_waker_fired() {
        let task = Arc::new(Count(AtomicUsize::new(0)));
        let task_waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&task_waker);
        let gate = Woken::new();
        let mut polls = 0;
        let mut saved: Option<Waker> = None;
        let poll = |cx: &mut Context<'_>, polls: &mut usize, saved: &mut Option<Waker>| {
            gate.poll(cx, Poller::Owner, |inner| {
                *polls += 1;
                *saved = Some(inner.waker().clone());
                Poll::<()>::Pending
            })
        };
        assert!(poll(&mut cx, &mut polls, &mut saved).is_pending());
        assert_eq!(polls, 1, "the first poll goes through");
        assert!(poll(&mut cx, &mut polls, &mut saved).is_pending());
        assert_eq!(polls, 1, "not woken: the source is not polled");
        saved.take().expect("the source kept a waker").wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the task is woken");
        assert!(poll(&mut cx, &mut polls, &mut saved).is_pending());
        assert_eq!(polls, 2, "woken: polled again");
    }

    /// Wait on a source that stays pending, through `gate` as `poller`:
    /// the waker the source kept if the gate let the poll through.
    fn wait(gate: &Woken, waker: &Waker, poller: Poller) -> Option<Waker> {
        let mut kept = None;
        let _ = gate.poll(&mut Context::from_waker(waker), poller, |cx| {
            kept = Some(cx.waker().clone());
            Poll::<()>::Pending
        });
        kept
    }

    #[test]
    fn a_waiting_guest_is_woken_before_the_owner_and_only_once() {
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Named(&'static str, Arc<std::sync::Mutex<Vec<&'static str>>>);
        impl Wake for Named {
            fn wake(self: Arc<Self>) {
                self.1.lock().expect("lock").push(self.0);
            }
        }
        let owner = Waker::from(Arc::new(Named("owner", order.clone())));
        let guest = Waker::from(Arc::new(Named("guest", order.clone())));
        let gate = Woken::new();
        let source = wait(&gate, &owner, Poller::Owner).expect("the source kept a waker");
        wait(&gate, &guest, Poller::Guest);
        source.wake_by_ref();
        source.wake_by_ref();
        assert_eq!(*order.lock().expect("lock"), ["guest", "owner"]);
        wait(&gate, &guest, Poller::Guest);
        gate.forget_guest();
        wait(&gate, &owner, Poller::Owner);
        source.wake_by_ref();
        assert_eq!(
            *order.lock().expect("lock"),
            ["guest", "owner", "owner"],
            "a guest that stopped waiting is not woken"
        );
    }

    #[test]
    fn while_the_owner_looks_a_waiting_guest_alone_is_woken() {
        let owner = Arc::new(Count(AtomicUsize::new(0)));
        let guest = Arc::new(Count(AtomicUsize::new(0)));
        let (owner_waker, guest_waker) = (Waker::from(owner.clone()), Waker::from(guest.clone()));
        let gate = Woken::new();
        let source = wait(&gate, &owner_waker, Poller::Owner).expect("the source kept a waker");
        gate.set_owner_looks(true);
        wait(&gate, &guest_waker, Poller::Guest);
        assert!(!gate.guest_was_woken());
        source.wake_by_ref();
        assert_eq!(guest.0.load(Ordering::SeqCst), 1, "the guest is woken");
        assert_eq!(owner.0.load(Ordering::SeqCst), 0, "the owner is not");
        assert!(gate.guest_was_woken(), "the owner learns a guest was woken");
        assert!(!gate.guest_was_woken(), "once");
        assert!(
            wait(&gate, &owner_waker, Poller::Owner).is_some(),
            "the owner's look polls the source the guest left unread"
        );
        source.wake_by_ref();
        assert_eq!(
            owner.0.load(Ordering::SeqCst),
            1,
            "with no guest waiting the owner is woken"
        );
        let _ = gate.register_owner_if_quiet(&Context::from_waker(&owner_waker));
        wait(&gate, &guest_waker, Poller::Guest);
        gate.set_owner_looks(false);
        source.wake_by_ref();
        assert_eq!(guest.0.load(Ordering::SeqCst), 2);
        assert_eq!(
            owner.0.load(Ordering::SeqCst),
            2,
            "an owner that stopped looking is woken with the guest"
        );
    }

    #[test]
    fn polls_again_after_ready_without_a_wake() {
        let task_waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let mut cx = Context::from_waker(&task_waker);
        let gate = Woken::new();
        assert_eq!(
            gate.poll(&mut cx, Poller::Owner, |_| Poll::Ready(1)),
            Poll::Ready(1)
        );
        assert_eq!(
            gate.poll(&mut cx, Poller::Owner, |_| Poll::Ready(2)),
            Poll::Ready(2)
        );
    }
}
