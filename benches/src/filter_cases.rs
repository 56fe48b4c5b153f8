//! The four ways to learn whether a message is sampled, shared by the criterion bench and
//! `busbench` so both measure the same code.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracebus_context::{
    header_context, is_sampled, StrictTraceContextPropagator, TraceContext, TraceHeader,
};
use zerocopy::IntoBytes;

/// Number of distinct headers in [`Cases::headers`].
pub const HEADERS: usize = 1024;

/// Inputs for the filter comparisons: headers as they sit in slots, and a `traceparent` carrier.
pub struct Cases {
    /// [`HEADERS`] different headers, every other one sampled, some with no context, so a loop
    /// over them cannot be folded into a constant.
    pub headers: Vec<[u8; 26]>,
    /// The same context as an HTTP-style carrier.
    pub carrier: HashMap<String, String>,
    sdk: TraceContextPropagator,
    strict: StrictTraceContextPropagator,
}

impl Default for Cases {
    fn default() -> Self {
        Cases::new()
    }
}

impl Cases {
    /// Builds the inputs.
    pub fn new() -> Cases {
        let ctx = TraceContext::new([0x4b; 16], [0xf0; 8], 0x03).expect("non-zero ids");
        let headers = (0..HEADERS)
            .map(|i| {
                let c = TraceContext::new(tracebus_context::random_trace_id(), [0xf0; 8], i as u8);
                let mut h = [0u8; 26];
                let c = if i % 16 == 15 { None } else { c };
                h.copy_from_slice(TraceHeader::from_context(c.as_ref()).as_bytes());
                h
            })
            .collect();
        let mut carrier = HashMap::new();
        carrier.insert("traceparent".to_owned(), ctx.to_traceparent());
        Cases {
            headers,
            carrier,
            sdk: TraceContextPropagator::new(),
            strict: StrictTraceContextPropagator::new(),
        }
    }

    /// One byte read: [`is_sampled`].
    #[inline]
    pub fn fast_filter(&self, header: &[u8]) -> bool {
        is_sampled(header)
    }

    /// The normalization point: bytes to `Option<TraceContext>`.
    #[inline]
    pub fn full_decode(&self, header: &[u8]) -> bool {
        header_context(header).is_some_and(|c| c.is_sampled())
    }

    /// Decode, then build an OpenTelemetry `SpanContext` (what a naive consumer does).
    #[inline]
    pub fn span_context(&self, header: &[u8]) -> bool {
        header_context(header).is_some_and(|c| c.to_span_context(true).is_sampled())
    }

    /// The SDK's `TraceContextPropagator` extracting from a text carrier.
    #[inline]
    pub fn sdk_extract(&self, carrier: &HashMap<String, String>) -> bool {
        let cx = self.sdk.extract_with_context(&Context::new(), carrier);
        cx.span().span_context().is_sampled()
    }

    /// This crate's strict propagator extracting from the same carrier.
    #[inline]
    pub fn strict_extract(&self, carrier: &HashMap<String, String>) -> bool {
        let cx = self.strict.extract_with_context(&Context::new(), carrier);
        cx.span().span_context().is_sampled()
    }
}
