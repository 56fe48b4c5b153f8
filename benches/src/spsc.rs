//! The SPSC section of busbench: throughput and round-trip latency of every queue in
//! [`crate::peers`], each in its idiomatic best form, on two pinned cores with busy-spin waits,
//! plus the physical floor (a one-cache-line atomic ping-pong and memcpy bandwidth) measured in
//! the same run.
//!
//! Messages are one 64-byte cache line each: a tracebus `LineSlot` (header, metadata, payload
//! and the ring's stamp in one line) against [`Msg64`], a 64-byte, 64-aligned struct, for the
//! others. The sequence number travels in the payload and is checked by the harness.
//!
//! A row is a queue and a [`Mode`], the producer's API: "single" sends one message per call,
//! "batch" up to [`BATCH`] per call through the queue's batch API. In throughput runs the
//! consumer takes messages the fastest way its queue offers ([`Drain`]): everything available as
//! one in-place chunk where the queue has such an API (tracebus `read`, rtrb `read_chunk`; the
//! disruptor's processor thread, run by [`disruptor_throughput`], handles every available event
//! per cursor read), one `pop`/`try_recv` at a time where it has none. Round trips move one
//! message per call both ways ([`Mode::recv`] with `max` 1).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;

use crate::measure::median;
use crate::peers::{
    ArrayQueue, BatchQueue, Cores, CrossbeamChannel, Disruptor, Msg64, Named, Payload, Peer, Queue,
    Ring, Rtrb, SyncChannel, BATCH, CAPACITY,
};

/// Most messages a throughput consumer takes per call: everything available, as the
/// disruptor's processor does.
pub const DRAIN_MAX: usize = CAPACITY;

/// How the section's consumers take what is waiting, up to `max`, in throughput runs (and in
/// batch-mode round trips, with `max` 1): [`Queue::read`] for every queue but rtrb.
pub trait Drain: Queue {
    /// Receives what is waiting, up to `max`, passing each message to `f`; returns how many.
    #[inline(always)]
    fn drain(rx: &mut Self::Rx, max: usize, f: &mut impl FnMut(&Self::Msg)) -> usize {
        Self::read(rx, max, f)
    }
}

impl Drain for Ring {}
impl Drain for Disruptor<Msg64> {}
impl Drain for ArrayQueue<Msg64> {}
impl Drain for CrossbeamChannel<Msg64> {}
impl Drain for SyncChannel<Msg64> {}

/// rtrb's consumer here takes `min(max, slots())` as one `read_chunk` even when that is 0: an
/// empty chunk, whose `commit_all` stores the unchanged read index ([`Queue::read`] takes
/// nothing when no slot is filled).
impl Drain for Rtrb<Msg64> {
    #[inline(always)]
    fn drain(rx: &mut Self::Rx, max: usize, f: &mut impl FnMut(&Msg64)) -> usize {
        let n = max.min(rx.slots());
        match rx.read_chunk(n) {
            Ok(chunk) => {
                let (a, b) = chunk.as_slices();
                for m in a.iter().chain(b) {
                    f(m);
                }
                chunk.commit_all();
                n
            }
            Err(_) => 0,
        }
    }
}

/// The producer's API of a row, and the matching consumer call in round trips.
pub trait Mode<Q: Queue> {
    /// `"single"` (one message per call) or `"batch"`.
    const MODE: &'static str;
    /// Sends sequence numbers `start..start + k` for some `k <= max` without waiting; returns
    /// `k` (0 when full). Single mode sends at most one.
    fn send(tx: &mut Q::Tx, start: u64, max: usize) -> usize;
    /// Receives up to `max` messages without waiting, passing each sequence number to `f`;
    /// returns how many. Single mode receives at most one.
    fn recv(rx: &mut Q::Rx, max: usize, f: &mut impl FnMut(u64)) -> usize;
}

/// One message per call: [`Queue::try_send`] and [`Queue::try_recv`].
pub struct Single;

/// Up to [`BATCH`] messages per call: [`BatchQueue::try_send_batch`] and [`Drain::drain`].
pub struct Batch;

impl<Q: Queue> Mode<Q> for Single {
    const MODE: &'static str = "single";
    #[inline(always)]
    fn send(tx: &mut Q::Tx, start: u64, _max: usize) -> usize {
        usize::from(Q::try_send(tx, Q::Msg::make(start)).is_ok())
    }
    #[inline(always)]
    fn recv(rx: &mut Q::Rx, _max: usize, f: &mut impl FnMut(u64)) -> usize {
        Q::try_recv(rx, &mut |m| f(m.value()))
    }
}

