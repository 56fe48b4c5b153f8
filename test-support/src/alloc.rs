//! [`CountingAllocator`]: the system allocator plus two allocation counters, one for the
//! whole process ([`allocations`]) and one per thread ([`thread_allocations`]).
//!
//! A binary counts only if it installs the allocator as its global allocator:
//!
//! ```
//! use tracebus_test_support::{allocations, thread_allocations, CountingAllocator};
//!
//! #[global_allocator]
//! static GLOBAL: CountingAllocator = CountingAllocator;
//!
//! let (process, thread) = (allocations(), thread_allocations());
//! drop(std::hint::black_box(vec![0u8; 16]));
//! assert!(allocations() > process);
//! assert_eq!(thread_allocations() - thread, 1);
//! ```
//!
//! Which counter to read:
//!
//! - [`allocations`] sees every thread, workers included, so it is the one for "nothing on the
//!   path of a message allocates". Other tests of the same binary run in parallel and allocate
//!   too: a test that reads it should be alone in its binary (or its binary's only test
//!   function).
//! - [`thread_allocations`] sees only the calling thread, so tests of one binary running in
//!   parallel do not disturb each other; it misses what other threads allocate for the caller.
//!
//! Every `alloc`, `alloc_zeroed` and `realloc` counts one; `dealloc` counts nothing. Memory a
//! ring maps directly from the OS (`mmap`) does not go through the allocator and is not counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// A global allocator that forwards every call to [`System`] and counts allocations (see the
/// module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAllocator;

/// Allocations by every thread of the process.
static PROCESS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Allocations by this thread. `const`-initialised and without drop glue, so reaching it
    /// never allocates (which an allocator must not do) and never fails, even while the thread
    /// is being torn down.
    static THREAD: Cell<usize> = const { Cell::new(0) };
}

/// Allocations made by the whole process so far (0 unless [`CountingAllocator`] is the global
/// allocator).
pub fn allocations() -> usize {
    // Relaxed: a count; the caller orders it against the work it measures by other means
    // (joining or waiting for the threads that did the work).
    PROCESS.load(Relaxed)
}

/// Allocations made by the calling thread so far (0 unless [`CountingAllocator`] is the global
/// allocator).
pub fn thread_allocations() -> usize {
    THREAD.with(Cell::get)
}

#[inline]
fn count() {
    PROCESS.fetch_add(1, Relaxed);
    // `try_with` so that an allocation can never panic here; with a const, drop-free value it
    // always succeeds.
    let _ = THREAD.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to `System`, whose contract is the same as
// `GlobalAlloc`'s; the only additions are two counters, and updating them never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`; the
        // caller upholds the rest of `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}
