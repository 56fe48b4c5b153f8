//! The ring's cells: one allocation of zeroed memory, so memory follows use.
//!
//! Allocating zeroed memory through the global allocator touches it: Rust zeroes an
//! over-aligned allocation with a `memset`, and glibc's `calloc` clears every chunk it does not
//! take from freshly grown heap, so a bus with a 64 x 128 mesh of 1024-cell rings would take
//! 512 MiB before its first message. On Unix-like systems a buffer of at least
//! [`MMAP_MIN`] bytes is therefore its own anonymous private mapping: the OS maps a page when a
//! producer first writes a cell in it, and an idle consumer, which reads one cell's stamp,
//! reads the shared zero page. A ring asked to be resident
//! ([`spsc_resident`](super::spsc_resident)) has a zero written into every page when it is
//! made instead, so no write of its producer waits for a page fault. Smaller buffers (and
//! every buffer elsewhere, or where the mapping is refused) come from `alloc_zeroed`,
//! cache-line aligned. All-zero bytes are a valid empty cell (stamp 0, no value; for a value
//! type valid as all zeros, a zero value, which `Producer::try_push_in_place` may read on a
//! first lap). Memory that cannot be had is an error ([`RingError::OutOfMemory`]), never an
//! abort: a bus builder reports it.
//!
//! Under loom, cells carry loom's tracking state, so they are built one by one in a `Box`.
//! Under Miri every buffer comes from `alloc_zeroed`, whose bounds, alignment and leaks Miri
//! checks.

use core::alloc::Layout;
use core::ptr::NonNull;

use super::{Cell, RingError};

/// Buffers of at least this many bytes are their own memory mapping (Unix-like systems, not
/// under Miri).
#[cfg_attr(miri, allow(dead_code))]
pub(crate) const MMAP_MIN: usize = 16 * 1024;

/// `len` cells, cache-line aligned, zeroed (see the module docs).
pub(crate) struct Buffer<T> {
    /// The first cell, at the start of the allocation; `len` cells follow it.
    cells: NonNull<Cell<T>>,
    len: usize,
    /// The allocation's layout, for freeing it, and whether it is a mapping.
    layout: Layout,
    mapped: bool,
}

impl<T> Buffer<T> {
    /// `len` empty cells, or why not: their size overflows `isize`
    /// ([`RingError::TooLarge`]) or the memory cannot be had ([`RingError::OutOfMemory`]).
    /// `resident`: every page of the cells is written once now (see [`touch`]), so that no
    /// write into the ring later waits for a page fault.
    pub(crate) fn new(len: usize, resident: bool) -> Result<Buffer<T>, RingError> {
        let buffer = Self::zeroed(len)?;
        if resident {
            // SAFETY: the buffer's `layout.size()` bytes are its own allocation or mapping,
            // zeroed, and nothing refers to them yet.
            unsafe { touch(buffer.cells.as_ptr().cast(), buffer.layout.size()) };
        }
        Ok(buffer)
    }

    /// `len` empty cells (see [`Buffer::new`]), their memory mapped lazily where it is a
    /// mapping of its own.
    fn zeroed(len: usize) -> Result<Buffer<T>, RingError> {
        let too_large = RingError::TooLarge {
            requested: len,
            max: isize::MAX as usize / core::mem::size_of::<Cell<T>>(),
        };
        let layout = Layout::array::<Cell<T>>(len).map_err(|_| too_large)?;
        // Not under Miri: `alloc_zeroed` memory is what its allocation checks track.
        #[cfg(all(unix, not(miri)))]
        if layout.size() >= MMAP_MIN {
            use rustix::mm::{mmap_anonymous, MapFlags, ProtFlags};
            // SAFETY: a fresh private anonymous mapping (no address hint) aliases nothing; it
            // is page-aligned (so cache-line aligned) and zero-filled by the OS.
            let mapped = unsafe {
                mmap_anonymous(
                    core::ptr::null_mut(),
                    layout.size(),
                    ProtFlags::READ | ProtFlags::WRITE,
                    MapFlags::PRIVATE,
                )
            };
            // A refused mapping (the size, or the process's limit on mappings) falls back
            // to the allocator, which may still have the memory.
            if let Some(cells) = mapped.ok().and_then(|p| NonNull::new(p.cast())) {
                return Ok(Buffer {
                    cells,
                    len,
                    layout,
                    mapped: true,
                });
            }
        }
        // SAFETY: `layout` has a non-zero size (a cell is at least one cache line, len >= 1).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let cells = NonNull::new(ptr.cast()).ok_or(RingError::OutOfMemory {
            bytes: layout.size(),
        })?;
        Ok(Buffer {
            cells,
            len,
            layout,
            mapped: false,
        })
    }

    /// The cell at index `i`, which must be below `len` (the ring masks positions with
    /// `len - 1`, a power of two, so it always is; checked in test builds).
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> &Cell<T> {
        crate::sync::debug_or_loom_assert!(i < self.len, "cell {i} of {}", self.len);
        // Cells are a multiple of their alignment apart from an aligned first cell, and zeroed
        // bytes are a valid `Cell<T>` (an `AtomicUsize` 0, a `MaybeUninit<T>` in cells).
        // SAFETY: `i < len`: in the allocation, aligned, initialised, living as long as `self`.
        unsafe { &*self.cells.as_ptr().add(i) }
    }
}

