//! Quiescence: the moment no message is in a ring or in a handler, so that shutdown can stop
//! the workers without losing an onward publish, and [`crate::Bus::flush`] can return.
//!
//! The algorithm is counting termination detection (the "channel counting" of Mattern's
//! termination-detection algorithms), in the simple form that fits a bus whose external input
//! has stopped or is ignored:
//!
//! - Every endpoint counts the message copies it writes, one per destination ring ([`Sent`]),
//!   *before* it commits them to the rings.
//! - Every worker counts the copies it has read and handled completely ([`Done`]), after the
//!   handlers of a pass over its rings returned, with a `Release` store.
//! - The coordinator ([`quiescent`]) loads every worker's [`Done`] (`Acquire`) and only then
//!   every endpoint's [`Sent`]. Equal sums mean that every copy written is handled and no
//!   handler is running.
//!
//! Why equality proves it. A copy counted in a [`Done`] value the coordinator loaded was
//! counted in its writer's [`Sent`] before it was committed, and the commit happens before the
//! worker read it (the ring's `Release`/`Acquire` stamp), which happens before the worker's
//! `Release` store of [`Done`] that the coordinator's `Acquire` load read: so the later load of
//! that [`Sent`] sees it. Every copy counted done is therefore counted sent, and equal sums
//! mean the copies counted sent are exactly the copies counted done. A handler's onward
//! publish is counted in its worker's [`Sent`] before that handler returned, so before the
//! [`Done`] store that covers the message it handled: the onward copies of every handled
//! message are counted sent too, hence done. External publishers stopped (shutdown closed
//! their gate, which a publish enters by counting: after the close, every publish it let
//! through is counted as the coordinator's loads see it, and every later one is refused; see
//! `gate.rs`), so every copy that will ever exist descends from a counted one: all are done,
//! no handler runs, and nothing can publish again. A handler still running on a copy makes the
//! sums differ (its copy is sent, not done), and so does a copy counted but not yet committed.
//!
//! The check allows for `Sent` counting early: a count without its copy (a publish between its
//! count and its commit, or one that found a ring full and takes its count back with
//! [`Sent::undo`]) only makes the sent sum larger, never equal by accident. A copy must never be
//! committed before it is counted, or a worker could count it done first.
//!
//! Cost on the hot path: the count a publish already kept, stored before the commit instead of
//! after it (one `Relaxed` store to the endpoint's own line), which is also how the publish
//! enters the shutdown gate, and one `Release` store per non-empty pass of a worker.

use crate::sync::{AtomicUsize, Ordering};

/// One endpoint's count of message copies written, counted before they are committed. Written
/// only by its endpoint (a load and a store, no read-modify-write); read by the coordinator.
#[derive(Debug, Default)]
pub struct Sent {
    /// Messages accepted (a publish to `k` workers counts 1): what the report calls published.
    messages: AtomicUsize,
    /// Copies beyond the first of each message (`k - 1` per message to `k` workers), so that
    /// `messages + extra` is the copies written; untouched by single-destination publishes.
    extra: AtomicUsize,
}

impl Sent {
    /// Counts `n` messages to `rings` rings, before they are committed; returns what to hand
    /// [`Sent::undo`] if they are not committed after all. Owner only.
    #[inline(always)]
    pub fn count(&self, n: usize, rings: usize) -> Undo {
        // Relaxed: the commit that follows (a `Release` stamp store or fence) orders this store
        // before the copies it announces (see the module docs).
        let m = &self.messages;
        let before = Undo {
            messages: m.load(Ordering::Relaxed),
            extra: None,
        };
        m.store(before.messages + n, Ordering::Relaxed);
        if rings > 1 {
            let e = &self.extra;
            let extra = e.load(Ordering::Relaxed);
            e.store(extra + n * (rings - 1), Ordering::Relaxed);
            return Undo {
                extra: Some(extra),
                ..before
            };
        }
        before
    }

