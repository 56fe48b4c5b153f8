//! The SPSC queues busbench compares, behind one small trait so every queue runs the same
//! throughput and round-trip code.
//!
//! Messages are one 64-byte cache line each: a tracebus `LineSlot` (header, metadata, payload
//! and the ring's stamp in one line) against a 64-byte, 64-aligned struct for the others. The
//! sequence number travels in the payload and is checked by the harness.
//!
//! Every queue is measured in its idiomatic best form. The mode is the producer's API: "single"
//! sends one message per call, "batch" up to [`crate::spsc::BATCH`] per call through the
//! queue's batch API. In throughput runs the consumer takes messages the fastest way its queue
//! offers ([`Spsc::drain`]): everything available as one in-place chunk where the queue has
//! such an API (tracebus `read`, rtrb `read_chunk`; the disruptor's processor thread, run by
//! [`crate::spsc::disruptor_throughput`], handles every available event per cursor read),
//! one `pop`/`try_recv` at a time where it has none. Round trips move one message per call both
//! ways ([`Spsc::recv`] with `max` 1).

use crossbeam_queue::ArrayQueue;
use disruptor::{
    BusySpin, EventPoller, Polling, Producer as _, SingleConsumerBarrier, SingleProducer,
    SingleProducerBarrier,
};
use tracebus::ring;
use tracebus::slot::LineSlot;

/// The 64-byte message the peers carry.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
pub struct Msg64 {
    /// Sequence number.
    pub seq: u64,
    /// Filler up to 64 bytes.
    pub pad: [u64; 7],
}

const _: () = assert!(core::mem::size_of::<Msg64>() == 64);
const _: () = assert!(core::mem::size_of::<LineSlot>() <= tracebus::slot::CACHE_LINE - 8);

#[inline(always)]
fn msg(seq: u64) -> Msg64 {
    Msg64 { seq, pad: [0; 7] }
}

/// One SPSC queue under test.
pub trait Spsc {
    /// Queue name in the report.
    const NAME: &'static str;
    /// The producer's API: `"single"` (one message per call) or `"batch"`.
    const MODE: &'static str;
    /// The calls used, producer / throughput consumer, for the report.
    const FORM: &'static str;
    /// Sending side.
    type Tx: Send + 'static;
    /// Receiving side.
    type Rx: Send + 'static;
    /// A queue of at least `capacity` messages.
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx);
    /// Sends sequence numbers `start..start + k` for some `k <= max` without waiting; returns
    /// `k` (0 when full). Single-mode queues send at most one.
    fn send(tx: &mut Self::Tx, start: u64, max: usize) -> usize;
    /// Receives up to `max` messages without waiting, passing each sequence number to `f`;
    /// returns how many. Single-mode queues receive at most one.
    fn recv(rx: &mut Self::Rx, max: usize, f: &mut impl FnMut(u64)) -> usize;
    /// Receives what is waiting, up to `max`, the fastest way the queue offers (by default
    /// [`Spsc::recv`]); returns how many. Throughput runs use this.
    #[inline(always)]
    fn drain(rx: &mut Self::Rx, max: usize, f: &mut impl FnMut(u64)) -> usize {
        Self::recv(rx, max, f)
    }
}

/// tracebus's consumer in its best form: up to `max` values in place, released together.
#[inline(always)]
fn tracebus_read(rx: &mut ring::Consumer<LineSlot>, max: usize, f: &mut impl FnMut(u64)) -> usize {
    let chunk = rx.read(max);
    for s in chunk.iter() {
        f(*s.payload::<u64>());
    }
    chunk.len()
}

/// rtrb's consumer in its best form: up to `max` available values as one `read_chunk`.
#[inline(always)]
fn rtrb_read(rx: &mut rtrb::Consumer<Msg64>, max: usize, f: &mut impl FnMut(u64)) -> usize {
    let n = max.min(rx.slots());
    match rx.read_chunk(n) {
        Ok(chunk) => {
            let (a, b) = chunk.as_slices();
            for m in a.iter().chain(b) {
                f(m.seq);
            }
            chunk.commit_all();
            n
        }
        Err(_) => 0,
    }
}

