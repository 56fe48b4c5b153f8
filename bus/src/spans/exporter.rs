//! The exporter thread: drains every recorder's ring, converts, batches, hands batches over.
//!
//! One thread per pipeline runs [`ExporterThread::run`], a polling loop:
//!
//! 1. Renew the clock anchor if it is a second old, then drain every registered ring: copy up
//!    to a batch of records out (one `Release` store of the ring's `head` per chunk, so
//!    producers get their cells back before any conversion), convert them into the pending
//!    batch, hand the batch to the target whenever it is full.
//!    A ring whose recorder is gone (`is_closed`, checked before `is_empty`, so every record it
//!    committed has been seen) is dropped from the list.
//! 2. Hand over a partial batch once its oldest span has waited `interval`.
//! 3. Wait for a control message (a new recorder's ring, or shutdown) for `poll_interval`, or
//!    not at all when the last pass found a full batch or more (records are streaming in), or
//!    8 times longer once 64 passes in a row found nothing (an idle bus).
//!
//! Shutdown takes every ring registered before it (the pipeline's lock orders registrations
//! before the shutdown message), drains each (at most its capacity more records, so a recorder
//! still running cannot keep the thread going forever), hands over what is pending, flushes
//! the target and shuts it down if asked to (and if no other pipeline shares it). Every call
//! into the target goes through a `Sink`, which catches errors and panics and cancels an
//! export still pending at the export timeout; the counts are published to the pipeline after
//! each hand-over. A thread the pipeline abandoned at its shutdown deadline (stuck in a target
//! that blocks) makes no further call into the target and publishes no further counts once it
//! gets back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::Resource;

use super::clock::WallClock;
use super::config::SpanExport;
use super::convert::{Converter, TopicNames};
use super::record::SpanRecord;
use super::sink::{SharedTarget, Tally};
use crate::ring::Consumer;

/// What the pipeline tells its exporter thread.
pub(crate) enum Control {
    /// Drain this ring too (a new recorder's consumer side).
    Register(Consumer<SpanRecord>),
    /// Drain everything, hand it over, flush, stop.
    Shutdown,
}

/// The exporter thread's counts, for the pipeline to read while it runs. The thread is the
/// only writer; it stores with `Relaxed` (counts publish nothing else), readers load `Relaxed`.
#[derive(Debug, Default)]
pub(crate) struct PublishedTally {
    pub(crate) exported: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    /// Set by the pipeline when it stops waiting for this thread (its shutdown deadline
    /// passed); from then on the thread calls nothing and stores no count.
    pub(crate) abandoned: AtomicBool,
}

impl PublishedTally {
    /// Stores `t` (from the one writer).
    pub(crate) fn store(&self, t: &Tally) {
        self.exported.store(t.exported, Ordering::Relaxed);
        self.failed.store(t.failed, Ordering::Relaxed);
        self.errors.store(t.errors, Ordering::Relaxed);
        self.panics.store(t.panics, Ordering::Relaxed);
        self.timeouts.store(t.timeouts, Ordering::Relaxed);
    }

    /// Whether the pipeline has left this thread behind (`Acquire`: pairs with its `Release`
    /// store, after which the pipeline's counts are final).
    pub(crate) fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Acquire)
    }

    /// The last counts stored.
    pub(crate) fn load(&self) -> Tally {
        Tally {
            exported: self.exported.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
        }
    }
}

/// Everything the exporter thread owns.
pub(crate) struct ExporterThread {
    /// New rings and the shutdown request.
    control: Receiver<Control>,
    /// The rings to drain, one per live recorder (and closed ones until drained).
    rings: Vec<Consumer<SpanRecord>>,
    /// Records to `SpanData`.
    converter: Converter,
    /// The user's exporter or processor.
    target: Arc<SharedTarget>,
    /// Given to the target before the first span.
    resource: Resource,
    /// Spans per hand-over; at least 1.
    batch_size: usize,
    /// Longest wait of a pending span before a partial batch is handed over.
    interval: Duration,
    /// Sleep between passes that found little.
    poll_interval: Duration,
    /// Whether shutdown ends with the target's `shutdown`.
    shutdown_target: bool,
    /// Longest an export call may stay pending.
    export_timeout: Duration,
    /// Where the counts are published.
    published: Arc<PublishedTally>,
    /// Converted spans not handed over yet; fewer than `batch_size` between passes.
    pending: Vec<SpanData>,
    /// When the oldest pending span was converted.
    pending_since: Option<Instant>,
    /// Records copied out of a ring, before conversion (reused, never grows past a batch).
    scratch: Vec<SpanRecord>,
    /// Consecutive passes that found no record.
    empty_passes: u32,
    /// Counts so far.
    tally: Tally,
    /// A small allocation kept above the batches' memory; see [`HeapGuard`].
    heap_guard: HeapGuard,
}

