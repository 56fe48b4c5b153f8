//! Zero heap allocations on the hot path of sampled spans: the clock reads, the span-ids and
//! `Recorder::record` of a publish span and a process span allocate nothing, while the
//! exporter thread drains, converts and exports behind them (its allocations are its own: the
//! allocator here counts per thread).

use opentelemetry_sdk::trace::InMemorySpanExporter;
use tracebus::span_bench::HotPath;
use tracebus::SpanExport;
use tracebus_test_support::{thread_allocations, CountingAllocator};

// Counted per thread (`thread_allocations`): the exporter thread's allocations are its own.
#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn recording_sampled_spans_allocates_nothing() {
    const MESSAGES: u64 = 200_000;
    let exporter = InMemorySpanExporter::default();
    let mut hot = HotPath::start(SpanExport::exporter(exporter.clone()).shutdown_target(false));
    // Warm-up: the thread's id generator is seeded, the clock is made.
    for _ in 0..1_000 {
        hot.publish_span(1);
        hot.process_span();
    }
    // The counter sees this thread's allocations.
    let probe = thread_allocations();
    drop(std::hint::black_box(Box::new(1u64)));
    assert_eq!(thread_allocations(), probe + 1);

    let before = thread_allocations();
    for _ in 0..MESSAGES {
        // One sampled message at fanout 1: its publish span and its process span.
        hot.publish_span(1);
        hot.process_span();
    }
    let used = thread_allocations() - before;
    let counts = hot.finish();
    assert_eq!(
        used, 0,
        "{used} allocations for {MESSAGES} sampled messages"
    );
    // The spans went somewhere: exported, or dropped and counted when the ring was full.
    let total = 2 * (MESSAGES + 1_000);
    assert_eq!(counts.exported + counts.dropped, total, "{counts:?}");
    assert_eq!(
        exporter.get_finished_spans().unwrap().len() as u64,
        counts.exported
    );
    assert!(counts.exported > 0);
}

/// The whole bus with every message sampled (fanout 1, k = 10): the publishing thread and the
/// worker thread allocate nothing per message, spans included.
#[test]
fn a_traced_bus_allocates_nothing_per_sampled_message() {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    const WARM: u64 = 2_000;
    const MESSAGES: u64 = 20_000;
    let exporter = InMemorySpanExporter::default();
    let bus = tracebus::Bus::builder()
        .workers(1)
        .pinning(tracebus::Pinning::Off)
        .wait_strategy(tracebus::WaitStrategy::SpinThenYield)
        .tracing(
            SpanExport::exporter(exporter.clone())
                .shutdown_target(false)
                .ring_capacity(1 << 16),
        )
        .build()
        .unwrap();
    let t = bus.topic::<u64>("sampled").unwrap();
    let delivered = Arc::new(AtomicU64::new(0));
    let sampled = Arc::new(AtomicU64::new(0));
    // The worker thread's allocations over the measured messages.
    let worker_allocs = Arc::new(AtomicUsize::new(usize::MAX));
    let (d, s, w) = (delivered.clone(), sampled.clone(), worker_allocs.clone());
    let mut start = 0;
    bus.subscribe(&t, move |m, out| {
        if m.is_sampled() && out.trace_context().is_some() {
            s.fetch_add(1, SeqCst);
        }
        match *m.payload() {
            v if v == WARM => start = thread_allocations(),
            v if v == WARM + MESSAGES - 1 => w.store(thread_allocations() - start, SeqCst),
            _ => {}
        }
        d.fetch_add(1, SeqCst);
    })
    .unwrap();
    let mut p = bus.publisher().unwrap();
    for i in 0..WARM {
        p.publish(&t, i).unwrap();
    }
    while delivered.load(SeqCst) < WARM {
        std::thread::yield_now();
    }
    let before = thread_allocations();
    for i in WARM..WARM + MESSAGES {
        p.publish(&t, i).unwrap();
    }
    let publisher_allocs = thread_allocations() - before;
    while delivered.load(SeqCst) < WARM + MESSAGES {
        std::thread::yield_now();
    }
    let report = bus.shutdown();
    assert_eq!(
        sampled.load(SeqCst),
        WARM + MESSAGES,
        "fanout 1: every message sampled"
    );
    assert_eq!(
        report.spans.exported,
        2 * (WARM + MESSAGES),
        "{:?}",
        report.spans
    );
    assert_eq!(publisher_allocs, 0, "allocations on the publishing thread");
    assert_eq!(
        worker_allocs.load(SeqCst),
        0,
        "allocations on the worker thread"
    );
}
