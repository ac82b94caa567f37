//! The outbound queue: bounded by count and bytes, with an overflow policy,
//! per-message TTL, at-most-once or at-least-once delivery, a bounded
//! in-flight window, and in-order replay after a reconnect.
//!
//! Entries are kept in `send` order. The first `handed` of them have been
//! handed to the current transport; the rest wait. Every entry that leaves
//! the queue does so through an outcome passed to `emit`, or through
//! [`Outbox::drain`], which hands it back to the application.

use crate::{
    AckError, AckMatch, Delivery, DropReason, Instant, Message, MessageId, OutboxConfig, Outcome,
    Overflow, SendError,
};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

#[derive(Debug, Clone)]
struct Entry {
    id: MessageId,
    msg: Message,
    expires_at: Option<Instant>,
    tag: Tag,
}

/// How a message is matched to what the server answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tag {
    /// The application's key, which the server's acks name.
    pub(crate) key: Option<u64>,
    /// A request: it ends with its reply, or times out at this deadline.
    pub(crate) reply_by: Option<Instant>,
}

#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    entries: VecDeque<Entry>,
    /// `entries[..handed]` have been handed to the current transport.
    handed: usize,
    bytes: usize,
    next_id: u64,
    /// No queued entry expires before this (it may be early, never late).
    earliest_expiry: Option<Instant>,
    /// No request times out before this (it may be early, never late).
    earliest_reply_by: Option<Instant>,
}

impl Outbox {
    pub(crate) fn new() -> Self {
        Outbox {
            // Empty until the first message: an idle connection costs no
            // slots; the queue then keeps the capacity it grew to.
            entries: VecDeque::new(),
            handed: 0,
            bytes: 0,
            next_id: 0,
            earliest_expiry: None,
            earliest_reply_by: None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Messages handed to the current transport and not yet resolved.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.handed
    }

    /// Whether a message waits to be handed to the transport.
    pub(crate) fn has_waiting(&self) -> bool {
        self.handed < self.entries.len()
    }

    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.earliest_expiry
    }

    /// When the earliest request times out.
    pub(crate) fn next_reply_by(&self) -> Option<Instant> {
        self.earliest_reply_by
    }

    /// Accept a message, making room by the overflow policy if needed.
    #[cfg(test)]
    pub(crate) fn push(
        &mut self,
        msg: Message,
        ttl: Option<Duration>,
        now: Instant,
        cfg: &OutboxConfig,
        emit: &mut impl FnMut(MessageId, Outcome),
    ) -> Result<MessageId, SendError> {
        self.push_tagged(msg, ttl, Tag::default(), now, cfg, emit)
    }

    /// Accept a message with its key and request deadline, making room by
    /// the overflow policy if needed.
    pub(crate) fn push_tagged(
        &mut self,
        msg: Message,
        ttl: Option<Duration>,
        tag: Tag,
        now: Instant,
        cfg: &OutboxConfig,
        emit: &mut impl FnMut(MessageId, Outcome),
    ) -> Result<MessageId, SendError> {
        let len = msg.len();
        if len > cfg.max_bytes {
            return Err(SendError::TooLarge(msg));
        }
        while self.entries.len() >= cfg.max_messages || self.bytes + len > cfg.max_bytes {
            let evictable = cfg.overflow == Overflow::DropOldest && self.has_waiting();
            if !evictable {
                return Err(SendError::QueueFull(msg));
            }
            if let Some(old) = self.remove(self.handed) {
                emit(old.id, Outcome::Dropped(DropReason::Overflow));
            }
        }
        let id = MessageId(self.next_id);
        self.next_id += 1;
        let expires_at = ttl.map(|ttl| now + ttl);
        if let Some(at) = expires_at {
            self.earliest_expiry = Some(self.earliest_expiry.map_or(at, |e| e.min(at)));
        }
        if let Some(at) = tag.reply_by {
            self.earliest_reply_by = Some(self.earliest_reply_by.map_or(at, |e| e.min(at)));
        }
        self.bytes += len;
        self.entries.push_back(Entry {
            id,
            msg,
            expires_at,
            tag,
        });
        Ok(id)
    }

    /// The next waiting message, if the in-flight window has room; it counts
    /// as handed to the transport from now on.
    pub(crate) fn next_transmit(&mut self, cfg: &OutboxConfig) -> Option<(MessageId, Message)> {
        if self.handed >= cfg.max_in_flight {
            return None;
        }
        let entry = self.entries.get(self.handed)?;
        self.handed += 1;
        Some((entry.id, entry.msg.clone()))
    }