/// Keeps the allocator from giving the batches' memory back to the OS after every batch.
///
/// Each batch is allocated piece by piece (the `SpanData` vector, then each span's attributes)
/// and freed all at once by the target, and the same amount is allocated again for the next
/// batch. With glibc's malloc, memory freed at the top of the heap (or of a thread's arena)
/// is returned to the OS once more than its trim threshold is free there (twice the largest
/// large block freed so far: about two batch vectors, which one batch of spans nearly fills),
/// and the next batch faults it back in page by page. Measured on the span_cost benchmark
/// (the exporter's code on the main thread, whose heap grows with `brk`): one `brk` shrink and
/// grow and about 22 page faults per batch of 512, which doubled the exporter's time per span
/// (70 to 140 ns), or not at all, depending on what the process had allocated before. The
/// real exporter thread has an arena of its own and the benchmarks did not show it trimming
/// there, but the same rule applies to it. A small block allocated after a batch's vector,
/// and kept, sits above that memory, so what the target frees stays free inside the heap and
/// is reused by the next batch. The guard is renewed (one 64-byte allocation per batch) only
/// while it is not above the newest batch vector. Other allocators are not harmed by it.
#[derive(Debug, Default)]
struct HeapGuard(Option<Box<[u64; 8]>>);

impl HeapGuard {
    /// Called with the batch vector just allocated: keeps (or takes) a block above it.
    #[inline]
    fn keep_above(&mut self, batch: *const SpanData) {
        let above = |g: &[u64; 8]| (g as *const [u64; 8]).addr() > batch.addr();
        if !self.0.as_deref().is_some_and(above) {
            // The new block first, then the old one freed: the new one cannot take its place.
            let new = Box::new([0; 8]);
            self.0 = Some(new);
        }
    }
}

/// Empty passes after which the thread sleeps [`IDLE_FACTOR`] times longer: an idle bus's
/// exporter thread then wakes 125 times a second instead of 1,000 (at the default 1 ms poll,
/// measured: 2.2% of a core idle, about 0.3% after). The first record found brings the poll
/// interval back; a burst right after an idle spell has `IDLE_FACTOR` poll intervals to fit
/// in the rings.
const IDLE_PASSES: u32 = 64;
/// How much longer an idle exporter thread sleeps.
const IDLE_FACTOR: u32 = 8;

impl std::fmt::Debug for ExporterThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExporterThread")
            .field("rings", &self.rings.len())
            .field("target", &self.target)
            .field("batch_size", &self.batch_size)
            .field("pending", &self.pending.len())
            .field("tally", &self.tally)
            .finish_non_exhaustive()
    }
}

impl ExporterThread {
    /// The thread's state for a validated `config`; it learns of rings and shutdown through
    /// `control` and publishes its counts in `published`.
    pub(crate) fn new(
        config: SpanExport,
        names: TopicNames,
        control: Receiver<Control>,
        published: Arc<PublishedTally>,
    ) -> ExporterThread {
        let SpanExport {
            target,
            batch_size,
            interval,
            poll_interval,
            ring_capacity: _,
            resource,
            scope,
            shutdown_target,
            export_timeout,
            shutdown_timeout: _,
        } = config;
        target.join();
        ExporterThread {
            control,
            rings: Vec::new(),
            converter: Converter::new(WallClock::calibrate(), names, scope),
            target,
            resource,
            batch_size,
            interval,
            poll_interval,
            shutdown_target,
            export_timeout,
            published,
            pending: Vec::with_capacity(batch_size),
            pending_since: None,
            scratch: Vec::with_capacity(batch_size),
            empty_passes: 0,
            tally: Tally::default(),
            heap_guard: HeapGuard::default(),
        }
    }

    /// Adds a ring to drain (what a `Control::Register` does; for the benchmarks, which
    /// drive the thread's work on their own thread).
    #[cfg(feature = "test-util")]
    pub(crate) fn register(&mut self, ring: Consumer<SpanRecord>) {
        self.rings.push(ring);
    }

