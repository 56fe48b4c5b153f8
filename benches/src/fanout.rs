//! The bus sections of busbench: throughput against fanout (1 to 10,000 subscribers spread over
//! the workers, tracing off and on), publish-to-handler latency through the bus against the raw
//! ring, and heap allocations per message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tracebus::context::FanoutSampler;
use tracebus::{Bus, Pinning, SpanExport, WaitStrategy};

/// Counts exported spans and drops them (a real pipeline's export cost is not the bus's).
#[derive(Debug, Clone, Default)]
pub struct CountingExporter {
    spans: Arc<AtomicU64>,
}

impl SpanExporter for CountingExporter {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.spans.fetch_add(batch.len() as u64, Ordering::Relaxed);
        std::future::ready(Ok(()))
    }
}

/// How a fanout run traces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tracing {
    /// No tracer.
    Off,
    /// Spans exported (by the bus's exporter thread) to [`CountingExporter`], and a sampler
    /// with this `k`.
    On {
        /// The sampler's `k`: `rate(n) = min(1, k / n)`.
        k: f64,
    },
    /// As [`Tracing::On`], with the bus's default span export settings (its default record
    /// ring capacity: a record ring is written through the cache, and one larger than the
    /// cache costs the hot path a miss per record; a burst larger than the ring drops spans,
    /// counted in [`FanoutRow::spans_dropped`]).
    Default {
        /// The sampler's `k`.
        k: f64,
    },
    /// As [`Tracing::On`], with record rings of `records` records.
    Rings {
        /// The sampler's `k`.
        k: f64,
        /// Each recorder's ring capacity.
        records: usize,
    },
}

/// Builds the bus, exporting its spans to `exporter` when `tracing` is on, with record rings as
/// `tracing` says (a burst larger than a ring, or faster than the exporter, drops spans: they
/// are counted in the report).
fn build(builder: tracebus::BusBuilder, tracing: Tracing, exporter: &CountingExporter) -> Bus {
    let builder = match tracing {
        Tracing::Off => builder,
        Tracing::On { k } => builder
            .tracing(SpanExport::exporter(exporter.clone()).ring_capacity(1 << 16))
            .sampler(FanoutSampler::new(k)),
        Tracing::Default { k } => builder
            .tracing(SpanExport::exporter(exporter.clone()))
            .sampler(FanoutSampler::new(k)),
        Tracing::Rings { k, records } => builder
            .tracing(SpanExport::exporter(exporter.clone()).ring_capacity(records))
            .sampler(FanoutSampler::new(k)),
    };
    builder.build().expect("valid settings")
}

/// One fanout measurement.
#[derive(Debug, Clone)]
pub struct FanoutRow {
    /// Subscribers of the topic.
    pub subscribers: usize,
    /// Worker threads.
    pub workers: usize,
    /// Messages published.
    pub messages: u64,
    /// Publishes per second, from the first publish until everything was delivered.
    pub msgs_per_sec: f64,
    /// Handler calls per second over the same time.
    pub deliveries_per_sec: f64,
    /// Publish spans exported divided by messages (0 with tracing off).
    pub sampled_fraction: f64,
    /// Spans dropped because a record ring was full (0 with tracing off).
    pub spans_dropped: u64,
}

impl FanoutRow {
    /// Of the spans recorded (exported or dropped), the fraction dropped at a full record
    /// ring; 0 with tracing off.
    pub fn dropped_fraction(&self) -> f64 {
        let recorded = self.sampled_fraction * (1 + self.subscribers) as f64 * self.messages as f64;
        if recorded == 0.0 {
            0.0
        } else {
            self.spans_dropped as f64 / recorded
        }
    }
}

/// Busy work standing in for what a real handler does: a calibrated spin loop, no clock reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    iterations: u64,
}

impl Work {
    /// No work: the handler only reads its message.
    pub const NONE: Work = Work { iterations: 0 };

    /// About `ns` nanoseconds of work per handler call on this machine (calibrated once).
    pub fn about_ns(ns: u64) -> Work {
        static PER_ITERATION_PS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let ps = *PER_ITERATION_PS.get_or_init(|| {
            let n = 20_000_000;
            let t = Instant::now();
            Work { iterations: n }.run(1);
            (t.elapsed().as_nanos() as u64 * 1000 / n).max(1)
        });
        Work {
            iterations: ns * 1000 / ps,
        }
    }