/// tracebus ring, `try_push`; `read` chunks (throughput) or `try_pop` (round trips).
pub struct TracebusSingle;
impl Spsc for TracebusSingle {
    const NAME: &'static str = "tracebus";
    const MODE: &'static str = "single";
    const FORM: &'static str = "try_push / read chunks";
    type Tx = ring::Producer<LineSlot>;
    type Rx = ring::Consumer<LineSlot>;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        ring::spsc(capacity).expect("valid capacity")
    }
    #[inline(always)]
    fn send(tx: &mut Self::Tx, start: u64, _max: usize) -> usize {
        usize::from(tx.try_push(LineSlot::new(0, None, None, &start)).is_ok())
    }
    #[inline(always)]
    fn recv(rx: &mut Self::Rx, _max: usize, f: &mut impl FnMut(u64)) -> usize {
        match rx.try_pop() {
            Some(s) => {
                f(*s.payload::<u64>());
                1
            }
            None => 0,
        }
    }
    #[inline(always)]
    fn drain(rx: &mut Self::Rx, max: usize, f: &mut impl FnMut(u64)) -> usize {
        tracebus_read(rx, max, f)
    }
}

/// tracebus ring, batch claim/commit and in-place batch read/release.
pub struct TracebusBatch;
impl Spsc for TracebusBatch {
    const NAME: &'static str = "tracebus";
    const MODE: &'static str = "batch";
    const FORM: &'static str = "claim_up_to(64) / read chunks";
    type Tx = ring::Producer<LineSlot>;
    type Rx = ring::Consumer<LineSlot>;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        ring::spsc(capacity).expect("valid capacity")
    }
    #[inline(always)]
    fn send(tx: &mut Self::Tx, start: u64, max: usize) -> usize {
        let mut claim = tx.claim_up_to(max);
        let n = claim.len();
        for i in 0..n as u64 {
            let _ = claim.push(LineSlot::new(0, None, None, &(start + i)));
        }
        n
    }
    #[inline(always)]
    fn recv(rx: &mut Self::Rx, max: usize, f: &mut impl FnMut(u64)) -> usize {
        tracebus_read(rx, max, f)
    }
}

/// rtrb's chunk API (`write_chunk_uninit` / `read_chunk`).
pub struct RtrbChunk;
impl Spsc for RtrbChunk {
    const NAME: &'static str = "rtrb";
    const MODE: &'static str = "batch";
    const FORM: &'static str = "write_chunk_uninit(64) / read_chunk";
    type Tx = rtrb::Producer<Msg64>;
    type Rx = rtrb::Consumer<Msg64>;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        rtrb::RingBuffer::new(capacity)
    }
    #[inline(always)]
    fn send(tx: &mut Self::Tx, start: u64, max: usize) -> usize {
        let n = max.min(tx.slots());
        match tx.write_chunk_uninit(n) {
            Ok(chunk) => chunk.fill_from_iter((start..start + n as u64).map(msg)),
            Err(_) => 0,
        }
    }
    #[inline(always)]
    fn recv(rx: &mut Self::Rx, max: usize, f: &mut impl FnMut(u64)) -> usize {
        rtrb_read(rx, max, f)
    }
}

