//! `SpanPipeline`: a bus's span pipeline as one handle (start, hand out recorders, read counts,
//! shut down), and `SpanCounts`, what it reports.
//!
//! The handle owns the exporter thread. Making a recorder (a cold path: once per endpoint or
//! worker) takes the handle's lock, makes a ring, keeps the recorder's drop counter and sends
//! the ring's consumer to the exporter thread over a channel, all under the lock; shutdown
//! marks the pipeline closed and sends the shutdown message under the same lock, so every ring
//! handed out is registered before the thread sees shutdown and is drained by it. Drop counters
//! of recorders that are gone are folded into one sum (`Arc::try_unwrap`, whose `Acquire`
//! sees the recorder's last store), so the list grows only with live recorders.
//!
//! Shutdown waits for the exporter thread's last pass for at most the configured shutdown
//! timeout. A thread still busy then (inside a target that blocks) is left behind: the
//! pipeline marks it abandoned, freezes the counts, and counts as `abandoned` every span
//! recorded (the recorders' rings' positions, read through a `Monitor` of each) and neither
//! exported nor failed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::config::{SpanExport, SpanExportError};
use super::convert::TopicNames;
use super::exporter::{Control, ExporterThread, PublishedTally};
use super::record::SpanRecord;
use super::recorder::Recorder;
use super::sink::Tally;
use crate::ring::Monitor;

/// What a span pipeline did: read any time with the bus's report, final after shutdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpanCounts {
    /// Spans the exporter or processor accepted.
    pub exported: u64,
    /// Spans dropped on the hot path because their recorder's ring was full.
    pub dropped: u64,
    /// Spans lost in an export call that returned an error or panicked.
    pub failed: u64,
    /// Calls into the exporter or processor (export, flush, shutdown) that returned an error.
    pub export_errors: u64,
    /// Calls into the exporter or processor that panicked (caught on the exporter thread).
    pub exporter_panics: u64,
    /// Export calls still pending at [`SpanExport::export_timeout`](crate::SpanExport::export_timeout),
    /// cancelled (their spans are counted in `failed`).
    pub export_timeouts: u64,
    /// Spans recorded but neither exported nor failed when shutdown stopped waiting for the
    /// exporter thread ([`SpanExport::shutdown_timeout`](crate::SpanExport::shutdown_timeout)):
    /// the target blocked. 0 whenever shutdown finished exporting.
    pub abandoned: u64,
}

/// The state recorders are registered under.
struct Registry {
    /// Set once, by shutdown; no recorder is made after.
    closed: bool,
    /// To the exporter thread.
    control: Sender<Control>,
    /// Drops counted by recorders that are gone.
    dropped_gone: u64,
    /// Spans recorded (pushed into their rings) by recorders that are gone.
    recorded_gone: u64,
    /// Drop counters of recorders that may still be alive (each written by its recorder only),
    /// with a monitor of each one's ring.
    counters: Vec<(Arc<AtomicU64>, Monitor<SpanRecord>)>,
}

impl Registry {
    /// Folds the counters of recorders that are gone into `dropped_gone` and `recorded_gone`.
    fn prune(&mut self) {
        let mut live = Vec::with_capacity(self.counters.len());
        for (c, ring) in self.counters.drain(..) {
            // `try_unwrap` succeeds only for the last owner and synchronises with the
            // recorder's drop (Release/Acquire), which comes after its ring's last push: the
            // final counts are read.
            match Arc::try_unwrap(c) {
                Ok(gone) => {
                    self.dropped_gone += gone.into_inner();
                    self.recorded_gone += ring.pushed() as u64;
                }
                Err(c) => live.push((c, ring)),
            }
        }
        self.counters = live;
    }

    /// Spans recorded so far (pushed into a ring), by every recorder.
    fn recorded(&self) -> u64 {
        self.recorded_gone
            + self
                .counters
                .iter()
                .map(|(_, ring)| ring.pushed() as u64)
                .sum::<u64>()
    }

    fn dropped(&self) -> u64 {
        // Relaxed: counts; a recorder still running may add more right after.
        self.dropped_gone
            + self
                .counters
                .iter()
                .map(|(c, _)| c.load(Ordering::Relaxed))
                .sum::<u64>()
    }
}

/// A bus's span pipeline: the exporter thread and the recorders that feed it.
///
/// `Sync`: the bus can keep it in its shared state and make recorders from any thread.
pub(crate) struct SpanPipeline {
    /// Registration state; locked to make a recorder, to read counts, and at shutdown.
    registry: Mutex<Registry>,
    /// The exporter thread until shutdown joins it.
    thread: Mutex<Option<JoinHandle<Tally>>>,
    /// The exporter thread's counts.
    published: Arc<PublishedTally>,
    /// Records per recorder ring (validated).
    ring_capacity: usize,
    /// Longest shutdown waits for the exporter thread.
    shutdown_timeout: Duration,
    /// The counts, frozen when the exporter thread was abandoned.
    frozen: OnceLock<SpanCounts>,
}

