//! Tracing in the bus, checked with the OpenTelemetry SDK's in-memory exporter: spans follow
//! the messages, the sampled fraction follows the fanout, unsampled messages make no spans, no
//! stale context survives slot reuse, and live reconfiguration loses nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;

use opentelemetry::trace::{SpanId, SpanKind};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use tracebus::context::FanoutSampler;
use tracebus::{Bus, Pinning, SpanExport, Topic, WaitStrategy};

/// Where the bus's spans go: the SDK's in-memory exporter, which the bus's shutdown must not
/// shut down (that would clear it before the test reads it).
/// Record rings big enough that no burst in these tests fills one (a full ring drops spans
/// and counts them; each test checks the count is 0).
fn export(exporter: &InMemorySpanExporter) -> SpanExport {
    SpanExport::exporter(exporter.clone())
        .shutdown_target(false)
        .ring_capacity(1 << 16)
}

fn traced_bus(exporter: &InMemorySpanExporter, sampler: FanoutSampler, capacity: usize) -> Bus {
    Bus::builder()
        .workers(2)
        .capacity(capacity)
        .pinning(Pinning::Off)
        .wait_strategy(WaitStrategy::SpinThenPark)
        .tracing(export(exporter))
        .sampler(sampler)
        .build()
        .unwrap()
}

