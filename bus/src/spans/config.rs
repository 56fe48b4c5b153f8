//! `SpanExport`: the public settings of the span pipeline (where spans go, batch size,
//! intervals, record-ring capacity, resource, instrumentation scope), validated before any
//! thread starts.

use std::fmt;
use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::trace::{SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;

use super::sink::{ExporterSink, ProcessorSink, SharedTarget, Sink};
use crate::ring::RingError;
use std::sync::Arc;

/// Default [`SpanExport::batch_size`]: half the SDK batch processor's 512, so that a batch's
/// vector of `SpanData` (352 bytes each: 88 KiB) stays under glibc's initial mmap threshold
/// (128 KiB). With 512 (176 KiB) the exporter thread's time per span was bimodal from process
/// to process: about 70 ns in half of them and 119 ns in the other half (busbench's
/// `span_cost`, ten processes each; 256 and 360: 70 ns in every one).
pub(crate) const DEFAULT_BATCH_SIZE: usize = 256;
/// Default [`SpanExport::interval`].
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Default [`SpanExport::poll_interval`].
pub(crate) const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(1);
/// Default [`SpanExport::ring_capacity`]: 4096 records of 128 bytes, 512 KiB per recorder,
/// enough for 4 M spans/s per endpoint at the default poll interval (500 k spans/s in the
/// first 8 ms after an idle spell, while the exporter thread still sleeps 8 polls).
pub(crate) const DEFAULT_RING_CAPACITY: usize = 4096;
/// Default [`SpanExport::export_timeout`]: the OpenTelemetry SDK's `OTEL_BSP_EXPORT_TIMEOUT`
/// default.
pub(crate) const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`SpanExport::shutdown_timeout`]: the SDK's default for a span processor's
/// `shutdown`.
pub(crate) const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest [`SpanExport::ring_capacity`]: 2^20 records, 128 MiB per recorder.
pub(crate) const MAX_RING_CAPACITY: usize = 1 << 20;

/// Where a bus's spans go and how they get there.
///
/// The bus records each sampled span on its hot path as a fixed-size record in a ring owned
/// by the endpoint or worker (no allocation, no lock, no OpenTelemetry call), and one
/// background thread per bus turns the records into OpenTelemetry `SpanData` and hands them to
/// the target given here: any `SpanExporter` (in batches of at most
/// [`batch_size`](SpanExport::batch_size)), or any `SpanProcessor` (span by span, through
/// `on_end`; the SDK's `BatchSpanProcessor` then batches again on its own thread).
///
/// - A record ring that is full (the exporter thread is behind, or the target blocks) drops
///   the span and counts it; publishers and handlers never wait for the exporter.
/// - A target that returns an error or panics is caught on the exporter thread and counted,
///   with the spans it lost. An export call still pending after
///   [`export_timeout`](SpanExport::export_timeout) is cancelled (its future dropped) and its
///   spans counted as failed.
/// - Shutting the bus down exports every span recorded before, then flushes the target and,
///   unless [`shutdown_target(false)`](SpanExport::shutdown_target), shuts it down, all within
///   [`shutdown_timeout`](SpanExport::shutdown_timeout): an exporter thread still busy then
///   (a target that blocks) is left behind, and the spans it had not exported are counted
///   ([`crate::SpanCounts::abandoned`]). So a target that fails, blocks or panics never holds
///   up publishers, handlers or shutdown beyond that bound.
/// - Clones share the target: buses built from clones (of a bus builder, say) export to it
///   one call at a time, and the last of them to shut down shuts it down (a bus started
///   from a clone after that finds it shut down, and counts its export errors).
///
/// ```
/// use std::time::Duration;
/// use opentelemetry::InstrumentationScope;
/// use opentelemetry_sdk::trace::InMemorySpanExporter;
/// use opentelemetry_sdk::Resource;
///
/// let exporter = InMemorySpanExporter::default();
/// let export = tracebus::SpanExport::exporter(exporter.clone())
///     .batch_size(256)
///     .interval(Duration::from_millis(200))
///     .ring_capacity(8192)
///     .resource(Resource::builder().with_service_name("orders").build())
///     .scope(InstrumentationScope::builder("orders-bus").build())
///     // The in-memory exporter forgets its spans when shut down: keep them to read them.
///     .shutdown_target(false);
/// # drop(export);
/// ```
#[derive(Clone)]
#[must_use = "span export settings do nothing until given to a bus"]
pub struct SpanExport {
    /// The exporter or processor, behind the fault-counting adapter; shared by clones.
    pub(crate) target: Arc<SharedTarget>,
    /// Spans per export call; at least 1.
    pub(crate) batch_size: usize,
    /// Longest time a converted span waits for its batch to fill before it is exported anyway.
    pub(crate) interval: Duration,
    /// How long the exporter thread sleeps when it finds no new records; more than zero.
    pub(crate) poll_interval: Duration,
    /// Records each recorder's ring holds (rounded up to a power of two); in
    /// `1..=MAX_RING_CAPACITY`.
    pub(crate) ring_capacity: usize,
    /// Given to the target once, before the first span.
    pub(crate) resource: Resource,
    /// The instrumentation scope of every span.
    pub(crate) scope: InstrumentationScope,
    /// Whether shutdown ends with the target's `shutdown` (after its `force_flush`).
    pub(crate) shutdown_target: bool,
    /// Longest an export call may stay pending before it is cancelled; more than zero.
    pub(crate) export_timeout: Duration,
    /// Longest the bus's shutdown waits for the exporter thread's last exports.
    pub(crate) shutdown_timeout: Duration,
}

