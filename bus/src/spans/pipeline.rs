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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use super::config::{SpanExport, SpanExportError};
use super::convert::TopicNames;
use super::exporter::{Control, ExporterThread, PublishedTally};
use super::record::SpanRecord;
use super::recorder::Recorder;
use super::sink::Tally;

/// What a span pipeline did: read any time with the bus's report, final after shutdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
}

/// The state recorders are registered under.
struct Registry {
    /// Set once, by shutdown; no recorder is made after.
    closed: bool,
    /// To the exporter thread.
    control: Sender<Control>,
    /// Drops counted by recorders that are gone.
    dropped_gone: u64,
    /// Drop counters of recorders that may still be alive (each written by its recorder only).
    counters: Vec<Arc<AtomicU64>>,
}

impl Registry {
    /// Folds the counters of recorders that are gone into `dropped_gone`.
    fn prune(&mut self) {
        let mut live = Vec::with_capacity(self.counters.len());
        for c in self.counters.drain(..) {
            // `try_unwrap` succeeds only for the last owner and synchronises with the
            // recorder's drop (Release/Acquire), so the final count is read.
            match Arc::try_unwrap(c) {
                Ok(gone) => self.dropped_gone += gone.into_inner(),
                Err(c) => live.push(c),
            }
        }
        self.counters = live;
    }

    fn dropped(&self) -> u64 {
        // Relaxed: counts; a recorder still running may add more right after.
        self.dropped_gone
            + self
                .counters
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
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
}

impl SpanPipeline {
    /// Validates `config`, calibrates the clock (so no hot-path call pays for it) and starts
    /// the exporter thread. `names` gives a topic's name from its dense index.
    pub(crate) fn start(
        config: SpanExport,
        names: TopicNames,
    ) -> Result<SpanPipeline, SpanExportError> {
        Self::start_on(config, names, None)
    }

    /// [`SpanPipeline::start`], with the exporter thread pinned to `core` when it is given
    /// (the bus picks a core none of its workers runs on, so export work does not take time
    /// from a worker; unpinned when there is none, or if pinning fails).
    pub(crate) fn start_on(
        config: SpanExport,
        names: TopicNames,
        core: Option<usize>,
    ) -> Result<SpanPipeline, SpanExportError> {
        config.validate()?;
        let ring_capacity = config.ring_capacity;
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
                counters: Vec::new(),
            }),
            thread: Mutex::new(Some(handle)),
            published,
            ring_capacity,
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
        reg.counters.push(Arc::clone(&counter));
        Some(Recorder::new(tx, counter))
    }

    /// The counts so far (exact after [`SpanPipeline::shutdown`]).
    pub(crate) fn counts(&self) -> SpanCounts {
        let dropped = self.registry().dropped();
        let t = self.published.load();
        SpanCounts {
            exported: t.exported,
            dropped,
            failed: t.failed,
            export_errors: t.errors,
            exporter_panics: t.panics,
        }
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
