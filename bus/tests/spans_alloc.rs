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
