//! tracebus's SPSC ring: a bounded, wait-free, single-producer/single-consumer queue.
//!
//! The design is rtrb's (a Lamport queue with cached indices) with one change taken from the
//! disruptor and FastForward: the consumer learns that a slot is full from a *stamp in the slot
//! itself*, not from the producer's shared `tail`. A message then costs the consumer one cache
//! line transfer (the line that carries both the stamp and the data) instead of two (the `tail`
//! line, then the data line), which is most of a round trip between two cores.
//!
//! - The buffer is a power-of-two array of `Cell`s; each cell is cache-line aligned and holds
//!   the value and its stamp, so no two messages share a line.
//! - Positions are free-running `usize`s. The producer writes position `p` into cell
//!   `p & mask` and then sets that cell's stamp to `p + 1`; the consumer at position `h` knows
//!   the cell is full exactly when its stamp equals `h + 1` (a stamp left from an earlier lap
//!   is `h + 1 - capacity` or less, and a fresh cell's is 0).
//! - `head` (next position to read) is on its own cache line; the consumer publishes it when it
//!   releases slots, and the producer reloads it only when its cached copy says "full".
//! - `tail` (next position to write) is on its own line too. It is stored after the stamps,
//!   with `Release`. The consumer watches `tail` while messages stream, and only the next
//!   cell's stamp once it has been idle for a few polls: watching a cell that is still being
//!   written would pull its line away from the producer between its stores, while an idle
//!   consumer learns of the next message from the line that carries it, in one transfer (see
//!   `IDLE_POLLS` in `consumer.rs`).
//! - Writes and reads happen in place: the producer claims slots, fills them and commits the
//!   batch with one `Release` fence followed by one store per stamp; the consumer borrows a
//!   batch by reference and releases it with one `Release` store of `head`. For a `Copy` value
//!   valid as all zeros, the producer may update a cell's value in place instead of writing a
//!   new one ([`Producer::try_push_in_place`], [`Claim::push_in_place`]): it gets what the cell
//!   held (the value a lap before, or zeros) and stores only the fields that differ.
//!
//! Memory orderings (each `Acquire`/`Release` is checked by a loom model in `loom-tests` that
//! fails when it is weakened or removed):
//!
//! | release side                              | acquire side                   | publishes |
//! |-------------------------------------------|--------------------------------|-----------|
//! | stamp store (`Release`) in `try_push`      | stamp load in the consumer     | the value written into the cell |
//! | `fence(Release)` in `Claim`'s commit, then `Relaxed` stamp stores | stamp load in the consumer | every value of the batch |
//! | `head` store by the consumer               | `head` load by the producer    | that the cells were read and freed |
//! | `producer_closed` store on drop            | `producer_closed` load         | the final stamps |
//! | `tail` store after a commit                | `tail` load in the consumer    | the values before it |
//!
//! `consumer_closed` is `Relaxed` on both sides: it publishes nothing but itself (values left in
//! the ring are dropped by the last owner of the shared state, which `Arc` synchronises).
//! `Consumer::len` loads `tail` with `Acquire` too: an idle consumer's next read looks at the
//! stamps, not at `tail`, so a count made with a `Relaxed` load could name a position whose
//! stamp that read does not see yet (loom's `len_promises_values_when_idle` finds it).
//!
//! ThreadSanitizer does not model standalone fences, so it reports the batch commit (the
//! `Release` fence, then `Relaxed` stamp stores) as a race between the producer's write of a
//! value and the consumer's read of it. That report is a false positive: the fence and the
//! consumer's `Acquire` stamp load synchronise by the language's fence rules, which the loom
//! models and Miri (`scripts/miri.sh`) check; both report a race there when the fence is
//! removed.
//!
//! A full ring hands the value back ([`Full`]); nothing is dropped silently. Dropping either
//! side is seen by the other through [`Producer::is_closed`] / [`Consumer::is_closed`]; the
//! consumer can still drain everything committed before the producer went away. Values still in
//! the ring when both sides are gone are dropped exactly once.

#[cfg(not(tracebus_loom))]
mod buffer;
mod consumer;
mod producer;

use core::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::sync::{debug_or_loom_assert, Arc, AtomicBool, AtomicUsize, Ordering, UnsafeCell};

