//! The shutdown gate: publishes in progress versus a shutdown that must wait for them.
//!
//! A publish enters by setting its endpoint's `busy` flag, issuing a [`light`] fence and then
//! reading `closed`; it leaves by clearing `busy` with `Release` (also when it unwinds: the
//! [`Inside`] guard clears it on drop, so a panic inside a publish cannot leave shutdown waiting
//! forever). Shutdown sets `closed`, issues a [`heavy`] fence, then waits until every `busy`
//! flag reads clear (`Acquire`). The fence pair makes it impossible for a publish to miss
//! `closed` while shutdown misses its `busy` flag, so every publish either is refused or has
//! committed its message before shutdown goes on to drain the rings. The light fence is a
//! compiler fence where the OS has asymmetric barriers (see `barrier.rs`): a publish pays no
//! store-load fence; shutdown pays a `membarrier` call. Publishers never contend with each
//! other: each has its own flag.

use crossbeam_utils::CachePadded;

use crate::barrier::{heavy, light};
use crate::sync::{thread, AtomicBool, Ordering};

/// The bus-wide "no more publishes" flag.
#[derive(Debug, Default)]
pub struct Gate {
    closed: AtomicBool,
}

/// One endpoint's "publishing now" flag (on its own cache line).
#[derive(Debug, Default)]
pub struct Busy {
    flag: CachePadded<AtomicBool>,
}

/// A publish inside the gate: leaves it (clears `busy`) when dropped, on return or unwind.
#[must_use = "the publish leaves the gate when this is dropped"]
pub struct Inside<'a> {
    busy: &'a Busy,
}

impl Gate {
    /// An open gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Publisher side: marks `busy`, and returns the guard that clears it if the gate is open;
    /// `None` (with `busy` cleared again) if it is closed.
    #[inline]
    pub fn enter<'a>(&self, busy: &'a Busy) -> Option<Inside<'a>> {
        busy.flag.store(true, Ordering::Relaxed);
        // Light fence: the busy flag is ordered before the `closed` load, against the heavy
        // fence in `close` between the `closed` store and the busy-flag loads.
        light(); // enter: busy before closed
        let inside = Inside { busy };
        if self.closed.load(Ordering::Relaxed) {
            return None; // `inside` drops: busy cleared
        }
        Some(inside)
    }

    /// Whether the gate has been closed (a hint: publishes decide through [`Gate::enter`]).
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Shutdown side: closes the gate, then waits until no publish is inside. On return, every
    /// publish that entered while the gate was open has left, and what it wrote is visible.
    pub fn close<'a>(&self, endpoints: impl IntoIterator<Item = &'a Busy>) {
        self.closed.store(true, Ordering::Relaxed);
        // Heavy fence: see `enter`.
        heavy(); // close: closed before busy
        for busy in endpoints {
            while busy.flag.load(Ordering::Acquire) {
                thread::yield_now();
            }
        }
    }
}

impl Drop for Inside<'_> {
    /// Publisher side: the publish (and its commits) is over.
    #[inline]
    fn drop(&mut self) {
        // Release pairs with the Acquire load in `close`: commits (and counts) made inside the
        // publish are visible to the thread that saw the flag clear.
        self.busy.flag.store(false, Ordering::Release);
    }
}