/// A new `u64` topic on `bus`.
fn topic(bus: &Bus, name: &str) -> Topic<u64> {
    bus.topic(name)
        .expect("a valid name, not taken by another type")
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[test]
fn spans_follow_messages_and_onward_publishes() {
    const N: u64 = 20;
    let exporter = InMemorySpanExporter::default();
    let bus = traced_bus(&exporter, FanoutSampler::default(), 64);
    let (orders, fills) = (topic(&bus, "orders"), topic(&bus, "fills"));
    let forwarded = Arc::new(AtomicU64::new(0));
    let f = forwarded.clone();
    bus.subscribe_on(0, &orders, move |m, out| {
        assert!(m.trace_context().is_some(), "fanout 1 is always sampled");
        assert!(out.trace_context().is_some());
        out.try_publish(&fills, *m.payload()).unwrap();
    })
    .unwrap();
    bus.subscribe_on(1, &fills, move |m, _| {
        assert!(
            m.trace_context().is_some(),
            "the onward publish continues the trace"
        );
        f.fetch_add(1, Relaxed);
    })
    .unwrap();
    let mut p = bus.publisher().unwrap();
    for i in 0..N {
        p.publish(&orders, i).unwrap();
    }
    while forwarded.load(Relaxed) < N {
        thread::yield_now();
    }
    bus.shutdown();
    let spans = exporter.get_finished_spans().unwrap();
    let by_id: HashMap<SpanId, &SpanData> = spans
        .iter()
        .map(|s| (s.span_context.span_id(), s))
        .collect();
    let (pub1, proc1) = (
        named(&spans, "publish orders"),
        named(&spans, "process orders"),
    );
    let (pub2, proc2) = (
        named(&spans, "publish fills"),
        named(&spans, "process fills"),
    );
    for group in [&pub1, &proc1, &pub2, &proc2] {
        assert_eq!(group.len() as u64, N);
    }
    let parent_of = |s: &SpanData| by_id.get(&s.parent_span_id).copied();
    for s in &pub1 {
        assert_eq!(s.span_kind, SpanKind::Producer);
        assert_eq!(
            s.parent_span_id,
            SpanId::INVALID,
            "an external publish starts the trace"
        );
    }
    for (s, destination) in pub1
        .iter()
        .map(|s| (s, "orders"))
        .chain(pub2.iter().map(|s| (s, "fills")))
    {
        assert_eq!(s.span_kind, SpanKind::Producer);
        assert_eq!(attr(s, "messaging.system"), Some(&Value::from("tracebus")));
        assert_eq!(
            attr(s, "messaging.destination.name"),
            Some(&Value::from(destination))
        );
        assert_eq!(
            attr(s, "messaging.operation.type"),
            Some(&Value::from("send"))
        );
        assert_eq!(
            attr(s, "messaging.operation.name"),
            Some(&Value::from("publish"))
        );
        assert_eq!(attr(s, "tracebus.fanout"), Some(&Value::I64(1)));
        assert_eq!(
            attr(s, "messaging.batch.message_count"),
            None,
            "a single message is not a batch"
        );
        assert_eq!(attr(s, "tracebus.sampling.rate"), Some(&Value::F64(1.0)));
    }
    for (s, parent_name, destination) in proc1
        .iter()
        .map(|s| (s, "publish orders", "orders"))
        .chain(proc2.iter().map(|s| (s, "publish fills", "fills")))
    {
        assert_eq!(s.span_kind, SpanKind::Consumer);
        let parent = parent_of(s).expect("a process span's parent is exported");
        assert_eq!(parent.name, parent_name);
        assert_eq!(parent.span_context.trace_id(), s.span_context.trace_id());
        assert_eq!(attr(s, "messaging.system"), Some(&Value::from("tracebus")));
        assert_eq!(
            attr(s, "messaging.destination.name"),
            Some(&Value::from(destination))
        );
        assert_eq!(
            attr(s, "messaging.operation.type"),
            Some(&Value::from("process"))
        );
        assert_eq!(
            attr(s, "messaging.operation.name"),
            Some(&Value::from("process"))
        );
        assert!(
            attr(s, "tracebus.ring.wait_ns").is_some(),
            "sampled messages carry their time"
        );
    }
    for s in &pub2 {
        let parent = parent_of(s).expect("onward publish has a parent");
        assert_eq!(
            parent.name, "process orders",
            "a handler's publish is a child of its process span"
        );
        assert_eq!(parent.span_context.trace_id(), s.span_context.trace_id());
    }
    // Every trace is whole: 4 spans, one per hop.
    let mut per_trace: HashMap<_, usize> = HashMap::new();
    for s in &spans {
        *per_trace.entry(s.span_context.trace_id()).or_default() += 1;
    }
    assert_eq!(per_trace.len() as u64, N);
    assert!(per_trace.values().all(|&n| n == 4));
}

#[test]
fn a_batch_publish_is_one_span_counting_its_messages() {
    const BATCH: u64 = 5;
    let exporter = InMemorySpanExporter::default();
    let bus = traced_bus(&exporter, FanoutSampler::default(), 64);
    let ticks = topic(&bus, "ticks");
    for w in 0..2 {
        bus.subscribe_on(w, &ticks, |m, _| {
            assert!(m.trace_context().is_some(), "fanout 2 is always sampled")
        })
        .unwrap();
    }
    let mut p = bus.publisher().unwrap();
    let batch: Vec<u64> = (0..BATCH).collect();
    assert_eq!(p.try_publish_batch(&ticks, &batch).unwrap().fanout, 2);
    let report = bus.shutdown();
    assert_eq!(report.delivered, 2 * BATCH);
    assert_eq!(report.handler_panics, 0);
    let spans = exporter.get_finished_spans().unwrap();
    let publishes = named(&spans, "publish ticks");
    assert_eq!(publishes.len(), 1, "one publish span for the batch");
    let s = publishes[0];
    assert_eq!(
        attr(s, "messaging.batch.message_count"),
        Some(&Value::I64(BATCH as i64))
    );
    assert_eq!(attr(s, "tracebus.fanout"), Some(&Value::I64(2)));
    assert_eq!(
        attr(s, "messaging.destination.name"),
        Some(&Value::from("ticks"))
    );
    assert_eq!(
        attr(s, "messaging.operation.type"),
        Some(&Value::from("send"))
    );
    assert_eq!(
        attr(s, "messaging.operation.name"),
        Some(&Value::from("publish"))
    );
    let processes = named(&spans, "process ticks");
    assert_eq!(
        processes.len() as u64,
        2 * BATCH,
        "one per message and subscriber"
    );
    for c in processes {
        assert_eq!(c.parent_span_id, s.span_context.span_id());
        assert_eq!(c.span_context.trace_id(), s.span_context.trace_id());
    }
}

/// `|observed - n p| <= 6 sigma`.
fn assert_binomial(hits: usize, n: usize, p: f64, what: &str) {
    let mean = n as f64 * p;
    let sigma = (n as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (hits as f64 - mean).abs() <= 6.0 * sigma + 1e-9,
        "{what}: {hits} of {n}, expected {mean:.1} ± {:.1}",
        6.0 * sigma
    );
}

#[test]
fn sampled_fraction_follows_fanout() {
    for (subscribers, messages, rate) in [
        (1usize, 2_000usize, 1.0),
        (100, 2_000, 0.1),
        (10_000, 2_000, 0.001),
    ] {
        let exporter = InMemorySpanExporter::default();
        let bus = traced_bus(&exporter, FanoutSampler::default(), 256);
        let quotes = topic(&bus, "quotes");
        let traced = Arc::new(AtomicU64::new(0));
        for i in 0..subscribers {
            let t = traced.clone();
            bus.subscribe_on(i % 2, &quotes, move |m, _| {
                if m.trace_context().is_some() {
                    t.fetch_add(1, Relaxed);
                }
            })
            .unwrap();
        }
        let mut p = bus.publisher().unwrap();
        for i in 0..messages {
            assert_eq!(p.publish(&quotes, i as u64).unwrap().fanout, subscribers);
        }
        let report = bus.shutdown();
        assert_eq!(report.delivered, (messages * subscribers) as u64);
        assert_eq!(report.spans.dropped, 0);
        let spans = exporter.get_finished_spans().unwrap();
        let published = named(&spans, "publish quotes").len();
        assert_binomial(published, messages, rate, &format!("fanout {subscribers}"));
        assert_eq!(
            named(&spans, "process quotes").len(),
            published * subscribers
        );
        assert_eq!(
            traced.load(Relaxed) as usize,
            published * subscribers,
            "same decision for all"
        );
    }
}

#[test]
fn unsampled_messages_make_no_spans() {
    let exporter = InMemorySpanExporter::default();
    let bus = traced_bus(&exporter, FanoutSampler::new(0.0), 64);
    let (first, onward) = (topic(&bus, "first"), topic(&bus, "onward"));
    bus.subscribe(&first, move |m, out| {
        assert!(m.trace_context().is_none());
        assert!(out.trace_context().is_none());
        let _ = out.try_publish(&onward, 0);
    })
    .unwrap();
    bus.subscribe(&onward, |m, _| assert!(m.trace_context().is_none()))
        .unwrap();
    let mut p = bus.publisher().unwrap();
    for i in 0..500 {
        p.publish(&first, i).unwrap();
    }
    let report = bus.shutdown();
    assert_eq!(report.handler_panics, 0);
    assert!(exporter.get_finished_spans().unwrap().is_empty());
}

#[test]
fn no_stale_context_across_slot_reuse() {
    const N: u64 = 2_000;
    let exporter = InMemorySpanExporter::default();
    // A 4-slot ring: every slot is reused hundreds of times, sampled and unsampled mixed.
    let bus = traced_bus(&exporter, FanoutSampler::default(), 4);
    let reused = topic(&bus, "reused");
    let wrong = Arc::new(AtomicU64::new(0));
    let w = wrong.clone();
    bus.subscribe_on(0, &reused, move |m, _| {
        let expect_traced = m.payload() % 3 != 0;
        if m.trace_context().is_some() != expect_traced {
            w.fetch_add(1, Relaxed);
        }
    })
    .unwrap();
    let control = bus.tracing().clone();
    let mut p = bus.publisher().unwrap();
    for i in 0..N {
        control.set_enabled(i % 3 != 0);
        p.publish(&reused, i).unwrap();
    }
    let report = bus.shutdown();
    assert_eq!(report.delivered, N);
    assert_eq!(
        wrong.load(Relaxed),
        0,
        "a slot showed a context its message did not carry"
    );
    let traced = (0..N).filter(|i| i % 3 != 0).count();
    assert_eq!(
        named(&exporter.get_finished_spans().unwrap(), "publish reused").len(),
        traced
    );
}

#[test]
fn reconfiguring_while_publishing_loses_nothing() {
    const PER_THREAD: u64 = 3_000;
    let exporter = InMemorySpanExporter::default();
    let bus = traced_bus(&exporter, FanoutSampler::default(), 64);
    let storm = topic(&bus, "storm");
    let delivered = Arc::new(AtomicU64::new(0));
    for w in 0..2 {
        let d = delivered.clone();
        bus.subscribe_on(w, &storm, move |_, _| {
            d.fetch_add(1, Relaxed);
        })
        .unwrap();
    }
    let control = bus.tracing().clone();
    let done = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..2)
        .map(|_| {
            let mut p = bus.publisher().unwrap();
            thread::spawn(move || {
                for i in 0..PER_THREAD {
                    p.publish(&storm, i).unwrap();
                }
            })
        })
        .collect();
    let flipper = {
        let (control, done) = (control.clone(), done.clone());
        thread::spawn(move || {
            let mut i = 0u64;
            while !done.load(Relaxed) {
                control
                    .sampler()
                    .set_k([10.0, 0.0, 1.0][(i % 3) as usize])
                    .unwrap();
                control.set_enabled(i % 5 != 0);
                i += 1;
                thread::yield_now();
            }
        })
    };
    for p in publishers {
        p.join().unwrap();
    }
    done.store(true, Relaxed);
    flipper.join().unwrap();
    // Settings applied after the storm are followed exactly. First let the storm's messages
    // (and their process spans) finish.
    while delivered.load(Relaxed) < 2 * 2 * PER_THREAD {
        thread::yield_now();
    }
    control.set_enabled(true);
    control.sampler().set_k(0.0).unwrap();
    let calm = topic(&bus, "calm");
    for w in 0..2 {
        bus.subscribe_on(w, &calm, |_, _| {}).unwrap();
    }
    let mut p = bus.publisher().unwrap();
    for i in 0..100 {
        p.publish(&calm, i).unwrap();
    }
    let report = bus.shutdown();
    assert_eq!(report.published, 2 * PER_THREAD + 100);
    assert_eq!(report.delivered, 2 * report.published, "no message lost");
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(
        spans.len() as u64,
        report.spans.exported,
        "every recorded span exported"
    );
    assert_eq!(report.spans.dropped, 0);
    assert!(
        named(&spans, "publish calm").is_empty() && named(&spans, "process calm").is_empty(),
        "k = 0 samples nothing"
    );
    // Every span is well formed: each process span's parent is an exported publish span.
    let publishes: HashMap<SpanId, &SpanData> = named(&spans, "publish storm")
        .into_iter()
        .map(|s| (s.span_context.span_id(), s))
        .collect();
    for s in named(&spans, "process storm") {
        let parent = publishes
            .get(&s.parent_span_id)
            .expect("parent publish span");
        assert_eq!(parent.span_context.trace_id(), s.span_context.trace_id());
    }
    assert_eq!(named(&spans, "process storm").len(), 2 * publishes.len());
}

