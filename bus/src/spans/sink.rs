//! Where exported spans go: the user's `SpanExporter` or `SpanProcessor`, behind one object-safe
//! trait, with every fault caught and counted.
//!
//! `SpanExporter::export` returns a future (and so is not object-safe); [`ExporterSink`] drives
//! it on the exporter thread ([`block_on_timeout`]: poll, park until woken, poll again) until
//! it completes or the export timeout passes, when the future is dropped (the export is
//! cancelled) and its spans are counted as failed. A `SpanProcessor` gets each span through
//! `on_end`. Each call into user code runs under `catch_unwind`: an `Err` and a panic are
//! counted (with the spans they carried) and the thread goes on with the next batch. Nothing
//! is retried (an exporter that wants retries does them itself, as the `SpanExporter` contract
//! says).
//!
//! A [`SharedTarget`] lets clones of one `SpanExport` (a cloned bus builder) feed one target:
//! a mutex keeps its calls one at a time (an exporter is never called concurrently, as its
//! contract asks), taken once per batch; the last pipeline to finish shuts it down.

use std::fmt::Debug;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

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
    /// Export calls cancelled at the export timeout (their spans are in `failed`).
    pub(crate) timeouts: u64,
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

/// Drives `future` to completion on this thread, for at most `timeout`: polls it, parks until
/// its waker unparks this thread (or the time is up), polls again. `None` if it was still
/// pending at the deadline; it is dropped then, which cancels it.
pub(crate) fn block_on_timeout<F: Future>(future: F, timeout: Duration) -> Option<F::Output> {
    /// Wakes the thread that polls.
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let deadline = Instant::now().checked_add(timeout);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return Some(out);
        }
        // A wake-up that came before the park leaves the thread's token: park returns at
        // once. A spurious return only polls once more.
        match deadline {
            None => std::thread::park(),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return None;
                }
                std::thread::park_timeout(d - now);
            }
        }
    }
}

/// A destination for finished spans. Implementations catch every fault of the code they call.
pub(crate) trait Sink: Send + Debug {
    /// Gives the target the resource every span is exported with (once, before any span).
    fn set_resource(&mut self, resource: &Resource, tally: &mut Tally);
    /// Hands a batch over (never empty); an asynchronous export still pending after `timeout`
    /// is cancelled and counted as failed.
    fn export(&mut self, batch: Vec<SpanData>, tally: &mut Tally, timeout: Duration);
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

    fn export(&mut self, batch: Vec<SpanData>, tally: &mut Tally, timeout: Duration) {
        let n = batch.len() as u64;
        let r = catch_unwind(AssertUnwindSafe(|| {
            block_on_timeout(self.0.export(batch), timeout)
        }));
        match r {
            Ok(None) => {
                tally.timeouts += 1;
                tally.failed += n;
            }
            Ok(Some(outcome)) => tally.call(Ok(outcome), n),
            Err(panic) => tally.call(Err(panic), n),
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

/// A `SpanProcessor` (for example the SDK's batch processor), called once per span.
#[derive(Debug)]
pub(crate) struct ProcessorSink<P>(pub(crate) P);

impl<P: SpanProcessor + 'static> Sink for ProcessorSink<P> {
    fn set_resource(&mut self, resource: &Resource, tally: &mut Tally) {
        let r = catch_unwind(AssertUnwindSafe(|| self.0.set_resource(resource)));
        tally.call(r.map(Ok), 0);
    }

    fn export(&mut self, batch: Vec<SpanData>, tally: &mut Tally, _timeout: Duration) {
        // `on_end` is synchronous: nothing to cancel (shutdown's deadline bounds a blocking
        // processor).
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
