//! The pipeline end to end: records in, `SpanData` out of the SDK's in-memory exporter (or a
//! processor), with the counts shutdown reports; full rings, failing, panicking and blocking
//! targets.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, InMemorySpanExporter, SimpleSpanProcessor, SpanData, SpanExporter,
};
use opentelemetry_sdk::Resource;
use tracebus_context::TraceContext;

use super::*;

fn names() -> TopicNames {
    Arc::new(|t| match t {
        0 => Some(Arc::from("orders")),
        1 => Some(Arc::from("invoices")),
        _ => None,
    })
}

fn memory() -> (InMemorySpanExporter, SpanExport) {
    let exporter = InMemorySpanExporter::default();
    let export = SpanExport::exporter(exporter.clone()).shutdown_target(false);
    (exporter, export)
}

fn attr<'a>(s: &'a SpanData, key: &str) -> Option<&'a Value> {
    s.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn by_name<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// A publish span of trace `trace` on topic 0.
fn publish(trace: u8, i: u64) -> SpanRecord {
    let ctx = TraceContext::new([trace; 16], (i + 1).to_be_bytes(), 1).unwrap();
    let t = now();
    SpanRecord::publish(&ctx, None, 0, t, t)
}

#[test]
fn a_message_and_an_onward_publish_become_linked_spans() {
    let (exporter, export) = memory();
    let scope = InstrumentationScope::builder("bus-under-test").build();
    let pipeline = SpanPipeline::start(export.scope(scope), names()).unwrap();
    let mut endpoint = pipeline.recorder().unwrap();
    let mut worker = pipeline.recorder().unwrap();
    let before = SystemTime::now();

    // Publish on topic 0 ("orders"), fanout 2, a new trace.
    let start = now();
    let ctx = TraceContext::new(new_trace_id(), new_span_id(), 0x03).unwrap();
    let end = now();
    endpoint.record(
        SpanRecord::publish(&ctx, None, 0, start, end)
            .with_fanout(2)
            .with_sampling_rate(1.0),
    );
    // The worker runs both subscribers; the first publishes onward to topic 1 ("invoices"),
    // the second panics. The end of one handler is the start of the next.
    let mut t = now();
    let first = new_span_id();
    let onward_start = now();
    let onward = ctx.with_span_id(new_span_id()).unwrap();
    let onward_end = now();
    worker.record(
        SpanRecord::publish(
            &onward,
            Some(Parent::local(first)),
            1,
            onward_start,
            onward_end,
        )
        .with_fanout(1)
        .with_sampling_rate(1.0),
    );
    let end = now();
    worker.record(SpanRecord::process(&ctx, first, 0, t, end).with_enqueued(start));
    t = end;
    let second = new_span_id();
    let end = now();
    worker.record(
        SpanRecord::process(&ctx, second, 0, t, end)
            .with_enqueued(start)
            .with_handler_panicked(),
    );

    let counts = pipeline.shutdown();
    let after = SystemTime::now();
    assert_eq!(
        counts,
        SpanCounts {
            exported: 4,
            ..SpanCounts::default()
        }
    );
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 4);
    for s in &spans {
        assert_eq!(
            s.span_context.trace_id(),
            TraceId::from_bytes(ctx.trace_id())
        );
        assert!(s.span_context.is_sampled());
        assert!(s.start_time <= s.end_time, "{}", s.name);
        assert!(
            s.start_time >= before - Duration::from_millis(50)
                && s.end_time <= after + Duration::from_millis(50),
            "{}: {:?}..{:?} outside {before:?}..{after:?}",
            s.name,
            s.start_time,
            s.end_time
        );
        assert_eq!(s.instrumentation_scope.name(), "bus-under-test");
        assert_eq!(attr(s, "messaging.system"), Some(&Value::from("tracebus")));
    }

    let publish = by_name(&spans, "publish orders");
    let [publish] = publish.as_slice() else {
        panic!("one publish span: {spans:?}");
    };
    assert_eq!(publish.span_kind, SpanKind::Producer);
    assert_eq!(
        publish.span_context.span_id(),
        SpanId::from_bytes(ctx.span_id())
    );
    assert_eq!(publish.parent_span_id, SpanId::INVALID);
    assert_eq!(attr(publish, "tracebus.fanout"), Some(&Value::I64(2)));
    assert_eq!(
        attr(publish, "messaging.operation.type"),
        Some(&Value::from("send"))
    );
    assert_eq!(
        attr(publish, "messaging.destination.name"),
        Some(&Value::from("orders"))
    );

    let process = by_name(&spans, "process orders");
    assert_eq!(process.len(), 2);
    for p in &process {
        assert_eq!(p.span_kind, SpanKind::Consumer);
        assert_eq!(p.parent_span_id, SpanId::from_bytes(ctx.span_id()));
        assert!(p.parent_span_is_remote);
        assert!(matches!(
            attr(p, "tracebus.ring.wait_ns"),
            Some(Value::I64(_))
        ));
        assert!(p.start_time >= publish.start_time);
    }
    let ok = process
        .iter()
        .find(|p| p.span_context.span_id() == SpanId::from_bytes(first))
        .unwrap();
    let panicked = process
        .iter()
        .find(|p| p.span_context.span_id() == SpanId::from_bytes(second))
        .unwrap();
    assert_eq!(ok.status, Status::Unset);
    assert_eq!(panicked.status, Status::error("handler panicked"));
    assert_eq!(ok.end_time, panicked.start_time, "clock reads shared");

    let onward_span = by_name(&spans, "publish invoices");
    let [onward_span] = onward_span.as_slice() else {
        panic!("one onward publish: {spans:?}");
    };
    assert_eq!(onward_span.parent_span_id, SpanId::from_bytes(first));
    assert!(!onward_span.parent_span_is_remote);
    assert_eq!(
        attr(onward_span, "messaging.destination.name"),
        Some(&Value::from("invoices"))
    );
}

