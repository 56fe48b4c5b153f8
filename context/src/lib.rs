//! # tracebus-context
//!
//! The trace context that rides inline in every tracebus message slot, and everything needed to
//! decide, read and exchange it cheaply:
//!
//! - [`TraceHeader`]: 26 bytes, alignment 1, read in place through `zerocopy`: `version |
//!   trace-id(16) | span-id(8) | flags` (a W3C `traceparent` in binary).
//! - [`is_sampled`]: the fast filter, one byte read, nothing built.
//! - [`header_context`] / [`TraceHeader::context`]: the single normalization point, bytes to
//!   `Option<TraceContext>`; anything absent, zeroed or invalid is `None`.
//! - [`TraceContext`]: a `Copy` context that is always valid, with strict W3C `traceparent`
//!   text ([`TraceContext::from_traceparent`]) and W3C binary ([`TraceContext::from_w3c_binary`])
//!   forms.
//! - [`FanoutSampler`]: the consistent, parent-based sampling decision made once per publish
//!   from its fanout, `p(n) = min(1, k / n)`.
//! - The OpenTelemetry bridge: [`TraceContext::to_span_context`] and
//!   [`StrictTraceContextPropagator`].
//!
//! No threads, no `unsafe`, no allocation on any decode or decision path.
//!
//! The `tracebus` bus uses this crate for every message and re-exports it as
//! `tracebus::context`; it also stands alone, for a header in your own frames. How the bus
//! uses the header, the filter and the sampler, and why they are built this way:
//! `docs/ARCHITECTURE.md` in the repository.
//!
//! ## Example
//!
//! ```
//! use tracebus_context::{header_context, is_sampled, Decision, FanoutSampler, TraceContext,
//!     TraceHeader};
//! use zerocopy::IntoBytes;
//!
//! // Publish side: decide once, from the fanout, before any OpenTelemetry call.
//! let sampler = FanoutSampler::default(); // k = 10
//! let header = match sampler.decide(None, 1) {
//!     Decision::Start { trace_id, .. } => {
//!         let ctx = TraceContext::new(trace_id, [0x42; 8], Decision::ROOT_FLAGS).unwrap();
//!         TraceHeader::from_context(Some(&ctx))
//!     }
//!     Decision::Continue { .. } | Decision::Drop => TraceHeader::NONE,
//! };
//!
//! // Receive side: the fast filter reads one byte; decode only what is sampled.
//! let bytes = header.as_bytes();
//! if is_sampled(bytes) {
//!     let ctx = header_context(bytes).expect("a sampled header this crate wrote has a context");
//!     // Leaving the process: the strict W3C text form.
//!     let text = ctx.to_traceparent();
//!     assert_eq!(TraceContext::from_traceparent(&text), Ok(ctx));
//! }
//! # assert!(is_sampled(bytes)); // fanout 1 is always sampled
//! ```
//!
//! ## Across processes
//!
//! A context leaves the process as a strict W3C `traceparent`; the next service extracts it
//! with [`StrictTraceContextPropagator`] where it would use the OpenTelemetry SDK's
//! `TraceContextPropagator` (same headers, but malformed values start a new trace instead of
//! continuing a malformed one), or with any W3C-compliant tracer.
//!
//! ```
//! use std::collections::HashMap;
//! use opentelemetry::propagation::TextMapPropagator;
//! use opentelemetry::trace::TraceContextExt;
//! use tracebus_context::{StrictTraceContextPropagator, TraceContext};
//!
//! // Sending side (in a tracebus handler, `out.trace_context()`).
//! let current = TraceContext::new([0x4b; 16], [0xf0; 8], 0x01);
//! let mut headers = HashMap::new();
//! if let Some(ctx) = current {
//!     headers.insert("traceparent".to_owned(), ctx.to_traceparent());
//! }
//!
//! // Receiving side: spans started under `cx` continue the trace.
//! let cx = StrictTraceContextPropagator::new()
//!     .extract_with_context(&opentelemetry::Context::new(), &headers);
//! let span = cx.span();
//! let parent = span.span_context();
//! assert!(parent.is_remote() && parent.is_sampled());
//! assert_eq!(parent.trace_id().to_bytes(), [0x4b; 16]);
//!
//! // A malformed header gives no parent.
//! headers.insert("traceparent".to_owned(), "00-not-a-traceparent".to_owned());
//! let cx = StrictTraceContextPropagator::new()
//!     .extract_with_context(&opentelemetry::Context::new(), &headers);
//! assert!(!cx.span().span_context().is_valid());
//! ```

#![deny(unsafe_code)]

pub mod binary;
mod context;
pub mod error;
pub mod header;
mod otel;
pub mod random;
pub mod sampler;
pub mod traceparent;

pub use context::{TraceContext, FLAG_RANDOM, FLAG_SAMPLED, KNOWN_FLAGS};
pub use error::{Field, ParseError};
pub use header::{header_context, is_sampled, TraceHeader, HEADER_LEN};
pub use otel::StrictTraceContextPropagator;
pub use random::{random_span_id, random_trace_id};
pub use sampler::{Decision, FanoutSampler, RootPolicy, SamplerError};
