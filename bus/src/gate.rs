//! The shutdown gate: publishes in progress versus a shutdown that must wait for them.
//!
//! The gate has no flag of its own per publish: a publish is inside the gate from the moment it
//! counts its copies in its endpoint's [`Sent`] (which the drain needs anyway, before the
//! commit: see `drain.rs`) until it commits them. A publish enters ([`Gate::enter`]) by
//! counting, issuing a [`light`] fence and then reading `closed`; if the gate is closed, it
//! takes its count back and is refused. Shutdown ([`Gate::close`]) sets `closed` and issues a
//! [`heavy`] fence. The fence pair (store, fence, load on both sides: Dekker's handshake) makes
//! it impossible for a publish to miss `closed` while shutdown's later loads miss its count:
//! after [`Gate::close`] returns, every publish either will be refused or is already counted,
//! so the drain's check (every copy counted sent is counted done) waits for its copies, and a
//! report's `lost` (copies sent minus done) counts them if they are never handled.
//!
//! What shutdown gains is the same as with a "publishing now" flag per endpoint that it waits
//! to see clear, the usual form of this gate, and what a publish saves is that flag's two
//! stores: measured on the project's machine, they cost the single-message bus about half its
//! throughput (busbench `bus_vs_peers`, fanout1_single, 0.45-0.6x the disruptor with them,
//! 0.8-1.0x without), because a publish's stores wait in the store buffer behind the slot's,
//! whose line the consumer holds. The cost of the counting form is a transient: a publish
//! refused at the gate was counted for a moment, which only delays quiescence (see
//! `drain.rs`). Nothing a publish does after its commit (waking a sleeping worker) matters to
//! shutdown, and what must be finished before shutdown reports (a sampled publish's span) is
//! done before the commit.
//!
//! The light fence is a compiler fence where the OS has asymmetric barriers (see `barrier.rs`):
//! a publish pays no store-load fence; shutdown pays a `membarrier` call. Publishers never
//! contend with each other: each counts in its own [`Sent`].

use crate::barrier::{heavy, light};
use crate::drain::{Sent, Undo};
use crate::sync::{AtomicBool, Ordering};

/// The "no more publishes" flag of one side of the bus (external publishers, or workers).
#[derive(Debug, Default)]
pub struct Gate {
    closed: AtomicBool,
}

impl Gate {
    /// An open gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Publisher side, before committing anything: counts `n` messages to `rings` rings in
    /// `sent` (the endpoint's own) and returns the count's [`Undo`] (for a ring found full
    /// after all) if the gate is open; if it is closed, takes the count back and returns
    /// `None`. Nothing that can panic may come between this and the commits (or the undo).
    #[inline(always)]
    pub fn enter(&self, sent: &Sent, n: usize, rings: usize) -> Option<Undo> {
        let undo = sent.count(n, rings);
        // Light fence: the count is ordered before the `closed` load, against the heavy fence
        // in `close` between the `closed` store and shutdown's loads of the counts.
        light(); // enter: count before closed
        if self.closed.load(Ordering::Relaxed) {
            sent.undo(undo);
            return None;
        }
        Some(undo)
    }

    /// Whether the gate has been closed (a hint for publishes that write nothing, such as
    /// one to a topic nobody subscribes to; publishes that write decide through
    /// [`Gate::enter`]).
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Shutdown side: closes the gate. On return, every publish not refused by it is counted
    /// in its endpoint's [`Sent`] as this thread's later loads see it (its copies follow), so a
    /// drain that waits until the copies counted are handled waits for it too.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        // Heavy fence: see `enter`.
        heavy(); // close: closed before the counts
    }
}
