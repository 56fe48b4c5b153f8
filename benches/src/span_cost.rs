//! The cost of one sampled span: tracebus's span pipeline against the OpenTelemetry SDK, on the
//! same spans, in the same run (busbench's `span_cost` section; issue 13's goals).
//!
//! - `hot_ns_per_publish_span`: what a publishing endpoint's thread spends per sampled
//!   `publish` span (two clock reads, a span-id, an 80-byte record into its ring), timed in
//!   rounds that fit the ring, drained between rounds on the same thread (so the figure is the
//!   hot path's work, not cache-line transfers); the median round. `hot_ns_per_process_span`
//!   is the same for a worker's `process` span, which shares its start with the previous
//!   span's end (one clock read). `hot_ns_per_span` is their mean: the hot-path cost per span
//!   of a sampled message at fanout 1 (one publish span, one process span); at a larger
//!   fanout process spans weigh more and the mean is lower.
//! - `burst_ns_per_publish_span` / `burst_ns_per_process_span`: the same spans recorded back
//!   to back into a running pipeline whose exporter thread, on another core, read the ring's
//!   lines last lap: a record then waits for its lines to come back. Bimodal on two cores
//!   (the scheduler may put both threads on one), so read with the run-to-run spread.
//! - `clock_ns`: one read of the span clock (quanta's raw TSC read), alone.
//! - `export_ns_per_span`: the exporter thread's work per span (ring read, conversion to
//!   `SpanData`, a batch handed to a no-op `SpanExporter`, which drops it), run on this thread
//!   with the exporter thread's code over records put in the ring beforehand; the median
//!   round.
//! - `sdk_ns_per_span`: the OpenTelemetry SDK making the equivalent span (a PRODUCER span with
//!   the same attributes, under a remote parent, started and ended) with its simple processor
//!   and the same no-op exporter: its whole cost, all of it on the caller's thread.
//! - `allocs_per_sampled_msg`: heap allocations on the hot path per sampled message at
//!   fanout 1 (its publish span and its process span), counted by the caller's process-wide
//!   counter while the exporter thread sleeps (its poll interval is an hour, and the ring
//!   holds every record), so only the hot path is counted.

use std::hint::black_box;
use std::time::{Duration, Instant};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
    TracerProvider,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use serde_json::{json, Value};
use tracebus::span_bench::{HotPath, LocalPath};
use tracebus::SpanExport;

use crate::measure::median;

/// An exporter that drops every batch: what is measured is everything before it.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopExporter;

impl SpanExporter for NoopExporter {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        drop(black_box(batch));
        std::future::ready(Ok(()))
    }
}

/// The `span_cost` figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpanCost {
    /// Nanoseconds on the hot path per span of a sampled message at fanout 1: the mean of
    /// `hot_ns_per_publish_span` and `hot_ns_per_process_span`.
    pub hot_ns_per_span: f64,
    /// Nanoseconds on the hot path per sampled `publish` span (two clock reads).
    pub hot_ns_per_publish_span: f64,
    /// Nanoseconds on the hot path per `process` span (clock read shared with the previous).
    pub hot_ns_per_process_span: f64,
    /// Nanoseconds per publish span recorded in a burst, lines read by the exporter's core.
    pub burst_ns_per_publish_span: f64,
    /// Nanoseconds per process span recorded in a burst, lines read by the exporter's core.
    pub burst_ns_per_process_span: f64,
    /// Nanoseconds of exporter-thread work per span.
    pub export_ns_per_span: f64,
    /// Nanoseconds the OpenTelemetry SDK spends per equivalent span, all on the caller.
    pub sdk_ns_per_span: f64,
    /// Heap allocations on the hot path per sampled message (fanout 1: two spans).
    pub allocs_per_sampled_msg: f64,
    /// Nanoseconds per read of the span clock.
    pub clock_ns: f64,
}

impl SpanCost {
    /// `hot_ns_per_span / sdk_ns_per_span` (goal: at most 0.1).
    pub fn hot_vs_sdk(&self) -> f64 {
        self.hot_ns_per_span / self.sdk_ns_per_span
    }

    /// `hot_ns_per_publish_span / sdk_ns_per_span`: the dearer of the two kinds alone.
    pub fn publish_vs_sdk(&self) -> f64 {
        self.hot_ns_per_publish_span / self.sdk_ns_per_span
    }

    /// `export_ns_per_span / sdk_ns_per_span` (goal: at most 0.5).
    pub fn export_vs_sdk(&self) -> f64 {
        self.export_ns_per_span / self.sdk_ns_per_span
    }