/// Writes a zero byte into every page of the `size` bytes from `start` (one per 4 KiB, the
/// smallest page of the systems tracebus runs on; more where pages are larger), so that the
/// OS maps each page now: a page the ring's producer writes first would otherwise cost that
/// write a page fault, 10-60 us on the project's VM, where the consumer had mapped the shared
/// zero page by reading a stamp. The bytes were zero and stay zero. Volatile, so the writes
/// of zeros into zeroed memory are not optimised away.
///
/// # Safety
/// The `size` bytes from `start` must be one allocation or mapping, writable, zeroed, and not
/// referenced by anything else while this runs.
unsafe fn touch(start: *mut u8, size: usize) {
    const STEP: usize = 4096;
    for offset in (0..size).step_by(STEP) {
        // SAFETY: `offset < size`, inside the caller's exclusive, writable memory; the byte is
        // zero before and after.
        unsafe { start.add(offset).write_volatile(0) };
    }
}

impl<T> Buffer<T> {
    /// Every cell, in index order (what a reader walks a run of positions through: one
    /// pointer increment per cell instead of a mask and a multiply).
    #[inline(always)]
    pub(crate) fn as_slice(&self) -> &[Cell<T>] {
        // SAFETY: `len` cells from an aligned first cell, all in the allocation and
        // initialised (zeroed bytes are a valid `Cell<T>`), living as long as `self`.
        unsafe { core::slice::from_raw_parts(self.cells.as_ptr(), self.len) }
    }
}

impl<T> Drop for Buffer<T> {
    fn drop(&mut self) {
        // The values in the cells were dropped by the ring before (a `Cell` has no drop glue
        // of its own: its value is a `MaybeUninit`).
        let ptr = self.cells.as_ptr();
        if self.mapped {
            #[cfg(unix)]
            // SAFETY: the mapping was made in `new` with this length and is unmapped once,
            // here; nothing refers to it after the ring is gone.
            let _ = unsafe { rustix::mm::munmap(ptr.cast(), self.layout.size()) };
        } else {
            // SAFETY: allocated in `new` by `alloc_zeroed` with `layout`; freed once, here.
            unsafe { std::alloc::dealloc(ptr.cast(), self.layout) }
        }
    }
}

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    use super::*;

    #[test]
    fn cells_are_aligned_zeroed_and_in_bounds() {
        for len in [1, 2, 64, 1024] {
            let b = Buffer::<[u64; 3]>::new(len, len % 2 == 0).unwrap();
            for i in 0..len {
                let c = b.get(i);
                assert_eq!(c as *const Cell<_> as usize % 64, 0);
                assert_eq!(c.stamp.load(crate::sync::Ordering::Relaxed), 0);
            }
        }
        assert!(matches!(
            Buffer::<u8>::new(usize::MAX / 8, false),
            Err(RingError::TooLarge { .. })
        ));
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "Miri stops the program on an allocation it cannot make"
    )]
    fn memory_that_cannot_be_had_is_an_error_not_an_abort() {
        // 2^41 cells of 64 bytes: 128 TiB, the whole of x86-64's user address space (so no
        // overcommit setting maps it) and within `isize`.
        match Buffer::<u64>::new(1 << 41, false) {
            Err(RingError::OutOfMemory { bytes }) => assert_eq!(bytes, 128 << 40),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("128 TiB allocated"),
        }
    }
}