#[test]
fn everything_recorded_before_shutdown_is_exported() {
    const THREADS: usize = 3;
    const SPANS: u64 = 20_000;
    let (exporter, export) = memory();
    // Rings big enough for every span: nothing may be dropped, everything must arrive.
    let pipeline = SpanPipeline::start(
        export
            .batch_size(100)
            .ring_capacity((SPANS as usize).next_power_of_two())
            .interval(Duration::from_secs(3600)),
        names(),
    )
    .unwrap();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let mut recorder = pipeline.recorder().unwrap();
            s.spawn(move || {
                for i in 0..SPANS {
                    recorder.record(publish(t as u8 + 1, i));
                }
            });
        }
    });
    let counts = pipeline.shutdown();
    let total = THREADS as u64 * SPANS;
    assert_eq!(counts.dropped, 0);
    assert_eq!(counts.exported, total);
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len() as u64, total);
    // Each thread's spans arrive in the order recorded.
    for t in 0..THREADS {
        let ids: Vec<u64> = spans
            .iter()
            .filter(|s| s.span_context.trace_id() == TraceId::from_bytes([t as u8 + 1; 16]))
            .map(|s| u64::from_be_bytes(s.span_context.span_id().to_bytes()))
            .collect();
        assert_eq!(ids, (1..=SPANS).collect::<Vec<_>>());
    }
    assert!(pipeline.recorder().is_none(), "no recorder after shutdown");
    assert_eq!(
        pipeline.shutdown(),
        counts,
        "a second shutdown reports again"
    );
}

#[test]
fn small_rings_drop_and_count_and_every_span_is_accounted_for() {
    let (exporter, export) = memory();
    let pipeline = SpanPipeline::start(export.ring_capacity(8), names()).unwrap();
    let mut recorders: Vec<Recorder> = (0..2).map(|_| pipeline.recorder().unwrap()).collect();
    let mut recorded = 0;
    for i in 0..50_000 {
        for r in &mut recorders {
            r.record(publish(1, i));
            recorded += 1;
        }
    }
    let dropped: u64 = recorders.iter().map(Recorder::dropped).sum();
    assert_eq!(
        pipeline.counts().dropped,
        dropped,
        "readable before shutdown"
    );
    drop(recorders); // gone recorders' counts are kept
    let _late = pipeline.recorder().unwrap(); // folds the gone counters
    let counts = pipeline.shutdown();
    assert!(
        counts.dropped > 0,
        "8-record rings cannot keep up: {counts:?}"
    );
    assert_eq!(counts.dropped, dropped);
    assert_eq!(counts.exported + counts.dropped, recorded);
    assert_eq!(
        exporter.get_finished_spans().unwrap().len() as u64,
        counts.exported
    );
}