#[test]
fn every_recorded_span_is_exported_by_shutdown_and_handlers_get_an_otel_context() {
    use opentelemetry::trace::TraceContextExt;
    let exporter = InMemorySpanExporter::default();
    let bus = traced_bus(&exporter, FanoutSampler::default(), 64);
    let orders = topic(&bus, "orders");
    // The span id of each handler's OpenTelemetry context, which must be its process span.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    bus.subscribe(&orders, move |_, out| {
        let cx = out.otel_context();
        let id = cx.span().span_context().span_id();
        assert_eq!(
            Some(id.to_bytes()),
            out.trace_context().map(|c| c.span_id())
        );
        s.lock().unwrap().push(id);
    })
    .unwrap();
    let mut p = bus.publisher().unwrap();
    for i in 0..500 {
        p.publish(&orders, i).unwrap();
    }
    let report = bus.shutdown();
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(
        report.spans.exported, 1_000,
        "a publish and a process span each"
    );
    assert_eq!(spans.len(), 1_000, "all exported before shutdown returned");
    assert_eq!((report.spans.dropped, report.spans.export_errors), (0, 0));
    let process: std::collections::HashSet<SpanId> = named(&spans, "process orders")
        .iter()
        .map(|s| s.span_context.span_id())
        .collect();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 500);
    assert!(seen.iter().all(|id| process.contains(id)));
}

