//! Tracing in the bus: the sampling decision at publish time, and spans recorded on the hot
//! path as fixed-size records, exported to OpenTelemetry off it (see [`crate::SpanExport`]).
//!
//! - Each publish decides once, before anything else is done for tracing, with the context
//!   crate's consistent [`FanoutSampler`] from its fanout and its parent: a publish from outside
//!   a handler may start a trace (the sampler's root policy); one from inside a handler, or
//!   with a context imported from elsewhere, only continues that context. Every recipient sees
//!   the same decision (the slot header).
//! - Unsampled: the slot carries "no context"; no clock read, no record, no allocation, on
//!   either side.
//! - Sampled: the bus makes the span's ids itself (a trace it starts gets the trace-id its
//!   consistent decision was made on), writes the `publish <topic>` span's context into the
//!   slot header, and records the span (a TSC read at each end, one 80-byte record into the
//!   endpoint's own ring). Each receiving subscriber gets a `process <topic>` span whose parent
//!   is the header's; a handler's onward publishes are children of its `process` span. The
//!   background exporter thread turns records into OpenTelemetry `SpanData` for the user's
//!   `SpanExporter` or `SpanProcessor` ([`crate::SpanExport`]).
//!
//! Tracing is on when the bus is built with [`crate::BusBuilder::tracing`], and can be started
//! later ([`crate::Bus::trace_to`]), switched off and on, and re-tuned (`k`, root policy) while
//! the bus runs, through [`TracingControl`]:
//!
//! ```
//! use opentelemetry_sdk::trace::InMemorySpanExporter;
//! use tracebus::{Bus, SpanExport};
//!
//! let exporter = InMemorySpanExporter::default();
//! let bus = Bus::builder()
//!     .tracing(SpanExport::exporter(exporter.clone()).shutdown_target(false))
//!     .build()
//!     .unwrap();
//! bus.tracing().sampler().set_k(1.0).unwrap(); // live
//! let report = bus.shutdown();
//! assert_eq!(report.spans.exported, 0);
//! ```

use std::sync::{Arc, OnceLock};

use tracebus_context::{Decision, FanoutSampler, TraceContext};

use crate::routing::Epoch;
use crate::slot::Slot;
use crate::spans::{
    self, new_span_id, SpanCounts, SpanExport, SpanExportError, SpanPipeline, SpanRecord, Ticks,
    TopicNames,
};
use crate::sync::{AtomicBool, Ordering};

/// `messaging.system` of every span the bus creates (set by the exporter thread).
pub use crate::spans::MESSAGING_SYSTEM;

/// Tracing settings of a bus; change them while it runs through [`crate::Bus::tracing`].
#[derive(Debug, Clone)]
pub struct TracingControl {
    enabled: Arc<AtomicBool>,
    sampler: FanoutSampler,
    /// Bumped after every switch, so that publishers re-evaluate their fast path (see
    /// `routing.rs`).
    epoch: Epoch,
}

impl TracingControl {
    /// Tracing switched off, with `sampler`, bumping `epoch` on every switch.
    pub(crate) fn new(sampler: FanoutSampler, epoch: Epoch) -> TracingControl {
        TracingControl {
            enabled: Arc::new(AtomicBool::new(false)),
            sampler,
            epoch,
        }
    }

    /// Switches tracing on or off for every later publish (no restart, nothing lost). On has an
    /// effect once the bus has somewhere to export to ([`crate::BusBuilder::tracing`] or
    /// [`crate::Bus::trace_to`]).
    pub fn set_enabled(&self, on: bool) {
        // Relaxed: the epoch's bump publishes it (Release), to publishers re-syncing their
        // fast path (see `routing.rs`); the flag itself is only read.
        self.enabled.store(on, Ordering::Relaxed);
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// Whether tracing is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The sampler: change `k` and the root policy through it ([`FanoutSampler::set_k`],
    /// [`FanoutSampler::set_root_policy`]).
    pub fn sampler(&self) -> &FanoutSampler {
        &self.sampler
    }
}

/// The bus's tracing: the switch, the sampler, and the span pipeline once there is one.
pub(crate) struct Tracing {
    pub(crate) control: TracingControl,
    /// Started at build, or later by `Bus::trace_to`; never replaced.
    pipeline: OnceLock<SpanPipeline>,
    /// Topic names for the pipeline's exporter thread.
    names: TopicNames,
    /// A core no worker is pinned to, for the exporter thread (`None`: unpinned).
    exporter_core: Option<usize>,
}

/// Where a publish comes from, which decides what its trace may do.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Parent {
    /// From outside the bus with no context: may start a trace (the sampler's root policy).
    Root,
    /// From a handler, whose `process` span (if its message is traced) is the parent: continues
    /// that trace, never starts one.
    Handler(Option<TraceContext>),
    /// With a context from elsewhere (another process, a bridge): continues it when it is
    /// sampled, never starts a trace.
    Remote(Option<TraceContext>),
}

impl Parent {
    /// The context this publish continues, if any (a handler's or an imported one).
    #[inline(always)]
    pub(crate) fn context(self) -> Option<TraceContext> {
        match self {
            Parent::Root => None,
            Parent::Handler(c) | Parent::Remote(c) => c,
        }
    }
}

/// What a publish does for tracing, decided once.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Trace {
    /// Sampled, with a span recorded: the publish span's context goes into the header.
    Recorded(Sampled),
    /// Not recorded here (the bus has no span pipeline, or tracing is switched off), but the
    /// parent's sampled context is carried into the header unchanged: the trace goes on
    /// through this bus with no span of its own, as OpenTelemetry propagates a context it
    /// does not record.
    Carried(TraceContext),
    /// No context: the header says so.
    None,
}