    /// Does the work, folding `seed` in so it cannot be optimised away.
    #[inline]
    pub fn run(self, seed: u64) -> u64 {
        let mut x = seed;
        for i in 0..self.iterations {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
        x
    }
}

/// Publishes `messages` to a topic with `subscribers` subscribers spread round-robin over
/// `workers` workers, and times until the bus has delivered them all (shutdown drains).
pub fn fanout(subscribers: usize, workers: usize, messages: u64, tracing: Tracing) -> FanoutRow {
    fanout_with_work(subscribers, workers, messages, tracing, Work::NONE)
}

/// [`fanout`] with `work` done by every handler call.
pub fn fanout_with_work(
    subscribers: usize,
    workers: usize,
    messages: u64,
    tracing: Tracing,
    work: Work,
) -> FanoutRow {
    fanout_pinned(subscribers, workers, messages, tracing, work, Pinning::Off)
}

/// [`fanout_with_work`] with the workers pinned as `pinning` says (the default,
/// [`Pinning::Auto`], puts worker `i` on core `i` and the span exporter thread on a core no
/// worker uses).
pub fn fanout_pinned(
    subscribers: usize,
    workers: usize,
    messages: u64,
    tracing: Tracing,
    work: Work,
    pinning: Pinning,
) -> FanoutRow {
    let builder = Bus::builder()
        .workers(workers)
        .capacity(1024)
        .pinning(pinning)
        // Publisher and workers share 2 cores here: yield rather than spin.
        .wait_strategy(WaitStrategy::SpinThenYield);
    let exporter = CountingExporter::default();
    let bus = build(builder, tracing, &exporter);
    let topic = bus.topic::<u64>("fanout").expect("topic");
    let sink = Arc::new(AtomicU64::new(0));
    for i in 0..subscribers {
        let mut local = 0u64;
        let sink = sink.clone();
        bus.subscribe_on(i % workers, &topic, move |m, _| {
            local = local.wrapping_add(work.run(*m.payload()));
            if local == u64::MAX {
                sink.store(local, Ordering::Relaxed); // keeps `local` observable
            }
        })
        .expect("subscribe");
    }
    let mut publisher = bus.publisher().expect("publisher");
    let t0 = Instant::now();
    for i in 0..messages {
        publisher.publish(&topic, i).expect("bus open");
    }
    let report = bus.shutdown();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(
        report.delivered,
        messages * subscribers as u64,
        "every delivery made"
    );
    // One publish span and `subscribers` process spans per sampled message (recorded: exported
    // or, had a record ring filled, dropped and counted).
    let spans = exporter.spans.load(Ordering::Relaxed) + report.spans.dropped;
    FanoutRow {
        subscribers,
        workers,
        messages,
        msgs_per_sec: messages as f64 / secs,
        deliveries_per_sec: report.delivered as f64 / secs,
        sampled_fraction: spans as f64 / (1 + subscribers) as f64 / messages as f64,
        spans_dropped: report.spans.dropped,
    }
}

/// One-way latency percentiles in ns: (p50, p99).
pub type Latency = (u64, u64);

fn percentiles(h: &Histogram<u64>) -> Latency {
    (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
}

/// Publish-to-handler latency through a one-worker bus: one message in flight at a time, the
/// handler reads the publish time the bus recorded in the slot.
pub fn bus_latency(samples: u64) -> Latency {
    let bus = Bus::builder()
        .workers(1)
        .pinning(Pinning::Off)
        .wait_strategy(WaitStrategy::SpinThenYield)
        .record_publish_time(true)
        .build()
        .expect("valid settings");
    let topic = bus.topic::<u64>("latency").expect("topic");
    let hist = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds"),
    ));
    let done = Arc::new(AtomicU64::new(0));
    let (h, d) = (hist.clone(), done.clone());
    bus.subscribe_on(0, &topic, move |m, _| {
        let ns = m.waited().map_or(1, |w| w.as_nanos() as u64).max(1);
        h.lock().expect("not poisoned").saturating_record(ns);
        d.store(*m.payload() + 1, Ordering::Release);
    })
    .expect("subscribe");
    let mut publisher = bus.publisher().expect("publisher");
    for i in 0..samples {
        publisher.publish(&topic, i).expect("bus open");
        while done.load(Ordering::Acquire) != i + 1 {
            std::hint::spin_loop();
        }
    }
    bus.shutdown();
    let h = hist.lock().expect("not poisoned");
    percentiles(&h)
}