#[test]
fn a_full_record_ring_drops_and_counts() {
    let exporter = InMemorySpanExporter::default();
    let bus = Bus::builder()
        .workers(1)
        .pinning(Pinning::Off)
        .wait_strategy(WaitStrategy::SpinThenYield)
        // A tiny ring and a slow exporter thread: a burst of spans overflows it.
        .tracing(
            SpanExport::exporter(exporter.clone())
                .shutdown_target(false)
                .ring_capacity(16)
                .poll_interval(std::time::Duration::from_millis(200)),
        )
        .build()
        .unwrap();
    let t = topic(&bus, "burst");
    bus.subscribe(&t, |_, _| {}).unwrap();
    let mut p = bus.publisher().unwrap();
    for i in 0..1_000 {
        p.publish(&t, i).unwrap(); // fanout 1: every publish sampled, 2 spans each
    }
    let report = bus.shutdown();
    assert_eq!(report.delivered, 1_000, "tracing never costs a message");
    assert!(report.spans.dropped > 0, "{:?}", report.spans);
    assert_eq!(
        report.spans.exported + report.spans.dropped,
        2_000,
        "every span exported or counted as dropped: {:?}",
        report.spans
    );
    assert_eq!(
        exporter.get_finished_spans().unwrap().len() as u64,
        report.spans.exported
    );
}

