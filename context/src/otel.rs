//! The OpenTelemetry bridge: `TraceContext` to and from `SpanContext`, and a strict
//! `traceparent` propagator.
//!
//! [`StrictTraceContextPropagator`] is a drop-in for the SDK's `TraceContextPropagator`: same
//! fields, same injected `traceparent` and `tracestate`, but extraction goes through this crate's
//! strict parser, so values the specification rejects (a trailing `-` after version 00, for
//! instance) start a new trace instead of continuing a malformed one. Like the SDK's, it carries
//! only the sampled flag in OpenTelemetry's `TraceFlags` (the Rust API models no other bit).

use std::str::FromStr;
use std::sync::OnceLock;

use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;

use crate::TraceContext;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

impl TraceContext {
    /// This context as an OpenTelemetry `SpanContext`: `remote` when it came from a header or
    /// from another process, with an empty `TraceState`.
    pub fn to_span_context(&self, remote: bool) -> SpanContext {
        SpanContext::new(
            TraceId::from_bytes(self.trace_id()),
            SpanId::from_bytes(self.span_id()),
            TraceFlags::new(self.flags()),
            remote,
            TraceState::NONE,
        )
    }

    /// The context of an OpenTelemetry `SpanContext`, or `None` if it is invalid (zero ids).
    pub fn from_span_context(sc: &SpanContext) -> Option<TraceContext> {
        TraceContext::new(
            sc.trace_id().to_bytes(),
            sc.span_id().to_bytes(),
            sc.trace_flags().to_u8(),
        )
    }
}

/// A `TextMapPropagator` for W3C `traceparent`/`tracestate` built on the strict parser.
#[derive(Debug, Clone, Default)]
pub struct StrictTraceContextPropagator {
    _private: (),
}

/// The header names, built once (the trait hands out borrowed `String`s).
fn fields() -> &'static [String; 2] {
    static FIELDS: OnceLock<[String; 2]> = OnceLock::new();
    FIELDS.get_or_init(|| [TRACEPARENT.to_owned(), TRACESTATE.to_owned()])
}

impl StrictTraceContextPropagator {
    /// A new propagator.
    pub fn new() -> Self {
        StrictTraceContextPropagator { _private: () }
    }

    /// The remote `SpanContext` in `extractor`, if it carries exactly one `traceparent` and
    /// that value is valid (two `traceparent` headers are invalid, as the W3C test suite
    /// expects). Several `tracestate` headers are combined in order.
    pub fn extract_span_context(&self, extractor: &dyn Extractor) -> Option<SpanContext> {
        let parents = extractor.get_all(TRACEPARENT)?;
        let [parent] = parents.as_slice() else {
            return None;
        };
        let ctx = TraceContext::from_traceparent(parent).ok()?;
        let state = extractor
            .get_all(TRACESTATE)
            .map(|values| {
                values
                    .into_iter()
                    .map(|v| v.trim_matches([' ', '\t']))
                    .filter(|v| !v.is_empty())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .and_then(|s| TraceState::from_str(&s).ok())
            .unwrap_or_default();
        Some(SpanContext::new(
            TraceId::from_bytes(ctx.trace_id()),
            SpanId::from_bytes(ctx.span_id()),
            TraceFlags::new(ctx.flags()) & TraceFlags::SAMPLED,
            true,
            state,
        ))
    }
}

impl TextMapPropagator for StrictTraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        let Some(ctx) = TraceContext::from_span_context(sc) else {
            return;
        };
        let ctx = ctx.with_flags(ctx.flags() & crate::context::FLAG_SAMPLED);
        injector.set(TRACEPARENT, ctx.to_traceparent());
        injector.set(TRACESTATE, sc.trace_state().header());
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match self.extract_span_context(extractor) {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(fields())
    }
}
