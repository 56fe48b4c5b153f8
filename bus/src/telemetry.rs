//! Tracing in the bus: the sampling decision at publish time, and real OpenTelemetry spans for
//! the messages it keeps.
//!
//! - Each publish decides once, before any OpenTelemetry call, with the context crate's
//!   consistent [`FanoutSampler`] from its fanout and its parent: a publish from outside a
//!   handler may start a trace (the sampler's root policy), one from inside a handler only
//!   continues the handler's trace. Every recipient sees the same decision (the header).
//! - Unsampled: the slot carries "no context"; no OpenTelemetry call, no clock read for
//!   tracing, no allocation, on either side.
//! - Sampled: a `publish <topic>` span (PRODUCER) whose context goes into the slot header, and
//!   for each receiving subscriber a `process <topic>` span (CONSUMER) whose parent is that
//!   header, with the messaging attributes, the sampling rate and the time spent in the ring.
//!   A handler's onward publishes are children of its `process` span, automatically.
//!
//! The OpenTelemetry SDK must record what the bus decided. Build the tracer provider with
//! [`BusIdGenerator`] (so a trace the bus starts gets the trace-id its decision was made on:
//! consistent sampling downstream depends on it) and [`BusSampler`] (which records every span
//! the bus creates and leaves other spans to the sampler it wraps); [`provider_builder`] starts
//! a builder with both, for other spans sampling parent-based and always-on:
//!
//! ```
//! use opentelemetry::trace::TracerProvider as _;
//! use opentelemetry_sdk::trace::InMemorySpanExporter;
//!
//! let exporter = InMemorySpanExporter::default();
//! let provider = tracebus::telemetry::provider_builder()
//!     .with_simple_exporter(exporter.clone())
//!     .build();
//! let bus = tracebus::Bus::builder()
//!     .tracer(provider.tracer("my-service"))
//!     .build()
//!     .unwrap();
//! # drop(bus);
//! ```

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, TraceContextExt, TraceId, Tracer as _,
};
use opentelemetry::{Context, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{
    IdGenerator, SamplingDecision, SamplingResult, SdkTracer, ShouldSample, Span,
};
use tracebus_context::{
    random_span_id, random_trace_id, Decision, FanoutSampler, TraceContext, FLAG_RANDOM,
};

use std::collections::HashMap;

use crate::endpoint::Parent;

/// `messaging.system` of every span the bus creates.
pub const MESSAGING_SYSTEM: &str = "tracebus";

thread_local! {
    /// The trace-id the bus decided a new trace on, for the span it is about to start.
    static PENDING_TRACE_ID: Cell<Option<[u8; 16]>> = const { Cell::new(None) };
}

/// Topic names whose span names are made once and kept for the life of the process (a few
/// dozen bytes each, so at most a few hundred KiB). Sampled spans of further topics format
/// their names each time: correct, a little slower.
pub const MAX_INTERNED_TOPICS: usize = 4096;

/// The span names and the destination attribute of one topic.
struct TopicNames {
    publish: &'static str,
    process: &'static str,
    destination: &'static str,
}

type NameMap = HashMap<Box<str>, &'static TopicNames>;

/// Every interned topic's names (see [`MAX_INTERNED_TOPICS`]).
static INTERNED: Mutex<Option<NameMap>> = Mutex::new(None);

thread_local! {
    /// This thread's view of [`INTERNED`], so a span does not take a lock.
    static NAMES: RefCell<NameMap> = RefCell::new(NameMap::default());
}

/// The names of the spans of topic `topic`, made once per process; `None` past
/// [`MAX_INTERNED_TOPICS`].
fn topic_names(topic: &str) -> Option<&'static TopicNames> {
    NAMES.with(|cache| {
        if let Some(&names) = cache.borrow().get(topic) {
            return Some(names);
        }
        let mut interned = INTERNED.lock().unwrap_or_else(PoisonError::into_inner);
        let interned = interned.get_or_insert_with(NameMap::default);
        let names = match interned.get(topic) {
            Some(&names) => names,
            None if interned.len() < MAX_INTERNED_TOPICS => {
                let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
                let names: &'static TopicNames = Box::leak(Box::new(TopicNames {
                    publish: leak(format!("publish {topic}")),
                    process: leak(format!("process {topic}")),
                    destination: leak(topic.to_owned()),
                }));
                interned.insert(topic.into(), names);
                names
            }
            None => return None,
        };
        cache.borrow_mut().insert(topic.into(), names);
        Some(names)
    })
}

