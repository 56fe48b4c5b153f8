//! The SPSC section of busbench: throughput and round-trip latency of every queue in
//! [`crate::queues`], each in its idiomatic best form (see that module), on two pinned cores
//! with busy-spin waits, plus the physical floor (a one-cache-line atomic ping-pong and memcpy
//! bandwidth) measured in the same run.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;

use crate::measure::median;
use crate::queues::{self, Msg64, Spsc};

/// Ring capacity for every queue.
pub const CAPACITY: usize = 4096;
/// Largest batch the batch APIs move per call.
pub const BATCH: usize = 64;
/// Most messages a throughput consumer takes per call: everything available, as the
/// disruptor's processor does.
pub const DRAIN_MAX: usize = CAPACITY;

/// Two distinct cores to pin producer and consumer to, if the machine has them.
pub fn two_cores() -> Option<[core_affinity::CoreId; 2]> {
    let ids = core_affinity::get_core_ids()?;
    match ids.as_slice() {
        [a, b, ..] => Some([*a, *b]),
        _ => None,
    }
}

/// Whether two threads can actually be pinned to the two cores the benchmarks use (each is
/// tried on a thread of its own, so the caller's affinity is left alone).
pub fn pinning_works() -> bool {
    let Some(cores) = two_cores() else {
        return false;
    };
    cores
        .into_iter()
        .map(|c| thread::spawn(move || pin(Some(c))))
        .collect::<Vec<_>>()
        .into_iter()
        .all(|h| h.join().unwrap_or(false))
}

/// Pins the current thread to `core` (if any); returns whether it worked.
pub fn pin(core: Option<core_affinity::CoreId>) -> bool {
    core.is_some_and(core_affinity::set_for_current)
}

/// Messages per second through `Q`: one pinned producer, one pinned consumer taking messages
/// with [`Spsc::drain`], busy-spin, every sequence number checked.
pub fn throughput<Q: Spsc>(messages: u64) -> f64 {
    let (mut tx, mut rx) = Q::pair(CAPACITY);
    let cores = two_cores();
    let start = Arc::new(Barrier::new(2));
    let go = start.clone();
    let consumer = thread::spawn(move || {
        pin(cores.map(|c| c[1]));
        go.wait();
        let mut expect = 0u64;
        let mut f = |seq: u64| {
            assert_eq!(seq, expect, "{} {}: out of order", Q::NAME, Q::MODE);
            expect += 1;
        };
        let mut got = 0u64;
        while got < messages {
            let n = Q::drain(&mut rx, DRAIN_MAX, &mut f);
            if n == 0 {
                for _ in 0..16 {
                    std::hint::spin_loop();
                }
            }
            got += n as u64;
        }
        (Instant::now(), rx)
    });
    let producer = thread::spawn(move || {
        pin(cores.map(|c| c[0]));
        start.wait();
        let t0 = Instant::now();
        send_all::<Q>(&mut tx, messages);
        (t0, tx)
    });
    let (t0, tx) = producer.join().expect("producer thread");
    let (t1, rx) = consumer.join().expect("consumer thread");
    // Both sides are dropped only after both have finished (the disruptor's shutdown needs it).
    drop(tx);
    drop(rx);
    messages as f64 / (t1 - t0).as_secs_f64()
}

/// Sends sequence numbers `0..messages` through `tx`, in `Q`'s form (at most [`BATCH`] per
/// call), spinning while the queue is full.
#[inline(always)]
fn send_all<Q: Spsc>(tx: &mut Q::Tx, messages: u64) {
    let mut sent = 0u64;
    while sent < messages {
        let max = BATCH.min((messages - sent) as usize);
        let n = Q::send(tx, sent, max);
        if n == 0 {
            std::hint::spin_loop();
        }
        sent += n as u64;
    }
}