    /// The transport accepted message `id`. Returns false for an id that is
    /// not in flight (stale or unknown), which changes nothing.
    pub(crate) fn on_written(
        &mut self,
        id: MessageId,
        cfg: &OutboxConfig,
        emit: &mut impl FnMut(MessageId, Outcome),
    ) -> bool {
        let Some(index) = self.find(id).filter(|i| *i < self.handed) else {
            return false;
        };
        // A request waits for its reply either way.
        let request = self.entries[index].tag.reply_by.is_some();
        if cfg.delivery == Delivery::AtMostOnce && !request {
            self.remove(index);
            emit(id, Outcome::Written);
        }
        true
    }

    /// The server answered: settle what `ack` names, with `reply` as the
    /// reply to a request it names. Whether it named a held message (an ack
    /// for an unknown or already-settled key changes nothing).
    pub(crate) fn on_ack(
        &mut self,
        ack: AckMatch,
        reply: Message,
        emit: &mut impl FnMut(MessageId, Outcome),
    ) -> bool {
        match ack {
            AckMatch::Ack(key) => {
                let Some(index) = self.find_key(key) else {
                    return false;
                };
                let Some(entry) = self.remove(index) else {
                    return false;
                };
                let outcome = if entry.tag.reply_by.is_some() {
                    Outcome::Replied(reply)
                } else {
                    Outcome::Acked
                };
                self.settled_request(&entry);
                emit(entry.id, outcome);
                true
            }
            AckMatch::UpTo(key) => {
                let mut index = 0;
                let mut any = false;
                while index < self.entries.len() {
                    let e = &self.entries[index];
                    let covered = e.tag.reply_by.is_none() && e.tag.key.is_some_and(|k| k <= key);
                    match covered.then(|| self.remove(index)).flatten() {
                        Some(entry) => {
                            emit(entry.id, Outcome::Acked);
                            any = true;
                        }
                        None => index += 1,
                    }
                }
                any
            }
            AckMatch::Nack { key, reason } => {
                let Some(entry) = self.find_key(key).and_then(|i| self.remove(i)) else {
                    return false;
                };
                self.settled_request(&entry);
                emit(entry.id, Outcome::Refused(reason));
                true
            }
        }
    }

    /// Requests whose reply is overdue at `now` time out.
    pub(crate) fn time_out_requests(
        &mut self,
        now: Instant,
        emit: &mut impl FnMut(MessageId, Outcome),
    ) {
        if self.earliest_reply_by.is_none_or(|at| at > now) {
            return;
        }
        let mut index = 0;
        while index < self.entries.len() {
            if self.entries[index].tag.reply_by.is_some_and(|at| at <= now) {
                if let Some(entry) = self.remove(index) {
                    emit(entry.id, Outcome::TimedOut);
                }
            } else {
                index += 1;
            }
        }
        self.earliest_reply_by = self.entries.iter().filter_map(|e| e.tag.reply_by).min();
    }

    /// A request left the queue: its deadline no longer counts (recomputed
    /// only when it was the earliest).
    fn settled_request(&mut self, entry: &Entry) {
        if entry.tag.reply_by.is_some() && entry.tag.reply_by == self.earliest_reply_by {
            self.earliest_reply_by = self.entries.iter().filter_map(|e| e.tag.reply_by).min();
        }
    }

    /// The oldest held message with application key `key`.
    fn find_key(&self, key: u64) -> Option<usize> {
        self.entries.iter().position(|e| e.tag.key == Some(key))
    }

    /// The application acknowledged `id` (at-least-once only). A message may
    /// be acked whether or not it is in flight: a late ack for a replayed
    /// message avoids sending it twice.
    pub(crate) fn ack(
        &mut self,
        id: MessageId,
        cfg: &OutboxConfig,
        emit: &mut impl FnMut(MessageId, Outcome),
    ) -> Result<(), AckError> {
        if cfg.delivery != Delivery::AtLeastOnce {
            return Err(AckError::NotAtLeastOnce);
        }
        let index = self.find(id).ok_or(AckError::Unknown(id))?;
        if let Some(entry) = self.remove(index) {
            self.settled_request(&entry);
        }
        emit(id, Outcome::Acked);
        Ok(())
    }

