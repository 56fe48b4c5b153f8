//! Unit tests of the ring's edges: capacity, full/empty, claims, chunks, close, drop.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc as StdArc;

use super::*;
use crate::slot::LineSlot;
use tracebus_context::TraceContext;

#[test]
fn capacity_rounds_up_and_limits_hold() {
    assert_eq!(spsc::<u8>(0).unwrap_err(), RingError::ZeroCapacity);
    assert_eq!(spsc::<u8>(1).unwrap().0.capacity(), 1);
    assert_eq!(spsc::<u8>(3).unwrap().0.capacity(), 4);
    assert_eq!(spsc::<u8>(4096).unwrap().1.capacity(), 4096);
    assert!(matches!(
        spsc::<u8>(usize::MAX),
        Err(RingError::TooLarge { .. })
    ));
    assert!(matches!(
        spsc::<[u8; 1 << 20]>(1 << 44),
        Err(RingError::TooLarge { requested, max }) if requested == 1 << 44 && max < 1 << 44
    ));
    let e = spsc::<u64>(MAX_CAPACITY + 1).unwrap_err();
    assert!(e.to_string().contains("too large"), "{e}");
}

#[test]
fn fifo_full_and_empty() {
    let (mut tx, mut rx) = spsc::<u32>(4).unwrap();
    assert_eq!(rx.try_pop(), None);
    assert!(rx.is_empty());
    for lap in 0..5u32 {
        for i in 0..4 {
            tx.try_push(lap * 10 + i).unwrap();
        }
        assert_eq!(tx.try_push(99), Err(Full(99)), "full hands the value back");
        assert_eq!(tx.free_slots(), 0);
        assert_eq!(rx.len(), 4);
        assert_eq!(rx.peek(), Some(&(lap * 10)));
        for i in 0..4 {
            assert_eq!(rx.try_pop(), Some(lap * 10 + i));
        }
        assert_eq!(rx.try_pop(), None);
        assert_eq!(tx.free_slots(), 4);
    }
}

#[test]
fn claims_commit_what_was_written() {
    let (mut tx, mut rx) = spsc::<u32>(8).unwrap();
    let e = tx.claim(9).map(|_| ()).unwrap_err();
    assert_eq!(
        e,
        ClaimError {
            requested: 9,
            available: 8
        }
    );
    {
        let mut c = tx.claim(5).unwrap();
        assert_eq!((c.len(), c.remaining()), (5, 5));
        c.push(1).unwrap();
        c.push(2).unwrap();
        assert_eq!(c.written(), 2);
        // Dropped after two of five: the two are committed, nothing is lost.
    }
    assert_eq!(rx.len(), 2);
    let mut c = tx.claim_up_to(100);
    assert_eq!(c.len(), 6);
    for v in 3..9 {
        c.push(v).unwrap();
    }
    assert_eq!(c.push(9), Err(Full(9)));
    c.commit();
    assert!(tx.claim_up_to(1).is_empty());
    assert_eq!(tx.push_iter(100..), 0);
    let got: Vec<u32> = std::iter::from_fn(|| rx.try_pop()).collect();
    assert_eq!(got, (1..9).collect::<Vec<_>>());
    assert_eq!(tx.push_iter(10..13), 3);
    assert_eq!(rx.len(), 3);
}

#[test]
fn read_chunks_wrap_and_release() {
    let (mut tx, mut rx) = spsc::<u32>(4).unwrap();
    tx.push_iter([1, 2, 3]);
    rx.read(2).release();
    tx.push_iter([4, 5, 6]);
    let chunk = rx.read(10);
    assert_eq!(chunk.len(), 4);
    assert_eq!(
        chunk.iter().copied().collect::<Vec<_>>(),
        [3, 4, 5, 6],
        "wraps around"
    );
    assert_eq!(chunk.get(4), None);
    let runs = |from| {
        chunk
            .runs_from(from)
            .map(|r| r.copied().collect::<Vec<_>>())
    };
    assert_eq!(
        runs(0),
        [vec![3, 4], vec![5, 6]],
        "split where the buffer ends"
    );
    assert_eq!(runs(1), [vec![4], vec![5, 6]]);
    assert_eq!(runs(2), [vec![5, 6], vec![]], "from the wrap: one run");
    assert_eq!(runs(3), [vec![6], vec![]]);
    assert_eq!(runs(4), [vec![], vec![]], "from the end: nothing");
    assert_eq!(runs(9), [vec![], vec![]], "past the end: nothing");
    drop(chunk);
    assert!(rx.is_empty());
    assert!(rx.read(3).is_empty());
}