    /// The section as busbench writes it.
    pub fn to_json(&self) -> Value {
        json!({
            "hot_ns_per_span": self.hot_ns_per_span,
            "hot_ns_per_publish_span": self.hot_ns_per_publish_span,
            "hot_ns_per_process_span": self.hot_ns_per_process_span,
            "burst_ns_per_publish_span": self.burst_ns_per_publish_span,
            "burst_ns_per_process_span": self.burst_ns_per_process_span,
            "export_ns_per_span": self.export_ns_per_span,
            "sdk_ns_per_span": self.sdk_ns_per_span,
            "allocs_per_sampled_msg": self.allocs_per_sampled_msg,
            "clock_ns": self.clock_ns,
            "hot_vs_sdk": self.hot_vs_sdk(),
            "publish_vs_sdk": self.publish_vs_sdk(),
            "export_vs_sdk": self.export_vs_sdk(),
        })
    }
}

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct Effort {
    /// Timed rounds per figure (the median is kept).
    pub rounds: usize,
    /// Spans per round.
    pub spans: usize,
}

impl Effort {
    /// busbench's full run.
    pub const FULL: Effort = Effort {
        rounds: 201,
        spans: 2048,
    };
    /// `--quick`.
    pub const QUICK: Effort = Effort {
        rounds: 31,
        spans: 2048,
    };
}

/// Measures every figure; `allocations` is the process-wide allocation counter of the
/// caller's global allocator.
pub fn measure(effort: Effort, allocations: &dyn Fn() -> usize) -> SpanCost {
    let (hot_ns_per_publish_span, hot_ns_per_process_span) = hot_ns(effort);
    let (burst_ns_per_publish_span, burst_ns_per_process_span) = hot_burst_ns(effort);
    SpanCost {
        burst_ns_per_publish_span,
        burst_ns_per_process_span,
        hot_ns_per_span: (hot_ns_per_publish_span + hot_ns_per_process_span) / 2.0,
        hot_ns_per_publish_span,
        hot_ns_per_process_span,
        export_ns_per_span: export_ns(effort),
        sdk_ns_per_span: sdk_ns(effort),
        allocs_per_sampled_msg: allocs_per_sampled_msg(10_000, allocations),
        clock_ns: clock_ns(effort),
    }
}

/// Median nanoseconds per span-clock read.
pub fn clock_ns(effort: Effort) -> f64 {
    let iters = effort.spans as u64 * 16;
    crate::measure::median_ns_per_op(effort.rounds, iters, |_| tracebus::span_bench::now())
}

