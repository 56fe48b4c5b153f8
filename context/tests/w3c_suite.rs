//! The strict `traceparent` parser and the strict propagator against every case of the W3C
//! trace-context test suite (`w3c/trace-context`, `test/test.py`) that concerns a
//! `traceparent` value or how a receiver picks it from headers:
//!
//! - `test_traceparent_included_tracestate_missing`, `test_traceparent_version_0x00`,
//!   `test_traceparent_version_0xcc`, `test_traceparent_version_0xff`,
//!   `test_traceparent_version_illegal_characters`, `test_traceparent_version_too_long`,
//!   `test_traceparent_version_too_short`, `test_traceparent_trace_id_all_zero`,
//!   `test_traceparent_trace_id_illegal_characters`, `test_traceparent_trace_id_too_long`,
//!   `test_traceparent_trace_id_too_short`, `test_traceparent_parent_id_all_zero`,
//!   `test_traceparent_parent_id_illegal_characters`, `test_traceparent_parent_id_too_long`,
//!   `test_traceparent_parent_id_too_short`, `test_traceparent_trace_flags_illegal_characters`,
//!   `test_traceparent_trace_flags_too_long`, `test_traceparent_trace_flags_too_short`,
//!   `test_traceparent_ows_handling` (the value itself: [`parser_cases`]);
//! - `test_traceparent_duplicated`, `test_traceparent_header_name`,
//!   `test_traceparent_header_name_valid_casing`, `test_both_traceparent_and_tracestate_missing`,
//!   `test_tracestate_included_traceparent_included`,
//!   `test_tracestate_multiple_headers_different_keys` (headers: [`propagator_cases`]).
//!
//! The suite's remaining cases validate `tracestate` contents (member limits, key syntax),
//! which this crate leaves to the OpenTelemetry `TraceState` type.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use tracebus_context::{StrictTraceContextPropagator, TraceContext};

const TRACE_ID: &str = "12345678901234567890123456789012";

/// `(case, value, accepted)`.
const CASES: &[(&str, &str, bool)] = &[
    (
        "included",
        "00-12345678901234567890123456789012-1234567890123456-01",
        true,
    ),
    (
        "0x00 trailing .",
        "00-12345678901234567890123456789012-1234567890123456-01.",
        false,
    ),
    (
        "0x00 extra field",
        "00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
        false,
    ),
    (
        "0xcc",
        "cc-12345678901234567890123456789012-1234567890123456-01",
        true,
    ),
    (
        "0xcc extra field",
        "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
        true,
    ),
    (
        "0xcc bad separator",
        "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like",
        false,
    ),
    (
        "0xff",
        "ff-12345678901234567890123456789012-1234567890123456-01",
        false,
    ),
    (
        "version .0",
        ".0-12345678901234567890123456789012-1234567890123456-01",
        false,
    ),
    (
        "version 0.",
        "0.-12345678901234567890123456789012-1234567890123456-01",
        false,
    ),
    (
        "version 000",
        "000-12345678901234567890123456789012-1234567890123456-01",
        false,
    ),
    (
        "version 0000",
        "0000-12345678901234567890123456789012-1234567890123456-01",
        false,
    ),
    (
        "version 0",
        "0-12345678901234567890123456789012-1234567890123456-01",
        false,
    ),
    (
        "trace-id zero",
        "00-00000000000000000000000000000000-1234567890123456-01",
        false,
    ),
    (
        "trace-id .",
        "00-.2345678901234567890123456789012-1234567890123456-01",
        false,
    ),
    (
        "trace-id end .",
        "00-1234567890123456789012345678901.-1234567890123456-01",
        false,
    ),
    (
        "trace-id 33",
        "00-123456789012345678901234567890123-1234567890123456-01",
        false,
    ),
    (
        "trace-id 31",
        "00-1234567890123456789012345678901-1234567890123456-01",
        false,
    ),
    (
        "parent-id zero",
        "00-12345678901234567890123456789012-0000000000000000-01",
        false,
    ),
    (
        "parent-id .",
        "00-12345678901234567890123456789012-.234567890123456-01",
        false,
    ),
    (
        "parent-id end .",
        "00-12345678901234567890123456789012-123456789012345.-01",
        false,
    ),
    (
        "parent-id 17",
        "00-12345678901234567890123456789012-12345678901234567-01",
        false,
    ),
    (
        "parent-id 15",
        "00-12345678901234567890123456789012-123456789012345-01",
        false,
    ),
    (
        "flags .0",
        "00-12345678901234567890123456789012-1234567890123456-.0",
        false,
    ),
    (
        "flags 0.",
        "00-12345678901234567890123456789012-1234567890123456-0.",
        false,
    ),
    (
        "flags 001",
        "00-12345678901234567890123456789012-1234567890123456-001",
        false,
    ),
    (
        "flags 1",
        "00-12345678901234567890123456789012-1234567890123456-1",
        false,
    ),
    (
        "ows space before",
        " 00-12345678901234567890123456789012-1234567890123456-01",
        true,
    ),
    (
        "ows tab before",
        "\t00-12345678901234567890123456789012-1234567890123456-01",
        true,
    ),
    (
        "ows space after",
        "00-12345678901234567890123456789012-1234567890123456-01 ",
        true,
    ),
    (
        "ows tab after",
        "00-12345678901234567890123456789012-1234567890123456-01\t",
        true,
    ),
    (
        "ows both",
        "\t 00-12345678901234567890123456789012-1234567890123456-01 \t",
        true,
    ),
];

