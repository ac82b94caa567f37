//! What the application holds: a cloneable [`Handle`] for commands and
//! state, and the [`Events`] stream.

use crate::RequestError;
use crate::driver::Shared;
use crate::runtime::Runtime;
use crate::watch::StateWatch;
use futures_core::Stream;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;
use steadfast_core::{Client, CloseCode, CloseError, Event, Message, MessageId, State, Stats};

pub use steadfast_wire::Status;

/// Controls one resilient connection. Cheap to clone; when the last clone is
/// dropped the connection closes gracefully (code 1000) and the driver task ends.
pub struct Handle<R: Runtime> {
    inner: Arc<HandleInner<R>>,
}

impl<R: Runtime> Clone for Handle<R> {
    fn clone(&self) -> Self {
        Handle {
            inner: self.inner.clone(),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Handle<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("status", &self.status())
            .finish()
    }
}

struct HandleInner<R: Runtime> {
    shared: Arc<Shared<R>>,
}

impl<R: Runtime> Drop for HandleInner<R> {
    fn drop(&mut self) {
        self.shared.abandoned.store(true, Ordering::Release);
        let _ = self
            .shared
            .command(|c, now| c.close(CloseCode::NORMAL, "", now));
        // The driver ends once the client is done.
        self.shared.wake_driver();
    }
}

impl<R: Runtime> Handle<R> {
    pub(crate) fn new(shared: Arc<Shared<R>>) -> Self {
        Handle {
            inner: Arc::new(HandleInner { shared }),
        }
    }

    /// Test hooks into the driver (feature `test-hooks`; not part of the API).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn test_hooks(&self) -> crate::TestHooks<'_, R> {
        crate::TestHooks(&self.inner.shared)
    }

    fn command<T>(&self, f: impl FnOnce(&mut Client, steadfast_core::Instant) -> T) -> T {
        self.inner.shared.command(f)
    }

    steadfast_wire::client_commands!();

    /// Send a request with an application `key` and wait for its reply:
    /// the incoming message the ack matcher
    /// ([`ConfigBuilder::acks`](steadfast_core::ConfigBuilder::acks)) takes
    /// for an ack of `key`. Works while connecting or offline. Across a
    /// reconnect an unanswered request is sent again under at-least-once
    /// delivery, and fails with [`RequestError::ConnectionLost`] under
    /// at-most-once. It fails with [`RequestError::TimedOut`] once `timeout`
    /// has passed without a reply, wherever it was.
    ///
    /// ```no_run
    /// # async fn run<R: steadfast_async::Runtime>(handle: steadfast_async::Handle<R>) -> Result<(), steadfast_async::RequestError> {
    /// use std::time::Duration;
    /// // The server answers `id:7:...` with `ack:7:<reply>`.
    /// let reply = handle.request(7, "id:7:get balance", Duration::from_secs(5)).await?;
    /// println!("{:?}", reply.as_text());
    /// # Ok(()) }
    /// ```
    pub async fn request(
        &self,
        key: u64,
        msg: impl Into<Message>,
        timeout: Duration,
    ) -> Result<Message, RequestError> {
        let shared = &self.inner.shared;
        let id = shared.start_request(key, msg.into(), timeout)?;
        // Forgets the request if this future is dropped before the end.
        struct Forget<'a, R: Runtime>(&'a crate::driver::Shared<R>, MessageId);
        impl<R: Runtime> Drop for Forget<'_, R> {
            fn drop(&mut self) {
                self.0.forget_request(self.1);
            }
        }
        let _forget = Forget(shared, id);
        let done = std::future::poll_fn(|cx| shared.poll_request(cx, id)).await;
        RequestError::of(done)
    }

    /// Start connecting again after [`close`](Self::close) or a failure
    /// (state [`Closed`](State::Closed) or [`Failed`](State::Failed)): a
    /// new session, whose events come on the new [`Events`] stream returned
    /// here. The old stream still yields what it had not taken, up to its
    /// [`Event::Closed`] or [`Event::Failed`], and then ends; dropping the
    /// new one discards the new session's events, as with any [`Events`].
    ///
    /// In any other state the connection is already running (or about to):
    /// this does nothing and returns `None`; the current stream goes on.
    /// After [`Error::Internal`](steadfast_core::Error::Internal) (the
    /// driver task stopped abnormally) it does nothing either: build a new
    /// connection instead.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// use steadfast_async::{Events, Handle, Runtime, core::CloseCode};
    ///
    /// # async fn run<R: Runtime>(handle: Handle<R>, mut events: Events<R>) -> Result<(), Box<dyn std::error::Error>> {
    /// handle.close_with(CloseCode::NORMAL, "maintenance").await?;
    /// while let Some(event) = events.next().await {} // ends with Event::Closed
    /// if let Some(new_events) = handle.open() {
    ///     events = new_events;
    /// }
    /// # let _ = events;
    /// # Ok(()) }
    /// ```
    #[must_use = "the new session's events come only on the returned stream"]
    pub fn open(&self) -> Option<Events<R>> {
        let session = self.inner.shared.open()?;
        Some(Events::new(self.inner.shared.clone(), session))
    }

    /// Close gracefully with 1000 and wait until closed (or failed). Queued
    /// messages are flushed first when open; those left, and those sent but
    /// not yet acked (at least once), are handed back in [`Event::Closed`].
    /// To wait for the acks first, see
    /// [`close_when_delivered`](Self::close_when_delivered).
    pub async fn close(&self) {
        // 1000 with no reason is always a valid close.
        let _ = self.close_with(CloseCode::NORMAL, "").await;
    }

    /// [`close`](Self::close) with this code and reason (at most 123 bytes).
    pub async fn close_with(&self, code: CloseCode, reason: &str) -> Result<(), CloseError> {
        self.closed_after(|c, now| c.close(code, reason, now)).await
    }

    /// Close once everything sent is delivered (acked at least once, written
    /// at most once), waiting at most `within` before the close frame goes
    /// out; then as [`close`](Self::close). What is still undelivered is
    /// handed back in [`Event::Closed`]. Plain `close` does not wait for acks:
    /// messages the server has but has not acked yet are handed back too.
    pub async fn close_when_delivered(
        &self,
        code: CloseCode,
        reason: &str,
        within: Duration,
    ) -> Result<(), CloseError> {
        self.closed_after(|c, now| c.close_when_delivered(code, reason, within, now))
            .await
    }

    /// Start a close with `start`, then wait until closed (or failed).
    async fn closed_after(
        &self,
        start: impl FnOnce(&mut Client, steadfast_core::Instant) -> Result<(), CloseError>,
    ) -> Result<(), CloseError> {
        let mut status = self.inner.shared.watch();
        let done = self.command(|c, now| {
            start(c, now).map(|()| matches!(c.state(), State::Closed | State::Failed))
        })?;
        if done {
            return Ok(());
        }
        let _ = status
            .wait_for(|s| matches!(s, State::Closed | State::Failed))
            .await;
        Ok(())
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.inner.shared.lock().client.state()
    }

    /// The current counters.
    pub fn stats(&self) -> Stats {
        self.inner.shared.lock().client.stats()
    }

    /// The current state and counters, read together.
    pub fn status(&self) -> Status {
        Status::of(&self.inner.shared.lock().client)
    }

    /// A watcher of state changes (counters change with every message, so
    /// they are read on demand with [`stats`](Self::stats)).
    pub fn watch(&self) -> StateWatch {
        self.inner.shared.watch()
    }
}