/// A peer with a one-message-per-call producer API: `$push` sends `$v` (true on success),
/// `$pop` returns `Option<Msg64>`; `$drain`, if given, is the throughput consumer.
macro_rules! single_queue {
    ($(#[$doc:meta])* $name:ident, $label:literal, $form:literal, $tx:ty, $rx:ty,
     |$cap:ident| $pair:expr, |$t:ident, $v:ident| $push:expr, |$r:ident| $pop:expr
     $(, drain: $drain:path)?) => {
        $(#[$doc])*
        pub struct $name;
        impl Spsc for $name {
            const NAME: &'static str = $label;
            const MODE: &'static str = "single";
            const FORM: &'static str = $form;
            type Tx = $tx;
            type Rx = $rx;
            fn pair($cap: usize) -> (Self::Tx, Self::Rx) {
                $pair
            }
            #[inline(always)]
            fn send($t: &mut Self::Tx, start: u64, _max: usize) -> usize {
                let $v = msg(start);
                usize::from($push)
            }
            #[inline(always)]
            fn recv($r: &mut Self::Rx, _max: usize, f: &mut impl FnMut(u64)) -> usize {
                match $pop {
                    Some(m) => {
                        f(m.seq);
                        1
                    }
                    None => 0,
                }
            }
            $(
                #[inline(always)]
                fn drain(rx: &mut Self::Rx, max: usize, f: &mut impl FnMut(u64)) -> usize {
                    $drain(rx, max, f)
                }
            )?
        }
    };
}

single_queue!(
    /// rtrb, `push`; `read_chunk` (throughput) or `pop` (round trips).
    RtrbSingle, "rtrb", "push / read_chunk", rtrb::Producer<Msg64>, rtrb::Consumer<Msg64>,
    |capacity| rtrb::RingBuffer::new(capacity),
    |tx, m| tx.push(m).is_ok(),
    |rx| rx.pop().ok(),
    drain: rtrb_read
);

single_queue!(
    /// crossbeam `ArrayQueue` (a bounded MPMC queue), `push` / `pop`.
    CrossbeamArrayQueue, "crossbeam ArrayQueue", "push / pop",
    std::sync::Arc<ArrayQueue<Msg64>>, std::sync::Arc<ArrayQueue<Msg64>>,
    |capacity| {
        let q = std::sync::Arc::new(ArrayQueue::new(capacity));
        (q.clone(), q)
    },
    |tx, m| tx.push(m).is_ok(),
    |rx| rx.pop()
);

single_queue!(
    /// crossbeam-channel `bounded`, `try_send` / `try_recv`.
    CrossbeamChannel, "crossbeam-channel", "try_send / try_recv",
    crossbeam_channel::Sender<Msg64>, crossbeam_channel::Receiver<Msg64>,
    |capacity| crossbeam_channel::bounded(capacity),
    |tx, m| tx.try_send(m).is_ok(),
    |rx| rx.try_recv().ok()
);

single_queue!(
    /// std `sync_channel`, `try_send` / `try_recv`.
    StdSyncChannel, "std sync_channel", "try_send / try_recv",
    std::sync::mpsc::SyncSender<Msg64>, std::sync::mpsc::Receiver<Msg64>,
    |capacity| std::sync::mpsc::sync_channel(capacity),
    |tx, m| tx.try_send(m).is_ok(),
    |rx| rx.try_recv().ok()
);

/// The `disruptor` crate's single producer with an event poller on the consumer thread: the
/// form round trips use (the pinger must receive on its own thread). Throughput runs use the
/// disruptor's processor thread instead ([`crate::spsc::disruptor_throughput`]).
type DisruptorTx = SingleProducer<Msg64, SingleConsumerBarrier>;
type DisruptorRx = EventPoller<Msg64, SingleProducerBarrier>;

fn disruptor_pair(capacity: usize) -> (DisruptorTx, DisruptorRx) {
    let builder = disruptor::build_single_producer(capacity, Msg64::default, BusySpin);
    let (poller, builder) = builder.new_event_poller();
    (builder.build(), poller)
}

fn disruptor_recv(rx: &mut DisruptorRx, max: usize, f: &mut impl FnMut(u64)) -> usize {
    match rx.take(max as u64) {
        Ok(mut events) => {
            let mut n = 0;
            for e in &mut events {
                f(e.seq);
                n += 1;
            }
            n
        }
        Err(Polling::NoEvents) | Err(Polling::Shutdown) => 0,
    }
}

/// disruptor, `try_publish` (one event per call); round trips poll one event per call.
pub struct DisruptorSingle;
impl Spsc for DisruptorSingle {
    const NAME: &'static str = "disruptor";
    const MODE: &'static str = "single";
    const FORM: &'static str = "try_publish / handle_events_with";
    type Tx = DisruptorTx;
    type Rx = DisruptorRx;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        disruptor_pair(capacity)
    }
    #[inline(always)]
    fn send(tx: &mut Self::Tx, start: u64, _max: usize) -> usize {
        usize::from(tx.try_publish(|e| e.seq = start).is_ok())
    }
    #[inline(always)]
    fn recv(rx: &mut Self::Rx, _max: usize, f: &mut impl FnMut(u64)) -> usize {
        disruptor_recv(rx, 1, f)
    }
}

/// disruptor, `try_batch_publish`; round trips poll one event per call.
pub struct DisruptorBatch;
impl Spsc for DisruptorBatch {
    const NAME: &'static str = "disruptor";
    const MODE: &'static str = "batch";
    const FORM: &'static str = "try_batch_publish(64) / handle_events_with";
    type Tx = DisruptorTx;
    type Rx = DisruptorRx;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        disruptor_pair(capacity)
    }
    #[inline(always)]
    fn send(tx: &mut Self::Tx, start: u64, max: usize) -> usize {
        let ok = tx.try_batch_publish(max, |iter| {
            for (i, e) in iter.enumerate() {
                e.seq = start + i as u64;
            }
        });
        if ok.is_ok() {
            max
        } else {
            0
        }
    }
    #[inline(always)]
    fn recv(rx: &mut Self::Rx, max: usize, f: &mut impl FnMut(u64)) -> usize {
        disruptor_recv(rx, max, f)
    }
}