/// Waits until the pipeline behind `hot` has taken every record made so far.
fn drained(hot: &HotPath, recorded: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = hot.counts();
        if c.exported + c.dropped + c.failed >= recorded || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Median hot-path nanoseconds per publish span and per process span, recorded in rounds
/// of `spans` into a ring that this thread drains (untimed) between rounds: the hot path's
/// own work, with the ring's lines in this core's cache.
pub fn hot_ns(effort: Effort) -> (f64, f64) {
    let n = effort.spans;
    let mut local = LocalPath::new(SpanExport::exporter(NoopExporter), n);
    let mut publish = Vec::with_capacity(effort.rounds);
    let mut process = Vec::with_capacity(effort.rounds);
    for round in 0..effort.rounds + 1 {
        local.drain();
        let start = Instant::now();
        for _ in 0..n {
            local.publish_span(black_box(1));
        }
        let p = start.elapsed();
        local.drain();
        let start = Instant::now();
        for _ in 0..n {
            local.process_span();
        }
        let c = start.elapsed();
        if round > 0 {
            // Round 0 warms up (first touch of the ring's pages).
            publish.push(p.as_nanos() as f64 / n as f64);
            process.push(c.as_nanos() as f64 / n as f64);
        }
    }
    assert_eq!(local.dropped(), 0, "each round fits in the ring");
    (median(&mut publish), median(&mut process))
}

/// Median nanoseconds per publish span and per process span recorded back to back into a
/// running pipeline whose exporter thread drains the ring between rounds. On two cores every
/// record then waits for the two cache lines the exporter read on the other core last lap,
/// and a burst queues behind those transfers: this is the cost of moving the lines (up to
/// about 80 ns on the project's VM; the hot path's own work when the scheduler happens to
/// put both threads on one core).
pub fn hot_burst_ns(effort: Effort) -> (f64, f64) {
    let ring = (2 * effort.spans).next_power_of_two();
    let mut hot = HotPath::start(
        SpanExport::exporter(NoopExporter)
            .ring_capacity(ring)
            .poll_interval(Duration::from_micros(100)),
    );
    let mut recorded = 0u64;
    let mut publish = Vec::with_capacity(effort.rounds);
    let mut process = Vec::with_capacity(effort.rounds);
    for round in 0..effort.rounds + 1 {
        drained(&hot, recorded);
        let start = Instant::now();
        for _ in 0..effort.spans {
            hot.publish_span(black_box(1));
        }
        let p = start.elapsed();
        recorded += effort.spans as u64;
        drained(&hot, recorded);
        let start = Instant::now();
        for _ in 0..effort.spans {
            hot.process_span();
        }
        let c = start.elapsed();
        recorded += effort.spans as u64;
        if round > 0 {
            publish.push(p.as_nanos() as f64 / effort.spans as f64);
            process.push(c.as_nanos() as f64 / effort.spans as f64);
        }
    }
    let counts = hot.finish();
    assert_eq!(
        counts.exported + counts.dropped,
        recorded,
        "every span accounted for"
    );
    (median(&mut publish), median(&mut process))
}

/// Median exporter-thread nanoseconds per span: rounds of `spans` records (half publish, half
/// process spans, made untimed), each drained, converted and exported to [`NoopExporter`].
pub fn export_ns(effort: Effort) -> f64 {
    let n = effort.spans;
    let mut local = LocalPath::new(SpanExport::exporter(NoopExporter), n);
    let mut samples = Vec::with_capacity(effort.rounds);
    let mut exported = 0;
    for round in 0..effort.rounds + 1 {
        for _ in 0..n / 2 {
            local.publish_span(1);
            local.process_span();
        }
        let start = Instant::now();
        let now_exported = local.drain();
        let t = start.elapsed();
        assert_eq!(now_exported - exported, (n / 2 * 2) as u64);
        exported = now_exported;
        if round > 0 {
            samples.push(t.as_nanos() as f64 / n as f64);
        }
    }
    median(&mut samples)
}

/// Median nanoseconds per span made through the OpenTelemetry SDK (simple processor, no-op
/// exporter), with the attributes tracebus exports on a publish span.
pub fn sdk_ns(effort: Effort) -> f64 {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(NoopExporter)
        .build();
    let tracer = provider.tracer("bench");
    let parent = Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from_bytes([0x5a; 16]),
        SpanId::from_bytes([0x11; 8]),
        TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    ));
    let span = || {
        let builder = tracer
            .span_builder("publish bench")
            .with_kind(SpanKind::Producer)
            .with_attributes([
                KeyValue::new("messaging.system", "tracebus"),
                KeyValue::new("messaging.destination.name", "bench"),
                KeyValue::new("messaging.operation.type", "send"),
                KeyValue::new("messaging.operation.name", "publish"),
                KeyValue::new("tracebus.sampling.rate", 1.0),
                KeyValue::new("tracebus.fanout", 1_i64),
            ]);
        let mut s = tracer.build_with_context(builder, &parent);
        opentelemetry::trace::Span::end(&mut s);
    };
    let mut samples = Vec::with_capacity(effort.rounds);
    for round in 0..effort.rounds + 1 {
        let start = Instant::now();
        for _ in 0..effort.spans {
            span();
        }
        let t = start.elapsed();
        if round > 0 {
            samples.push(t.as_nanos() as f64 / effort.spans as f64);
        }
    }
    drop(provider);
    median(&mut samples)
}

/// Heap allocations on the hot path per sampled message at fanout 1, counted by the
/// process-wide `allocations` while the exporter thread sleeps.
pub fn allocs_per_sampled_msg(messages: u64, allocations: &dyn Fn() -> usize) -> f64 {
    let warm_up = 100;
    let records = 2 * (messages + warm_up) as usize;
    let mut hot = HotPath::start(
        SpanExport::exporter(NoopExporter)
            .ring_capacity(records.next_power_of_two())
            .poll_interval(Duration::from_secs(3600))
            .interval(Duration::from_secs(3600)),
    );
    for _ in 0..warm_up {
        hot.publish_span(1);
        hot.process_span();
    }
    // Let the exporter thread take the ring's registration and go back to sleep.
    std::thread::sleep(Duration::from_millis(50));
    let before = allocations();
    for _ in 0..messages {
        hot.publish_span(1);
        hot.process_span();
    }
    let used = allocations() - before;
    let counts = hot.finish();
    assert_eq!(counts.dropped, 0, "the ring holds every record");
    used as f64 / messages as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_gives_finite_figures() {
        let effort = Effort {
            rounds: 3,
            spans: 256,
        };
        let (publish, process) = hot_ns(effort);
        assert!(publish > 0.0 && publish.is_finite());
        assert!(process > 0.0 && process.is_finite());
        let (publish, process) = hot_burst_ns(effort);
        assert!(publish > 0.0 && process > 0.0);
        assert!(export_ns(effort) > 0.0);
        assert!(sdk_ns(effort) > 0.0);
    }
}