pub use consumer::{Consumer, ReadChunk};
pub use producer::{Claim, Producer};

/// The largest capacity [`spsc`] accepts. Positions are free-running `usize`s compared with
/// wrapping subtraction, which is exact while capacity is at most half the index space; under
/// loom the limit is tiny so that models stay small.
#[cfg(not(tracebus_loom))]
pub const MAX_CAPACITY: usize = 1 << (usize::BITS - 2);
/// The largest capacity [`spsc`] accepts (shrunk under loom).
#[cfg(tracebus_loom)]
pub const MAX_CAPACITY: usize = 8;

/// Why a ring could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// The memory for the ring's cells could not be had from the OS or the allocator.
    #[error("could not allocate {bytes} bytes for the ring's cells")]
    OutOfMemory {
        /// The size of the allocation that failed.
        bytes: usize,
    },
}

/// The value a full ring handed back: nothing is dropped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ring is full")]
pub struct Full<T>(T);

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

/// One message's cache line(s): the value, then its stamp.
///
/// Invariant: `stamp == p + 1` from the commit of position `p` (with `p & mask` naming this
/// cell) until the producer writes the cell for position `p + capacity`; the value is
/// initialised from that commit until the consumer releases `p`. The value's bytes are zeroed
/// when the buffer is made and hold the last value written after that (a read moves a value
/// out but leaves its bytes), which `Producer::try_push_in_place` relies on for `Copy` values.
#[repr(C, align(64))]
pub(crate) struct Cell<T> {
    value: UnsafeCell<MaybeUninit<T>>,
    stamp: AtomicUsize,
}

/// State shared by the two sides.
pub(crate) struct Shared<T> {
    /// Next position the consumer reads. Written only by the consumer (`Release`, after the
    /// cells before it were read and dropped); `tail - head <= capacity` always.
    head: CachePadded<AtomicUsize>,
    /// Next position the producer writes; cells in `[head, tail)` hold initialised values.
    /// Written only by the producer (`Release`, after the stamps before it); read by the
    /// consumer while messages stream (`Acquire`, in `Consumer::committed`), by the consumer's
    /// `len()` (`Acquire`), by a `Monitor` (`Acquire`) and by the destructor.
    tail: CachePadded<AtomicUsize>,
    /// Set once, when the producer is dropped, after its last commit.
    producer_closed: AtomicBool,
    /// Set once, when the consumer is dropped.
    consumer_closed: AtomicBool,
    /// `capacity - 1`; capacity is a power of two.
    mask: usize,
    /// The cells. Cell `p & mask` is the consumer's from the moment its stamp says `p + 1`
    /// (which is before `tail` passes `p`) until the consumer releases `p` (moves `head` past
    /// it); the producer's otherwise.
    #[cfg(not(tracebus_loom))]
    buffer: buffer::Buffer<T>,
    #[cfg(tracebus_loom)]
    buffer: Box<[Cell<T>]>,
}

/// A slot of each [`crate::layout::SlotSize`] takes exactly its number of cache lines with its
/// stamp, and the stamp follows the slot directly.
#[cfg(not(tracebus_loom))]
const _: () = {
    use crate::layout::{Lines, SlotSize};
    use crate::slot::{Slot, CACHE_LINE};
    use core::mem::{offset_of, size_of};
    macro_rules! check {
        ($($n:literal),*) => {$(
            assert!(size_of::<Cell<Slot<<Lines<$n> as SlotSize>::Area>>>() == $n * CACHE_LINE);
            assert!(
                offset_of!(Cell<Slot<<Lines<$n> as SlotSize>::Area>>, stamp)
                    == $n * CACHE_LINE - 8
            );
        )*};
    }
    check!(1, 2, 4, 8);
    assert!(size_of::<Cell<u8>>() == CACHE_LINE);
};

