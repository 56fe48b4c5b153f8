//! Memory follows use: a bus whose mesh has thousands of rings costs memory only for the rings
//! that carry messages. 64 workers and 64 publishers at capacity 1024 make 8,192 rings of
//! 64 KiB (512 MiB if every ring were touched); each publisher here publishes to 4 workers, so
//! 256 rings carry messages (16 MiB). The resident set must grow by at most 32 MiB.
#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use tracebus::{Bus, Pinning, WaitStrategy};

/// Resident set size of this process, in bytes (from /proc/self/statm).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("procfs");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn rings_cost_memory_only_when_used() {
    const WORKERS: usize = 64;
    const PUBLISHERS: usize = 64;
    const CAPACITY: usize = 1024;
    const MESSAGES: u64 = CAPACITY as u64; // every cell of each used ring written
    let before = rss();
    let bus = Bus::builder()
        .workers(WORKERS)
        .capacity(CAPACITY)
        .pinning(Pinning::Off)
        .wait_strategy(WaitStrategy::SpinThenPark)
        .build()
        .unwrap();
    let delivered = Arc::new(AtomicU64::new(0));
    let topics: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let t = bus.topic::<u64>(&format!("from-{p}")).unwrap();
            for k in 0..4 {
                let d = delivered.clone();
                bus.subscribe_on((p + k * 16) % WORKERS, &t, move |_, _| {
                    d.fetch_add(1, Relaxed);
                })
                .unwrap();
            }
            t
        })
        .collect();
    let mut publishers: Vec<_> = (0..PUBLISHERS).map(|_| bus.publisher().unwrap()).collect();
    for i in 0..MESSAGES {
        for (p, t) in publishers.iter_mut().zip(&topics) {
            assert_eq!(p.publish(t, i).unwrap().workers, 4);
        }
    }
    while delivered.load(Relaxed) < MESSAGES * PUBLISHERS as u64 * 4 {
        std::thread::yield_now();
    }
    let grown = rss().saturating_sub(before);
    eprintln!(
        "64 workers x 64 publishers, capacity {CAPACITY}: resident set grew {:.1} MiB",
        grown as f64 / (1 << 20) as f64
    );
    assert!(
        grown <= 32 << 20,
        "resident set grew {} MiB (at most 32 MiB)",
        grown >> 20
    );
    drop(publishers);
    let report = bus.shutdown();
    assert_eq!(report.delivered, MESSAGES * PUBLISHERS as u64 * 4);
}