#[test]
fn close_is_seen_and_committed_values_drain() {
    let (mut tx, mut rx) = spsc::<String>(4).unwrap();
    tx.try_push("a".into()).unwrap();
    tx.try_push("b".into()).unwrap();
    assert!(!rx.is_closed() && !tx.is_closed());
    drop(tx);
    assert!(rx.is_closed());
    assert_eq!(rx.try_pop().as_deref(), Some("a"));
    assert_eq!(rx.try_pop().as_deref(), Some("b"));
    assert_eq!(rx.try_pop(), None);

    let (mut tx, rx) = spsc::<String>(4).unwrap();
    drop(rx);
    assert!(tx.is_closed());
    assert!(
        tx.try_push("c".into()).is_ok(),
        "pushing to a closed ring is not an error"
    );
}

struct Counted(StdArc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Relaxed);
    }
}

#[test]
fn every_value_is_dropped_exactly_once() {
    let drops = StdArc::new(AtomicUsize::new(0));
    let (mut tx, mut rx) = spsc::<Counted>(8).unwrap();
    for _ in 0..7 {
        assert!(tx.try_push(Counted(drops.clone())).is_ok());
    }
    drop(rx.try_pop()); // 1 popped and dropped by the caller
    rx.read(2).release(); // 2 dropped by the chunk
    assert_eq!(drops.load(Relaxed), 3);
    let rejected = {
        let mut c = tx.claim_up_to(100);
        for _ in 0..c.len() {
            assert!(c.push(Counted(drops.clone())).is_ok());
        }
        c.push(Counted(drops.clone())).unwrap_err()
    };
    drop(rejected);
    assert_eq!(
        drops.load(Relaxed),
        4,
        "the handed-back value is the caller's to drop"
    );
    drop(tx);
    assert_eq!(drops.load(Relaxed), 4);
    drop(rx); // 4 + 4 left in the ring
    assert_eq!(drops.load(Relaxed), 12);
}

#[test]
fn no_stale_context_across_wrap_around() {
    let ctx = TraceContext::new([0x11; 16], [0x22; 8], 1).unwrap();
    let (mut tx, mut rx) = spsc::<LineSlot>(4).unwrap();
    // Lap 0 fills every physical slot with a sampled context; later laps mix in unsampled
    // messages that land on the same slots.
    for lap in 0..6u64 {
        for i in 0..4u64 {
            let n = lap * 4 + i;
            let c = (lap == 0 || n % 3 == 0).then_some(&ctx);
            tx.try_push(LineSlot::new(1, c, None, &n)).unwrap();
        }
        let chunk = rx.read(4);
        for s in chunk.iter() {
            let n = *s.payload::<u64>();
            let expect = (n < 4 || n % 3 == 0).then_some(ctx);
            assert_eq!(s.context(), expect, "message {n}");
            assert_eq!(s.is_sampled(), expect.is_some(), "message {n}");
        }
    }
}

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("must panic");
    err.downcast_ref::<String>().cloned().unwrap_or_default()
}

/// The debug-assertion layer is live in test builds: a producer that believes in room it does
/// not have, or a consumer that believes in values never committed, is stopped before it
/// touches a cell.
#[test]
#[cfg_attr(not(debug_assertions), ignore = "the invariant layer is compiled out")]
fn invariant_layer_stops_an_overwrite_of_unread_data() {
    let (mut tx, _rx) = spsc::<u64>(4).unwrap();
    for v in 0..4 {
        tx.try_push(v).unwrap();
    }
    // A corrupted cache: "the consumer has read everything" (it has read nothing).
    tx.cached_head = 4;
    let msg = panic_message(|| {
        let _ = tx.try_push(4);
    });
    assert!(
        msg.contains("writing position 4 over unread data (head 0)"),
        "{msg}"
    );
}

