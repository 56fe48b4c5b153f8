//! Which worker each worker's handler is waiting on in a bounded-wait onward publish
//! (`Outbox::publish_timeout`), so that a wait closing a cycle is refused at once.
//!
//! A worker inside a handler does not empty its inbound rings. If worker A waits for room in
//! its ring to B while B waits for room in its ring to A, neither can make room for the other:
//! waiting longer never helps. Before and while it waits, a worker follows the chain of
//! "waiting on" links from the worker it waits on; finding itself there, it gives up at once
//! and the handler gets the message back (a `Full` refusal, counted like any other). When two
//! workers find the cycle at the same moment both give up; either way no wait in a cycle
//! outlasts one backoff step.
//!
//! The links are plain `Relaxed` atomics: a stale read only makes a worker wait one more step
//! (a link it misses is seen on its next check) or give up once when the cycle was just broken
//! (a refusal the handler sees and the bus counts). Only the waiting path touches them.

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicUsize, Ordering};

/// "Not waiting".
const NONE: usize = usize::MAX;

/// Every worker's "waiting on" link, each on its own cache line.
pub(crate) struct Stalls {
    waiting_on: Vec<CachePadded<AtomicUsize>>,
}

impl Stalls {
    /// Links for `workers` workers, none waiting.
    pub(crate) fn new(workers: usize) -> Stalls {
        Stalls {
            waiting_on: (0..workers)
                .map(|_| CachePadded::new(AtomicUsize::new(NONE)))
                .collect(),
        }
    }

    /// Worker `me` waits on worker `on` (or stops waiting, with `None`).
    pub(crate) fn set(&self, me: usize, on: Option<usize>) {
        // Relaxed: a hint for other workers' cycle checks (see the module docs).
        self.waiting_on[me].store(on.unwrap_or(NONE), Ordering::Relaxed);
    }

    /// Whether worker `me`, waiting on worker `on`, closes a cycle of waits.
    pub(crate) fn closes_cycle(&self, me: usize, on: usize) -> bool {
        let mut next = on;
        // A chain longer than the number of workers has a cycle that does not pass `me`.
        for _ in 0..self.waiting_on.len() {
            if next == me {
                return true;
            }
            match self.waiting_on.get(next) {
                Some(link) => next = link.load(Ordering::Relaxed),
                None => return false, // NONE: the chain ends
            }
        }
        false
    }
}

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    use super::*;

    #[test]
    fn finds_cycles_through_the_caller_only() {
        let s = Stalls::new(4);
        assert!(!s.closes_cycle(0, 1), "nobody waits");
        s.set(1, Some(2));
        assert!(!s.closes_cycle(0, 1), "1 waits on 2, 2 on nobody");
        s.set(2, Some(0));
        assert!(s.closes_cycle(0, 1), "0 -> 1 -> 2 -> 0");
        s.set(2, Some(3));
        s.set(3, Some(2));
        assert!(!s.closes_cycle(0, 1), "a cycle 2 <-> 3 that 0 is not on");
        s.set(3, None);
        s.set(2, None);
        assert!(!s.closes_cycle(0, 1));
        assert!(s.closes_cycle(0, 0), "waiting on itself");
    }
}