/// A span name and the `messaging.destination.name` value for `topic`: borrowed from the
/// interned names, or formatted for this span past [`MAX_INTERNED_TOPICS`].
fn span_names(topic: &str, operation: &'static str) -> (Cow<'static, str>, StringValue) {
    match topic_names(topic) {
        Some(n) => {
            let name = if operation == "publish" {
                n.publish
            } else {
                n.process
            };
            (Cow::Borrowed(name), StringValue::from(n.destination))
        }
        None => (
            Cow::Owned(format!("{operation} {topic}")),
            StringValue::from(topic.to_owned()),
        ),
    }
}

/// An OpenTelemetry tracer-provider builder with [`BusIdGenerator`] and [`BusSampler`] in place
/// (spans that are not the bus's: parent-based, always on). Add exporters and build.
pub fn provider_builder() -> opentelemetry_sdk::trace::TracerProviderBuilder {
    use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
    SdkTracerProvider::builder()
        .with_id_generator(BusIdGenerator)
        .with_sampler(BusSampler::new(Sampler::ParentBased(Box::new(
            Sampler::AlwaysOn,
        ))))
}

/// An OpenTelemetry `IdGenerator` that gives a trace the bus starts the trace-id its sampling
/// decision was made on (and random ids otherwise).
#[derive(Debug, Clone, Copy, Default)]
pub struct BusIdGenerator;

impl IdGenerator for BusIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        let id = PENDING_TRACE_ID
            .with(Cell::take)
            .unwrap_or_else(random_trace_id);
        TraceId::from_bytes(id)
    }

    fn new_span_id(&self) -> SpanId {
        SpanId::from_bytes(random_span_id())
    }
}

/// An OpenTelemetry sampler that records every span the bus creates (the bus has already
/// decided) and asks `inner` about every other span.
#[derive(Debug, Clone)]
pub struct BusSampler<S> {
    inner: S,
}

impl<S: ShouldSample + Clone + 'static> BusSampler<S> {
    /// Wraps the sampler for spans that are not the bus's.
    pub fn new(inner: S) -> Self {
        BusSampler { inner }
    }
}

fn is_bus_span(attributes: &[KeyValue]) -> bool {
    attributes.iter().any(|kv| {
        kv.key.as_str() == "messaging.system"
            && matches!(&kv.value, Value::String(s) if s.as_str() == MESSAGING_SYSTEM)
    })
}

