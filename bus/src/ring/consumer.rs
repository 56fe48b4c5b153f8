//! The consuming side of the ring: single pops and in-place batch reads. A cell is known to be
//! full from its own stamp (the line that carries the data); slots are released with one
//! `Release` store of `head` per pop or per batch.

use super::{NotSync, Shared};
use crate::sync::{Arc, Ordering};

/// The consuming side of a ring made by [`spsc`](super::spsc). `Send`, not `Sync`, not `Clone`.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    /// Next position to read. Equal to `shared.head` outside a [`ReadChunk`]; only this side
    /// writes `shared.head`.
    head: usize,
    _not_sync: NotSync,
}

impl<T> Consumer<T> {
    pub(super) fn new(shared: Arc<Shared<T>>) -> Consumer<T> {
        Consumer {
            shared,
            head: 0,
            _not_sync: NotSync::default(),
        }
    }

    /// The number of values the ring holds.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// Whether the producer has been dropped. Values it committed before may still be waiting:
    /// after this returns `true`, popping until empty drains them all.
    #[inline]
    pub fn is_closed(&self) -> bool {
        // Acquire pairs with the producer's Release store in its `Drop`: every stamp it stored
        // is visible from here on.
        self.shared.producer_closed.load(Ordering::Acquire)
    }

    /// The number of values waiting to be read. A value counted here is found by the next
    /// `try_pop` or `read`.
    #[inline]
    pub fn len(&self) -> usize {
        // Acquire pairs with the producer's Release store of `tail`, which follows the stamps
        // of every position before it.
        let tail = self.shared.tail.load(Ordering::Acquire);
        let n = tail.wrapping_sub(self.head);
        // `tail` trails the stamps, so a consumer that took a value by its stamp can be ahead
        // of the `tail` it sees for a moment: that is "nothing counted", not a huge number.
        if n > self.shared.capacity() {
            0
        } else {
            n
        }
    }

    /// Whether no value is waiting.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the oldest value, if any. Never waits.
    #[inline]
    pub fn try_pop(&mut self) -> Option<T> {
        let pos = self.head;
        if !self.shared.is_committed(pos) {
            return None;
        }
        let value = self.shared.cell(pos).value.with(|p| {
            // SAFETY: the stamp says `pos` is committed, so the cell holds an initialised value
            // the producer will not touch until `head` moves past it; it is moved out exactly
            // once because `head` advances right after.
            unsafe { (*p).assume_init_read() }
        });
        self.head = pos.wrapping_add(1);
        // Release pairs with the producer's Acquire load of `head`: the read above happens
        // before the producer may overwrite the cell.
        self.shared.head.store(self.head, Ordering::Release);
        Some(value)
    }

    /// The oldest value, by reference, without taking it.
    #[inline]
    pub fn peek(&mut self) -> Option<&T> {
        if !self.shared.is_committed(self.head) {
            return None;
        }
        Some(self.shared.cell(self.head).value.with(|p| {
            // SAFETY: as in `try_pop`; the reference lives no longer than `&mut self`, during
            // which `head` cannot move, so the producer cannot overwrite the cell.
            unsafe { (*p).assume_init_ref() }
        }))
    }

    /// Borrows up to `max` waiting values in place (possibly none). They are released, and
    /// dropped, together when the chunk is released or dropped.
    ///
    /// ```
    /// let (mut tx, mut rx) = tracebus::ring::spsc::<u32>(8).unwrap();
    /// tx.push_iter([1, 2, 3]);
    /// let chunk = rx.read(10);
    /// assert_eq!(chunk.iter().copied().collect::<Vec<_>>(), [1, 2, 3]);
    /// chunk.release(); // one Release store for the three values
    /// assert!(rx.is_empty());
    /// ```
    #[inline]
    pub fn read(&mut self, max: usize) -> ReadChunk<'_, T> {
        // Committed positions are consecutive from `head`, and at most `capacity` of them (the
        // cell after the last one carries an older lap's stamp), so the scan ends. Each stamp
        // sits on the line the value is read from next, so the scan costs no extra transfer
        // (measured: scanning stamps beats loading `tail` for the count, see the README).
        let mut len = 0;
        while len < max && self.shared.is_committed(self.head.wrapping_add(len)) {
            len += 1;
        }
        ReadChunk {
            consumer: self,
            len,
        }
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // Relaxed: see the module docs; the producer learns nothing else from this flag.
        self.shared.consumer_closed.store(true, Ordering::Relaxed);
    }
}

impl<T> core::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

/// Values borrowed in place by [`Consumer::read`]. Releasing (or dropping) the chunk drops the
/// values and frees their cells with one `Release` store.
pub struct ReadChunk<'a, T> {
    consumer: &'a mut Consumer<T>,
    /// Values borrowed; invariant: the `len` positions from `consumer.head` are committed (their
    /// stamps were loaded with Acquire).
    len: usize,
}

impl<T> ReadChunk<'_, T> {
    /// Values in the chunk.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the chunk is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`-th value of the chunk, oldest first.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len {
            return None;
        }
        let pos = self.consumer.head.wrapping_add(i);
        Some(self.consumer.shared.cell(pos).value.with(|p| {
            // SAFETY: `pos` is committed (`read` saw its stamp with Acquire), so it
            // is initialised and not writable by the producer until the chunk is released,
            // which needs `self`: the reference cannot outlive it.
            unsafe { (*p).assume_init_ref() }
        }))
    }

    /// The values, oldest first.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &T> + '_ {
        (0..self.len).map(move |i| self.get(i).expect("i < len"))
    }

    /// Drops the values and frees their cells.
    #[inline]
    pub fn release(self) {
        // Drop releases.
    }
}

impl<T> Drop for ReadChunk<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        let c = &mut *self.consumer;
        if core::mem::needs_drop::<T>() {
            for i in 0..self.len {
                c.shared.cell(c.head.wrapping_add(i)).value.with_mut(|p| {
                    // SAFETY: each position is committed and is dropped exactly once, here,
                    // before `head` moves past it.
                    unsafe { (*p).assume_init_drop() }
                });
            }
        }
        c.head = c.head.wrapping_add(self.len);
        // Release pairs with the producer's Acquire load of `head`: every read of these cells
        // happens before the producer may overwrite them.
        c.shared.head.store(c.head, Ordering::Release);
    }
}