impl SpanExport {
    fn with_target(target: Box<dyn Sink>) -> SpanExport {
        SpanExport {
            target: Arc::new(SharedTarget::new(target)),
            batch_size: DEFAULT_BATCH_SIZE,
            interval: DEFAULT_INTERVAL,
            poll_interval: DEFAULT_POLL_INTERVAL,
            ring_capacity: DEFAULT_RING_CAPACITY,
            resource: Resource::builder().build(),
            scope: InstrumentationScope::builder("tracebus")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            shutdown_target: true,
            export_timeout: DEFAULT_EXPORT_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// Spans go to `exporter` (OTLP, stdout, in-memory, your own), in batches, from the bus's
    /// exporter thread. `export` is driven to completion there (with a small blocking
    /// executor), so an exporter that needs a Tokio runtime should be wrapped in the SDK's
    /// batch processor and given to [`SpanExport::processor`] instead.
    pub fn exporter<E: SpanExporter + 'static>(exporter: E) -> SpanExport {
        SpanExport::with_target(Box::new(ExporterSink(exporter)))
    }

    /// Spans go to `processor`'s `on_end`, one by one, from the bus's exporter thread (for
    /// example the SDK's `BatchSpanProcessor`, or a processor that filters or enriches).
    pub fn processor<P: SpanProcessor + 'static>(processor: P) -> SpanExport {
        SpanExport::with_target(Box::new(ProcessorSink(processor)))
    }

    /// Spans handed to the exporter per call (default 256, at least 1; see the module's
    /// `DEFAULT_BATCH_SIZE` for why not the SDK batch processor's 512).
    pub fn batch_size(mut self, spans: usize) -> SpanExport {
        self.batch_size = spans;
        self
    }

    /// The longest a span waits on the exporter thread for its batch to fill before it is
    /// exported anyway (default 1 s).
    pub fn interval(mut self, interval: Duration) -> SpanExport {
        self.interval = interval;
        self
    }

    /// How long the exporter thread sleeps when it finds no new record (default 1 ms;
    /// more than zero), and 8 times that once it has found nothing 64 times in a row (an idle
    /// bus: about 0.2% of a core at the default). Shorter costs more CPU; longer needs bigger
    /// record rings ([`SpanExport::ring_capacity`]) to drop nothing at a given span rate.
    pub fn poll_interval(mut self, interval: Duration) -> SpanExport {
        self.poll_interval = interval;
        self
    }

    /// Records each endpoint's and each worker's ring holds (rounded up to a power of two;
    /// default 4096, at most 2^20). Each record takes 128 bytes, so the default ring is 512 KiB.
    ///
    /// A ring cycles through all of its memory whatever its occupancy, so one larger than the
    /// core's cache costs a cache miss per record on the hot path: size it for the largest
    /// burst of sampled spans (a sampled message at fanout `n` makes `n` process spans at
    /// once), not more. Measured (busbench's tracing goal, fanout 100, 1 us handlers): 1 << 16
    /// records (8 MiB) took about 0.7% of the worker's time in recording, the default about
    /// 0.15%.
    pub fn ring_capacity(mut self, records: usize) -> SpanExport {
        self.ring_capacity = records;
        self
    }

    /// The resource given to the target (default: the SDK's default resource, from
    /// `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` and the SDK's own attributes).
    pub fn resource(mut self, resource: Resource) -> SpanExport {
        self.resource = resource;
        self
    }

    /// The instrumentation scope of every span (default `tracebus` with the crate's version).
    /// A scope whose strings are `&'static str` and which has no attributes is cloned into each
    /// span for free; any other costs an allocation per span on the exporter thread.
    pub fn scope(mut self, scope: InstrumentationScope) -> SpanExport {
        self.scope = scope;
        self
    }

    /// Whether the bus's shutdown ends by shutting the target down (default `true`), after
    /// exporting everything and flushing it. Set `false` to keep using the target afterwards,
    /// for example the SDK's `InMemorySpanExporter`, which forgets its spans on shutdown.
    pub fn shutdown_target(mut self, shut_down: bool) -> SpanExport {
        self.shutdown_target = shut_down;
        self
    }

