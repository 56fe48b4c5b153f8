//! Two threads move tens of millions of sequenced messages through one ring, with single and
//! batch operations on both sides, and every sequence number is checked. Bounded by count.

use std::thread;

use tracebus::ring;

/// 20 million per run; `RING_STRESS_MESSAGES` lowers it (under valgrind, say). Under Miri,
/// which interprets every instruction and sees no environment, 200.
fn messages() -> u64 {
    if cfg!(miri) {
        return 200;
    }
    std::env::var("RING_STRESS_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000_000)
}

fn run(capacity: usize, batch: usize) {
    let total = messages();
    let (mut tx, mut rx) = ring::spsc::<u64>(capacity).unwrap();
    let producer = thread::spawn(move || {
        let mut next = 0u64;
        while next < total {
            if next % 3 == 0 {
                // Batch write.
                let want = (batch as u64).min(total - next) as usize;
                let mut claim = tx.claim_up_to(want);
                while claim.remaining() > 0 {
                    claim.push(next).unwrap();
                    next += 1;
                }
            } else if tx.try_push(next).is_ok() {
                next += 1;
            }
            if tx.free_slots() == 0 {
                thread::yield_now();
            }
        }
    });
    let mut expect = 0u64;
    let mut idle = 0u32;
    while expect < total {
        let got = if expect % 2 == 0 {
            let chunk = rx.read(batch);
            for &v in chunk.iter() {
                assert_eq!(v, expect, "out of order or lost");
                expect += 1;
            }
            chunk.len()
        } else {
            match rx.try_pop() {
                Some(v) => {
                    assert_eq!(v, expect, "out of order or lost");
                    expect += 1;
                    1
                }
                None => 0,
            }
        };
        if got == 0 {
            idle += 1;
            if idle % 64 == 0 {
                thread::yield_now();
            }
        }
    }
    producer.join().unwrap();
    assert!(rx.is_closed());
    assert_eq!(
        rx.try_pop(),
        None,
        "nothing beyond the last sequence number"
    );
}

#[test]
fn sequenced_messages_small_ring() {
    run(4, 3);
}

#[test]
fn sequenced_messages_large_ring() {
    run(4096, 64);
}
