//! Helpers the bus's integration tests share: a bus with test settings, a `u64` topic.

#![allow(dead_code)] // each test binary uses some of them

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use tracebus::{Bus, Pinning, Topic, WaitStrategy};

/// A bus with `workers` unpinned workers, rings of `capacity`, park waits (CI has 2 cores).
pub fn bus(workers: usize, capacity: usize) -> Bus {
    Bus::builder()
        .workers(workers)
        .capacity(capacity)
        .pinning(Pinning::Off)
        .wait_strategy(WaitStrategy::SpinThenPark)
        .build()
        .expect("valid settings")
}

/// A new `u64` topic on `bus`.
pub fn topic(bus: &Bus, name: &str) -> Topic<u64> {
    bus.topic(name)
        .expect("a valid name, not taken by another type")
}

/// `producer << 32 | seq`.
pub fn tag(producer: u64, seq: u64) -> u64 {
    producer << 32 | seq
}

/// Sets its flag when dropped, so a handler held on the flag is let go even when an assertion
/// fails first (the bus's drop then does not wait for it forever).
pub struct OpenOnDrop(pub Arc<AtomicBool>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}