/// The same measurement on a bare tracebus ring: the consumer thread spins and reads the
/// publish time from the payload.
pub fn ring_latency(samples: u64) -> Latency {
    let (mut tx, mut rx) = tracebus::ring::spsc::<(Instant, u64)>(1024).expect("capacity");
    let done = Arc::new(AtomicU64::new(0));
    let d = done.clone();
    let consumer = thread::spawn(move || {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
        let mut seen = 0;
        while seen < samples {
            if let Some((t, i)) = rx.try_pop() {
                hist.saturating_record((t.elapsed().as_nanos() as u64).max(1));
                d.store(i + 1, Ordering::Release);
                seen += 1;
            } else {
                thread::yield_now();
            }
        }
        hist
    });
    for i in 0..samples {
        let mut v = (Instant::now(), i);
        while let Err(back) = tx.try_push(v) {
            v = back.into_inner();
        }
        while done.load(Ordering::Acquire) != i + 1 {
            std::hint::spin_loop();
        }
    }
    let hist = consumer.join().expect("consumer");
    percentiles(&hist)
}

/// Waits a moment between measurements so one's threads are gone before the next starts.
pub fn settle() {
    thread::sleep(Duration::from_millis(20));
}

/// Heap allocations per message in steady state (publish, delivery, spans when sampled), at
/// fanout 1 on one worker, counted by `allocations` (a process-wide counter the caller's
/// global allocator keeps).
pub fn allocations_per_message(
    tracing: Tracing,
    messages: u64,
    allocations: &dyn Fn() -> usize,
) -> f64 {
    let builder = Bus::builder()
        .workers(1)
        .capacity(1024)
        .pinning(Pinning::Off)
        .wait_strategy(WaitStrategy::SpinThenYield);
    let bus = build(builder, tracing, &CountingExporter::default());
    let topic = bus.topic::<u64>("allocs").expect("topic");
    let delivered = Arc::new(AtomicU64::new(0));
    let d = delivered.clone();
    bus.subscribe_on(0, &topic, move |_, _| {
        d.fetch_add(1, Ordering::Release);
    })
    .expect("subscribe");
    let mut publisher = bus.publisher().expect("publisher");
    let mut run = |from: u64, n: u64| {
        for i in from..from + n {
            publisher.publish(&topic, i).expect("bus open");
        }
        while delivered.load(Ordering::Acquire) < from + n {
            thread::yield_now();
        }
    };
    run(0, 1_000); // warm-up: threads started, caches filled
    let before = allocations();
    run(1_000, messages);
    let used = allocations() - before;
    drop(publisher);
    bus.shutdown();
    used as f64 / messages as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_runs_deliver_everything() {
        let row = fanout(10, 2, 100, Tracing::Off);
        assert_eq!(row.subscribers, 10);
        assert_eq!(row.sampled_fraction, 0.0);
        let row = fanout(10, 2, 100, Tracing::On { k: 10.0 });
        assert_eq!(
            row.sampled_fraction, 1.0,
            "k = 10 samples everything at fanout 10"
        );
        assert!(row.deliveries_per_sec >= row.msgs_per_sec);
        let (p50, p99) = bus_latency(50);
        assert!(p50 >= 1 && p99 >= p50);
        let (p50, p99) = ring_latency(50);
        assert!(p50 >= 1 && p99 >= p50);
    }

    #[test]
    fn dropped_spans_are_counted_as_recorded() {
        // One message to 10,000 subscribers, every message sampled: 10,001 spans in one burst.
        let k = 10_000.0;
        // Rings of 2^16 records hold the whole burst: nothing is dropped.
        let row = fanout(10_000, 1, 1, Tracing::On { k });
        assert_eq!(row.spans_dropped, 0);
        assert_eq!(row.sampled_fraction, 1.0);
        // Rings of 8 records cannot: the exporter polls every millisecond, and the worker
        // records the burst in a fraction of that. Exported and dropped spans together are
        // every span recorded.
        let row = fanout(10_000, 1, 1, Tracing::Rings { k, records: 8 });
        assert!(row.spans_dropped > 0, "a burst of 10,001 into 8 records");
        assert_eq!(row.sampled_fraction, 1.0, "{} dropped", row.spans_dropped);
        assert_eq!(
            row.dropped_fraction(),
            row.spans_dropped as f64 / 10_001.0,
            "of the spans recorded"
        );
    }
}