    /// The longest one `SpanExporter::export` call may stay pending (default 30 s, the SDK's
    /// `OTEL_BSP_EXPORT_TIMEOUT` default; more than zero). The exporter thread drives the
    /// call's future; still pending at the deadline, it is dropped (the export is cancelled),
    /// its spans are counted as failed and the call in
    /// [`SpanCounts::export_timeouts`](crate::SpanCounts::export_timeouts). A target that
    /// blocks its thread inside a call (a synchronous client, a processor's `on_end`) cannot
    /// be cancelled: [`SpanExport::shutdown_timeout`] bounds what that costs at shutdown.
    pub fn export_timeout(mut self, timeout: Duration) -> SpanExport {
        self.export_timeout = timeout;
        self
    }

    /// The longest the bus's shutdown waits for the span pipeline (default 5 s, the SDK's
    /// default for a processor's shutdown): the exporter thread's last drain, export, flush
    /// and the target's shutdown. If it is not done by then (a target that blocks), the
    /// thread is left behind (it makes no further call into the target once it returns), and
    /// the spans recorded but not exported are counted in
    /// [`SpanCounts::abandoned`](crate::SpanCounts::abandoned).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> SpanExport {
        self.shutdown_timeout = timeout;
        self
    }

    /// Checks the settings.
    pub(crate) fn validate(&self) -> Result<(), SpanExportError> {
        if self.batch_size == 0 {
            return Err(SpanExportError::ZeroBatchSize);
        }
        if self.export_timeout.is_zero() {
            return Err(SpanExportError::ZeroExportTimeout);
        }
        if self.poll_interval.is_zero() {
            return Err(SpanExportError::ZeroPollInterval);
        }
        if self.ring_capacity == 0 {
            return Err(SpanExportError::Ring(RingError::ZeroCapacity));
        }
        if self.ring_capacity > MAX_RING_CAPACITY {
            return Err(SpanExportError::Ring(RingError::TooLarge {
                requested: self.ring_capacity,
                max: MAX_RING_CAPACITY,
            }));
        }
        Ok(())
    }
}

impl fmt::Debug for SpanExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanExport")
            .field("target", &self.target)
            .field("batch_size", &self.batch_size)
            .field("interval", &self.interval)
            .field("poll_interval", &self.poll_interval)
            .field("ring_capacity", &self.ring_capacity)
            .field("scope", &self.scope.name())
            .field("shutdown_target", &self.shutdown_target)
            .field("export_timeout", &self.export_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

/// Why a span pipeline could not start.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SpanExportError {
    /// [`SpanExport::batch_size`] was 0.
    #[error("span export batch size must be at least 1")]
    ZeroBatchSize,
    /// [`SpanExport::poll_interval`] was zero.
    #[error("span export poll interval must be more than zero")]
    ZeroPollInterval,
    /// [`SpanExport::export_timeout`] was zero.
    #[error("span export timeout must be more than zero")]
    ZeroExportTimeout,
    /// [`SpanExport::ring_capacity`] was 0 or above 2^20.
    #[error("span record ring: {0}")]
    Ring(RingError),
    /// The exporter thread could not be started (the OS's error, shared so the error stays
    /// `Clone`).
    #[error("could not start the span exporter thread: {0}")]
    Spawn(#[source] std::sync::Arc<std::io::Error>),
}

impl PartialEq for SpanExportError {
    /// Same variant and contents; two spawn failures are equal when their OS error kinds are.
    fn eq(&self, other: &Self) -> bool {
        use SpanExportError::*;
        match (self, other) {
            (ZeroBatchSize, ZeroBatchSize)
            | (ZeroPollInterval, ZeroPollInterval)
            | (ZeroExportTimeout, ZeroExportTimeout) => true,
            (Ring(a), Ring(b)) => a == b,
            (Spawn(a), Spawn(b)) => a.kind() == b.kind(),
            _ => false,
        }
    }
}

impl Eq for SpanExportError {}

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    use super::*;
    use opentelemetry_sdk::trace::InMemorySpanExporter;

    #[test]
    fn bad_settings_are_refused() {
        let e = || SpanExport::exporter(InMemorySpanExporter::default());
        assert!(e().validate().is_ok());
        assert!(matches!(
            e().batch_size(0).validate(),
            Err(SpanExportError::ZeroBatchSize)
        ));
        assert!(matches!(
            e().poll_interval(Duration::ZERO).validate(),
            Err(SpanExportError::ZeroPollInterval)
        ));
        assert!(matches!(
            e().export_timeout(Duration::ZERO).validate(),
            Err(SpanExportError::ZeroExportTimeout)
        ));
        assert!(e().shutdown_timeout(Duration::ZERO).validate().is_ok());
        assert!(matches!(
            e().ring_capacity(0).validate(),
            Err(SpanExportError::Ring(RingError::ZeroCapacity))
        ));
        assert!(matches!(
            e().ring_capacity(MAX_RING_CAPACITY + 1).validate(),
            Err(SpanExportError::Ring(RingError::TooLarge { .. }))
        ));
        assert!(e().ring_capacity(MAX_RING_CAPACITY).validate().is_ok());
        let dbg = format!("{:?}", e().batch_size(7));
        assert!(dbg.contains("batch_size: 7"), "{dbg}");
    }
}
