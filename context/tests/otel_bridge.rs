//! The OpenTelemetry bridge: `SpanContext` conversions, and the strict propagator against the
//! SDK's `TraceContextPropagator`.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TraceFlags};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use proptest::prelude::*;
use tracebus_context::{StrictTraceContextPropagator, TraceContext};

fn carrier(traceparent: &str, tracestate: Option<&str>) -> HashMap<String, String> {
    let mut m = HashMap::new();
    m.insert("traceparent".to_owned(), traceparent.to_owned());
    if let Some(ts) = tracestate {
        m.insert("tracestate".to_owned(), ts.to_owned());
    }
    m
}

fn round_trip(p: &dyn TextMapPropagator, c: &HashMap<String, String>) -> HashMap<String, String> {
    let cx = p.extract_with_context(&Context::new(), c);
    let mut out = HashMap::new();
    p.inject_context(&cx, &mut out);
    out
}

#[test]
fn span_context_conversions() {
    let c = TraceContext::new([9; 16], [8; 8], 0x03).unwrap();
    let remote = c.to_span_context(true);
    assert!(remote.is_remote() && remote.is_valid() && remote.is_sampled());
    assert_eq!(remote.trace_id().to_bytes(), [9; 16]);
    assert_eq!(remote.span_id().to_bytes(), [8; 8]);
    assert!(!c.to_span_context(false).is_remote());
    assert_eq!(TraceContext::from_span_context(&remote), Some(c));
    assert_eq!(
        TraceContext::from_span_context(&opentelemetry::trace::SpanContext::empty_context()),
        None
    );
    let unsampled = c.with_flags(0).to_span_context(true);
    assert_eq!(unsampled.trace_flags(), TraceFlags::NOT_SAMPLED);
}

#[test]
fn fields_match_the_sdk() {
    let (strict, sdk) = (
        StrictTraceContextPropagator::new(),
        TraceContextPropagator::new(),
    );
    let ours: Vec<_> = strict.fields().collect();
    let sdk: Vec<_> = sdk.fields().collect();
    assert_eq!(ours, sdk);
}

#[test]
fn strict_where_the_sdk_is_lenient() {
    let strict = StrictTraceContextPropagator::new();
    let sdk = TraceContextPropagator::new();
    // The SDK accepts these; the W3C specification does not.
    for bad in [
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-+1",
    ] {
        let c = carrier(bad, None);
        let extracted = strict.extract_with_context(&Context::new(), &c);
        assert!(!extracted.span().span_context().is_valid(), "{bad}");
        assert!(round_trip(&strict, &c).is_empty(), "{bad}");
        let _ = sdk.extract_with_context(&Context::new(), &c);
    }
    let lenient = sdk.extract_with_context(
        &Context::new(),
        &carrier(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            None,
        ),
    );
    assert!(
        lenient.span().span_context().is_valid(),
        "the SDK's leniency this guards against"
    );
}

#[test]
fn extracted_context_is_remote_with_tracestate() {
    let strict = StrictTraceContextPropagator::new();
    let c = carrier(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
    );
    let cx = strict.extract_with_context(&Context::new(), &c);
    let span = cx.span();
    let sc = span.span_context();
    assert!(sc.is_remote() && sc.is_sampled());
    assert_eq!(sc.trace_state().get("congo"), Some("t61rcWkgMzE"));
    let out = round_trip(&strict, &c);
    assert_eq!(out["traceparent"], c["traceparent"]);
    assert_eq!(out["tracestate"], "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Drop-in: for every valid input both propagators produce the same headers.
    #[test]
    fn same_output_as_the_sdk_for_valid_input(
        t in any::<[u8; 16]>(), s in any::<[u8; 8]>(), flags in any::<u8>(), version in 0u8..0xff,
        state in prop::option::of("[a-z]{1,8}=[a-z0-9]{1,8}"),
    ) {
        let Some(ctx) = TraceContext::new(t, s, flags) else { return Ok(()) };
        let mut text = ctx.to_traceparent();
        text.replace_range(0..2, &format!("{version:02x}"));
        // Put the raw flags back: unknown bits must not matter.
        text.replace_range(53..55, &format!("{flags:02x}"));
        let c = carrier(&text, state.as_deref());
        let ours = round_trip(&StrictTraceContextPropagator::new(), &c);
        let sdk = round_trip(&TraceContextPropagator::new(), &c);
        prop_assert_eq!(ours, sdk);
    }
}
