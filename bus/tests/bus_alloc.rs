//! Zero heap allocations per message through the bus (publish, routing, delivery, onward
//! publish from a handler) in steady state: without tracing, and with tracing on for
//! unsampled messages (the decision is made, no OpenTelemetry call follows). Counted on the
//! publisher's and the workers' threads, and for the whole process where no background thread
//! runs.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use tracebus::{Bus, BusBuilder, Pinning, WaitStrategy};
use tracebus_test_support::{allocations, thread_allocations, CountingAllocator};

// Counts every allocation, per thread and for the process: the only test of this binary.
#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Warm-up messages carry values below this; measured ones from it on.
const MEASURED: u64 = 10_000;

/// Allocations on the data path's threads (the publisher's and both workers') while `N`
/// messages go through a bus built from `builder`, and those of the whole process in the same
/// window. Background threads (a span exporter waking on its interval) are in the second figure
/// only: they allocate on their own schedule, not per message, and would make a process-wide
/// zero flaky.
fn allocations_for(builder: BusBuilder) -> (usize, usize) {
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
    // Per worker: its thread's allocations between its first and its latest measured message.
    let on_worker: Arc<[AtomicUsize; 2]> = Arc::default();
    for w in 0..2 {
        let d = delivered.clone();
        let counted = on_worker.clone();
        let mut first = None;
        bus.subscribe_on(w, &input, move |m, out| {
            if *m.payload() >= MEASURED {
                let now = thread_allocations();
                counted[w].store(now - *first.get_or_insert(now), Relaxed);
            }
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
    for i in 0..MEASURED {
        p.publish(&input, i).unwrap();
    }
    while delivered.load(Relaxed) < 2 * MEASURED {
        std::thread::yield_now();
    }
    let process_before = allocations();
    let publisher_before = thread_allocations();
    for i in MEASURED..MEASURED + N {
        p.publish(&input, i).unwrap();
    }
    let on_publisher = thread_allocations() - publisher_before;
    while delivered.load(Relaxed) < 2 * MEASURED + 2 * N {
        std::thread::yield_now();
    }
    let process = allocations() - process_before;
    let report = bus.shutdown();
    assert!(report.delivered >= 2 * (N + MEASURED));
    let data_path = on_publisher + on_worker[0].load(Relaxed) + on_worker[1].load(Relaxed);
    (data_path, process)
}

// One test function: the counter is process-wide, so the two runs must not overlap.
#[test]
fn no_allocation_per_message() {
    let (plain, process) = allocations_for(Bus::builder());
    assert_eq!(plain, 0, "{plain} allocations without tracing");
    assert_eq!(
        process, 0,
        "{process} allocations in the process, no background thread"
    );
    // Tracing on, every message unsampled (k = 0): the sampler decides, nothing else runs.
    let (traced, process) = allocations_for(
        Bus::builder()
            .tracing(tracebus::SpanExport::exporter(
                opentelemetry_sdk::trace::InMemorySpanExporter::default(),
            ))
            .sampler(tracebus::context::FanoutSampler::new(0.0)),
    );
    assert_eq!(traced, 0, "{traced} allocations with tracing on, unsampled");
    // The exporter thread may allocate on its interval, but not per message.
    assert!(
        process < 100,
        "{process} allocations in the process while 200,000 messages went through"
    );
    // The counters see allocations at all (so the zeros above mean something).
    let (before, mine) = (allocations(), thread_allocations());
    drop(std::hint::black_box(vec![0u8; 16]));
    assert!(allocations() > before && thread_allocations() > mine);
}