/// The stream of [`Event`]s for the application. Events wait in the core
/// until taken, so an application that reads slowly never loses one. Dropping
/// it does not close the connection; events are then discarded.
///
/// It ends (yields `None`, and stays ended) right after the terminal event
/// of its session, [`Event::Closed`] or [`Event::Failed`], even while
/// handles are alive, so `while let Some(ev) = events.next().await` ends
/// after [`Handle::close`]. It also ends once the driver has finished (every
/// handle dropped). A connection restarted with [`Handle::open`] is a new
/// session, with a new stream.
///
/// Take events with `StreamExt::next` (futures-util) or, without it, with
/// [`Events::recv`]; the two are the same:
///
/// ```no_run
/// # async fn run<R: steadfast_async::Runtime>(mut events: steadfast_async::Events<R>) {
/// while let Some(event) = events.recv().await {
///     println!("{event:?}");
/// }
/// # }
/// ```
pub struct Events<R: Runtime> {
    shared: Arc<Shared<R>>,
    /// The session whose events this stream yields.
    session: u64,
    /// The terminal event or `None` was returned: the stream stays ended.
    ended: bool,
}

impl<R: Runtime> std::fmt::Debug for Events<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl<R: Runtime> Stream for Events<R> {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let polled = self.shared.poll_event(cx, self.session);
        if let Poll::Ready(None | Some(Event::Closed { .. } | Event::Failed { .. })) = polled {
            self.ended = true;
        }
        polled
    }
}

impl<R: Runtime> futures_core::FusedStream for Events<R> {
    fn is_terminated(&self) -> bool {
        self.ended
    }
}

impl<R: Runtime> Drop for Events<R> {
    fn drop(&mut self) {
        self.shared.events_dropped(self.session);
    }
}

impl<R: Runtime> Events<R> {
    /// The stream of `session`'s events.
    pub(crate) fn new(shared: Arc<Shared<R>>, session: u64) -> Self {
        Events {
            shared,
            session,
            ended: false,
        }
    }

    /// The next event; `None` after the session's terminal event
    /// ([`Event::Closed`] or [`Event::Failed`]), or once the driver has
    /// finished.
    pub async fn recv(&mut self) -> Option<Event> {
        futures_util::StreamExt::next(self).await
    }
}