#[test]
#[cfg_attr(not(debug_assertions), ignore = "the invariant layer is compiled out")]
fn invariant_layer_stops_a_read_of_uncommitted_data() {
    let (_tx, mut rx) = spsc::<u64>(4).unwrap();
    // A corrupted cache: "two values are committed" (none is).
    rx.cached_tail = 2;
    let msg = panic_message(|| {
        let _ = rx.try_pop();
    });
    assert!(msg.contains("position 0 is read but its stamp"), "{msg}");
    // Nothing was read: the ring is still empty and whole.
    rx.cached_tail = 0;
    assert_eq!(rx.try_pop(), None);
}

#[test]
fn in_place_pushes_see_the_cells_last_value() {
    // Big enough to be a mapping of its own (see `buffer.rs`), small enough to wrap often.
    let (mut tx, mut rx) = spsc::<[u64; 8]>(64).unwrap();
    for lap in 0..3u64 {
        for i in 0..64u64 {
            let was = std::cell::Cell::new([u64::MAX; 8]);
            tx.try_push_in_place(|v| {
                was.set(*v);
                v[0] = lap * 100 + i;
            })
            .map_err(|_| ())
            .unwrap();
            // The first lap's cells are zeros; later ones hold what the lap before pushed
            // (only word 0 was written, so the rest stays zero throughout).
            let before = if lap == 0 { 0 } else { (lap - 1) * 100 + i };
            assert_eq!(
                was.get(),
                [before, 0, 0, 0, 0, 0, 0, 0],
                "lap {lap} cell {i}"
            );
        }
        // Full: the update comes back, not run, and can still be run by the caller.
        let back = tx.try_push_in_place(|v| v[0] = 7).unwrap_err().into_inner();
        let mut scratch = [0u64; 8];
        back(&mut scratch);
        assert_eq!(scratch[0], 7, "the full ring handed the update back");
        for i in 0..64u64 {
            assert_eq!(rx.try_pop().map(|v| v[0]), Some(lap * 100 + i));
        }
    }
}

#[test]
fn in_place_claims_see_the_cells_last_value() {
    let (mut tx, mut rx) = spsc::<u64>(4).unwrap();
    for lap in 0..3u64 {
        let mut claim = tx.claim(4).unwrap();
        for i in 0..4u64 {
            claim
                .push_in_place(|v| {
                    let before = if lap == 0 { 0 } else { (lap - 1) * 10 + i };
                    assert_eq!(*v, before, "lap {lap} cell {i}");
                    *v = lap * 10 + i;
                })
                .map_err(|_| ())
                .unwrap();
        }
        assert!(
            claim.push_in_place(|v| *v = 99).is_err(),
            "all claimed cells written"
        );
        claim.commit();
        let got: Vec<u64> = std::iter::from_fn(|| rx.try_pop()).collect();
        assert_eq!(got, (0..4).map(|i| lap * 10 + i).collect::<Vec<_>>());
    }
}

#[test]
fn a_panicking_in_place_update_pushes_nothing() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let (mut tx, mut rx) = spsc::<[u64; 2]>(4).unwrap();
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        let _ = tx.try_push_in_place(|v| {
            v[0] = 9;
            panic!("an update that panics (expected by the test)");
        });
    }));
    assert!(unwound.is_err());
    assert_eq!(rx.try_pop(), None, "nothing was pushed");
    // The next push to that cell sees what the update left.
    tx.try_push_in_place(|v| {
        assert_eq!(v[0], 9);
        v[1] = 1;
    })
    .map_err(|_| ())
    .unwrap();
    assert_eq!(rx.try_pop(), Some([9, 1]));
    // In a claim: the cells written before the panic are committed, the one that panicked is not.
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        let mut claim = tx.claim(3).unwrap();
        claim
            .push_in_place(|v| *v = [1, 1])
            .map_err(|_| ())
            .unwrap();
        let _ = claim.push_in_place(|_| panic!("an update that panics (expected by the test)"));
    }));
    assert!(unwound.is_err());
    assert_eq!(rx.try_pop(), Some([1, 1]));
    assert_eq!(rx.try_pop(), None);
}