impl SpanPipeline {
    /// Validates `config`, calibrates the clock (so no hot-path call pays for it) and starts
    /// the exporter thread. `names` gives a topic's name from its dense index. (The bus uses
    /// [`SpanPipeline::start_on`]; tests and benchmarks use this.)
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn start(
        config: SpanExport,
        names: TopicNames,
    ) -> Result<SpanPipeline, SpanExportError> {
        Self::start_on(config, names, None)
    }

    /// Validates `config`, calibrates the clock and starts the exporter thread, pinned to
    /// `core` when it is given (the bus picks a core none of its workers runs on, so export
    /// work does not take time from a worker; unpinned when there is none, or if pinning
    /// fails).
    pub(crate) fn start_on(
        config: SpanExport,
        names: TopicNames,
        core: Option<usize>,
    ) -> Result<SpanPipeline, SpanExportError> {
        config.validate()?;
        let ring_capacity = config.ring_capacity;
        let shutdown_timeout = config.shutdown_timeout;
        let (tx, rx) = crossbeam_channel::unbounded();
        let published = Arc::new(PublishedTally::default());
        let thread = ExporterThread::new(config, names, rx, Arc::clone(&published));
        let handle = std::thread::Builder::new()
            .name("tracebus-spans".into())
            .spawn(move || {
                if let Some(id) = core {
                    core_affinity::set_for_current(core_affinity::CoreId { id });
                }
                thread.run()
            })
            .map_err(|e| SpanExportError::Spawn(Arc::new(e)))?;
        Ok(SpanPipeline {
            registry: Mutex::new(Registry {
                closed: false,
                control: tx,
                dropped_gone: 0,
                recorded_gone: 0,
                counters: Vec::new(),
            }),
            thread: Mutex::new(Some(handle)),
            published,
            ring_capacity,
            shutdown_timeout,
            frozen: OnceLock::new(),
        })
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        // Nothing under this lock can panic half-way through an update that matters.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new recorder for one endpoint or worker, with its own ring (of the configured
    /// capacity) registered with the exporter thread; `None` once the pipeline is shut down.
    /// Allocates the ring: call it when the endpoint or worker is made, or on its first
    /// sampled span, not per span.
    pub(crate) fn recorder(&self) -> Option<Recorder> {
        let mut reg = self.registry();
        if reg.closed {
            return None;
        }
        let (tx, rx) = crate::ring::spsc::<SpanRecord>(self.ring_capacity)
            .expect("ring capacity validated at start");
        reg.control.send(Control::Register(rx)).ok()?;
        reg.prune();
        let counter = Arc::new(AtomicU64::new(0));
        reg.counters.push((Arc::clone(&counter), tx.monitor()));
        Some(Recorder::new(tx, counter))
    }

    /// The counts so far (exact after [`SpanPipeline::shutdown`]).
    pub(crate) fn counts(&self) -> SpanCounts {
        if let Some(frozen) = self.frozen.get() {
            return *frozen;
        }
        let dropped = self.registry().dropped();
        let t = self.published.load();
        SpanCounts {
            exported: t.exported,
            dropped,
            failed: t.failed,
            export_errors: t.errors,
            exporter_panics: t.panics,
            export_timeouts: t.timeouts,
            abandoned: 0,
        }
    }

    /// Leaves the exporter thread behind: marks it abandoned (it calls nothing more and
    /// stores no count once it gets back) and freezes the counts, with every span recorded
    /// and neither exported nor failed counted as abandoned.
    fn abandon(&self) {
        // Release pairs with the thread's Acquire check: after it sees the flag, it stores no
        // count, so the ones read below stay the thread's last.
        self.published.abandoned.store(true, Ordering::Release);
        let mut counts = self.counts();
        let recorded = self.registry().recorded();
        counts.abandoned = recorded.saturating_sub(counts.exported + counts.failed);
        let _ = self.frozen.set(counts);
    }

    /// Exports every span recorded so far, flushes the target (and shuts it down unless
    /// configured not to), stops the exporter thread and returns the final counts. Call it
    /// after the recorders' threads have stopped recording (the bus: after joining its
    /// workers); spans recorded after it are not exported. Later calls return the counts again.
    pub(crate) fn shutdown(&self) -> SpanCounts {
        {
            let mut reg = self.registry();
            if !reg.closed {
                reg.closed = true;
                // The thread may be gone only if it panicked; then there is nobody to tell.
                let _ = reg.control.send(Control::Shutdown);
            }
        }
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            if !finishes_within(&handle, self.shutdown_timeout) {
                // The target blocks: leave the thread (dropping the handle detaches it).
                self.abandon();
                return self.counts();
            }
            if handle.join().is_err() {
                // The thread's own code panicked (not the target's: that is caught). Count it
                // with the target's panics rather than lose it.
                let mut t = self.published.load();
                t.panics += 1;
                self.published.store(&t);
            }
        }
        self.counts()
    }
}

/// Whether the thread behind `handle` finishes within `timeout`.
fn finishes_within<T>(handle: &JoinHandle<T>, timeout: Duration) -> bool {
    crate::wait::poll_until(Instant::now().checked_add(timeout), || handle.is_finished())
}

impl Drop for SpanPipeline {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for SpanPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanPipeline")
            .field("ring_capacity", &self.ring_capacity)
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}
