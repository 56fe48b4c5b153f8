//! loom models of the runtime's protocols, on the real code: the park/unpark handshake of
//! `wait.rs` and the shutdown gate of `gate.rs` (reached through
//! `tracebus::loom_support`, which only `--cfg tracebus_loom` builds have), each with a real ring.
//!
//! Built only with `--cfg tracebus_loom`: `loom_support` does not exist in other builds (the
//! workspace's `cargo clippy --all-targets` compiles this crate without it, and `ring.rs`'s
//! `built_with_cfg_loom` is the test that fails when the cfg is missing).
#![cfg(tracebus_loom)]

use loom::sync::Arc;
use loom::thread;
use tracebus::loom_support::{Busy, Gate, Idle, WaitStrategy, Wakers};
use tracebus::ring::spsc;
use tracebus_loom_tests::model;

/// A worker that parks when its ring looks empty is always woken by a publish that races it:
/// no lost wake-up (loom reports a deadlock if the worker can sleep forever). Both sides are
/// the bus's own: the worker waits through `Idle` (spin, yield, then park under
/// `SpinThenPark`), the publisher wakes through `Wakers::after_commit`.
#[test]
fn park_has_no_lost_wakeup() {
    model(|| {
        let (mut tx, mut rx) = spsc::<u32>(2).unwrap();
        let wakers = Arc::new(Wakers::new(1));
        let w = wakers.clone();
        let worker = thread::spawn(move || {
            let mut idle = Idle::new(WaitStrategy::SpinThenPark, 0);
            loop {
                if let Some(v) = rx.try_pop() {
                    assert_eq!(v, 7);
                    return;
                }
                idle.wait(w.sleeper(0), || !rx.is_empty());
            }
        });
        wakers.set_threads(vec![worker.thread().clone()]);
        tx.try_push(7).unwrap();
        wakers.after_commit(WaitStrategy::SpinThenPark, [0]);
        worker.join().unwrap();
    });
}

/// Shutdown closes the gate and waits; after that, every publish that was accepted has its
/// message in the ring, where the drain finds it, and every other publish was refused.
#[test]
fn shutdown_gate_accepted_means_drained() {
    model(|| {
        let gate = Arc::new(Gate::new());
        let busy = Arc::new(Busy::default());
        let (mut tx, mut rx) = spsc::<u32>(2).unwrap();
        let (g, b) = (gate.clone(), busy.clone());
        let publisher = thread::spawn(move || {
            let inside = g.enter(&b);
            let accepted = inside.is_some();
            if accepted {
                tx.try_push(1).unwrap();
            }
            drop(inside); // leaves the gate
            accepted
        });
        gate.close([&*busy]);
        // The drain, before anything else synchronises with the publisher.
        let drained = std::iter::from_fn(|| rx.try_pop()).count();
        let accepted = publisher.join().unwrap();
        assert_eq!(
            drained,
            usize::from(accepted),
            "accepted {accepted}, drained {drained}"
        );
    });
}