    /// The transport is gone. At most once: what was in flight is dropped.
    /// At least once: everything unacked waits again, in order, to be replayed first.
    pub(crate) fn on_disconnect(
        &mut self,
        cfg: &OutboxConfig,
        emit: &mut impl FnMut(MessageId, Outcome),
    ) {
        if cfg.delivery == Delivery::AtMostOnce {
            while self.handed > 0 {
                if let Some(entry) = self.remove(0) {
                    emit(entry.id, Outcome::Dropped(DropReason::Disconnected));
                }
            }
        }
        self.handed = 0;
        self.earliest_expiry = self.waiting_expiry();
        self.earliest_reply_by = self.entries.iter().filter_map(|e| e.tag.reply_by).min();
    }

    /// Expire waiting messages whose TTL has run out.
    pub(crate) fn expire(&mut self, now: Instant, emit: &mut impl FnMut(MessageId, Outcome)) {
        if self.earliest_expiry.is_none_or(|at| at > now) {
            return;
        }
        let mut index = self.handed;
        while index < self.entries.len() {
            if self.entries[index].expires_at.is_some_and(|at| at <= now) {
                if let Some(entry) = self.remove(index) {
                    emit(entry.id, Outcome::Expired);
                }
            } else {
                index += 1;
            }
        }
        self.earliest_expiry = self.waiting_expiry();
    }

    fn waiting_expiry(&self) -> Option<Instant> {
        self.entries
            .iter()
            .skip(self.handed)
            .filter_map(|e| e.expires_at)
            .min()
    }

    /// Hand every held message back, in send order.
    pub(crate) fn drain(&mut self) -> Vec<(MessageId, Message)> {
        self.handed = 0;
        self.bytes = 0;
        self.earliest_expiry = None;
        self.earliest_reply_by = None;
        self.entries.drain(..).map(|e| (e.id, e.msg)).collect()
    }

    /// Whether message `id` is held.
    pub(crate) fn holds(&self, id: MessageId) -> bool {
        self.find(id).is_some()
    }

    fn find(&self, id: MessageId) -> Option<usize> {
        self.entries.binary_search_by_key(&id, |e| e.id).ok()
    }

