//! The `send <subject>` PRODUCER span of a sampled exported message: a child of the message's
//! bus context, `messaging.system = "nats"`. Its id goes in the `traceparent` the message
//! carries, so the receiving side's spans hang under it.

use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, Span};
use tracebus_context::TraceContext;

/// `messaging.system` of the bridge's spans.
pub const MESSAGING_SYSTEM: &str = "nats";

/// A started `send` span and the context to put in the message's `traceparent`.
pub(crate) struct SendSpan {
    span: Span,
}

impl SendSpan {
    /// Starts `send <subject>` as a child of `parent` (the bus context of the message) and
    /// returns it with the context to send: the span's own when the SDK records it, else the
    /// parent's (the trace still continues). The parent's flags are kept (the random-trace-id
    /// flag is not modelled by OpenTelemetry's Rust API, and the bus's sampling relies on it).
    pub(crate) fn start(
        tracer: &SdkTracer,
        subject: &str,
        parent: &TraceContext,
    ) -> (SendSpan, TraceContext) {
        let parent_cx = Context::new().with_remote_span_context(parent.to_span_context(true));
        let span = tracer
            .span_builder(format!("send {subject}"))
            .with_kind(SpanKind::Producer)
            .with_attributes([
                KeyValue::new("messaging.system", MESSAGING_SYSTEM),
                KeyValue::new("messaging.operation.type", "send"),
                KeyValue::new("messaging.operation.name", "send"),
                KeyValue::new("messaging.destination.name", subject.to_owned()),
            ])
            .start_with_context(tracer, &parent_cx);
        let sc = span.span_context();
        let sent = if sc.is_valid() && sc.is_sampled() {
            TraceContext::new(
                sc.trace_id().to_bytes(),
                sc.span_id().to_bytes(),
                parent.flags(),
            )
            .unwrap_or(*parent)
        } else {
            *parent
        };
        (SendSpan { span }, sent)
    }

    /// Ends the span; `error` marks a publish that failed.
    pub(crate) fn end(mut self, error: Option<String>) {
        if let Some(e) = error {
            self.span.set_status(Status::error(e));
        }
        self.span.end();
    }
}
