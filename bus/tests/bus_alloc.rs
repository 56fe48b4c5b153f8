//! Zero heap allocations per message through the bus (publish, routing, delivery, onward
//! publish from a handler) in steady state.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use tracebus::{Bus, Pinning, WaitStrategy};

mod common;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

#[test]
fn no_allocation_per_message() {
    const N: u64 = 200_000;
    let bus = Bus::builder()
        .workers(2)
        .capacity(256)
        .pinning(Pinning::Off)
        .wait_strategy(WaitStrategy::SpinThenPark)
        .build::<u64>()
        .unwrap();
    let delivered = Arc::new(AtomicU64::new(0));
    for w in 0..2 {
        let d = delivered.clone();
        bus.subscribe(1, Some(w), move |m, ctx| {
            d.fetch_add(1, Relaxed);
            if w == 0 && *m.payload() % 2 == 0 {
                // Onward publish from a handler; a full ring is fine to drop here.
                let _ = ctx.try_publish(2, *m.payload());
            }
        })
        .unwrap();
    }
    let d = delivered.clone();
    bus.subscribe(2, Some(1), move |_, _| {
        d.fetch_add(1, Relaxed);
    })
    .unwrap();
    let mut p = bus.publisher().unwrap();
    // Warm up: every worker has run, parked and woken, every route cache is current.
    for i in 0..10_000 {
        p.publish(1, i).unwrap();
    }
    while delivered.load(Relaxed) < 20_000 {
        std::thread::yield_now();
    }
    let before = common::allocations();
    for i in 0..N {
        p.publish(1, i).unwrap();
    }
    while delivered.load(Relaxed) < 20_000 + 2 * N {
        std::thread::yield_now();
    }
    let during = common::allocations() - before;
    let report = bus.shutdown();
    assert!(report.delivered >= 2 * (N + 10_000));
    assert_eq!(during, 0, "{during} allocations for {N} publishes");
}