/// A sampled publish: the context for the slot header, and what its span record needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sampled {
    /// The publish span's context: it goes into every slot of the publish.
    pub(crate) header: TraceContext,
    parent: Option<spans::Parent>,
    rate: f64,
    /// When the publish started (also the slot's publish tick).
    pub(crate) start: Ticks,
}

impl Sampled {
    /// The publish span's record, ending now.
    #[inline]
    pub(crate) fn record(&self, topic: u32, fanout: usize, batch: Option<usize>) -> SpanRecord {
        let rec = SpanRecord::publish(&self.header, self.parent, topic, self.start, spans::now())
            .with_fanout(fanout)
            .with_sampling_rate(self.rate);
        match batch {
            Some(n) => rec.with_batch(n),
            None => rec,
        }
    }
}

/// The `process` span of one handler's run on `slot`, whose header context is `header`: a
/// child of the header's span, with the time the message waited in the ring. (The publish
/// span's record is [`Sampled::record`]; these two are the bus's only span writers.)
#[inline]
pub(crate) fn process_span<A: bytemuck::Pod>(
    slot: &Slot<A>,
    header: &TraceContext,
    span_id: [u8; 8],
    start: Ticks,
    end: Ticks,
) -> SpanRecord {
    SpanRecord::process(header, span_id, slot.topic(), start, end)
        .with_enqueued(slot.publish_tick().unwrap_or(SpanRecord::NO_TICK))
}

impl Tracing {
    /// Tracing with `sampler`, on (with a pipeline) if `export` is given.
    pub(crate) fn new(
        sampler: FanoutSampler,
        export: Option<SpanExport>,
        names: TopicNames,
        exporter_core: Option<usize>,
        epoch: Epoch,
    ) -> Result<Tracing, SpanExportError> {
        let tracing = Tracing {
            control: TracingControl::new(sampler, epoch),
            pipeline: OnceLock::new(),
            names,
            exporter_core,
        };
        if let Some(export) = export {
            tracing.start(export)?;
        }
        Ok(tracing)
    }

    /// Starts the span pipeline (if there is none yet) and switches tracing on.
    pub(crate) fn start(&self, export: SpanExport) -> Result<(), SpanExportError> {
        if self.pipeline.get().is_none() {
            let pipeline =
                SpanPipeline::start_on(export, Arc::clone(&self.names), self.exporter_core)?;
            // A racing start may have won: its pipeline stays, this one shuts down on drop.
            let _ = self.pipeline.set(pipeline);
        }
        self.control.set_enabled(true);
        Ok(())
    }

    /// Whether a publish should ask the sampler at all (one relaxed load).
    #[inline(always)]
    pub(crate) fn is_on(&self) -> bool {
        self.control.is_enabled()
    }

    /// Whether this bus records spans at all (it has a span pipeline).
    #[inline]
    pub(crate) fn records_spans(&self) -> bool {
        self.pipeline.get().is_some()
    }

    /// The one decision of a publish to `fanout` subscribers from `parent`: record a span
    /// (tracing on, with a pipeline, and the sampler keeps it), carry the parent's sampled
    /// context unchanged (the bus records nothing), or nothing, having read no clock and made
    /// no record. Kept out of line: the publish path that calls it stays small for the
    /// untraced case.
    #[inline(never)]
    pub(crate) fn decide(&self, fanout: usize, parent: Parent) -> Trace {
        if !(self.is_on() && self.records_spans()) {
            return match parent.context() {
                Some(c) if c.is_sampled() => Trace::Carried(c),
                _ => Trace::None,
            };
        }
        match self.sample(fanout, parent) {
            Some(s) => Trace::Recorded(s),
            None => Trace::None,
        }
    }

    /// The sampler's part of [`Tracing::decide`], for a bus that records spans.
    #[inline]
    fn sample(&self, fanout: usize, parent: Parent) -> Option<Sampled> {
        let sampler = &self.control.sampler;
        let (header, parent, rate) = match parent {
            Parent::Root => match sampler.decide(None, fanout) {
                Decision::Start { trace_id, rate } => (
                    TraceContext::new(trace_id, new_span_id(), Decision::ROOT_FLAGS)?,
                    None,
                    rate,
                ),
                _ => return None,
            },
            Parent::Handler(Some(p)) | Parent::Remote(Some(p)) => {
                let Decision::Continue { rate } = sampler.decide(Some(&p), fanout) else {
                    return None;
                };
                let link = if matches!(parent, Parent::Handler(_)) {
                    spans::Parent::local(p.span_id())
                } else {
                    spans::Parent::remote(p.span_id())
                };
                (p.with_span_id(new_span_id())?, Some(link), rate)
            }
            Parent::Handler(None) | Parent::Remote(None) => return None,
        };
        Some(Sampled {
            header,
            parent,
            rate,
            start: spans::now(),
        })
    }

    /// A recorder for one endpoint or worker, if there is a pipeline (allocates its ring: once
    /// per endpoint, on its first sampled span).
    #[cold]
    pub(crate) fn recorder(&self) -> Option<spans::Recorder> {
        self.pipeline.get()?.recorder()
    }

    /// The span pipeline's counts so far (all zero if tracing never started).
    pub(crate) fn counts(&self) -> SpanCounts {
        self.pipeline
            .get()
            .map(SpanPipeline::counts)
            .unwrap_or_default()
    }

    /// Exports everything recorded, stops the exporter thread, and returns its counts (all zero
    /// if tracing never started). Call after the workers are joined.
    pub(crate) fn shutdown(&self) -> SpanCounts {
        self.pipeline
            .get()
            .map(SpanPipeline::shutdown)
            .unwrap_or_default()
    }
}
