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
use tracebus::loom_support::{Gate, Idle, Sent, WaitStrategy, Wakers};
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

/// Shutdown closes the gate, then drains until the copies it drained equal the copies counted
/// sent (the drain's check, with the shutdown thread as the worker): every publish the gate
/// let through is drained, and every other one was refused. The publish is the bus's: counted
/// through `Gate::enter`, committed only if that let it in. Fails if either fence of the gate
/// is weakened (the publish misses `closed` while shutdown misses its count).
#[test]
fn shutdown_gate_accepted_means_drained() {
    model(|| {
        let gate = Arc::new(Gate::new());
        let sent = Arc::new(Sent::default());
        let (mut tx, mut rx) = spsc::<u32>(2).unwrap();
        let (g, s) = (gate.clone(), sent.clone());
        let publisher = thread::spawn(move || {
            let accepted = g.enter(&s, 1, 1).is_some();
            if accepted {
                tx.try_push(1).unwrap();
            }
            accepted
        });
        gate.close();
        // The drain, before anything else synchronises with the publisher: until every copy
        // counted is drained (a refused publish's count is taken back).
        let mut drained = 0;
        while drained != sent.copies() {
            match rx.try_pop() {
                Some(_) => drained += 1,
                None => thread::yield_now(),
            }
        }
        let accepted = publisher.join().unwrap();
        assert_eq!(
            drained,
            usize::from(accepted),
            "accepted {accepted}, drained {drained}"
        );
    });
}
