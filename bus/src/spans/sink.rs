//! Where exported spans go: the user's `SpanExporter` or `SpanProcessor`, behind one object-safe
//! trait, with every fault caught and counted.
//!
//! `SpanExporter::export` returns a future (and so is not object-safe); [`ExporterSink`] drives
//! it to completion on the exporter thread with `futures_executor::block_on`, as the SDK's own
//! simple processor does. A `SpanProcessor` gets each span through `on_end`. Each call into user
//! code runs under `catch_unwind`: an `Err` and a panic are counted (with the spans they
//! carried) and the thread goes on with the next batch. Nothing is retried (an exporter that
//! wants retries does them itself, as the `SpanExporter` contract says).
//!
//! A [`SharedTarget`] lets clones of one `SpanExport` (a cloned bus builder) feed one target:
//! a mutex keeps its calls one at a time (an exporter is never called concurrently, as its
//! contract asks), taken once per batch; the last pipeline to finish shuts it down.

use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;

/// What happened to spans handed to a sink; kept by the exporter thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Spans the target accepted (an export call returned `Ok`, or `on_end` returned).
    pub(crate) exported: u64,
    /// Spans lost in a call that failed or panicked.
    pub(crate) failed: u64,
    /// Calls (export, flush, shutdown) that returned an error.
    pub(crate) errors: u64,
    /// Calls that panicked.
    pub(crate) panics: u64,
}

impl Tally {
    /// Counts the outcome of one call into user code that carried `spans` spans.
    fn call(&mut self, outcome: std::thread::Result<OTelSdkResult>, spans: u64) {
        match outcome {
            Ok(Ok(())) => self.exported += spans,
            Ok(Err(_)) => {
                self.errors += 1;
                self.failed += spans;
            }
            Err(_) => {
                self.panics += 1;
                self.failed += spans;
            }
        }
    }
}

/// A destination for finished spans. Implementations catch every fault of the code they call.
pub(crate) trait Sink: Send + Debug {
    /// Gives the target the resource every span is exported with (once, before any span).
    fn set_resource(&mut self, resource: &Resource, tally: &mut Tally);
    /// Hands a batch over (never empty).
    fn export(&mut self, batch: Vec<SpanData>, tally: &mut Tally);
    /// Asks the target to deliver what it buffered.
    fn force_flush(&mut self, tally: &mut Tally);
    /// Shuts the target down (once, last).
    fn shutdown(&mut self, tally: &mut Tally);
}

/// A `SpanExporter`, called once per batch.
#[derive(Debug)]
pub(crate) struct ExporterSink<E>(pub(crate) E);

impl<E: SpanExporter + 'static> Sink for ExporterSink<E> {
    fn set_resource(&mut self, resource: &Resource, tally: &mut Tally) {
        let r = catch_unwind(AssertUnwindSafe(|| self.0.set_resource(resource)));
        tally.call(r.map(Ok), 0);
    }

    fn export(&mut self, batch: Vec<SpanData>, tally: &mut Tally) {
        let n = batch.len() as u64;
        let r = catch_unwind(AssertUnwindSafe(|| {
            futures_executor::block_on(self.0.export(batch))
        }));
        tally.call(r, n);
    }

    fn force_flush(&mut self, tally: &mut Tally) {
        let r = catch_unwind(AssertUnwindSafe(|| self.0.force_flush()));
        tally.call(r, 0);
    }

    fn shutdown(&mut self, tally: &mut Tally) {
        let r = catch_unwind(AssertUnwindSafe(|| self.0.shutdown()));
        tally.call(r, 0);
    }
}

/// A `SpanProcessor` (for example the SDK's batch processor), called once per span.
#[derive(Debug)]
pub(crate) struct ProcessorSink<P>(pub(crate) P);

impl<P: SpanProcessor + 'static> Sink for ProcessorSink<P> {
    fn set_resource(&mut self, resource: &Resource, tally: &mut Tally) {
        let r = catch_unwind(AssertUnwindSafe(|| self.0.set_resource(resource)));
        tally.call(r.map(Ok), 0);
    }

    fn export(&mut self, batch: Vec<SpanData>, tally: &mut Tally) {
        for span in batch {
            let r = catch_unwind(AssertUnwindSafe(|| self.0.on_end(span)));
            tally.call(r.map(Ok), 1);
        }
    }

    fn force_flush(&mut self, tally: &mut Tally) {
        let r = catch_unwind(AssertUnwindSafe(|| self.0.force_flush()));
        tally.call(r, 0);
    }

    fn shutdown(&mut self, tally: &mut Tally) {
        let r = catch_unwind(AssertUnwindSafe(|| self.0.shutdown()));
        tally.call(r, 0);
    }
}

/// One target shared by every pipeline started from clones of one `SpanExport`.
#[derive(Debug)]
pub(crate) struct SharedTarget {
    /// The target; locked for each call, so it is never called concurrently. It is never
    /// poisoned (every call into user code is caught inside), but a poisoned lock is used
    /// anyway rather than lost.
    sink: Mutex<Box<dyn Sink>>,
    /// Pipelines started on this target and not finished yet; the one that brings it to 0 is
    /// the last user. RMWs, since several exporter threads may share it.
    pipelines: AtomicUsize,
}

impl SharedTarget {
    /// Wraps a target.
    pub(crate) fn new(sink: Box<dyn Sink>) -> SharedTarget {
        SharedTarget {
            sink: Mutex::new(sink),
            pipelines: AtomicUsize::new(0),
        }
    }

    /// The target, for one call (or one batch of calls).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Box<dyn Sink>> {
        self.sink.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A pipeline starts using the target.
    pub(crate) fn join(&self) {
        // Relaxed: a count; the mutex orders the calls themselves.
        self.pipelines.fetch_add(1, Ordering::Relaxed);
    }

    /// A pipeline is done with the target; true for the last one. Call it holding the lock
    /// (from [`SharedTarget::lock`]): the last to leave then makes the last calls.
    pub(crate) fn leave(&self) -> bool {
        // Relaxed: the lock held around it orders it with every call of the other pipelines.
        self.pipelines.fetch_sub(1, Ordering::Relaxed) == 1
    }
}
