//! The consuming side of the ring: single pops and in-place batch reads. While messages stream
//! the consumer learns of them from `tail`; once idle, from the next cell's own stamp (the line
//! that carries the data). Slots are released with one `Release` store of `head` per pop or
//! per batch.

use super::{NotSync, Shared};
use crate::sync::{debug_or_loom_assert, Arc, Ordering};

/// The consuming side of a ring made by [`spsc`](super::spsc). `Send`, not `Sync`, not `Clone`.
pub struct Consumer<T> {
    pub(super) shared: Arc<Shared<T>>,
    /// Next position to read. Equal to `shared.head` outside a [`ReadChunk`]; only this side
    /// writes `shared.head`.
    head: usize,
    /// The last `tail` loaded. Positions in `[head, cached_tail)` are known committed (when
    /// `head` ran ahead of it by taking values by their stamps, the range is empty).
    pub(super) cached_tail: usize,
    /// Consecutive polls that found nothing; from [`IDLE_POLLS`] on, the consumer polls the
    /// next cells' stamps instead of `tail`.
    idle: u32,
    _not_sync: NotSync,
}

/// Empty polls after which the consumer watches the next cell's stamp instead of `tail`.
///
/// Watching the stamp lets an idle consumer learn of a message from the line that carries it
/// (one transfer instead of two, `tail`'s line and then the cell's: the round-trip latency
/// win). While messages stream, the next cell is usually being written, and polling it would
/// pull its line away from the producer between its stores; so a consumer that keeps finding
/// messages watches `tail`, and only a consumer idle for this many polls watches the stamps.
/// Under loom it is 1, so the models take both paths: `tail` on the first empty poll after a
/// find, the stamps after that.
const IDLE_POLLS: u32 = if cfg!(tracebus_loom) { 1 } else { 4 };

impl<T> Consumer<T> {
    pub(super) fn new(shared: Arc<Shared<T>>) -> Consumer<T> {
        Consumer {
            shared,
            head: 0,
            cached_tail: 0,
            idle: 0,
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
        // of the positions before it: what is counted here has its stamp visible, so the next
        // `try_pop` or `read` finds it even when it looks at stamps rather than at `tail`.
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

    /// Positions known committed from the cached `tail`.
    #[inline(always)]
    fn known(&self) -> usize {
        let d = self.cached_tail.wrapping_sub(self.head);
        if d > self.shared.capacity() {
            0
        } else {
            d
        }
    }

    /// How many positions from `head` are committed (at least one, or none), up to `max`.
    /// In debug and loom builds, the first and the last of them are checked against their
    /// stamps before any is read.
    #[inline(always)]
    fn available(&mut self, max: usize) -> usize {
        let n = self.committed(max);
        if n > 0 {
            self.shared.debug_assert_committed(self.head);
            self.shared
                .debug_assert_committed(self.head.wrapping_add(n - 1));
        }
        n
    }

    /// [`Consumer::available`] without the debug checks.
    ///
    /// Streaming (values were found recently, or some are known): `tail` is the signal, loaded
    /// once per poll. Idle (the last [`IDLE_POLLS`] polls found nothing): only the next cells'
    /// stamps are watched, never `tail`, so a message that ends an idle spell costs the
    /// consumer one cache-line transfer, the line that carries it.
    #[inline(always)]
    fn committed(&mut self, max: usize) -> usize {
        let known = self.known();
        if known >= max {
            self.idle = 0;
            return max;
        }
        if known > 0 || self.idle < IDLE_POLLS {
            // Acquire pairs with the producer's Release store of `tail`, which follows the
            // stamps (and so the values) of every position before it.
            self.cached_tail = self.shared.tail.load(Ordering::Acquire);
            let known = self.known();
            if known > 0 {
                self.idle = 0;
                return known.min(max);
            }
            self.idle += 1;
            return 0;
        }
        // Idle: watch the stamps, counting from `head` up to the first unstamped cell (a batch
        // is stamped last to first, so this finds none of it or all of it).
        let mut n = 0;
        while n < max && self.shared.is_committed(self.head.wrapping_add(n)) {
            n += 1;
        }
        if n > 0 {
            self.idle = 0;
        }
        n
    }

    /// Takes the oldest value, if any. Never waits.
    #[inline]
    pub fn try_pop(&mut self) -> Option<T> {
        if self.available(1) == 0 {
            return None;
        }
        let pos = self.head;
        let value = self.shared.cell(pos).value.with(|p| {
            // SAFETY: `available` saw `pos` committed (its stamp or `tail`, with Acquire), so
            // the cell holds an initialised value the producer will not touch until `head`
            // moves past it; it is moved out exactly once because `head` advances right after.
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
        if self.available(1) == 0 {
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
        let len = self.available(max);
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
    /// stamps, or a `tail` past them, were loaded with Acquire).
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
            // SAFETY: `pos` is committed (`read` saw its stamp or `tail` with Acquire), so it
            // is initialised and not writable by the producer until the chunk is released,
            // which needs `self`: the reference cannot outlive it.
            unsafe { (*p).assume_init_ref() }
        }))
    }

    /// The values, oldest first.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        let [run, wrapped] = self.runs_from(0);
        run.chain(wrapped)
    }

    /// The values from the `from`-th on, oldest first, as the (at most) two runs of cells they
    /// occupy: up to the buffer's end, then from its start. A reader that walks each run in a
    /// loop of its own moves one pointer per value: it neither recomputes and masks a position
    /// nor carries a second run's state through each value, which matters when the loop calls
    /// out (the bus's workers call a handler per value, and what lives across that call is
    /// saved and restored around it).
    #[inline]
    pub fn runs_from(&self, from: usize) -> [impl ExactSizeIterator<Item = &T> + '_; 2] {
        let from = from.min(self.len);
        let (run, wrapped) = self
            .consumer
            .shared
            .cells(self.consumer.head.wrapping_add(from), self.len - from);
        [run, wrapped].map(|cells| {
            cells.iter().map(|cell| {
                cell.value.with(|p| {
                    // SAFETY: committed (`read` saw stamps or `tail`, Acquire), so initialised;
                    // the producer cannot write it before the chunk (borrowed here) is released.
                    unsafe { (*p).assume_init_ref() }
                })
            })
        })
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
        debug_or_loom_assert!(
            self.len <= c.shared.capacity(),
            "ring invariant: a chunk of {} from a ring of {}",
            self.len,
            c.shared.capacity()
        );
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