#[test]
fn parser_cases() {
    for &(case, value, accepted) in CASES {
        let parsed = TraceContext::from_traceparent(value);
        assert_eq!(parsed.is_ok(), accepted, "{case}: {value:?} -> {parsed:?}");
        if let Ok(ctx) = parsed {
            let hex: String = ctx.trace_id().iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, TRACE_ID, "{case}");
        } else if let Err(e) = parsed {
            assert!(!e.to_string().is_empty(), "{case}: the error says why");
        }
    }
}

/// HTTP-style headers: names compare case-insensitively, a name may repeat.
struct Headers(Vec<(&'static str, &'static str)>);

impl Extractor for Headers {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| *v)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| *k).collect()
    }
    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let all: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| *v)
            .collect();
        (!all.is_empty()).then_some(all)
    }
}

fn extracted_trace_id(headers: Vec<(&'static str, &'static str)>) -> Option<String> {
    let cx = StrictTraceContextPropagator::new()
        .extract_with_context(&Context::new(), &Headers(headers));
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| format!("{}", sc.trace_id()))
}

#[test]
fn propagator_cases() {
    let valid = "00-12345678901234567890123456789012-1234567890123456-01";
    // Every parser case behaves the same through the propagator.
    for &(case, value, accepted) in CASES {
        let got = extracted_trace_id(vec![("traceparent", value)]);
        assert_eq!(got.is_some(), accepted, "{case}");
    }
    // test_both_traceparent_and_tracestate_missing
    assert_eq!(extracted_trace_id(vec![]), None);
    // test_traceparent_duplicated: two values, the receiver must start a new trace.
    assert_eq!(
        extracted_trace_id(vec![
            (
                "traceparent",
                "00-12345678901234567890123456789011-1234567890123456-01"
            ),
            ("traceparent", valid),
        ]),
        None
    );
    // test_traceparent_header_name
    assert_eq!(extracted_trace_id(vec![("trace-parent", valid)]), None);
    assert_eq!(extracted_trace_id(vec![("trace.parent", valid)]), None);
    // test_traceparent_header_name_valid_casing
    for name in ["TraceParent", "TrAcEpArEnT", "TRACEPARENT"] {
        assert_eq!(
            extracted_trace_id(vec![(name, valid)]).as_deref(),
            Some(TRACE_ID),
            "{name}"
        );
    }
    // test_tracestate_included_traceparent_included and
    // test_tracestate_multiple_headers_different_keys: tracestate is kept, in order.
    let headers = Headers(vec![
        (
            "traceparent",
            "00-12345678901234567890123456789012-1234567890123456-00",
        ),
        ("tracestate", "foo=1,bar=2"),
        ("tracestate", "rojo=1,congo=2"),
        ("tracestate", "baz=3"),
    ]);
    let cx = StrictTraceContextPropagator::new().extract_with_context(&Context::new(), &headers);
    let span = cx.span();
    let state = span.span_context().trace_state().header();
    assert_eq!(state, "foo=1,bar=2,rojo=1,congo=2,baz=3");
}