/// A span exporter that panics on every batch.
#[derive(Debug)]
struct PanickingExporter;

impl opentelemetry_sdk::trace::SpanExporter for PanickingExporter {
    fn export(
        &self,
        _batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
        panic!("injected exporter panic");
        #[allow(unreachable_code)]
        std::future::ready(Ok(()))
    }
}

#[test]
fn a_panicking_exporter_never_reaches_publishers_or_handlers() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let injected = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|s| s.starts_with("injected exporter panic"));
        if !injected {
            default(info);
        }
    }));
    let bus = Bus::builder()
        .workers(2)
        .pinning(Pinning::Off)
        .wait_strategy(WaitStrategy::SpinThenPark)
        .tracing(SpanExport::exporter(PanickingExporter).batch_size(8))
        .build()
        .unwrap();
    let t = topic(&bus, "doomed");
    bus.subscribe(&t, |_, _| {}).unwrap();
    let mut p = bus.publisher().unwrap();
    for i in 0..500 {
        p.publish(&t, i).unwrap();
    }
    let report = bus.shutdown();
    assert_eq!((report.published, report.delivered), (500, 500));
    assert_eq!(report.handler_panics, 0);
    assert!(report.spans.exporter_panics > 0, "{:?}", report.spans);
    assert_eq!(report.spans.exported, 0);
}

