//! Shared by the bridge's integration tests: a server (or a clear skip, locally only), buses
//! with an in-memory span exporter, a raw NATS observer, and waiting on conditions.

#![allow(dead_code)] // each test file uses its own part

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use futures_util::StreamExt;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracebus::context::FanoutSampler;
use tracebus::{Bus, Pinning, Topic};
use tracebus_nats::{Bridge, BridgeConfig, ExportOptions, ImportOptions};
use tracebus_test_support::NatsServer;

/// Whether this is CI, where a missing server fails the tests instead of skipping them.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A fresh server, or `None` with a note when there is none and this is not CI.
pub fn server() -> Option<NatsServer> {
    match NatsServer::start() {
        Ok(s) => Some(s),
        Err(e) if in_ci() => panic!("CI needs nats-server (scripts/nats-server.sh install): {e}"),
        Err(e) => {
            eprintln!("SKIPPED: no nats-server ({e}); run scripts/nats-server.sh install");
            None
        }
    }
}

/// Waits until `cond` holds, checking every millisecond; panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// An in-memory exporter shared by a bus's span pipeline and a tracer provider (for the
/// bridge's own `send` spans).
pub struct Traced {
    /// The provider.
    pub provider: SdkTracerProvider,
    /// Every ended span.
    pub exporter: InMemorySpanExporter,
}

impl Traced {
    /// A new provider with its own exporter.
    pub fn new() -> Traced {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        Traced { provider, exporter }
    }

    /// A tracer of this provider.
    pub fn tracer(&self, name: &'static str) -> opentelemetry_sdk::trace::SdkTracer {
        self.provider.tracer(name)
    }

    /// Every span ended so far.
    pub fn spans(&self) -> Vec<SpanData> {
        self.exporter
            .get_finished_spans()
            .expect("in-memory exporter")
    }
}

/// A one-worker, unpinned bus tracing to `traced` with sampler `k` (its spans are exported by
/// the time it has shut down).
pub fn bus(traced: &Traced, k: f64) -> Bus {
    Bus::builder()
        .workers(1)
        .pinning(Pinning::Off)
        .tracing(
            tracebus::SpanExport::exporter(traced.exporter.clone())
                .shutdown_target(false)
                .ring_capacity(1 << 16),
        )
        .sampler(FanoutSampler::new(k))
        .build()
        .expect("a bus")
}

/// What a bus handler saw: values and their trace contexts, in order of arrival.
pub type Received = Arc<Mutex<Vec<(u64, Option<tracebus::context::TraceContext>)>>>;

/// The sending side of two buses joined through a server: bus A, its topic `orders`, and
/// bridge A exporting it to `tracebus.orders`.
pub struct Sender {
    pub bus: Bus,
    pub orders: Topic<u64>,
    pub bridge: Bridge,
    /// The subject the export publishes to.
    pub subject: String,
}

/// Bus A tracing to `traced` at sampler `k`, exported through a bridge made with `config`.
pub fn sender(config: BridgeConfig, traced: &Traced, k: f64) -> Sender {
    let bus = bus(traced, k);
    let orders = bus.topic::<u64>("orders").unwrap();
    let bridge = Bridge::connect(config).unwrap();
    let subject = bridge
        .export(&bus, &orders, ExportOptions::default())
        .unwrap()
        .subject()
        .to_owned();
    Sender {
        bus,
        orders,
        bridge,
        subject,
    }
}

/// The receiving side: bus B, one subscriber of its `orders` recording what arrives, and
/// bridge B importing `tracebus.orders` into it.
pub struct Receiver {
    pub bus: Bus,
    pub bridge: Bridge,
    /// Values and contexts, in order of arrival.
    pub got: Received,
    /// Arrivals so far (readable without the lock).
    pub count: Arc<AtomicU64>,
}

/// Bus B tracing to `traced` at sampler `k`, importing through a bridge made with `config`
/// (subscribed before the import starts, so nothing imported finds no subscriber).
pub fn receiver(config: BridgeConfig, traced: &Traced, k: f64) -> Receiver {
    let bus = bus(traced, k);
    let orders = bus.topic::<u64>("orders").unwrap();
    let got: Received = Arc::default();
    let count = Arc::new(AtomicU64::new(0));
    let (g, c) = (got.clone(), count.clone());
    bus.subscribe(&orders, move |msg, _| {
        g.lock()
            .unwrap()
            .push((*msg.payload(), msg.trace_context()));
        c.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    let bridge = Bridge::connect(config).unwrap();
    bridge
        .import(&bus, &orders, ImportOptions::subject("tracebus.orders"))
        .unwrap();
    Receiver {
        bus,
        bridge,
        got,
        count,
    }
}

/// Drops both bridges, then shuts both buses down (their spans exported).
pub fn shut_down(a: Sender, b: Receiver) {
    drop(a.bridge);
    drop(b.bridge);
    a.bus.shutdown();
    b.bus.shutdown();
}

/// What a raw NATS subscriber saw: payloads and headers, in order of arrival.
pub type Seen = Arc<Mutex<Vec<(Vec<u8>, Option<HeaderMap>)>>>;

/// A plain async-nats subscriber to `subject` on its own thread and runtime; returns once the
/// server has the subscription.
pub fn observe(url: &str, subject: &str) -> Seen {
    let seen: Seen = Arc::default();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (url, subject, out) = (url.to_owned(), subject.to_owned(), seen.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let client = async_nats::connect(url).await.expect("observer connects");
            let mut sub = client.subscribe(subject).await.expect("subscribe");
            // `flush` only writes to the socket; a probe published on the same connection
            // comes back once the server has processed the subscription before it.
            let inbox = client.new_inbox();
            let mut probe = client.subscribe(inbox.clone()).await.expect("subscribe");
            client.publish(inbox, "".into()).await.expect("probe");
            probe.next().await.expect("the probe comes back");
            drop(probe);
            ready_tx.send(()).expect("test waits");
            while let Some(m) = sub.next().await {
                out.lock().unwrap().push((m.payload.to_vec(), m.headers));
            }
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("observer ready");
    seen
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
