//! The shutdown gate: publishes in progress versus a shutdown that must wait for them.
//!
//! A publish enters by setting its endpoint's `busy` flag, issuing a `SeqCst` fence and then
//! reading `closed`; it leaves by clearing `busy` with `Release`. Shutdown sets `closed`, issues
//! a `SeqCst` fence, then waits until every `busy` flag reads clear (`Acquire`). The two fences
//! make it impossible for a publish to miss `closed` while shutdown misses its `busy` flag, so
//! every publish either is refused or has committed its message before shutdown goes on to
//! drain the rings. Publishers never contend with each other: each has its own flag.

use crossbeam_utils::CachePadded;

use crate::sync::{fence, thread, AtomicBool, Ordering};

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

impl Gate {
    /// An open gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Publisher side: marks `busy` and returns whether the gate is open. Whatever the answer,
    /// call [`Gate::leave`] afterwards.
    #[inline]
    pub fn enter(&self, busy: &Busy) -> bool {
        busy.flag.store(true, Ordering::Relaxed);
        // SeqCst fence: the busy flag is ordered before the `closed` load, against the fence in
        // `close` between the `closed` store and the busy-flag loads.
        fence(Ordering::SeqCst); // enter: busy before closed
        !self.closed.load(Ordering::Relaxed)
    }

    /// Publisher side: the publish (and its commits) is over.
    #[inline]
    pub fn leave(&self, busy: &Busy) {
        // Release pairs with the Acquire load in `close`: commits made inside the publish are
        // visible to the thread that saw the flag clear.
        busy.flag.store(false, Ordering::Release);
    }

    /// Whether the gate has been closed (a hint: publishes decide through [`Gate::enter`]).
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Shutdown side: closes the gate, then waits until no publish is inside. On return, every
    /// publish that entered while the gate was open has left, and its commits are visible.
    pub fn close<'a>(&self, endpoints: impl IntoIterator<Item = &'a Busy>) {
        self.closed.store(true, Ordering::Relaxed);
        // SeqCst fence: see `enter`.
        fence(Ordering::SeqCst); // close: closed before busy
        for busy in endpoints {
            while busy.flag.load(Ordering::Acquire) {
                thread::yield_now();
            }
        }
    }
}