    fn remove(&mut self, index: usize) -> Option<Entry> {
        let entry = self.entries.remove(index)?;
        if index < self.handed {
            self.handed -= 1;
        }
        self.bytes -= entry.msg.len();
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(delivery: Delivery) -> OutboxConfig {
        OutboxConfig {
            max_messages: 4,
            max_bytes: 100,
            max_in_flight: 2,
            delivery,
            ..Default::default()
        }
    }

    fn msg(n: usize) -> Message {
        Message::binary(alloc::vec![0u8; n])
    }

    type Log = Vec<(MessageId, Outcome)>;

    fn push(
        o: &mut Outbox,
        n: usize,
        cfg: &OutboxConfig,
        log: &mut Log,
    ) -> Result<MessageId, SendError> {
        o.push(msg(n), None, Instant::ZERO, cfg, &mut |id, out| {
            log.push((id, out))
        })
    }

    #[test]
    fn reject_new_refuses_past_count_and_byte_limits_and_hands_the_message_back() {
        let (c, mut log) = (cfg(Delivery::AtMostOnce), Log::new());
        let mut o = Outbox::new();
        for _ in 0..4 {
            push(&mut o, 10, &c, &mut log).expect("room");
        }
        assert!(
            matches!(push(&mut o, 10, &c, &mut log), Err(SendError::QueueFull(m)) if m.len() == 10)
        );
        let mut o = Outbox::new();
        push(&mut o, 90, &c, &mut log).expect("room");
        assert!(matches!(
            push(&mut o, 11, &c, &mut log),
            Err(SendError::QueueFull(_))
        ));
        assert!(matches!(
            push(&mut o, 101, &c, &mut log),
            Err(SendError::TooLarge(_))
        ));
        assert!(log.is_empty());
        assert_eq!((o.len(), o.bytes()), (1, 90));
    }

    #[test]
    fn drop_oldest_evicts_waiting_messages_and_reports_them() {
        let c = OutboxConfig {
            overflow: Overflow::DropOldest,
            ..cfg(Delivery::AtMostOnce)
        };
        let (mut o, mut log) = (Outbox::new(), Log::new());
        for _ in 0..4 {
            push(&mut o, 10, &c, &mut log).expect("room");
        }
        let first = o.next_transmit(&c).expect("transmit").0;
        let id = push(&mut o, 10, &c, &mut log).expect("evicts");
        assert_eq!(
            log,
            [(MessageId(1), Outcome::Dropped(DropReason::Overflow))]
        );
        assert_eq!(id, MessageId(4));
        assert_eq!(first, MessageId(0)); // in flight: never evicted
        assert_eq!(o.len(), 4);
    }

    #[test]
    fn in_flight_window_bounds_what_is_handed_out() {
        let c = cfg(Delivery::AtLeastOnce);
        let (mut o, mut log) = (Outbox::new(), Log::new());
        for _ in 0..3 {
            push(&mut o, 1, &c, &mut log).expect("room");
        }
        assert!(o.next_transmit(&c).is_some());
        assert!(o.next_transmit(&c).is_some());
        assert!(o.next_transmit(&c).is_none());
        o.ack(MessageId(0), &c, &mut |id, out| log.push((id, out)))
            .expect("ack");
        assert_eq!(o.next_transmit(&c).map(|t| t.0), Some(MessageId(2)));
    }

    #[test]
    fn at_most_once_drops_in_flight_messages_on_disconnect_and_keeps_waiting_ones() {
        let c = cfg(Delivery::AtMostOnce);
        let (mut o, mut log) = (Outbox::new(), Log::new());
        for _ in 0..3 {
            push(&mut o, 1, &c, &mut log).expect("room");
        }
        o.next_transmit(&c);
        o.next_transmit(&c);
        assert!(o.on_written(MessageId(0), &c, &mut |id, out| log.push((id, out))));
        o.on_disconnect(&c, &mut |id, out| log.push((id, out)));
        assert_eq!(
            log,
            [
                (MessageId(0), Outcome::Written),
                (MessageId(1), Outcome::Dropped(DropReason::Disconnected))
            ]
        );
        assert_eq!(o.next_transmit(&c).map(|t| t.0), Some(MessageId(2)));
    }

    #[test]
    fn at_least_once_replays_the_unacked_window_first_and_in_order() {
        let c = cfg(Delivery::AtLeastOnce);
        let (mut o, mut log) = (Outbox::new(), Log::new());
        for _ in 0..4 {
            push(&mut o, 1, &c, &mut log).expect("room");
        }
        o.next_transmit(&c);
        o.next_transmit(&c);
        o.ack(MessageId(1), &c, &mut |id, out| log.push((id, out)))
            .expect("ack");
        o.on_disconnect(&c, &mut |id, out| log.push((id, out)));
        let replay: Vec<_> = core::iter::from_fn(|| o.next_transmit(&c).map(|t| t.0)).collect();
        assert_eq!(replay, [MessageId(0), MessageId(2)]);
        assert_eq!(log, [(MessageId(1), Outcome::Acked)]);
    }

    #[test]
    fn acks_of_unknown_ids_and_in_at_most_once_mode_are_typed_errors() {
        let c = cfg(Delivery::AtLeastOnce);
        let mut o = Outbox::new();
        let mut sink = |_, _| {};
        assert_eq!(
            o.ack(MessageId(9), &c, &mut sink),
            Err(AckError::Unknown(MessageId(9)))
        );
        let c = cfg(Delivery::AtMostOnce);
        assert_eq!(
            o.ack(MessageId(0), &c, &mut sink),
            Err(AckError::NotAtLeastOnce)
        );
    }

    #[test]
    fn waiting_messages_expire_after_their_ttl_but_in_flight_ones_do_not() {
        let c = cfg(Delivery::AtLeastOnce);
        let (mut o, mut log) = (Outbox::new(), Log::new());
        let ttl = Some(Duration::from_secs(5));
        let mut emit = |id, out| log.push((id, out));
        o.push(msg(1), ttl, Instant::ZERO, &c, &mut emit)
            .expect("room");
        o.push(msg(1), ttl, Instant::from_secs(1), &c, &mut emit)
            .expect("room");
        o.push(msg(1), None, Instant::ZERO, &c, &mut emit)
            .expect("room");
        o.next_transmit(&c);
        assert_eq!(o.next_expiry(), Some(Instant::from_secs(5)));
        o.expire(Instant::from_secs(6), &mut emit);
        assert_eq!(log, [(MessageId(1), Outcome::Expired)]);
        assert_eq!(o.next_expiry(), None);
        assert_eq!(o.len(), 2);
    }

    #[test]
    fn drain_hands_everything_back_in_send_order() {
        let c = cfg(Delivery::AtLeastOnce);
        let (mut o, mut log) = (Outbox::new(), Log::new());
        for _ in 0..3 {
            push(&mut o, 5, &c, &mut log).expect("room");
        }
        o.next_transmit(&c);
        let ids: Vec<_> = o.drain().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [MessageId(0), MessageId(1), MessageId(2)]);
        assert_eq!((o.len(), o.bytes(), o.in_flight()), (0, 0, 0));
    }
}
