//! The consuming side of the ring: single pops and in-place batch reads, released with one
//! `Release` store of `head` each.

use super::{NotSync, Shared};
use crate::sync::{Arc, Ordering};

/// The consuming side of a ring made by [`spsc`](super::spsc). `Send`, not `Sync`, not `Clone`.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    /// Next position to read. Equal to `shared.head` outside a [`ReadChunk`]; only this side
    /// writes `shared.head`.
    head: usize,
    /// The last `tail` loaded. `tail` only grows, so `cached_tail - head` under-estimates the
    /// values available: an "available" answer from the cache is always true.
    cached_tail: usize,
    _not_sync: NotSync,
}

impl<T> Consumer<T> {
    pub(super) fn new(shared: Arc<Shared<T>>) -> Consumer<T> {
        Consumer {
            shared,
            head: 0,
            cached_tail: 0,
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
        // Acquire pairs with the producer's Release store in its `Drop`: the final `tail` is
        // visible from here on.
        self.shared.producer_closed.load(Ordering::Acquire)
    }

    /// Values that can be read now, reloading `tail` only when the cache has fewer than `n`.
    #[inline(always)]
    fn available(&mut self, n: usize) -> usize {
        let cached = self.cached_tail.wrapping_sub(self.head);
        if cached >= n {
            return cached;
        }
        // Acquire pairs with the producer's Release store of `tail`: the values before it are
        // fully written.
        self.cached_tail = self.shared.tail.load(Ordering::Acquire);
        self.cached_tail.wrapping_sub(self.head)
    }

    /// The number of values waiting to be read.
    #[inline]
    pub fn len(&self) -> usize {
        // Relaxed: a count only. Reading a value goes through `available`, whose Acquire load
        // is what makes the value visible.
        self.shared
            .tail
            .load(Ordering::Relaxed)
            .wrapping_sub(self.head)
    }

    /// Whether no value is waiting.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the oldest value, if any. Never waits.
    #[inline]
    pub fn try_pop(&mut self) -> Option<T> {
        if self.available(1) == 0 {
            return None;
        }
        let value = self.shared.slot(self.head).with(|p| {
            // SAFETY: `head` is in `[head, tail)`, so the slot holds an initialised value the
            // producer will not touch until `head` moves past it; it is moved out exactly once
            // because `head` advances right after.
            unsafe { (*p).assume_init_read() }
        });
        self.head = self.head.wrapping_add(1);
        // Release pairs with the producer's Acquire load of `head`: the read above happens
        // before the producer may overwrite the slot.
        self.shared.head.store(self.head, Ordering::Release);
        Some(value)
    }

    /// The oldest value, by reference, without taking it.
    #[inline]
    pub fn peek(&mut self) -> Option<&T> {
        if self.available(1) == 0 {
            return None;
        }
        Some(self.shared.slot(self.head).with(|p| {
            // SAFETY: as in `try_pop`; the reference lives no longer than `&mut self`, during
            // which `head` cannot move, so the producer cannot overwrite the slot.
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
        let len = self.available(max).min(max);
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
/// values and frees their slots with one `Release` store.
pub struct ReadChunk<'a, T> {
    consumer: &'a mut Consumer<T>,
    /// Values borrowed; invariant: the `len` positions from `consumer.head` are in `[head, tail)`.
    len: usize,
}

impl<'a, T> ReadChunk<'a, T> {
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
        Some(self.consumer.shared.slot(pos).with(|p| {
            // SAFETY: `pos` is in `[head, tail)`, initialised and not writable by the producer
            // until the chunk is released, which needs `self` (the reference cannot outlive it).
            unsafe { (*p).assume_init_ref() }
        }))
    }

    /// The values, oldest first.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &T> + '_ {
        (0..self.len).map(move |i| self.get(i).expect("i < len"))
    }

    /// The values as (at most) two contiguous slices, oldest first; the second is non-empty
    /// when the chunk wraps around the end of the buffer.
    #[cfg(not(loom))]
    #[inline]
    pub fn as_slices(&self) -> (&[T], &[T]) {
        let shared = &*self.consumer.shared;
        let start = self.consumer.head & shared.mask;
        let first = self.len.min(shared.capacity() - start);
        let cells = &shared.buffer;
        // SAFETY: `UnsafeCell` (the std shim, `repr(transparent)`) and `MaybeUninit<T>` have
        // the layout of `T`, so `cells[start..start + first]` and `cells[..len - first]` are
        // arrays of `T`; every one of them is an initialised value in `[head, tail)`, which the
        // producer cannot write until the chunk (borrowed here) is released.
        unsafe {
            (
                core::slice::from_raw_parts(cells.as_ptr().add(start).cast::<T>(), first),
                core::slice::from_raw_parts(cells.as_ptr().cast::<T>(), self.len - first),
            )
        }
    }

    /// Drops the values and frees their slots.
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
                c.shared.slot(c.head.wrapping_add(i)).with_mut(|p| {
                    // SAFETY: each position is in `[head, tail)` and is dropped exactly once,
                    // here, before `head` moves past it.
                    unsafe { (*p).assume_init_drop() }
                });
            }
        }
        c.head = c.head.wrapping_add(self.len);
        // Release pairs with the producer's Acquire load of `head`: every read of these slots
        // happens before the producer may overwrite them.
        c.shared.head.store(c.head, Ordering::Release);
    }
}