/// An exporter that waits while `blocked` is set, then fails or panics on some calls.
#[derive(Debug, Clone, Default)]
struct Faulty {
    blocked: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    spans: Arc<AtomicUsize>,
    resource: Arc<Mutex<Option<Resource>>>,
    /// Call numbers that return an error / panic: call % 3 == 1 errs, == 2 panics.
    faults: bool,
}

impl SpanExporter for Faulty {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        while self.blocked.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        if self.faults && call % 3 == 1 {
            return Err(OTelSdkError::InternalFailure("refused".into()));
        }
        if self.faults && call % 3 == 2 {
            panic!("exporter panics on purpose (test)");
        }
        self.spans.fetch_add(batch.len(), Ordering::Relaxed);
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        *self.resource.lock().unwrap() = Some(resource.clone());
    }
}

#[test]
fn a_failing_and_panicking_exporter_is_survived_and_counted() {
    let exporter = Faulty {
        faults: true,
        ..Faulty::default()
    };
    let resource = Resource::builder()
        .with_attribute(KeyValue::new("service.name", "faulty"))
        .build();
    let pipeline = SpanPipeline::start(
        SpanExport::exporter(exporter.clone())
            .batch_size(10)
            .ring_capacity(1 << 14)
            .resource(resource),
        names(),
    )
    .unwrap();
    let mut recorder = pipeline.recorder().unwrap();
    for i in 0..3_000 {
        recorder.record(publish(1, i));
    }
    drop(recorder);
    let counts = pipeline.shutdown();
    assert_eq!(counts.dropped, 0);
    assert_eq!(counts.exported + counts.failed, 3_000);
    assert_eq!(
        counts.exported,
        exporter.spans.load(Ordering::Relaxed) as u64
    );
    let calls = exporter.calls.load(Ordering::Relaxed) as u64;
    assert_eq!(calls, 300);
    assert_eq!(counts.export_errors, 100);
    assert_eq!(counts.exporter_panics, 100);
    assert_eq!(counts.failed, 2_000);
    let resource = exporter
        .resource
        .lock()
        .unwrap()
        .clone()
        .expect("resource given");
    assert_eq!(
        resource.get(&opentelemetry::Key::new("service.name")),
        Some(Value::from("faulty"))
    );
}

#[test]
fn a_blocked_exporter_never_blocks_the_recorder() {
    let exporter = Faulty::default();
    exporter.blocked.store(true, Ordering::Release);
    let pipeline = SpanPipeline::start(
        SpanExport::exporter(exporter.clone())
            .batch_size(4)
            .ring_capacity(16),
        names(),
    )
    .unwrap();
    let mut recorder = pipeline.recorder().unwrap();
    // The thread takes at most one batch and then blocks in the exporter; the ring fills.
    let started = Instant::now();
    for i in 0..100_000 {
        recorder.record(publish(1, i));
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "recording waited for the exporter"
    );
    assert!(recorder.dropped() >= 100_000 - 16 - 4 - 16);
    exporter.blocked.store(false, Ordering::Release);
    drop(recorder);
    let counts = pipeline.shutdown();
    assert_eq!(counts.exported + counts.dropped, 100_000);
    assert_eq!(
        counts.exported,
        exporter.spans.load(Ordering::Relaxed) as u64
    );
}

#[test]
fn partial_batches_go_out_after_the_interval() {
    let (exporter, export) = memory();
    let pipeline = SpanPipeline::start(
        export.batch_size(1_000).interval(Duration::from_millis(20)),
        names(),
    )
    .unwrap();
    let mut recorder = pipeline.recorder().unwrap();
    for i in 0..3 {
        recorder.record(publish(1, i));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while exporter.get_finished_spans().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "partial batch never exported");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(pipeline.counts().exported, 3);
}

#[test]
fn a_simple_processor_gets_every_span() {
    let exporter = InMemorySpanExporter::default();
    let pipeline = SpanPipeline::start(
        SpanExport::processor(SimpleSpanProcessor::new(exporter.clone())).shutdown_target(false),
        names(),
    )
    .unwrap();
    let mut recorder = pipeline.recorder().unwrap();
    for i in 0..100 {
        recorder.record(publish(1, i));
    }
    assert_eq!(pipeline.shutdown().exported, 100);
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 100);
    assert!(spans.iter().all(|s| s.name == "publish orders"));
}