    /// The counts so far (for the benchmarks).
    #[cfg(feature = "test-util")]
    pub(crate) fn tally(&self) -> Tally {
        self.tally
    }

    /// Runs until shutdown; returns the final counts.
    pub(crate) fn run(mut self) -> Tally {
        self.target
            .lock()
            .set_resource(&self.resource, &mut self.tally);
        loop {
            let found = self.drain_all(None);
            if self
                .pending_since
                .is_some_and(|t| t.elapsed() >= self.interval)
            {
                self.hand_over();
            }
            self.empty_passes = if found == 0 {
                self.empty_passes.saturating_add(1)
            } else {
                0
            };
            let mut wait = if found >= self.batch_size {
                Duration::ZERO
            } else if self.empty_passes >= IDLE_PASSES {
                self.poll_interval * IDLE_FACTOR
            } else {
                self.poll_interval
            };
            if let Some(since) = self.pending_since {
                wait = wait.min(self.interval.saturating_sub(since.elapsed()));
            }
            let message = if wait.is_zero() {
                match self.control.try_recv() {
                    Ok(m) => Some(m),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => Some(Control::Shutdown),
                }
            } else {
                match self.control.recv_timeout(wait) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => Some(Control::Shutdown),
                }
            };
            match message {
                Some(Control::Register(ring)) => self.rings.push(ring),
                Some(Control::Shutdown) => break,
                None => {}
            }
        }
        self.finish()
    }

    /// The last pass: every ring registered so far, drained; everything handed over; the
    /// target flushed (and shut down if asked).
    fn finish(mut self) -> Tally {
        while let Ok(m) = self.control.try_recv() {
            if let Control::Register(ring) = m {
                self.rings.push(ring);
            }
        }
        let limits: Vec<usize> = self.rings.iter().map(Consumer::capacity).collect();
        self.drain_all(Some(&limits));
        self.hand_over();
        if self.published.is_abandoned() {
            return self.tally;
        }
        // Under the target's lock: the pipeline that leaves last makes the last calls.
        let mut target = self.target.lock();
        target.force_flush(&mut self.tally);
        if self.target.leave() && self.shutdown_target {
            target.shutdown(&mut self.tally);
        }
        drop(target);
        if !self.published.is_abandoned() {
            self.published.store(&self.tally);
        }
        self.tally
    }

    /// Drains every ring (ring `i` up to `limits[i]` records when limits are given, else
    /// until empty); returns how many records were taken. Rings of recorders that are gone
    /// are dropped once empty.
    pub(crate) fn drain_all(&mut self, limits: Option<&[usize]>) -> usize {
        self.converter.reanchor_if_due();
        let mut found = 0;
        for i in 0..self.rings.len() {
            let mut left = limits.map_or(usize::MAX, |l| l[i]);
            while left > 0 {
                let room = (self.batch_size - self.pending.len()).min(left);
                let chunk = self.rings[i].read(room);
                if chunk.is_empty() {
                    break;
                }
                self.scratch.extend(chunk.iter().copied());
                // Release the cells before converting: the recorder gets them back at once.
                chunk.release();
                let n = self.scratch.len();
                found += n;
                left -= n;
                if self.pending.is_empty() {
                    self.pending_since = Some(Instant::now());
                }
                // `extend` over a slice writes each `SpanData` (352 bytes) straight into the
                // batch, where a `push` per record builds it on the stack and copies it.
                let converter = &mut self.converter;
                self.pending
                    .extend(self.scratch.iter().map(|r| converter.convert(r)));
                self.scratch.clear();
                if self.pending.len() >= self.batch_size {
                    self.hand_over();
                }
            }
        }
        // `is_closed` (Acquire, after the recorder's last commit) before `is_empty`: a closed
        // ring found empty has nothing left to give.
        self.rings.retain(|r| !(r.is_closed() && r.is_empty()));
        found
    }

    /// Hands the pending spans to the target, if any, and publishes the counts (neither once
    /// the pipeline abandoned this thread: the spans are counted there).
    pub(crate) fn hand_over(&mut self) {
        self.pending_since = None;
        if self.pending.is_empty() || self.published.is_abandoned() {
            return;
        }
        let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(self.batch_size));
        // After the next batch's vector, before this batch is freed (see `HeapGuard`).
        self.heap_guard.keep_above(self.pending.as_ptr());
        self.target
            .lock()
            .export(batch, &mut self.tally, self.export_timeout);
        if !self.published.is_abandoned() {
            self.published.store(&self.tally);
        }
    }
}
