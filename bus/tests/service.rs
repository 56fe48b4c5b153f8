//! A small service on the public API only, as a new user would write it: a three-stage
//! pipeline with a slow middle stage (its waits go one way across workers: stage 1 on worker
//! 0 waits on worker 1, where stages 2 and 3 run), a span exporter that fails, panics and blocks, and a
//! shutdown right after the last publish. The README's promises must hold in it: every
//! message accepted is delivered through every stage, the counts add up, every span recorded
//! is counted somewhere, a sampled remote parent's trace continues through every stage, and
//! shutdown returns (within its bounds, checked by a watchdog rather than a timing assertion).

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tracebus::context::{TraceContext, FLAG_SAMPLED};
use tracebus::{Bus, SpanExport};

/// An exporter that fails one batch in three, panics on one in five, and blocks its thread
/// for a while on the seventh.
#[derive(Debug, Default)]
struct FaultyExporter {
    calls: AtomicUsize,
}

impl SpanExporter for FaultyExporter {
    fn export(&self, _batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let call = self.calls.fetch_add(1, Relaxed) + 1;
        if call % 5 == 0 {
            panic!("test: injected exporter panic");
        }
        if call == 7 {
            thread::sleep(Duration::from_millis(300));
        }
        let outcome = if call % 3 == 0 {
            Err(OTelSdkError::InternalFailure("test: refused".into()))
        } else {
            Ok(())
        };
        std::future::ready(outcome)
    }
}

#[test]
fn a_service_shut_down_right_after_its_last_publish_keeps_every_promise() {
    const N: u64 = 2_000;
    tracebus_test_support::quiet_injected_panics("test: injected");
    let bus = Bus::builder()
        .workers(2)
        .capacity(256)
        .tracing(
            SpanExport::exporter(FaultyExporter::default())
                .batch_size(64)
                .shutdown_timeout(Duration::from_secs(10)),
        )
        .build()
        .unwrap();
    let orders = bus.topic::<u64>("orders").unwrap();
    let priced = bus.topic::<u64>("priced").unwrap();
    let shipped = bus.topic::<u64>("shipped").unwrap();
    let wait = Duration::from_secs(10);
    bus.subscribe_on(0, &orders, move |m, out| {
        out.publish_timeout(&priced, *m.payload(), wait)
            .expect("room within 10 s");
    })
    .unwrap();
    bus.subscribe_on(1, &priced, move |m, out| {
        thread::sleep(Duration::from_micros(20)); // the slow stage
        out.publish_timeout(&shipped, *m.payload(), wait)
            .expect("room within 10 s");
    })
    .unwrap();
    let total = Arc::new(AtomicU64::new(0));
    let remote_traces = Arc::new(Mutex::new(Vec::new()));
    let (t, r) = (total.clone(), remote_traces.clone());
    bus.subscribe_on(1, &shipped, move |m, _| {
        t.fetch_add(*m.payload(), Relaxed);
        if let Some(ctx) = m.trace_context() {
            if ctx.trace_id() == [0x42; 16] {
                r.lock().unwrap().push(*m.payload());
            }
        }
    })
    .unwrap();

    let remote = TraceContext::new([0x42; 16], [0x24; 8], FLAG_SAMPLED).unwrap();
    let mut publisher = bus.publisher().unwrap();
    for id in 0..N {
        if id % 100 == 0 {
            publisher
                .publish_with_parent(&orders, id, Some(remote))
                .unwrap();
        } else {
            publisher.publish(&orders, id).unwrap();
        }
    }
    drop(publisher);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(bus.shutdown()).unwrap());
    let report = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("shutdown returned");

    assert_eq!(total.load(Relaxed), N * (N - 1) / 2, "every order shipped");
    assert_eq!(report.published, 3 * N);
    assert_eq!(report.delivered, 3 * N);
    assert_eq!((report.lost, report.handler_panics), (0, 0));
    assert_eq!((report.refused_full, report.refused_closed), (0, 0));
    assert!(!report.drain_timed_out && report.workers_abandoned == 0);
    let mut continued = remote_traces.lock().unwrap().clone();
    continued.sort_unstable();
    assert_eq!(
        continued,
        (0..N).step_by(100).collect::<Vec<_>>(),
        "the remote trace continued through every stage"
    );
    // Fanout 1 everywhere: every publish and every delivery is sampled, one span each.
    let s = report.spans;
    assert_eq!(
        s.exported + s.failed + s.dropped + s.abandoned,
        6 * N,
        "every span counted once: {s:?}"
    );
    assert!(
        s.failed > 0 && s.export_errors > 0 && s.exporter_panics > 0,
        "{s:?}"
    );
}
