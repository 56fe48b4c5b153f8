//! One sampled trace through the bus, rendered as an indented tree: the publish span, the
//! process spans under it, an onward publish under one of those, each with its duration and
//! the time its message spent in the ring.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use opentelemetry::trace::SpanId;
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use tracebus::{Bus, Pinning, SpanExport, WaitStrategy};

/// Runs one traced message through a small pipeline (`orders` with three subscribers on two
/// workers; the first forwards to `fills`) and returns the finished spans of its trace.
pub fn sample_trace() -> Vec<SpanData> {
    let exporter = InMemorySpanExporter::default();
    let bus = Bus::builder()
        .workers(2)
        .pinning(Pinning::Off)
        .wait_strategy(WaitStrategy::SpinThenPark)
        .tracing(SpanExport::exporter(exporter.clone()).shutdown_target(false))
        .build()
        .expect("valid settings");
    let orders = bus.topic::<u64>("orders").expect("topic");
    let fills = bus.topic::<u64>("fills").expect("topic");
    let forwarded = Arc::new(AtomicU64::new(0));
    bus.subscribe_on(0, &orders, move |m, out| {
        let _ = out.try_publish(&fills, *m.payload() + 1);
    })
    .expect("subscribe");
    bus.subscribe_on(1, &orders, |_, _| {}).expect("subscribe");
    bus.subscribe_on(1, &orders, |_, _| {}).expect("subscribe");
    let f = forwarded.clone();
    bus.subscribe_on(1, &fills, move |_, _| {
        f.fetch_add(1, Ordering::Release);
    })
    .expect("subscribe");
    bus.publisher()
        .expect("publisher")
        .publish(&orders, 41)
        .expect("bus open");
    while forwarded.load(Ordering::Acquire) == 0 {
        std::thread::yield_now();
    }
    bus.shutdown();
    exporter.get_finished_spans().unwrap_or_default()
}

fn attr_i64(span: &SpanData, key: &str) -> Option<i64> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .and_then(|kv| match kv.value {
            Value::I64(v) => Some(v),
            _ => None,
        })
}

/// The spans as an indented tree, children under parents, in start order.
pub fn render(spans: &[SpanData]) -> String {
    let mut children: HashMap<SpanId, Vec<&SpanData>> = HashMap::new();
    let ids: Vec<SpanId> = spans.iter().map(|s| s.span_context.span_id()).collect();
    let mut roots = Vec::new();
    for s in spans {
        if ids.contains(&s.parent_span_id) {
            children.entry(s.parent_span_id).or_default().push(s);
        } else {
            roots.push(s);
        }
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| s.start_time);
    }
    roots.sort_by_key(|s| s.start_time);
    let mut out = String::new();
    fn walk(
        out: &mut String,
        s: &SpanData,
        depth: usize,
        children: &HashMap<SpanId, Vec<&SpanData>>,
    ) {
        let dur = s
            .end_time
            .duration_since(s.start_time)
            .map_or(0, |d| d.as_nanos());
        let _ = write!(
            out,
            "{:indent$}{} [{:?}] {:.1} µs",
            "",
            s.name,
            s.span_kind,
            dur as f64 / 1e3,
            indent = depth * 2
        );
        if let Some(ns) = attr_i64(s, "tracebus.ring.wait_ns") {
            let _ = write!(out, ", {ns} ns in ring");
        }
        if let Some(n) = attr_i64(s, "tracebus.fanout") {
            let _ = write!(out, ", fanout {n}");
        }
        out.push('\n');
        for c in children
            .get(&s.span_context.span_id())
            .into_iter()
            .flatten()
        {
            walk(out, c, depth + 1, children);
        }
    }
    if let Some(first) = roots.first() {
        let _ = writeln!(out, "trace {}", first.span_context.trace_id());
    }
    for r in roots {
        walk(&mut out, r, 1, &children);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_trace_has_its_shape() {
        let spans = sample_trace();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names.iter().filter(|n| **n == "publish orders").count(), 1);
        assert_eq!(names.iter().filter(|n| **n == "process orders").count(), 3);
        assert_eq!(names.iter().filter(|n| **n == "publish fills").count(), 1);
        assert_eq!(names.iter().filter(|n| **n == "process fills").count(), 1);
        let text = render(&spans);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("trace "));
        assert!(lines[1].starts_with("  publish orders"), "{text}");
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("    process orders"))
                .count(),
            3,
            "{text}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("      publish fills")),
            "{text}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("        process fills")),
            "{text}"
        );
    }
}
