//! The filter, the header decode and a sampler decision allocate nothing.

use tracebus_context::{header_context, is_sampled, FanoutSampler, TraceContext, TraceHeader};
use tracebus_test_support::{thread_allocations, CountingAllocator};

// Counted per thread (`thread_allocations`), so tests running in parallel do not disturb it.
#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocs_during(f: impl FnOnce()) -> usize {
    let before = thread_allocations();
    f();
    thread_allocations() - before
}

#[test]
fn hot_paths_allocate_nothing() {
    let sampler = FanoutSampler::default();
    let ctx = TraceContext::new([3; 16], [4; 8], 1).unwrap();
    let header = TraceHeader::from_context(Some(&ctx));
    let bytes: &[u8] = zerocopy::IntoBytes::as_bytes(&header);
    // The counter itself works.
    assert!(allocs_during(|| drop(std::hint::black_box(vec![1u8; 8]))) >= 1);
    let n = allocs_during(|| {
        for i in 0..100_000usize {
            assert!(std::hint::black_box(is_sampled(bytes)));
            assert_eq!(header_context(std::hint::black_box(bytes)), Some(ctx));
            let d = sampler.decide(None, i % 20_000 + 1);
            std::hint::black_box(d);
            std::hint::black_box(sampler.decide(Some(&ctx), i % 300 + 1));
            std::hint::black_box(TraceContext::from_w3c_binary(&ctx.to_w3c_binary()).unwrap());
        }
    });
    assert_eq!(n, 0, "allocations on the decode and decision paths");
}
