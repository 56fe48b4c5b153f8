//! tracebus's SPSC ring: a bounded, wait-free, single-producer/single-consumer queue.
//!
//! The algorithm is rtrb's (itself the classic Lamport queue with cached indices):
//!
//! - a power-of-two array of slots and two free-running positions, `head` (next slot the
//!   consumer reads) and `tail` (next slot the producer writes), each on its own cache line
//!   (`CachePadded`) so the two sides never write the same line;
//! - each side keeps a private copy of its own position and a cached copy of the other side's,
//!   and reloads the other side's only when the cache says "full" (producer) or "empty"
//!   (consumer), so in steady state each side touches the shared line of the other rarely;
//! - writes and reads happen in place: the producer claims slots, fills them and commits the
//!   batch with one `Release` store of `tail`; the consumer borrows a batch by reference and
//!   releases it with one `Release` store of `head`.
//!
//! Memory orderings (each one is checked by a loom model in `loom-tests`, which fails when it is
//! weakened to `Relaxed`):
//!
//! | store (Release)            | paired load (Acquire)        | what it publishes                  |
//! |----------------------------|------------------------------|------------------------------------|
//! | `tail` by the producer     | `tail` by the consumer       | the values written into the slots  |
//! | `head` by the consumer     | `head` by the producer       | that the slots were read and freed |
//! | `producer_closed` on drop  | `producer_closed` (consumer) | the final `tail`                   |
//!
//! `consumer_closed` is `Relaxed` on both sides: it publishes nothing but itself. The producer
//! reads no memory the consumer wrote on the strength of it (values left in the ring are dropped
//! by the last owner of the shared state, which `Arc` synchronises), so no model can need more.
//!
//! A full ring hands the value back ([`Full`]); nothing is dropped silently. Dropping either
//! side is seen by the other through [`Producer::is_closed`] / [`Consumer::is_closed`]; the
//! consumer can still drain everything committed before the producer went away. Values still in
//! the ring when both sides are gone are dropped exactly once.

mod consumer;
mod producer;

use core::cell::Cell;
use core::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::sync::{Arc, AtomicBool, AtomicUsize, Ordering, UnsafeCell};

pub use consumer::{Consumer, ReadChunk};
pub use producer::{Claim, Producer};

/// The largest capacity [`spsc`] accepts. Positions are free-running `usize`s compared with
/// wrapping subtraction, which is exact while capacity is at most half the index space; under
/// loom the limit is tiny so that models stay small.
#[cfg(not(loom))]
pub const MAX_CAPACITY: usize = 1 << (usize::BITS - 2);
/// The largest capacity [`spsc`] accepts (shrunk under loom).
#[cfg(loom)]
pub const MAX_CAPACITY: usize = 8;

/// Why a ring could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// A ring must hold at least one value.
    #[error("ring capacity must be at least 1")]
    ZeroCapacity,
    /// The capacity, rounded up to a power of two, exceeds [`MAX_CAPACITY`] or the memory the
    /// slots would take exceeds `isize::MAX` bytes.
    #[error("ring capacity {requested} is too large (at most {max} values of this type)")]
    TooLarge {
        /// The capacity asked for.
        requested: usize,
        /// The largest capacity possible for this value type.
        max: usize,
    },
}

/// The value a full ring handed back: nothing is dropped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ring is full")]
pub struct Full<T>(pub T);

impl<T> Full<T> {
    /// The value that was not pushed.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Why a batch could not be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("asked for {requested} free slots, only {available} are free")]
pub struct ClaimError {
    /// Slots asked for.
    pub requested: usize,
    /// Slots free at the time of the call.
    pub available: usize,
}

/// State shared by the two sides.
pub(crate) struct Shared<T> {
    /// Next position the consumer reads. Written only by the consumer (`Release`, after the
    /// slots before it were read); `tail - head <= capacity` always.
    head: CachePadded<AtomicUsize>,
    /// Next position the producer writes. Written only by the producer (`Release`, after the
    /// slots before it were written); slots in `[head, tail)` hold initialised values.
    tail: CachePadded<AtomicUsize>,
    /// Set once, when the producer is dropped, after its last `tail` store.
    producer_closed: AtomicBool,
    /// Set once, when the consumer is dropped.
    consumer_closed: AtomicBool,
    /// `capacity - 1`; capacity is a power of two.
    mask: usize,
    /// The slots. Slot `i & mask` is owned by the producer while `i` is outside `[head, tail)`
    /// and by the consumer while inside.
    buffer: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: the ring moves `T`s from one thread to another, so `T: Send` is required and enough;
// every slot is accessed by one side at a time, as the head/tail protocol above guarantees.
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above; the shared fields are atomics, and slot access follows the protocol.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    #[inline(always)]
    fn capacity(&self) -> usize {
        self.mask + 1
    }

    #[inline(always)]
    fn slot(&self, position: usize) -> &UnsafeCell<MaybeUninit<T>> {
        // `mask` is `buffer.len() - 1`, so the index is always in bounds; the compiler sees the
        // `&` and elides the check in release builds.
        &self.buffer[position & self.mask]
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Both sides are gone (this is the last `Arc`), and `Arc`'s drop synchronises with their
        // last stores, so relaxed loads see the final positions.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let mut pos = head;
        while pos != tail {
            self.slot(pos).with_mut(|p| {
                // SAFETY: positions in `[head, tail)` hold initialised values that nobody else
                // can reach any more; each is dropped once, here.
                unsafe { (*p).assume_init_drop() }
            });
            pos = pos.wrapping_add(1);
        }
    }
}

/// Creates a ring holding at least `capacity` values (rounded up to a power of two).
///
/// ```
/// let (mut tx, mut rx) = tracebus::ring::spsc::<u64>(4).unwrap();
/// tx.try_push(1).unwrap();
/// assert_eq!(rx.try_pop(), Some(1));
/// assert!(tracebus::ring::spsc::<u64>(0).is_err());
/// ```
pub fn spsc<T: Send>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), RingError> {
    if capacity == 0 {
        return Err(RingError::ZeroCapacity);
    }
    let max = max_capacity::<T>();
    let capacity = match capacity.checked_next_power_of_two() {
        Some(c) if c <= max => c,
        _ => {
            return Err(RingError::TooLarge {
                requested: capacity,
                max,
            })
        }
    };
    let buffer = (0..capacity)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let shared = Arc::new(Shared {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        producer_closed: AtomicBool::new(false),
        consumer_closed: AtomicBool::new(false),
        mask: capacity - 1,
        buffer,
    });
    Ok((Producer::new(Arc::clone(&shared)), Consumer::new(shared)))
}

/// The largest power-of-two capacity whose slots fit in `isize::MAX` bytes.
fn max_capacity<T>() -> usize {
    let size = core::mem::size_of::<UnsafeCell<MaybeUninit<T>>>().max(1);
    let by_memory = (isize::MAX as usize) / size;
    let limit = by_memory.min(MAX_CAPACITY);
    // Largest power of two <= limit.
    1usize << (usize::BITS - 1 - limit.leading_zeros())
}

/// A `!Sync` marker: each side is used by one thread at a time (`Send`, not `Sync`).
pub(crate) type NotSync = core::marker::PhantomData<Cell<()>>;

#[cfg(all(test, not(loom)))]
mod tests;
