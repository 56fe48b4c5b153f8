//! Where exported spans go: the user's `SpanExporter` or `SpanProcessor`, behind one object-safe
//! trait, with every fault caught and counted.
//!
//! `SpanExporter::export` returns a future (and so is not object-safe); [`ExporterSink`] drives
//! it to completion on the exporter thread with `futures_executor::block_on`, as the SDK's own
//! simple processor does. A `SpanProcessor` gets each span through `on_end`. Each call into user
//! code runs under `catch_unwind`: an `Err` and a panic are counted (with the spans they
//! carried) and the thread goes on with the next batch. Nothing is retried (an exporter that
//! wants retries does them itself, as the `SpanExporter` contract says).

use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};

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
