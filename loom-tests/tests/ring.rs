//! loom models of the SPSC ring (see the crate docs for what each proves and which weakened
//! ordering each catches).

use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;
use tracebus::ring::spsc;
use tracebus_loom_tests::model;

#[test]
#[allow(clippy::assertions_on_constants)] // constant per build: that is the point
fn built_with_cfg_loom() {
    assert!(
        cfg!(tracebus_loom),
        "the loom models check nothing without RUSTFLAGS=\"--cfg tracebus_loom\" (see the crate docs)"
    );
}

/// Pushes `values` in order, yielding while the ring is full.
fn push_all(tx: &mut tracebus::ring::Producer<u32>, values: impl IntoIterator<Item = u32>) {
    for v in values {
        let mut v = v;
        while let Err(full) = tx.try_push(v) {
            v = full.into_inner();
            thread::yield_now();
        }
    }
}

#[test]
fn fifo_over_two_laps() {
    model(|| {
        let (mut tx, mut rx) = spsc::<u32>(2).unwrap();
        let producer = thread::spawn(move || push_all(&mut tx, 0..4));
        let mut got = Vec::new();
        while got.len() < 4 {
            match rx.try_pop() {
                Some(v) => got.push(v),
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(got, [0, 1, 2, 3]);
        assert_eq!(rx.try_pop(), None);
    });
}

#[test]
fn full_and_empty_boundaries() {
    model(|| {
        let (mut tx, mut rx) = spsc::<u32>(1).unwrap();
        let producer = thread::spawn(move || {
            tx.try_push(1).unwrap();
            // Either the consumer freed the slot or the value comes back unchanged.
            match tx.try_push(2) {
                Ok(()) => true,
                Err(full) => {
                    assert_eq!(full.into_inner(), 2);
                    false
                }
            }
        });
        let first = rx.try_pop();
        let pushed_second = producer.join().unwrap();
        let mut got: Vec<u32> = first.into_iter().collect();
        got.extend(std::iter::from_fn(|| rx.try_pop()));
        if pushed_second {
            assert_eq!(got, [1, 2]);
        } else {
            assert_eq!(got, [1]);
        }
    });
}

/// The bus's publish updates a cell in place (`try_push_in_place`, `Claim::push_in_place`): it
/// reads what the cell held a lap before and stores only what differs. That read and those
/// stores must come after the consumer's read of the lap before (the `head` it acquired says
/// so), and the consumer must see the values whole, the fields the producer left as they were
/// included. Values are `[tag, value]`; a tag already right is not stored again.
#[test]
fn in_place_pushes_over_two_laps() {
    model(|| {
        let (mut tx, mut rx) = spsc::<[u32; 2]>(2).unwrap();
        let producer = thread::spawn(move || {
            let mut next = 0;
            while next < 4 {
                let pushed = tx.try_push_in_place(|cell: &mut [u32; 2]| {
                    if cell[0] != 1 {
                        cell[0] = 1;
                    }
                    cell[1] = next;
                });
                if pushed.is_ok() {
                    next += 1;
                } else {
                    thread::yield_now();
                }
            }
            // A second lap through a claim.
            let mut claim = loop {
                match tx.claim(2) {
                    Ok(c) => break c,
                    Err(_) => thread::yield_now(),
                }
            };
            for v in [4, 5] {
                claim
                    .push_in_place(|cell: &mut [u32; 2]| {
                        assert_eq!(cell[0], 1, "the lap before left its tag");
                        cell[1] = v;
                    })
                    .map_err(|_| ())
                    .unwrap();
            }
            claim.commit();
        });
        let mut got = Vec::new();
        while got.len() < 6 {
            match rx.try_pop() {
                Some(v) => got.push(v),
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(got, (0..6).map(|v| [1, v]).collect::<Vec<_>>());
    });
}

#[test]
fn batch_claim_and_read() {
    model(|| {
        let (mut tx, mut rx) = spsc::<u32>(2).unwrap();
        let producer = thread::spawn(move || {
            let mut next = 0;
            while next < 4 {
                // Claim whatever is free (up to 2 cells, never past value 3) and commit it as one
                // batch.
                let mut claim = tx.claim_up_to(2.min(4 - next as usize));
                while claim.remaining() > 0 {
                    claim.push(next).unwrap();
                    next += 1;
                }
                drop(claim);
                thread::yield_now();
            }
        });
        let mut got = Vec::new();
        while got.len() < 4 {
            let chunk = rx.read(2);
            got.extend(chunk.iter().copied());
            let empty = chunk.is_empty();
            chunk.release();
            if empty {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(got, [0, 1, 2, 3]);
    });
}

#[test]
fn close_drains_committed_tail() {
    model(|| {
        let (mut tx, mut rx) = spsc::<u32>(2).unwrap();
        let producer = thread::spawn(move || {
            tx.try_push(7).unwrap();
            tx.try_push(8).unwrap();
            // Dropping the producer closes the ring.
        });
        let mut got = Vec::new();
        loop {
            if let Some(v) = rx.try_pop() {
                got.push(v);
            } else if rx.is_closed() {
                // Closed: everything committed before the close must still be here.
                got.extend(std::iter::from_fn(|| rx.try_pop()));
                break;
            } else {
                thread::yield_now();
            }
        }
        assert_eq!(got, [7, 8]);
        producer.join().unwrap();
    });
}

/// Counts its drops in a shared counter.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn unread_values_dropped_once() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut tx, mut rx) = spsc::<Counted>(2).unwrap();
        let d = drops.clone();
        let producer = thread::spawn(move || {
            for _ in 0..2 {
                assert!(tx.try_push(Counted(d.clone())).is_ok());
            }
            // The producer goes away with values in flight.
        });
        let consumer = thread::spawn(move || {
            // Reads at most one value, then goes away too.
            drop(rx.try_pop());
        });
        producer.join().unwrap();
        consumer.join().unwrap();
        assert_eq!(drops.load(SeqCst), 2, "each value dropped exactly once");
    });
}

#[test]
fn len_promises_values() {
    model(|| {
        let (mut tx, mut rx) = spsc::<u32>(2).unwrap();
        let producer = thread::spawn(move || {
            let mut claim = tx.claim(2).unwrap();
            claim.push(1).unwrap();
            claim.push(2).unwrap();
            claim.commit();
        });
        // Whatever len() counts, try_pop finds.
        let counted = rx.len();
        assert!(counted <= 2);
        for i in 0..counted {
            assert_eq!(rx.try_pop(), Some(i as u32 + 1), "counted {counted}");
        }
        producer.join().unwrap();
    });
}

/// `len_promises_values` from an idle consumer, which watches stamps instead of `tail`: with a
/// `Relaxed` load of `tail` in `len()`, the stamp load that follows could still read the old
/// stamp and `try_pop` return `None` for a counted value (loom found that execution); `len`
/// therefore loads `tail` with `Acquire`, and weakening it fails this model.
#[test]
fn len_promises_values_when_idle() {
    model(|| {
        let (mut tx, mut rx) = spsc::<u32>(2).unwrap();
        // Two empty polls: the first reads `tail`, the second the stamps; the consumer is idle.
        assert_eq!(rx.try_pop(), None);
        assert_eq!(rx.try_pop(), None);
        let producer = thread::spawn(move || {
            tx.try_push(1).unwrap();
        });
        let counted = rx.len();
        for i in 0..counted {
            assert_eq!(rx.try_pop(), Some(i as u32 + 1), "counted {counted}");
        }
        producer.join().unwrap();
    });
}