/// Messages per second through the disruptor in its idiomatic form: a `handle_events_with`
/// processor thread pinned to the consumer core handles every event available per cursor read
/// (checking each sequence number and noting the time of the last), while a pinned producer
/// sends with `Q`'s API (`try_publish` or `try_batch_publish`).
pub fn disruptor_throughput<Q>(messages: u64) -> f64
where
    Q: Spsc<Tx = disruptor::SingleProducer<Msg64, disruptor::SingleConsumerBarrier>>,
{
    use disruptor::ProcessorSettings as _;
    let cores = two_cores();
    let end = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let done = end.clone();
    thread::spawn(move || {
        // Built before this thread pins itself: the disruptor checks the core it pins its
        // processor to against the calling thread's affinity.
        let builder =
            disruptor::build_single_producer(CAPACITY, Msg64::default, disruptor::BusySpin);
        let builder = match cores {
            Some(c) => builder.pin_at_core(c[1].id),
            None => builder,
        };
        let mut expect = 0u64;
        let last = messages - 1;
        let mut tx = builder
            .handle_events_with(move |e: &Msg64, _seq, _end_of_batch| {
                assert_eq!(e.seq, expect, "{} {}: out of order", Q::NAME, Q::MODE);
                expect += 1;
                if e.seq == last {
                    *done.lock().expect("not poisoned") = Some(Instant::now());
                }
            })
            .build();
        pin(cores.map(|c| c[0]));
        let t0 = Instant::now();
        send_all::<Q>(&mut tx, messages);
        // Dropping the producer waits for the processor to handle every event and joins it.
        drop(tx);
        let t1 = end
            .lock()
            .expect("not poisoned")
            .expect("last event handled");
        messages as f64 / (t1 - t0).as_secs_f64()
    })
    .join()
    .expect("disruptor producer thread")
}

/// Round trips through two `Q`s (ping and pong), `samples` of them after a warm-up, recorded in
/// nanoseconds. Every message is sent alone, with the queue's API of its mode.
pub fn round_trip<Q: Spsc>(samples: u64) -> Histogram<u64> {
    let warmup = samples / 10 + 1_000;
    let total = warmup + samples;
    let (mut ping_tx, mut ping_rx) = Q::pair(CAPACITY);
    let (mut pong_tx, mut pong_rx) = Q::pair(CAPACITY);
    let cores = two_cores();
    let echo = thread::spawn(move || {
        pin(cores.map(|c| c[1]));
        let mut echoed = 0u64;
        while echoed < total {
            let mut seq = None;
            while Q::recv(&mut ping_rx, 1, &mut |s| seq = Some(s)) == 0 {
                std::hint::spin_loop();
            }
            let seq = seq.expect("one message received");
            while Q::send(&mut pong_tx, seq, 1) == 0 {
                std::hint::spin_loop();
            }
            echoed += 1;
        }
        (ping_rx, pong_tx)
    });
    let pinger = thread::spawn(move || {
        pin(cores.map(|c| c[0]));
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
        for i in 0..total {
            let t0 = Instant::now();
            while Q::send(&mut ping_tx, i, 1) == 0 {
                std::hint::spin_loop();
            }
            let mut back = None;
            while Q::recv(&mut pong_rx, 1, &mut |s| back = Some(s)) == 0 {
                std::hint::spin_loop();
            }
            let ns = t0.elapsed().as_nanos() as u64;
            assert_eq!(back, Some(i), "{} {}: wrong echo", Q::NAME, Q::MODE);
            if i >= warmup {
                hist.saturating_record(ns.max(1));
            }
        }
        (hist, ping_tx, pong_rx)
    });
    let (hist, ping_tx, pong_rx) = pinger.join().expect("pinger thread");
    let (ping_rx, pong_tx) = echo.join().expect("echo thread");
    drop((ping_tx, ping_rx, pong_tx, pong_rx));
    hist
}

/// Cache lines holding one atomic each.
type Lines = Arc<Vec<CachePadded<AtomicU64>>>;

fn lines(n: usize) -> Lines {
    Arc::new(
        (0..n)
            .map(|_| CachePadded::new(AtomicU64::new(0)))
            .collect(),
    )
}