    /// Takes back a count whose copies were not committed (a full ring). Owner only. Until
    /// then the count only made the sent sum larger, which no check takes for quiescence.
    #[cold]
    pub fn undo(&self, before: Undo) {
        self.messages.store(before.messages, Ordering::Relaxed);
        if let Some(extra) = before.extra {
            self.extra.store(extra, Ordering::Relaxed);
        }
    }

    /// Messages accepted so far.
    #[inline]
    pub fn messages(&self) -> usize {
        // Relaxed: a count, read after an `Acquire` that made the interesting part visible.
        self.messages.load(Ordering::Relaxed)
    }

    /// Message copies written so far (one per destination ring).
    #[inline]
    pub fn copies(&self) -> usize {
        // Relaxed: as `messages`.
        self.messages.load(Ordering::Relaxed) + self.extra.load(Ordering::Relaxed)
    }
}

/// The counts a [`Sent::count`] replaced, for [`Sent::undo`].
#[derive(Debug, Clone, Copy)]
#[must_use = "undo the count if its copies are not committed"]
pub struct Undo {
    messages: usize,
    /// `extra` before the count, if the count changed it.
    extra: Option<usize>,
}

/// One worker's count of message copies read and handled completely. Written only by its
/// worker, after each non-empty pass; read by the coordinator.
#[derive(Debug, Default)]
pub struct Done(AtomicUsize);

impl Done {
    /// Publishes the worker's total, after the handlers of every copy it counts returned.
    #[inline]
    pub fn store(&self, handled: usize) {
        // Release pairs with the Acquire in `load`: the counts of onward publishes the handlers
        // made (and of the copies they read) are visible to a coordinator that sees this total.
        self.0.store(handled, Ordering::Release);
    }

    /// The worker's total so far.
    #[inline]
    pub fn load(&self) -> usize {
        // Acquire: see `store`.
        self.0.load(Ordering::Acquire)
    }
}

/// Whether every message copy counted sent has been handled and no handler is running, given
/// every worker's [`Done`], every live endpoint's [`Sent`] and the copies of endpoints that
/// are gone (`gone`, final counts; see the module docs: external publishers must have
/// stopped, or their later publishes are simply not covered). Loads all of `done` first, then
/// all of `sent`.
pub fn quiescent<'a>(
    done: impl IntoIterator<Item = &'a Done>,
    sent: impl IntoIterator<Item = &'a Sent>,
    gone: usize,
) -> bool {
    let handled: usize = done.into_iter().map(Done::load).sum();
    let written: usize = gone + sent.into_iter().map(Sent::copies).sum::<usize>();
    crate::sync::debug_or_loom_assert!(
        handled <= written,
        "drain invariant: {handled} copies handled but only {written} counted sent"
    );
    handled == written
}

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    use super::*;

    #[test]
    fn copies_count_every_destination_and_messages_count_once() {
        let s = Sent::default();
        let _ = s.count(1, 1);
        let before = s.count(3, 4);
        assert_eq!(s.messages(), 4);
        assert_eq!(s.copies(), 1 + 3 * 4);
        let undone = s.count(2, 2);
        assert_eq!(s.copies(), 1 + 3 * 4 + 4);
        s.undo(undone);
        assert_eq!((s.messages(), s.copies()), (4, 1 + 3 * 4));
        s.undo(before);
        assert_eq!((s.messages(), s.copies()), (1, 1));
    }

    #[test]
    fn quiescent_when_handled_equals_sent() {
        let (a, b) = (Sent::default(), Sent::default());
        let (x, y) = (Done::default(), Done::default());
        assert!(quiescent([&x, &y], [&a, &b], 0), "nothing sent");
        let _ = a.count(2, 1);
        let _ = b.count(1, 2);
        assert!(!quiescent([&x, &y], [&a, &b], 0));
        x.store(3);
        assert!(!quiescent([&x, &y], [&a, &b], 0), "one copy still queued");
        y.store(1);
        assert!(quiescent([&x, &y], [&a, &b], 0));
    }
}