impl<Q: BatchQueue + Drain> Mode<Q> for Batch {
    const MODE: &'static str = "batch";
    #[inline(always)]
    fn send(tx: &mut Q::Tx, start: u64, max: usize) -> usize {
        Q::try_send_batch(tx, start, max)
    }
    #[inline(always)]
    fn recv(rx: &mut Q::Rx, max: usize, f: &mut impl FnMut(u64)) -> usize {
        Q::drain(rx, max, &mut |m| f(m.value()))
    }
}

/// Messages per second through `Q`: one pinned producer sending in mode `M`, one pinned
/// consumer taking messages with [`Drain::drain`], busy-spin, every sequence number checked.
pub fn throughput<Q: Drain, M: Mode<Q>>(messages: u64) -> f64 {
    let (mut tx, mut rx) = Q::pair(CAPACITY);
    let cores = Cores::two();
    let start = Arc::new(Barrier::new(2));
    let go = start.clone();
    let consumer = thread::spawn(move || {
        cores.pin_consumer();
        go.wait();
        let mut expect = 0u64;
        let mut f = |seq: u64| {
            assert_eq!(seq, expect, "{} {}: out of order", Q::NAME, M::MODE);
            expect += 1;
        };
        let mut got = 0u64;
        while got < messages {
            let n = Q::drain(&mut rx, DRAIN_MAX, &mut |m| f(m.value()));
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
        cores.pin_publisher();
        start.wait();
        let t0 = Instant::now();
        send_all::<Q, M>(&mut tx, messages);
        (t0, tx)
    });
    let (t0, tx) = producer.join().expect("producer thread");
    let (t1, rx) = consumer.join().expect("consumer thread");
    // Both sides are dropped only after both have finished (the disruptor's shutdown needs it).
    drop(tx);
    drop(rx);
    messages as f64 / (t1 - t0).as_secs_f64()
}

/// Sends sequence numbers `0..messages` through `tx` in mode `M` (at most [`BATCH`] per call),
/// spinning while the queue is full.
#[inline(always)]
fn send_all<Q: Queue, M: Mode<Q>>(tx: &mut Q::Tx, messages: u64) {
    let mut sent = 0u64;
    while sent < messages {
        let max = BATCH.min((messages - sent) as usize);
        let n = M::send(tx, sent, max);
        if n == 0 {
            std::hint::spin_loop();
        }
        sent += n as u64;
    }
}

/// Messages per second through the disruptor in its idiomatic form: its processor thread
/// ([`Peer::start`]) pinned to the consumer core handles every event available per cursor read
/// (checking each sequence number and noting the time of the last), while a pinned producer
/// sends in mode `M` (`try_publish` or `try_batch_publish`).
pub fn disruptor_throughput<M: Mode<Disruptor<Msg64>>>(messages: u64) -> f64 {
    let cores = Cores::two();
    let end = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let done = end.clone();
    thread::spawn(move || {
        let mut expect = 0u64;
        let last = messages - 1;
        // Built before this thread pins itself (see `peers::Cores`).
        let mut tx = Disruptor::<Msg64>::new().start(CAPACITY, cores, messages, move |seq| {
            assert_eq!(
                seq,
                expect,
                "{} {}: out of order",
                Disruptor::<Msg64>::NAME,
                M::MODE
            );
            expect += 1;
            if seq == last {
                *done.lock().expect("not poisoned") = Some(Instant::now());
            }
        });
        cores.pin_publisher();
        let t0 = Instant::now();
        send_all::<Disruptor<Msg64>, M>(&mut tx, messages);
        // Stopping waits for the processor to handle every event and joins it.
        Disruptor::<Msg64>::stop(tx, || ());
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
/// nanoseconds. Every message is sent alone, with the calls of mode `M`.
pub fn round_trip<Q: Queue, M: Mode<Q>>(samples: u64) -> Histogram<u64> {
    let warmup = samples / 10 + 1_000;
    let total = warmup + samples;
    let (mut ping_tx, mut ping_rx) = Q::pair(CAPACITY);
    let (mut pong_tx, mut pong_rx) = Q::pair(CAPACITY);
    let cores = Cores::two();
    let echo = thread::spawn(move || {
        cores.pin_consumer();
        let mut echoed = 0u64;
        while echoed < total {
            let mut seq = None;
            while M::recv(&mut ping_rx, 1, &mut |s| seq = Some(s)) == 0 {
                std::hint::spin_loop();
            }
            let seq = seq.expect("one message received");
            while M::send(&mut pong_tx, seq, 1) == 0 {
                std::hint::spin_loop();
            }
            echoed += 1;
        }
        (ping_rx, pong_tx)
    });
    let pinger = thread::spawn(move || {
        cores.pin_publisher();
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
        for i in 0..total {
            let t0 = Instant::now();
            while M::send(&mut ping_tx, i, 1) == 0 {
                std::hint::spin_loop();
            }
            let mut back = None;
            while M::recv(&mut pong_rx, 1, &mut |s| back = Some(s)) == 0 {
                std::hint::spin_loop();
            }
            let ns = t0.elapsed().as_nanos() as u64;
            assert_eq!(back, Some(i), "{} {}: wrong echo", Q::NAME, M::MODE);
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
    let cores = Cores::two();
    let echo = thread::spawn(move || {
        cores.pin_consumer();
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
        cores.pin_publisher();
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

/// One row to measure: its queue, mode and form (as the report names them) and its runners.
struct Entry {
    queue: &'static str,
    mode: &'static str,
    form: &'static str,
    throughput: fn(u64) -> f64,
    round_trip: fn(u64) -> Histogram<u64>,
}

/// Queue `Q` in mode `M`, the producer / throughput consumer calls being `form`.
fn entry<Q: Drain, M: Mode<Q>>(form: &'static str) -> Entry {
    Entry {
        queue: Q::NAME,
        mode: M::MODE,
        form,
        throughput: throughput::<Q, M>,
        round_trip: round_trip::<Q, M>,
    }
}

/// The ring's rows are tracebus's: the table calls them "tracebus".
fn ring_entry<M: Mode<Ring>>(form: &'static str) -> Entry {
    Entry {
        queue: "tracebus",
        ..entry::<Ring, M>(form)
    }
}

/// The disruptor: throughput with its processor thread, round trips with its poller.
fn disruptor_entry<M: Mode<Disruptor<Msg64>>>(form: &'static str) -> Entry {
    Entry {
        throughput: disruptor_throughput::<M>,
        ..entry::<Disruptor<Msg64>, M>(form)
    }
}

/// The section's rows, in the order of its table.
fn entries() -> [Entry; 9] {
    [
        ring_entry::<Single>("try_push / read chunks"),
        ring_entry::<Batch>("claim_up_to(64) / read chunks"),
        entry::<Rtrb<Msg64>, Single>("push / read_chunk"),
        entry::<Rtrb<Msg64>, Batch>("write_chunk_uninit(64) / read_chunk"),
        disruptor_entry::<Single>("try_publish / handle_events_with"),
        disruptor_entry::<Batch>("try_batch_publish(64) / handle_events_with"),
        entry::<ArrayQueue<Msg64>, Single>("push / pop"),
        entry::<CrossbeamChannel<Msg64>, Single>("try_send / try_recv"),
        entry::<SyncChannel<Msg64>, Single>("try_send / try_recv"),
    ]
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
    let entries = entries();
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

    // Tiny runs: every row moves every message in order (the harness asserts it) and yields a
    // positive rate and a full histogram. No timing is asserted.
    #[test]
    fn every_row_moves_every_message() {
        for e in entries() {
            assert!((e.throughput)(20_000) > 0.0, "{} {}", e.queue, e.mode);
            assert_eq!((e.round_trip)(100).len(), 100, "{} {}", e.queue, e.mode);
        }
        assert_eq!(atomic_ping_pong(100).len(), 100);
    }

    // The names the JSON document carries (and the charts and docs/busbench.json use).
    #[test]
    fn row_names_and_order() {
        let names: Vec<(&str, &str)> = entries().iter().map(|e| (e.queue, e.mode)).collect();
        assert_eq!(
            names,
            [
                ("tracebus", "single"),
                ("tracebus", "batch"),
                ("rtrb", "single"),
                ("rtrb", "batch"),
                ("disruptor", "single"),
                ("disruptor", "batch"),
                ("crossbeam ArrayQueue", "single"),
                ("crossbeam-channel", "single"),
                ("std sync_channel", "single"),
            ]
        );
    }
}