impl<S: ShouldSample + Clone + 'static> ShouldSample for BusSampler<S> {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[opentelemetry::trace::Link],
    ) -> SamplingResult {
        if is_bus_span(attributes) {
            let trace_state = parent_context
                .map(|cx| cx.span().span_context().trace_state().clone())
                .unwrap_or_default();
            return SamplingResult {
                decision: SamplingDecision::RecordAndSample,
                attributes: Vec::new(),
                trace_state,
            };
        }
        self.inner
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

/// Tracing settings of a bus; change them while it runs through [`crate::Bus::tracing`].
#[derive(Debug, Clone)]
pub struct TracingControl {
    enabled: Arc<AtomicBool>,
    sampler: FanoutSampler,
}

impl TracingControl {
    /// Switches tracing on or off for every later publish (no restart, nothing lost).
    pub fn set_enabled(&self, on: bool) {
        // Relaxed: an independent switch; no other memory is published through it.
        self.enabled.store(on, Ordering::Relaxed);
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

/// The bus's tracer and sampler.
pub(crate) struct Tracing {
    tracer: SdkTracer,
    pub(crate) control: TracingControl,
}

/// A sampled publish: the context for the slot header and the open publish span.
pub(crate) struct Sampled {
    pub(crate) header: TraceContext,
    span: Span,
}

impl Sampled {
    /// Ends the publish span (after the slots were written).
    pub(crate) fn end(mut self) {
        self.span.end();
    }
}

/// Says once per process that the tracer provider lacks [`BusIdGenerator`]: traces the bus
/// starts then carry the SDK's trace-id, not the one the decision was made on, and later hops
/// no longer agree with the first.
fn warn_no_id_generator() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        log::warn!(
            "tracebus: the tracer provider does not use tracebus::telemetry::BusIdGenerator; \
             sampling stays correct per publish but is no longer consistent along a trace"
        );
    }
}

fn remote_parent(ctx: &TraceContext) -> Context {
    Context::new().with_remote_span_context(ctx.to_span_context(true))
}

fn context_of(sc: &SpanContext) -> Option<TraceContext> {
    TraceContext::from_span_context(sc)
}

impl Tracing {
    pub(crate) fn new(tracer: SdkTracer, sampler: FanoutSampler) -> Tracing {
        Tracing {
            tracer,
            control: TracingControl {
                enabled: Arc::new(AtomicBool::new(true)),
                sampler,
            },
        }
    }

    /// The one decision of a publish of `batch` messages to topic `topic`; a publish with a
    /// [`Parent::Continue`] only continues its parent. Unsampled returns `None` having made no
    /// OpenTelemetry call and no allocation. Kept out of line: the publish path that inlines
    /// it stays small for the untraced case.
    #[inline(never)]
    pub(crate) fn decide(
        &self,
        topic: &str,
        fanout: usize,
        batch: usize,
        parent: Parent,
    ) -> Option<Sampled> {
        if !self.control.is_enabled() {
            return None;
        }
        let parent = match parent {
            Parent::Root => None,
            Parent::Continue(None) => return None,
            Parent::Continue(Some(p)) => Some(p),
        };
        let parent = parent.as_ref();
        let decision = self.control.sampler.decide(parent, fanout);
        let (cx, rate, started) = match (decision, parent) {
            (Decision::Drop, _) => return None,
            (Decision::Continue { rate }, Some(p)) => (remote_parent(p), rate, None),
            (Decision::Continue { .. }, None) => return None,
            (Decision::Start { trace_id, rate }, _) => {
                PENDING_TRACE_ID.with(|c| c.set(Some(trace_id)));
                (Context::new(), rate, Some(trace_id))
            }
        };
        let (name, destination) = span_names(topic, "publish");
        let mut attributes = Vec::with_capacity(7);
        attributes.extend([
            KeyValue::new("messaging.system", MESSAGING_SYSTEM),
            KeyValue::new("messaging.destination.name", destination),
            KeyValue::new("messaging.operation.type", "send"),
            KeyValue::new("messaging.operation.name", "publish"),
            KeyValue::new("tracebus.fanout", fanout as i64),
            KeyValue::new("tracebus.sampling.rate", rate),
        ]);
        if batch > 1 {
            attributes.push(KeyValue::new("messaging.batch.message_count", batch as i64));
        }
        let builder = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Producer)
            .with_attributes(attributes);
        let span = self.tracer.build_with_context(builder, &cx);
        // If the provider does not use `BusIdGenerator`, the id was not taken: clear it.
        PENDING_TRACE_ID.with(|c| c.set(None));
        let header = context_of(span.span_context())?;
        let header = match started {
            Some(decided) if decided == header.trace_id() => {
                header.with_flags(header.flags() | FLAG_RANDOM)
            }
            Some(_) => {
                warn_no_id_generator();
                header
            }
            None => header,
        };
        Some(Sampled { header, span })
    }

    /// The parent of the `process` spans of a sampled message: made once per message, shared by
    /// all its subscribers on this worker.
    pub(crate) fn parent(ctx: &TraceContext) -> Context {
        remote_parent(ctx)
    }

    /// Starts the `process <topic>` span of one subscriber for a sampled message whose header
    /// context is `parent` (from [`Tracing::parent`]).
    pub(crate) fn process(&self, topic: &str, parent: &Context, waited_ns: Option<u64>) -> Span {
        let (name, destination) = span_names(topic, "process");
        let mut attributes = Vec::with_capacity(5);
        attributes.extend([
            KeyValue::new("messaging.system", MESSAGING_SYSTEM),
            KeyValue::new("messaging.destination.name", destination),
            KeyValue::new("messaging.operation.type", "process"),
            KeyValue::new("messaging.operation.name", "process"),
        ]);
        if let Some(ns) = waited_ns {
            attributes.push(KeyValue::new("tracebus.ring.wait_ns", ns as i64));
        }
        let builder = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Consumer)
            .with_attributes(attributes);
        self.tracer.build_with_context(builder, parent)
    }

    /// The context of a span (for a handler's onward publishes).
    pub(crate) fn context(span: &Span) -> Option<TraceContext> {
        context_of(span.span_context())
    }
}

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    use super::*;

    #[test]
    fn span_names_are_interned_up_to_the_cap_then_formatted() {
        let (name, destination) = span_names("orders", "process");
        assert_eq!(name, "process orders");
        assert!(matches!(name, Cow::Borrowed(_)), "interned");
        assert_eq!(destination.as_str(), "orders");
        let (publish, _) = span_names("orders", "publish");
        assert_eq!(publish, "publish orders");
        // The same &'static str every time, from any thread.
        let again =
            std::thread::spawn(|| topic_names("orders").map(|n| n.process.as_ptr() as usize))
                .join()
                .unwrap();
        assert_eq!(
            again,
            topic_names("orders").map(|n| n.process.as_ptr() as usize)
        );
        // Fill the table; topics past the cap still get correct, formatted names.
        let mut t = 0;
        while topic_names(&format!("t{t}")).is_some() {
            t += 1;
        }
        assert!(t <= MAX_INTERNED_TOPICS);
        let (name, destination) = span_names(&format!("t{t}"), "process");
        assert!(matches!(name, Cow::Owned(_)), "past the cap");
        assert_eq!(name, format!("process t{t}"));
        assert_eq!(destination.as_str(), format!("t{t}"));
        assert!(topic_names("orders").is_some(), "interned names stay");
    }
}