/// Round trip `i` stores `2i + 1` into `ping[i % len]`; the echo thread waits for it and stores
/// `2i + 2` into `pong[i % len]`, which the pinger waits for. `ping` and `pong` may be the same
/// lines.
fn ping_pong(samples: u64, ping: Lines, pong: Lines) -> Histogram<u64> {
    let warmup = samples / 10 + 1_000;
    let total = warmup + samples;
    let (ping_rx, pong_tx) = (ping.clone(), pong.clone());
    let cores = two_cores();
    let echo = thread::spawn(move || {
        pin(cores.map(|c| c[1]));
        for i in 0..total {
            let slot = i as usize % ping_rx.len();
            while ping_rx[slot].load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            pong_tx[slot].store(2 * i + 2, Ordering::Release);
        }
    });
    // The pinger runs on its own thread too: pinning the caller would leave every thread it
    // spawns later on the same core (Linux threads inherit their creator's affinity).
    let pinger = thread::spawn(move || {
        pin(cores.map(|c| c[0]));
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
        for i in 0..total {
            let slot = i as usize % ping.len();
            let t0 = Instant::now();
            ping[slot].store(2 * i + 1, Ordering::Release);
            while pong[slot].load(Ordering::Acquire) != 2 * i + 2 {
                std::hint::spin_loop();
            }
            if i >= warmup {
                hist.saturating_record((t0.elapsed().as_nanos() as u64).max(1));
            }
        }
        hist
    });
    let hist = pinger.join().expect("pinger thread");
    echo.join().expect("echo thread");
    hist
}

/// The floor of a round trip: two threads bounce one counter on one cache line.
pub fn atomic_ping_pong(samples: u64) -> Histogram<u64> {
    let line = lines(1);
    ping_pong(samples, line.clone(), line)
}

/// The floor of a round trip over two rings: the same ping-pong, but like two SPSC rings of
/// [`CAPACITY`] one-line slots, one per direction, with round trip `i` in line `i % CAPACITY`
/// of each (no indices, no payload: an atomic per line and nothing else). Any queue built
/// from two rings of that size pays what this pays; the one-line floor above is the best case
/// of one hot line whose home happens to be near both cores.
pub fn ring_shaped_ping_pong(samples: u64) -> Histogram<u64> {
    ping_pong(samples, lines(CAPACITY), lines(CAPACITY))
}

/// memcpy bandwidth within one core's caches, as 64-byte messages per second: a buffer the size
/// of a 4096-slot ring copied over and over.
pub fn memcpy_msgs_per_sec(copies: usize) -> f64 {
    let src = vec![Msg64::default(); CAPACITY];
    let mut dst = vec![Msg64::default(); CAPACITY];
    let t0 = Instant::now();
    for _ in 0..copies {
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
    }
    (copies * CAPACITY) as f64 / t0.elapsed().as_secs_f64()
}

/// Measured figures for one queue and API.
#[derive(Debug, Clone)]
pub struct Row {
    /// Queue name.
    pub queue: &'static str,
    /// `"single"` or `"batch"`.
    pub mode: &'static str,
    /// The calls used, producer / throughput consumer.
    pub form: &'static str,
    /// Median messages per second over the repetitions.
    pub msgs_per_sec: f64,
    /// Round-trip p50 in ns.
    pub p50: u64,
    /// Round-trip p99 in ns.
    pub p99: u64,
    /// Round-trip p99.9 in ns.
    pub p999: u64,
}

/// The floor measured in the same run.
#[derive(Debug, Clone)]
pub struct Floor {
    /// Atomic ping-pong round trip p50, ns.
    pub pingpong_p50: u64,
    /// Atomic ping-pong round trip p99, ns.
    pub pingpong_p99: u64,
    /// Ring-shaped ping-pong ([`ring_shaped_ping_pong`]) round trip p50, ns.
    pub ring_pingpong_p50: u64,
    /// Ring-shaped ping-pong round trip p99, ns.
    pub ring_pingpong_p99: u64,
    /// memcpy bandwidth in 64-byte messages per second.
    pub memcpy_msgs_per_sec: f64,
}

struct Entry {
    queue: &'static str,
    mode: &'static str,
    form: &'static str,
    throughput: fn(u64) -> f64,
    round_trip: fn(u64) -> Histogram<u64>,
}

fn entry<Q: Spsc>() -> Entry {
    Entry {
        queue: Q::NAME,
        mode: Q::MODE,
        form: Q::FORM,
        throughput: throughput::<Q>,
        round_trip: round_trip::<Q>,
    }
}

