//! The filter, the header decode and a sampler decision allocate nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tracebus_context::{header_context, is_sampled, FanoutSampler, TraceContext, TraceHeader};

/// Counts allocations made by the current thread (so parallel tests do not disturb it).
struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to `System`; only a thread-local counter is added,
// and a `const`-initialised `Cell<usize>` thread-local never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs_during(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
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
