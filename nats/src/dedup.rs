//! The import side's memory of what it already delivered: a bounded set of recent JetStream
//! stream sequences, so that a redelivery (an acknowledgement lost in a disconnect, a server
//! restart) is dropped instead of published into the bus twice.
//!
//! It remembers the last `capacity` sequences it was told about, oldest forgotten first. A
//! redelivery of something older than that window would get through; with the default window
//! (65,536) and the server's redelivery after `ack_wait`, that takes a backlog of more than
//! the window between a delivery and its redelivery.

use std::collections::{HashSet, VecDeque};

/// A bounded set of recently delivered stream sequences.
#[derive(Debug)]
pub(crate) struct Recent {
    seen: HashSet<u64>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl Recent {
    /// Remembers at most `capacity` (at least 1) sequences.
    pub(crate) fn new(capacity: usize) -> Recent {
        let capacity = capacity.max(1);
        Recent {
            seen: HashSet::with_capacity(capacity.min(1 << 16)),
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
            capacity,
        }
    }

    /// Whether `seq` was delivered already.
    pub(crate) fn contains(&self, seq: u64) -> bool {
        self.seen.contains(&seq)
    }

    /// Records `seq` as delivered.
    pub(crate) fn insert(&mut self, seq: u64) {
        if !self.seen.insert(seq) {
            return;
        }
        self.order.push_back(seq);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_a_bounded_window() {
        let mut r = Recent::new(3);
        for s in [5, 1, 9] {
            r.insert(s);
        }
        r.insert(9);
        assert!(r.contains(5) && r.contains(1) && r.contains(9));
        r.insert(2);
        assert!(!r.contains(5), "the oldest is forgotten");
        assert!(r.contains(1) && r.contains(9) && r.contains(2));
        assert!(!r.contains(7));
    }
}
