//! The counting allocator counts what it should: every allocation process-wide, only the
//! caller's per thread.

use tracebus_test_support::{allocations, thread_allocations, CountingAllocator};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

// One test function: the process-wide counter would see other tests' allocations.
#[test]
fn counts_per_process_and_per_thread() {
    let (process, thread) = (allocations(), thread_allocations());
    let mut v = std::hint::black_box(Vec::<u8>::with_capacity(8));
    assert_eq!(thread_allocations() - thread, 1, "one alloc");
    v.reserve(1024);
    assert_eq!(thread_allocations() - thread, 2, "a realloc counts one");
    drop(v);
    drop(std::hint::black_box(vec![0u64; 32]));
    assert_eq!(
        thread_allocations() - thread,
        3,
        "alloc_zeroed counts one; dealloc none"
    );
    assert!(allocations() - process >= 3);

    // Another thread's allocations are the process's, not this thread's.
    let (process, thread) = (allocations(), thread_allocations());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let before = thread_allocations();
            for _ in 0..100 {
                drop(std::hint::black_box(Box::new(7u64)));
            }
            tx.send(thread_allocations() - before).unwrap();
        });
    });
    assert_eq!(rx.recv().unwrap(), 100, "the other thread counted its own");
    assert!(allocations() - process >= 100, "the process saw them");
    let mine = thread_allocations() - thread;
    assert!(mine < 100, "this thread did not count them ({mine})");
}