// SAFETY: the ring moves `T`s from one thread to another, so `T: Send` is required and enough;
// every cell's value is accessed by one side at a time, as the protocol above guarantees.
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above; the shared fields are atomics, and value access follows the protocol.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    #[inline(always)]
    fn capacity(&self) -> usize {
        self.mask + 1
    }

    #[inline(always)]
    fn cell(&self, position: usize) -> &Cell<T> {
        // `mask` is `buffer.len() - 1`, so the index is always in bounds.
        #[cfg(not(tracebus_loom))]
        return self.buffer.get(position & self.mask);
        #[cfg(tracebus_loom)]
        &self.buffer[position & self.mask]
    }

    /// Whether position `p` is committed: its cell's stamp says `p + 1`.
    /// The cells of the `n` positions from `from` (`n <= capacity`), in order: the run up to
    /// the buffer's end, then the run from its start (empty unless the positions wrap).
    #[inline(always)]
    fn cells(&self, from: usize, n: usize) -> (&[Cell<T>], &[Cell<T>]) {
        #[cfg(not(tracebus_loom))]
        let all = self.buffer.as_slice();
        #[cfg(tracebus_loom)]
        let all = &self.buffer[..];
        let (before, after) = all.split_at(from & self.mask);
        match after.get(..n) {
            Some(run) => (run, &[]),
            None => (after, &before[..n - after.len()]),
        }
    }

    #[inline(always)]
    fn is_committed(&self, p: usize) -> bool {
        // Acquire pairs with the producer's Release stamp store (single push) or its Release
        // fence before a batch's stamp stores: the value in the cell is fully written.
        self.cell(p).stamp.load(Ordering::Acquire) == p.wrapping_add(1)
    }

    /// Debug/loom check: position `p` is committed and unread, so its cell's stamp is exactly
    /// `p + 1`. Only the producer stores stamps, and it cannot store this one again before the
    /// consumer releases `p`, so a `Relaxed` load made after `p` was seen committed (through its
    /// stamp or through `tail`, with `Acquire`) must read `p + 1`.
    #[inline(always)]
    fn debug_assert_committed(&self, p: usize) {
        debug_or_loom_assert!(
            self.cell(p).stamp.load(Ordering::Relaxed) == p.wrapping_add(1),
            "ring invariant: position {p} is read but its stamp does not say it was committed"
        );
    }

    /// Debug/loom check, producer side: position `p` is free. The consumer has released
    /// `p - capacity` (its `head` is past it: a `Relaxed` load cannot read an older `head` than
    /// the one the producer last acquired, so a correct producer never fails this), and the
    /// cell's stamp is the one that position left (or 0 on the first lap).
    #[inline(always)]
    fn debug_assert_free(&self, p: usize) {
        if cfg!(any(debug_assertions, tracebus_loom)) {
            let head = self.head.load(Ordering::Relaxed);
            debug_or_loom_assert!(
                p.wrapping_sub(head) < self.capacity(),
                "ring invariant: writing position {p} over unread data (head {head})"
            );
            let stamp = self.cell(p).stamp.load(Ordering::Relaxed);
            debug_or_loom_assert!(
                stamp == 0 || stamp == p.wrapping_add(1).wrapping_sub(self.capacity()),
                "ring invariant: writing position {p} over a cell stamped {stamp}"
            );
        }
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Both sides are gone (this is the last `Arc`), and `Arc`'s drop synchronises with their
        // last stores, so relaxed loads see the final positions.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        debug_or_loom_assert!(
            tail.wrapping_sub(head) <= self.capacity(),
            "ring invariant: {} values in a ring of {}",
            tail.wrapping_sub(head),
            self.capacity()
        );
        let mut pos = head;
        while pos != tail {
            self.debug_assert_committed(pos);
            self.cell(pos).value.with_mut(|p| {
                // SAFETY: positions in `[head, tail)` hold initialised values that nobody else
                // can reach any more; each is dropped once, here.
                unsafe { (*p).assume_init_drop() }
            });
            pos = pos.wrapping_add(1);
        }
    }
}

/// Creates a ring holding at least `capacity` values (rounded up to a power of two). Each value
/// takes a whole number of cache lines (with its 8-byte stamp), so the ring is meant for
/// messages, not for bytes.
///
/// ```
/// let (mut tx, mut rx) = tracebus::ring::spsc::<u64>(4).unwrap();
/// tx.try_push(1).unwrap();
/// assert_eq!(rx.try_pop(), Some(1));
/// assert!(tracebus::ring::spsc::<u64>(0).is_err());
/// ```
///
/// # Errors
/// [`RingError::ZeroCapacity`], [`RingError::TooLarge`], or [`RingError::OutOfMemory`] when
/// the cells' memory cannot be had (never an abort).
pub fn spsc<T: Send>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), RingError> {
    spsc_in(capacity, false)
}

