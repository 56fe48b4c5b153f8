//! The producing side of the ring: single pushes and batch claims. A push publishes its cell
//! with one `Release` stamp store; a batch with one `Release` fence and a `Relaxed` stamp store
//! per cell.

use core::mem::MaybeUninit;

use zerocopy::FromZeros;

use super::{ClaimError, Full, NotSync, Shared};
use crate::sync::{debug_or_loom_assert, fence, Arc, Ordering};

/// The producing side of a ring made by [`spsc`](super::spsc). `Send`, not `Sync`, not `Clone`:
/// there is exactly one.
pub struct Producer<T> {
    pub(super) shared: Arc<Shared<T>>,
    /// Next position to write. Equal to `shared.tail` outside a [`Claim`]; only this side
    /// writes `shared.tail`, so it never needs to load it.
    tail: usize,
    /// The last `head` loaded. `head` only grows, so `tail - cached_head` over-estimates the
    /// number of values in the ring: a "has room" answer from the cache is always true.
    pub(super) cached_head: usize,
    _not_sync: NotSync,
}

impl<T> Producer<T> {
    pub(super) fn new(shared: Arc<Shared<T>>) -> Producer<T> {
        Producer {
            shared,
            tail: 0,
            cached_head: 0,
            _not_sync: NotSync::default(),
        }
    }

    /// The number of values the ring holds (a power of two, at least the capacity asked for).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// Whether the consumer has been dropped. Values pushed after that are never read (they are
    /// dropped with the ring).
    #[inline]
    pub fn is_closed(&self) -> bool {
        // Relaxed: the flag publishes nothing else (see the module docs).
        self.shared.consumer_closed.load(Ordering::Relaxed)
    }

    /// Whether at least `n` cells are free, reloading `head` only when the cache says no. As
    /// the only producer, this side can rely on a `true`: free cells only grow until it writes.
    #[inline(always)]
    pub fn has_room(&mut self, n: usize) -> bool {
        let cap = self.shared.capacity();
        if cap - self.tail.wrapping_sub(self.cached_head) >= n {
            return true;
        }
        // Acquire pairs with the consumer's Release store of `head`: the consumer has finished
        // reading (and dropping) every cell before `head`, so they may be overwritten.
        self.cached_head = self.shared.head.load(Ordering::Acquire);
        debug_or_loom_assert!(
            self.tail.wrapping_sub(self.cached_head) <= cap,
            "ring invariant: the consumer's head {} is past the producer's tail {}",
            self.cached_head,
            self.tail
        );
        cap - self.tail.wrapping_sub(self.cached_head) >= n
    }

    /// Free cells, by the cache (no reload).
    #[inline(always)]
    fn cached_free(&self) -> usize {
        self.shared.capacity() - self.tail.wrapping_sub(self.cached_head)
    }

    /// The number of free cells right now (reloads the consumer's position). As the only
    /// producer, this side can rely on the answer: free cells only grow until it writes.
    #[inline]
    pub fn free_slots(&mut self) -> usize {
        self.has_room(usize::MAX);
        self.cached_free()
    }

    /// Writes `value` into the cell of position `pos`, and returns that cell (for its stamp:
    /// the caller then needs no second position-to-cell step, which the compiler would redo
    /// after the write, unable to tell that the value's bytes do not overlap the ring's mask
    /// and buffer pointer).
    ///
    /// # Safety
    /// `pos` must be in `[tail, head + capacity)`: a free cell the consumer cannot reach before
    /// its stamp says `pos + 1`.
    #[inline(always)]
    unsafe fn write(&self, pos: usize, value: T) -> &super::Cell<T> {
        self.shared.debug_assert_free(pos);
        let cell = self.shared.cell(pos);
        cell.value.with_mut(|p| {
            // SAFETY: the caller guarantees the cell is free and unreachable by the consumer.
            unsafe { p.write(MaybeUninit::new(value)) }
        });
        cell
    }

