//! Zero heap allocations per message through the ring in steady state.

use std::thread;

use tracebus::ring;
use tracebus::slot::LineSlot;
use tracebus_context::TraceContext;
use tracebus_test_support::{allocations, CountingAllocator};

// Counts every allocation of the process (the consumer thread's too): the only test of this binary.
#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn no_allocation_per_message() {
    const N: u64 = 1_000_000;
    let ctx = TraceContext::new([1; 16], [2; 8], 1).unwrap();
    let (mut tx, mut rx) = ring::spsc::<LineSlot>(1024).unwrap();
    // Threads are spawned (and allocate) before counting starts.
    let (go_tx, go_rx) = std::sync::mpsc::sync_channel::<()>(0);
    let consumer = thread::spawn(move || {
        go_rx.recv().unwrap();
        let mut sum = 0u64;
        let mut seen = 0u64;
        while seen < N {
            let chunk = rx.read(64);
            for s in chunk.iter() {
                sum = sum.wrapping_add(*s.payload::<u64>());
                seen += 1;
            }
            if chunk.is_empty() {
                thread::yield_now();
            }
        }
        sum
    });
    go_tx.send(()).unwrap();
    let before = allocations();
    let mut i = 0u64;
    while i < N {
        let c = (i % 10 == 0).then_some(&ctx);
        if i % 2 == 0 {
            if tx.try_push(LineSlot::new(1, c, None, &i)).is_ok() {
                i += 1;
            } else {
                thread::yield_now();
            }
        } else {
            let mut claim = tx.claim_up_to(8);
            while claim.remaining() > 0 && i < N {
                claim.push(LineSlot::new(1, c, Some(i), &i)).unwrap();
                i += 1;
            }
        }
    }
    let during = allocations() - before;
    let sum = consumer.join().unwrap();
    assert_eq!(sum, (0..N).sum::<u64>());
    // The consumer's thread was already running; the only allocations allowed are none.
    assert_eq!(during, 0, "{during} allocations for {N} messages");
}