#[test]
fn the_sdk_batch_processor_is_flushed_at_shutdown() {
    let exporter = InMemorySpanExporter::default();
    let processor = BatchSpanProcessor::builder(exporter.clone()).build();
    let pipeline = SpanPipeline::start(
        SpanExport::processor(processor).shutdown_target(false),
        names(),
    )
    .unwrap();
    let mut recorder = pipeline.recorder().unwrap();
    for i in 0..1_000 {
        recorder.record(publish(1, i));
    }
    assert_eq!(pipeline.shutdown().exported, 1_000);
    assert_eq!(exporter.get_finished_spans().unwrap().len(), 1_000);
}

/// A processor that panics on every third span.
#[derive(Debug, Default)]
struct PanickyProcessor {
    seen: AtomicUsize,
}

impl opentelemetry_sdk::trace::SpanProcessor for PanickyProcessor {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
    fn on_end(&self, _: SpanData) {
        if self.seen.fetch_add(1, Ordering::Relaxed) % 3 == 0 {
            panic!("processor panics on purpose (test)");
        }
    }
    fn force_flush(&self) -> OTelSdkResult {
        Err(OTelSdkError::InternalFailure("cannot flush".into()))
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[test]
fn a_panicking_processor_is_counted_span_by_span() {
    let pipeline =
        SpanPipeline::start(SpanExport::processor(PanickyProcessor::default()), names()).unwrap();
    let mut recorder = pipeline.recorder().unwrap();
    for i in 0..30 {
        recorder.record(publish(1, i));
    }
    let counts = pipeline.shutdown();
    assert_eq!(counts.exporter_panics, 10);
    assert_eq!(counts.failed, 10);
    assert_eq!(counts.exported, 20);
    assert_eq!(counts.export_errors, 1, "the failed flush");
}

#[test]
fn the_target_is_shut_down_unless_told_not_to() {
    let exporter = InMemorySpanExporter::default();
    let pipeline = SpanPipeline::start(SpanExport::exporter(exporter.clone()), names()).unwrap();
    drop(pipeline); // dropping shuts down too
    assert!(exporter.is_shutdown_called());
    let (exporter, export) = memory();
    SpanPipeline::start(export, names()).unwrap().shutdown();
    assert!(!exporter.is_shutdown_called());
}

#[test]
fn spans_of_unknown_topics_still_export() {
    let (exporter, export) = memory();
    let pipeline = SpanPipeline::start(export, names()).unwrap();
    let mut recorder = pipeline.recorder().unwrap();
    let ctx = TraceContext::new([1; 16], [2; 8], 1).unwrap();
    recorder.record(SpanRecord::publish(&ctx, None, 77, now(), now()));
    drop(recorder);
    pipeline.shutdown();
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans[0].name, "publish #77");
}

#[test]
fn the_pipeline_is_shared_and_recorders_move_to_their_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<SpanPipeline>();
    send::<Recorder>();
    send_sync::<SpanExport>();
    fn clone<T: Clone>() {}
    clone::<SpanExport>();
}

#[test]
fn clones_share_the_target_and_the_last_pipeline_shuts_it_down() {
    let exporter = InMemorySpanExporter::default();
    let export = SpanExport::exporter(exporter.clone());
    let a = SpanPipeline::start(export.clone(), names()).unwrap();
    let b = SpanPipeline::start(export, names()).unwrap();
    let (mut ra, mut rb) = (a.recorder().unwrap(), b.recorder().unwrap());
    for i in 0..100 {
        ra.record(publish(1, i));
        rb.record(publish(2, i));
    }
    drop((ra, rb));
    assert_eq!(a.shutdown().exported, 100);
    assert!(!exporter.is_shutdown_called(), "b still uses it");
    // a's spans are all there (b's may be too, if its interval has passed).
    assert!(exporter.get_finished_spans().unwrap().len() >= 100);
    assert_eq!(b.shutdown().exported, 100);
    assert!(
        exporter.is_shutdown_called(),
        "the last pipeline shut it down"
    );
}