#[test]
fn tracing_can_start_on_a_bus_built_without_it_and_stop_again() {
    let exporter = InMemorySpanExporter::default();
    let bus = Bus::builder()
        .workers(1)
        .pinning(Pinning::Off)
        .build()
        .unwrap();
    let t = topic(&bus, "rollout");
    let traced = Arc::new(AtomicU64::new(0));
    let n = traced.clone();
    bus.subscribe(&t, move |m, _| {
        if m.trace_context().is_some() {
            n.fetch_add(1, Relaxed);
        }
    })
    .unwrap();
    let mut p = bus.publisher().unwrap();
    assert!(!bus.tracing().is_enabled());
    for i in 0..10 {
        p.publish(&t, i).unwrap(); // not traced: nowhere to export
    }
    bus.trace_to(export(&exporter)).unwrap();
    assert!(bus.tracing().is_enabled());
    for i in 10..30 {
        p.publish(&t, i).unwrap(); // traced (fanout 1)
    }
    bus.tracing().set_enabled(false);
    for i in 30..40 {
        p.publish(&t, i).unwrap(); // not traced
    }
    let report = bus.shutdown();
    assert_eq!(report.delivered, 40);
    assert_eq!(traced.load(Relaxed), 20);
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(named(&spans, "publish rollout").len(), 20);
    assert_eq!(named(&spans, "process rollout").len(), 20);
}

/// A bus that records no spans (built without tracing, or with tracing switched off) carries
/// a sampled parent's context through a pipeline unchanged, with no span of its own: the trace
/// does not break at a service that exports nothing itself. Unsampled and absent contexts stay
/// absent.
#[test]
fn a_bus_that_records_no_spans_carries_a_sampled_context_unchanged() {
    use std::sync::Mutex;
    use tracebus::context::{TraceContext, FLAG_SAMPLED};
    type Seen = Vec<(
        &'static str,
        u64,
        Option<TraceContext>,
        Option<TraceContext>,
    )>;

    let remote = TraceContext::new([7; 16], [9; 8], FLAG_SAMPLED).unwrap();
    let unsampled = TraceContext::new([7; 16], [9; 8], 0).unwrap();
    for switched_off in [false, true] {
        let exporter = InMemorySpanExporter::default();
        let mut builder = Bus::builder()
            .workers(2)
            .pinning(Pinning::Off)
            .wait_strategy(WaitStrategy::SpinThenPark);
        if switched_off {
            builder = builder.tracing(export(&exporter));
        }
        let bus = builder.build().unwrap();
        bus.tracing().set_enabled(false);
        let first = topic(&bus, "first");
        let second = topic(&bus, "second");
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let s = seen.clone();
        bus.subscribe_on(0, &first, move |m, out| {
            let entry = (
                "first",
                *m.payload(),
                m.trace_context(),
                out.trace_context(),
            );
            s.lock().unwrap().push(entry);
            out.try_publish(&second, *m.payload()).unwrap();
        })
        .unwrap();
        let s = seen.clone();
        bus.subscribe_on(1, &second, move |m, out| {
            let entry = (
                "second",
                *m.payload(),
                m.trace_context(),
                out.trace_context(),
            );
            s.lock().unwrap().push(entry);
        })
        .unwrap();
        let mut p = bus.publisher().unwrap();
        p.publish_with_parent(&first, 1, Some(remote)).unwrap();
        p.publish_with_parent(&first, 2, Some(unsampled)).unwrap();
        p.publish_with_parent(&first, 3, None).unwrap();
        p.publish(&first, 4).unwrap();
        drop(p);
        let report = bus.shutdown();
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_by_key(|&(stage, v, _, _)| (v, stage));
        let expected: Seen = [1, 2, 3, 4]
            .into_iter()
            .flat_map(|v| {
                let ctx = (v == 1).then_some(remote);
                [("first", v, ctx, ctx), ("second", v, ctx, ctx)]
            })
            .collect();
        assert_eq!(seen, expected, "switched off: {switched_off}");
        assert_eq!(report.spans.exported, 0);
        assert!(exporter.get_finished_spans().unwrap().is_empty());
    }
}