/// [`spsc`], with every page of the ring's memory mapped now rather than on first use: no
/// write into the ring waits for a page fault, the first lap included (a fault costs the write
/// 10-60 us on a VM, once per 4 KiB page: every 64 one-line slots). The memory is taken
/// whether or not the ring is ever used.
///
/// ```
/// let (mut tx, mut rx) = tracebus::ring::spsc_resident::<u64>(4096).unwrap();
/// tx.try_push(1).unwrap();
/// assert_eq!(rx.try_pop(), Some(1));
/// ```
///
/// # Errors
/// As [`spsc`].
pub fn spsc_resident<T: Send>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), RingError> {
    spsc_in(capacity, true)
}

/// A ring of `capacity` (rounded up), its memory resident from the start if `resident`.
fn spsc_in<T: Send>(
    capacity: usize,
    resident: bool,
) -> Result<(Producer<T>, Consumer<T>), RingError> {
    let capacity = checked_capacity::<T>(capacity)?;
    let buffer = new_buffer(capacity, resident)?;
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

/// `capacity` empty cells (stamp 0, no value), from zeroed memory that costs nothing until
/// a producer writes it (see `buffer.rs`).
#[cfg(not(tracebus_loom))]
fn new_buffer<T>(capacity: usize, resident: bool) -> Result<buffer::Buffer<T>, RingError> {
    buffer::Buffer::new(capacity, resident)
}

/// Under loom, cells carry loom's tracking state, so they are built one by one.
/// (Residence means nothing to loom: `_resident` is ignored.)
#[cfg(tracebus_loom)]
fn new_buffer<T>(capacity: usize, _resident: bool) -> Result<Box<[Cell<T>]>, RingError> {
    Ok((0..capacity)
        .map(|_| Cell {
            // Zeroed as the other buffers are (`Producer::try_push_in_place` reads a first
            // lap's cell as a zeroed value).
            value: UnsafeCell::new(MaybeUninit::zeroed()),
            stamp: AtomicUsize::new(0),
        })
        .collect())
}

/// The capacity [`spsc`] would give a ring of `T`s asked to hold `capacity` (rounded up to a
/// power of two), or why it would refuse: checks the settings without allocating a ring.
pub fn checked_capacity<T>(capacity: usize) -> Result<usize, RingError> {
    if capacity == 0 {
        return Err(RingError::ZeroCapacity);
    }
    let max = max_capacity::<T>();
    match capacity.checked_next_power_of_two() {
        Some(c) if c <= max => Ok(c),
        _ => Err(RingError::TooLarge {
            requested: capacity,
            max,
        }),
    }
}

/// A third party's view of a ring: how many values its producer has pushed in all. It keeps
/// the ring's memory alive while it lives.
pub(crate) struct Monitor<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Monitor<T> {
    /// Values pushed (committed) so far.
    #[allow(dead_code)] // the span pipeline's; not built under loom
    pub(crate) fn pushed(&self) -> usize {
        // Acquire pairs with the producer's Release store of `tail` (after its commits).
        self.shared.tail.load(Ordering::Acquire)
    }
}

impl<T> Producer<T> {
    /// A monitor of this ring.
    #[allow(dead_code)] // the span pipeline's; not built under loom
    pub(crate) fn monitor(&self) -> Monitor<T> {
        Monitor {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Bytes each value takes in a ring (its cell: the value and its stamp, in whole cache lines).
pub(crate) fn cell_size<T>() -> usize {
    core::mem::size_of::<Cell<T>>()
}

/// The largest power-of-two capacity whose cells fit in `isize::MAX` bytes.
fn max_capacity<T>() -> usize {
    let size = core::mem::size_of::<Cell<T>>();
    let by_memory = (isize::MAX as usize) / size;
    let limit = by_memory.min(MAX_CAPACITY);
    // Largest power of two <= limit.
    1usize << (usize::BITS - 1 - limit.leading_zeros())
}

/// A `!Sync` marker: each side is used by one thread at a time (`Send`, not `Sync`).
pub(crate) type NotSync = core::marker::PhantomData<core::cell::Cell<()>>;

#[cfg(all(test, not(tracebus_loom)))]
mod tests;
