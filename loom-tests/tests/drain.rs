//! loom models of shutdown's quiescence check (`drain.rs`): counting copies sent before they
//! are committed and copies done after their handler returned, a coordinator that sees the two
//! sums equal has seen every onward publish handled.
//!
//! `two_stage_pipeline_quiesces_only_when_done` runs the protocol's pieces (`Sent`, `Done`,
//! `quiescent`, reached through `tracebus::loom_support`) over real rings: an external publish
//! to stage 1, whose handler publishes onward to stage 2. `shutdown_delivers_an_onward_publish`
//! runs the real bus: a publish, an onward publish from its handler on the other worker, and
//! shutdown right after the publish returns.
#![cfg(tracebus_loom)]

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;
use tracebus::loom_support::{quiescent, Done, Sent};
use tracebus::ring::spsc;
use tracebus::{Bus, Pinning, WaitStrategy};
use tracebus_loom_tests::{model, model_bounded};

/// A publisher sends one message to stage 1 (a worker), whose handler publishes it onward to
/// stage 2 (another worker). The coordinator checks `quiescent` (as shutdown does, after the
/// external publisher stopped) at any point of their progress: whenever it says so, stage 2
/// has handled the onward message. (Safety only: each stage polls a bounded number of times,
/// so the model has no spin loop; that quiescence is reached is the bus model's job.)
#[test]
fn two_stage_pipeline_quiesces_only_when_done() {
    model(|| {
        let publisher = Arc::new(Sent::default());
        let stage1 = Arc::new((Sent::default(), Done::default()));
        let stage2 = Arc::new((Sent::default(), Done::default()));
        let handled2 = Arc::new(AtomicBool::new(false));
        let (mut to1, mut in1) = spsc::<u32>(2).unwrap();
        let (mut to2, mut in2) = spsc::<u32>(2).unwrap();

        // The external publish, accepted before shutdown began (the gate has let it through:
        // its count and commit happen before the coordinator starts).
        let _ = publisher.count(1, 1);
        to1.try_push(1).unwrap();

        let s1 = stage1.clone();
        let w1 = thread::spawn(move || {
            let v = in1.try_pop().expect("committed before the spawn");
            // The handler publishes onward: counted, then committed.
            let _ = s1.0.count(1, 1);
            to2.try_push(v + 1).unwrap();
            // The pass is over: one copy handled.
            s1.1.store(1);
        });
        let (s2, h2) = (stage2.clone(), handled2.clone());
        let w2 = thread::spawn(move || {
            for _ in 0..2 {
                if let Some(v) = in2.try_pop() {
                    assert_eq!(v, 2);
                    h2.store(true, SeqCst);
                    s2.1.store(1);
                    return;
                }
                thread::yield_now();
            }
        });

        let done = [&stage1.1, &stage2.1];
        let sent = [&*publisher, &stage1.0, &stage2.0];
        if quiescent(done, sent, 0) {
            assert!(
                handled2.load(SeqCst),
                "quiescent before the onward message was handled"
            );
        }
        w1.join().unwrap();
        w2.join().unwrap();
        let done = [&stage1.1, &stage2.1];
        let sent = [&*publisher, &stage1.0, &stage2.0];
        assert_eq!(
            quiescent(done, sent, 0),
            handled2.load(SeqCst),
            "after both stages stopped, quiescent exactly when the onward message was handled"
        );
    });
}

/// The real bus, two workers: a message to worker 0, whose handler publishes two messages
/// onward to a subscriber on worker 1; shutdown right after the publish returns delivers all
/// three (it must not take the bus for quiescent while the handler still runs).
///
/// One preemption: with two, the model takes minutes (the bus's threads and control channels
/// make a large state space), and one is enough to find the endpoint counting an onward
/// publish after its commit instead of before (the weakening table in `src/lib.rs`).
#[test]
fn shutdown_delivers_an_onward_publish() {
    model_bounded(1, || {
        let bus = Bus::builder()
            .workers(2)
            .capacity(2)
            .pinning(Pinning::Off)
            .wait_strategy(WaitStrategy::SpinThenPark)
            .build()
            .unwrap();
        let first = bus.topic::<u64>("first").unwrap();
        let second = bus.topic::<u64>("second").unwrap();
        let got = Arc::new(AtomicUsize::new(0));
        let g = got.clone();
        bus.subscribe_on(0, &first, move |m, out| {
            // Two onward publishes: shutdown must not close the workers' gate between them.
            out.try_publish(&second, *m.payload() + 1).unwrap();
            out.try_publish(&second, *m.payload() + 2).unwrap();
        })
        .unwrap();
        bus.subscribe_on(1, &second, move |m, _| {
            g.fetch_add(*m.payload() as usize, SeqCst);
        })
        .unwrap();
        let mut p = bus.publisher().unwrap();
        p.publish(&first, 1).unwrap();
        let report = bus.shutdown();
        assert_eq!(
            got.load(SeqCst),
            2 + 3,
            "both onward messages were delivered"
        );
        assert_eq!((report.published, report.delivered, report.lost), (3, 3, 0));
        assert_eq!(report.refused_closed, 0);
        drop(p);
    });
}
