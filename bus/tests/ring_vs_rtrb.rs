//! Differential test: random operation sequences applied to the tracebus ring and to an
//! `rtrb::RingBuffer` of the same capacity give the same observable results.

use proptest::prelude::*;
use tracebus::ring;

#[derive(Debug, Clone)]
enum Op {
    Push,
    Pop,
    /// Write a batch of n values if n slots are free (both must agree whether they are).
    BatchWrite(usize),
    /// Read and release up to n values.
    BatchRead(usize),
    Len,
    Peek,
    CloseProducer,
    CloseConsumer,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Push),
        4 => Just(Op::Pop),
        2 => (0usize..12).prop_map(Op::BatchWrite),
        2 => (0usize..12).prop_map(Op::BatchRead),
        1 => Just(Op::Len),
        1 => Just(Op::Peek),
        1 => Just(Op::CloseProducer),
        1 => Just(Op::CloseConsumer),
    ]
}

proptest! {
    // 1024 cases; PROPTEST_CASES lowers or raises it (scripts/valgrind.sh lowers it).
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1024)
    ))]

    #[test]
    fn same_observable_results(cap_log in 0u32..4, ops in prop::collection::vec(op(), 0..300)) {
        // rtrb's capacity is exact and ours a power of two: compare at powers of two.
        let cap = 1usize << cap_log;
        let (t, r) = ring::spsc::<u32>(cap).unwrap();
        let (ot, or) = rtrb::RingBuffer::<u32>::new(cap);
        prop_assert_eq!(t.capacity(), cap);
        let (mut tx, mut rx, mut otx, mut orx) = (Some(t), Some(r), Some(ot), Some(or));
        let mut next = 0u32;
        for op in ops {
            match op {
                Op::Push => if let (Some(t), Some(o)) = (tx.as_mut(), otx.as_mut()) {
                    let ours = t.try_push(next).map_err(|f| f.into_inner());
                    let theirs = o.push(next).map_err(|rtrb::PushError::Full(v)| v);
                    prop_assert_eq!(ours, theirs);
                    next += 1;
                },
                Op::Pop => if let (Some(r), Some(o)) = (rx.as_mut(), orx.as_mut()) {
                    prop_assert_eq!(r.try_pop(), o.pop().ok());
                },
                Op::BatchWrite(n) => if let (Some(t), Some(o)) = (tx.as_mut(), otx.as_mut()) {
                    let values: Vec<u32> = (next..next + n as u32).collect();
                    match (t.claim(n), o.write_chunk_uninit(n)) {
                        (Ok(mut claim), Ok(chunk)) => {
                            for &v in &values {
                                claim.push(v).unwrap();
                            }
                            claim.commit();
                            prop_assert_eq!(chunk.fill_from_iter(values.iter().copied()), n);
                            next += n as u32;
                        }
                        (Err(e), Err(rtrb::chunks::ChunkError::TooFewSlots(free))) => {
                            prop_assert_eq!(e.available, free);
                            prop_assert_eq!(e.requested, n);
                        }
                        (ours, theirs) => prop_assert!(
                            false, "claim {}: ours ok={} rtrb ok={}", n, ours.is_ok(), theirs.is_ok()
                        ),
                    }
                },
                Op::BatchRead(n) => if let (Some(r), Some(o)) = (rx.as_mut(), orx.as_mut()) {
                    let chunk = r.read(n);
                    let ours: Vec<u32> = chunk.iter().copied().collect();
                    // The two runs from any index are the rest of the chunk, in order.
                    for from in 0..=chunk.len() {
                        let runs: Vec<u32> = chunk.runs_from(from).into_iter().flatten().copied().collect();
                        prop_assert_eq!(&runs[..], &ours[from..]);
                    }
                    chunk.release();
                    let k = n.min(o.slots());
                    let theirs: Vec<u32> = o.read_chunk(k).unwrap().into_iter().collect();
                    prop_assert_eq!(ours, theirs);
                },
                Op::Len => {
                    if let (Some(r), Some(o)) = (rx.as_ref(), orx.as_ref()) {
                        prop_assert_eq!(r.len(), o.slots());
                        prop_assert_eq!(r.is_empty(), o.is_empty());
                    }
                    if let (Some(t), Some(o)) = (tx.as_mut(), otx.as_ref()) {
                        prop_assert_eq!(t.free_slots(), o.slots());
                    }
                },
                Op::Peek => if let (Some(r), Some(o)) = (rx.as_mut(), orx.as_ref()) {
                    prop_assert_eq!(r.peek().copied(), o.peek().ok().copied());
                },
                Op::CloseProducer => { tx = None; otx = None; },
                Op::CloseConsumer => { rx = None; orx = None; },
            }
            if let (Some(r), Some(o)) = (rx.as_ref(), orx.as_ref()) {
                prop_assert_eq!(r.is_closed(), o.is_abandoned());
            }
            if let (Some(t), Some(o)) = (tx.as_ref(), otx.as_ref()) {
                prop_assert_eq!(t.is_closed(), o.is_abandoned());
            }
        }
        // Whatever is left drains identically.
        if let (Some(r), Some(o)) = (rx.as_mut(), orx.as_mut()) {
            let ours: Vec<u32> = std::iter::from_fn(|| r.try_pop()).collect();
            let theirs: Vec<u32> = std::iter::from_fn(|| o.pop().ok()).collect();
            prop_assert_eq!(ours, theirs);
        }
    }
}
