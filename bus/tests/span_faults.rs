//! Span exporters that misbehave cannot hold up shutdown: an export that stays pending is
//! cancelled at the export timeout, an exporter that blocks its thread forever is left behind
//! at the span pipeline's shutdown timeout, and every span recorded is counted somewhere
//! (exported, failed, dropped or abandoned).

use std::future::Future;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tracebus::{Bus, Pinning, Report, SpanExport, WaitStrategy};

/// What the exporter does with each batch.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Blocks its thread and never returns.
    BlockForever,
    /// Blocks its thread for this long, then succeeds.
    Sleep(Duration),
    /// Returns a future that never completes.
    Pending,
}

#[derive(Debug)]
struct FaultyExporter(Fault);

impl SpanExporter for FaultyExporter {
    fn export(&self, _batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let pending = match self.0 {
            Fault::BlockForever => loop {
                thread::park();
            },
            Fault::Sleep(d) => {
                thread::sleep(d);
                false
            }
            Fault::Pending => true,
        };
        async move {
            if pending {
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    }
}

/// Publishes `n` messages to one subscriber (every one sampled: fanout 1, k = 10), so the bus
/// records `2 * n` spans (a publish and a process span each), then shuts down on another
/// thread; fails if shutdown has not returned within 60 s (instead of hanging the suite).
fn run(export: SpanExport, n: u64) -> Report {
    let bus = Bus::builder()
        .workers(1)
        .pinning(Pinning::Off)
        .wait_strategy(WaitStrategy::SpinThenPark)
        .tracing(export.batch_size(8))
        .build()
        .unwrap();
    let t = bus.topic::<u64>("t").unwrap();
    bus.subscribe(&t, |_, _| {}).unwrap();
    let mut p = bus.publisher().unwrap();
    for i in 0..n {
        p.publish(&t, i).unwrap();
    }
    drop(p);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(bus.shutdown()).unwrap());
    let report = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("shutdown returned within its bounds");
    assert_eq!((report.published, report.delivered), (n, n));
    let s = report.spans;
    assert_eq!(
        s.exported + s.failed + s.dropped + s.abandoned,
        2 * n,
        "every recorded span counted: {s:?}"
    );
    report
}

#[test]
fn an_exporter_that_never_returns_is_left_behind_at_the_shutdown_timeout() {
    let export = SpanExport::exporter(FaultyExporter(Fault::BlockForever))
        .shutdown_timeout(Duration::from_millis(200));
    let s = run(export, 100).spans;
    assert!(s.abandoned >= 8, "at least the stuck batch: {s:?}");
    assert_eq!(s.exported, 0);
}

#[test]
fn a_slow_exporter_is_cut_off_at_the_shutdown_timeout() {
    let export = SpanExport::exporter(FaultyExporter(Fault::Sleep(Duration::from_secs(3))))
        .shutdown_timeout(Duration::from_millis(300));
    let s = run(export, 100).spans;
    assert!(s.abandoned > 0, "{s:?}");
}

#[test]
fn an_export_still_pending_at_the_export_timeout_is_cancelled_and_counted() {
    let export = SpanExport::exporter(FaultyExporter(Fault::Pending))
        .export_timeout(Duration::from_millis(20))
        .shutdown_timeout(Duration::from_secs(30));
    let s = run(export, 40).spans;
    assert!(s.export_timeouts >= 1, "{s:?}");
    assert_eq!(s.abandoned, 0, "every batch was cancelled in time: {s:?}");
    assert_eq!(s.exported, 0);
    assert_eq!(s.failed, 80 - s.dropped, "{s:?}");
}