    /// Updates the value in the cell of position `pos` in place with `update`, which gets the
    /// value the cell holds (the one written there a lap before, or zeros), and returns the
    /// cell (as [`Producer::write`]).
    ///
    /// # Safety
    /// As [`Producer::write`].
    #[inline(always)]
    unsafe fn write_with(&self, pos: usize, update: impl FnOnce(&mut T)) -> &super::Cell<T>
    where
        T: Copy + FromZeros,
    {
        self.shared.debug_assert_free(pos);
        let cell = self.shared.cell(pos);
        cell.value.with_mut(|p| {
            // The cell holds a valid `T`: its bytes were zeroed when the ring was made (a
            // valid `T`: `FromZeros`), every write since stored a whole `T` or updated one in
            // place, a `T: Copy` has no drop glue, and the consumer's reads leave its bytes.
            // SAFETY: a valid `T` (above), in a cell the caller guarantees free and
            // unreachable by the consumer, so this is the only reference to it.
            let value = unsafe { (*p).assume_init_mut() };
            update(value);
        });
        cell
    }

    /// Publishes the new `tail`, after the stamps of the positions before it.
    #[inline(always)]
    fn publish_tail(&self) {
        // Release pairs with the consumer's Acquire load of `tail` in `Consumer::committed`: a
        // consumer that learns of a position through `tail` also sees the value written there.
        self.shared.tail.store(self.tail, Ordering::Release);
    }

    /// Pushes `value`, or hands it back if the ring is full. Never waits.
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), Full<T>> {
        if !self.has_room(1) {
            return Err(Full(value));
        }
        // SAFETY: `has_room(1)` proved the cell of `tail` free.
        self.commit_one(|p, pos| unsafe { p.write(pos, value) });
        Ok(())
    }

    /// Writes the cell of position `tail` with `write` (which returns that cell) and commits
    /// it: the one-message push of [`Producer::try_push`] and
    /// [`Producer::try_push_in_place`]. The caller made sure the cell is free.
    #[inline(always)]
    fn commit_one(&mut self, write: impl FnOnce(&Self, usize) -> &super::Cell<T>) {
        let pos = self.tail;
        let cell = write(self, pos);
        let next = pos.wrapping_add(1);
        // Release pairs with the consumer's Acquire stamp load: the value written above is
        // visible to it before the stamp that announces it.
        let stamp = &cell.stamp;
        stamp.store(next, Ordering::Release);
        self.tail = next;
        self.publish_tail();
    }

    /// Pushes the value `update` makes of the next cell's value in place, or hands `update`
    /// back if the ring is full. `update` gets what the cell holds: the value pushed there a
    /// lap before, or zeros on the first lap; a producer that rewrites the same fields message
    /// after message can skip the stores of those that are already right (a store to the line
    /// waits in the store buffer until the consumer hands the line back). If `update` panics,
    /// nothing is pushed, and the cell keeps what `update` left for the next push to see.
    ///
    /// ```
    /// let (mut tx, mut rx) = tracebus::ring::spsc::<[u64; 2]>(2).unwrap();
    /// assert!(tx.try_push_in_place(|v| v[1] = 7).is_ok()); // a first lap's cell is zeros
    /// assert_eq!(rx.try_pop(), Some([0, 7]));
    /// assert!(tx.try_push_in_place(|v| v[0] = 1).is_ok());
    /// assert!(tx.try_push_in_place(|v| v[0] = 2).is_ok()); // the first cell again
    /// assert_eq!(rx.try_pop(), Some([1, 0]));
    /// assert_eq!(rx.try_pop(), Some([2, 7])); // 7: what the cell held
    /// ```
    #[inline]
    pub fn try_push_in_place<F: FnOnce(&mut T)>(&mut self, update: F) -> Result<(), Full<F>>
    where
        T: Copy + FromZeros,
    {
        if !self.has_room(1) {
            return Err(Full(update));
        }
        // SAFETY: `has_room(1)` proved the cell of `tail` free.
        self.commit_one(|p, pos| unsafe { p.write_with(pos, update) });
        Ok(())
    }

    /// Claims exactly `n` free cells to fill in place, or says how many are free.
    ///
    /// ```
    /// let (mut tx, mut rx) = tracebus::ring::spsc::<u32>(8).unwrap();
    /// let mut claim = tx.claim(3).unwrap();
    /// for v in [1, 2, 3] {
    ///     claim.push(v).unwrap();
    /// }
    /// claim.commit(); // one Release fence for the three values
    /// assert_eq!(rx.len(), 3);
    /// assert!(tx.claim(6).is_err());
    /// ```
    #[inline]
    pub fn claim(&mut self, n: usize) -> Result<Claim<'_, T>, ClaimError> {
        if !self.has_room(n) {
            return Err(ClaimError {
                requested: n,
                available: self.cached_free(),
            });
        }
        Ok(Claim {
            producer: self,
            len: n,
            written: 0,
        })
    }

    /// Claims up to `n` free cells (possibly none).
    #[inline]
    pub fn claim_up_to(&mut self, n: usize) -> Claim<'_, T> {
        let len = if self.has_room(n) {
            n
        } else {
            self.cached_free()
        };
        Claim {
            producer: self,
            len,
            written: 0,
        }
    }

    /// Pushes values from `iter` while there is room, committing them as one batch; returns
    /// how many were pushed. The iterator is not advanced past the last value pushed.
    pub fn push_iter<I: IntoIterator<Item = T>>(&mut self, iter: I) -> usize {
        let mut iter = iter.into_iter();
        let mut claim = self.claim_up_to(usize::MAX);
        while claim.remaining() > 0 {
            let Some(v) = iter.next() else { break };
            if claim.push(v).is_err() {
                unreachable!("remaining() > 0");
            }
        }
        claim.written
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        // Release pairs with the consumer's Acquire in `is_closed`: a consumer that sees the
        // flag also sees every stamp this side stored, so it can drain everything committed.
        self.shared.producer_closed.store(true, Ordering::Release);
    }
}

