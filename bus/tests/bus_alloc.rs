//! Zero heap allocations per message through the bus (publish, routing, delivery, onward
//! publish from a handler) in steady state: without tracing, and with tracing on for
//! unsampled messages (the decision is made, no OpenTelemetry call follows).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use tracebus::{Bus, BusBuilder, Pinning, WaitStrategy};
use tracebus_test_support::{allocations, CountingAllocator};

// Counts every allocation of the process (workers included): the only test of this binary.
#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made while `N` messages go through a bus built from `builder`.
fn allocations_for(builder: BusBuilder) -> usize {
    const N: u64 = 200_000;
    let bus = builder
        .workers(2)
        .capacity(256)
        .pinning(Pinning::Off)
        .wait_strategy(WaitStrategy::SpinThenPark)
        .build()
        .unwrap();
    let input = bus.topic::<u64>("input").unwrap();
    let onward = bus.topic::<u64>("onward").unwrap();
    let delivered = Arc::new(AtomicU64::new(0));
    for w in 0..2 {
        let d = delivered.clone();
        bus.subscribe_on(w, &input, move |m, out| {
            d.fetch_add(1, Relaxed);
            if w == 0 && *m.payload() % 2 == 0 {
                // Onward publish from a handler; a full ring is fine to drop here.
                let _ = out.try_publish(&onward, *m.payload());
            }
        })
        .unwrap();
    }
    let d = delivered.clone();
    bus.subscribe_on(1, &onward, move |_, _| {
        d.fetch_add(1, Relaxed);
    })
    .unwrap();
    let mut p = bus.publisher().unwrap();
    // Warm up: every worker has run, parked and woken, every route cache is current.
    for i in 0..10_000 {
        p.publish(&input, i).unwrap();
    }
    while delivered.load(Relaxed) < 20_000 {
        std::thread::yield_now();
    }
    let before = allocations();
    for i in 0..N {
        p.publish(&input, i).unwrap();
    }
    while delivered.load(Relaxed) < 20_000 + 2 * N {
        std::thread::yield_now();
    }
    let during = allocations() - before;
    let report = bus.shutdown();
    assert!(report.delivered >= 2 * (N + 10_000));
    during
}

// One test function: the counter is process-wide, so the two runs must not overlap.
#[test]
fn no_allocation_per_message() {
    let plain = allocations_for(Bus::builder());
    assert_eq!(plain, 0, "{plain} allocations without tracing");
    // Tracing on, every message unsampled (k = 0): the sampler decides, nothing else runs.
    let traced = allocations_for(
        Bus::builder()
            .tracing(tracebus::SpanExport::exporter(
                opentelemetry_sdk::trace::InMemorySpanExporter::default(),
            ))
            .sampler(tracebus::context::FanoutSampler::new(0.0)),
    );
    assert_eq!(traced, 0, "{traced} allocations with tracing on, unsampled");
    // The counter sees allocations at all (so the zeros above mean something).
    let before = allocations();
    drop(std::hint::black_box(vec![0u8; 16]));
    assert!(allocations() > before);
}