/// The disruptor: throughput with its processor thread, round trips with its poller.
fn disruptor_entry<Q>() -> Entry
where
    Q: Spsc<Tx = disruptor::SingleProducer<Msg64, disruptor::SingleConsumerBarrier>>,
{
    Entry {
        throughput: disruptor_throughput::<Q>,
        ..entry::<Q>()
    }
}

/// Runs every queue: `reps` throughput runs of `messages` each (interleaved across queues, so
/// a noisy moment hits all of them), then `samples` round trips each. `progress` gets a line
/// per step.
pub fn run(
    reps: usize,
    messages: u64,
    samples: u64,
    progress: &mut dyn FnMut(&str),
) -> (Vec<Row>, Floor) {
    let entries = [
        entry::<queues::TracebusSingle>(),
        entry::<queues::TracebusBatch>(),
        entry::<queues::RtrbSingle>(),
        entry::<queues::RtrbChunk>(),
        disruptor_entry::<queues::DisruptorSingle>(),
        disruptor_entry::<queues::DisruptorBatch>(),
        entry::<queues::CrossbeamArrayQueue>(),
        entry::<queues::CrossbeamChannel>(),
        entry::<queues::StdSyncChannel>(),
    ];
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); entries.len()];
    for rep in 0..reps {
        progress(&format!("spsc throughput: repetition {}/{reps}", rep + 1));
        for (e, r) in entries.iter().zip(&mut runs) {
            // The slowest peers move a tenth as many messages, to keep the run short.
            let n = if e.queue.starts_with("std") || e.queue.starts_with("crossbeam-channel") {
                messages / 10
            } else {
                messages
            };
            r.push((e.throughput)(n.max(1)));
        }
    }
    let mut rows = Vec::new();
    for (e, mut r) in entries.iter().zip(runs) {
        progress(&format!("spsc round trip: {} {}", e.queue, e.mode));
        let h = (e.round_trip)(samples);
        rows.push(Row {
            queue: e.queue,
            mode: e.mode,
            form: e.form,
            msgs_per_sec: median(&mut r),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
        });
    }
    progress("spsc floor: atomic ping-pong and memcpy");
    let h = atomic_ping_pong(samples);
    let ring = ring_shaped_ping_pong(samples);
    let mut copies: Vec<f64> = (0..reps.max(3))
        .map(|_| memcpy_msgs_per_sec(2_000))
        .collect();
    let floor = Floor {
        pingpong_p50: h.value_at_quantile(0.5),
        pingpong_p99: h.value_at_quantile(0.99),
        ring_pingpong_p50: ring.value_at_quantile(0.5),
        ring_pingpong_p99: ring.value_at_quantile(0.99),
        memcpy_msgs_per_sec: median(&mut copies),
    };
    (rows, floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tiny runs: every queue adapter moves every message in order (the harness asserts it)
    // and yields a positive rate and a full histogram. No timing is asserted.
    #[test]
    fn every_queue_moves_every_message() {
        for (name, f) in [
            (
                "tracebus single",
                throughput::<queues::TracebusSingle> as fn(u64) -> f64,
            ),
            ("tracebus batch", throughput::<queues::TracebusBatch>),
            ("rtrb", throughput::<queues::RtrbSingle>),
            ("rtrb chunk", throughput::<queues::RtrbChunk>),
            ("disruptor", disruptor_throughput::<queues::DisruptorSingle>),
            (
                "disruptor batch",
                disruptor_throughput::<queues::DisruptorBatch>,
            ),
            ("arrayqueue", throughput::<queues::CrossbeamArrayQueue>),
            ("channel", throughput::<queues::CrossbeamChannel>),
            ("std", throughput::<queues::StdSyncChannel>),
        ] {
            assert!(f(20_000) > 0.0, "{name}");
        }
        assert_eq!(round_trip::<queues::TracebusBatch>(100).len(), 100);
        assert_eq!(round_trip::<queues::DisruptorBatch>(100).len(), 100);
        assert_eq!(atomic_ping_pong(100).len(), 100);
    }
}