impl<T> core::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

/// Cells claimed by [`Producer::claim`]: fill them in order with [`Claim::push`]; the values
/// written are published when the claim is committed or dropped (whichever comes first): one
/// `Release` fence, then each cell's stamp in order, then `tail`, so the consumer may take the
/// first before the last is stamped. Nothing written is ever lost.
pub struct Claim<'a, T> {
    producer: &'a mut Producer<T>,
    /// Cells claimed; invariant: `written <= len` and the `len` cells from `producer.tail` are
    /// free.
    len: usize,
    /// Cells filled so far, from `producer.tail`.
    written: usize,
}

impl<T> Claim<'_, T> {
    /// Cells claimed.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no cell was claimed.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Cells claimed and not written yet.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.len - self.written
    }

    /// Values written so far.
    #[inline]
    pub fn written(&self) -> usize {
        self.written
    }

    /// Writes `value` into the next claimed cell, or hands it back if all are written.
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), Full<T>> {
        if self.written == self.len {
            return Err(Full(value));
        }
        let pos = self.producer.tail.wrapping_add(self.written);
        // SAFETY: `pos` is one of the `len` cells the claim proved free; the consumer cannot
        // reach it before the commit stores its stamp.
        unsafe { self.producer.write(pos, value) };
        self.written += 1;
        Ok(())
    }

    /// Updates the next claimed cell's value in place with `update` (see
    /// [`Producer::try_push_in_place`]), or hands `update` back if all are written.
    #[inline]
    pub fn push_in_place<F: FnOnce(&mut T)>(&mut self, update: F) -> Result<(), Full<F>>
    where
        T: Copy + FromZeros,
    {
        if self.written == self.len {
            return Err(Full(update));
        }
        let pos = self.producer.tail.wrapping_add(self.written);
        // SAFETY: as in `push`.
        unsafe { self.producer.write_with(pos, update) };
        self.written += 1;
        Ok(())
    }

    /// Publishes the values written and ends the claim.
    #[inline]
    pub fn commit(self) {
        // Drop commits.
    }
}

impl<T> Drop for Claim<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if self.written == 0 {
            return;
        }
        let p = &mut *self.producer;
        // One Release fence for the batch: it pairs with the consumer's Acquire load of any of
        // the stamps stored after it, so every value written above is visible with its stamp.
        fence(Ordering::Release);
        // Stamped last to first: a consumer watching the stamps (it counts the committed cells
        // from its `head` up to the first unstamped one) finds none of the batch until the
        // first cell's stamp, the last store, and then all of it, rather than a few cells per
        // poll while the stamps are stored (measured: 60-63 messages per pass of the bus's
        // worker in busbench's batched case, 64 with this order).
        for i in (0..self.written).rev() {
            let pos = p.tail.wrapping_add(i);
            p.shared
                .cell(pos)
                .stamp
                .store(pos.wrapping_add(1), Ordering::Relaxed);
        }
        p.tail = p.tail.wrapping_add(self.written);
        p.publish_tail();
    }
}
