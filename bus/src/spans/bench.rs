//! Hidden hooks into the span pipeline for busbench's `span_cost` section and for the
//! allocation test: the hot path and the exporter thread's work, driven from outside the crate
//! exactly as the bus drives them. Not part of tracebus's API; may change at any time.
//!
//! - [`HotPath`] records spans the way a publishing endpoint and a worker do (clock reads, a
//!   span-id, a `SpanRecord` into a `Recorder`), with a real pipeline (and its exporter
//!   thread) draining behind it.
//! - [`LocalPath`] records the same spans into a ring that the caller's own thread drains with
//!   the exporter thread's code (ring read, conversion to `SpanData`, hand-over to the
//!   target): each side can be timed alone, with the ring's cache lines on one core.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tracebus_context::TraceContext;

use super::clock::Ticks;
use super::config::SpanExport;
use super::exporter::{ExporterThread, PublishedTally};
use super::ids::new_span_id;
use super::pipeline::{SpanCounts, SpanPipeline};
use super::record::SpanRecord;
use super::recorder::Recorder;

/// One read of the span clock, as the hot path makes it (raw ticks).
#[inline]
pub fn now() -> u64 {
    super::clock::now()
}

/// The topic index every benchmark span is on; named `bench`.
const TOPIC: u32 = 0;

fn names() -> super::TopicNames {
    let name: Arc<str> = Arc::from("bench");
    Arc::new(move |t| (t == TOPIC).then(|| Arc::clone(&name)))
}

/// Makes spans the way the bus does: the context of one sampled message, and the end of the
/// last `process` span (the next one starts there).
#[derive(Debug)]
struct Spans {
    header: TraceContext,
    last: Ticks,
}

impl Spans {
    fn new() -> Spans {
        Spans {
            header: TraceContext::new(
                [0x5a; 16],
                [0x11; 8],
                tracebus_context::FLAG_SAMPLED | tracebus_context::FLAG_RANDOM,
            )
            .expect("non-zero ids"),
            last: now(),
        }
    }

    /// A publish span: a clock read, a span-id, the context for the header, a clock read.
    #[inline(always)]
    fn publish(&self, fanout: usize) -> SpanRecord {
        let start = now();
        let ctx = self
            .header
            .with_span_id(new_span_id())
            .expect("span-ids are non-zero");
        let end = now();
        SpanRecord::publish(&ctx, None, TOPIC, start, end)
            .with_fanout(fanout)
            .with_sampling_rate(1.0)
    }

    /// A process span: a span-id, one clock read (the start is the previous span's end).
    #[inline(always)]
    fn process(&mut self) -> SpanRecord {
        let span_id = new_span_id();
        let end = now();
        let record = SpanRecord::process(&self.header, span_id, TOPIC, self.last, end)
            .with_enqueued(self.last);
        self.last = end;
        record
    }
}

/// The hot path of sampled spans, recording into a running pipeline.
#[derive(Debug)]
pub struct HotPath {
    /// Declared before `pipeline`: dropped first, so shutdown sees its ring closed.
    recorder: Recorder,
    pipeline: SpanPipeline,
    spans: Spans,
}

impl HotPath {
    /// Starts a pipeline to `export` and makes one recorder.
    ///
    /// # Panics
    /// If the settings are invalid or the thread cannot start.
    pub fn start(export: SpanExport) -> HotPath {
        let pipeline = SpanPipeline::start(export, names()).expect("valid span export settings");
        let recorder = pipeline.recorder().expect("pipeline running");
        HotPath {
            recorder,
            pipeline,
            spans: Spans::new(),
        }
    }

    /// Records one sampled publish's span, as an endpoint does.
    #[inline]
    pub fn publish_span(&mut self, fanout: usize) {
        let record = self.spans.publish(fanout);
        self.recorder.record(record);
    }

    /// Records one subscriber's `process` span, as a worker does.
    #[inline]
    pub fn process_span(&mut self) {
        let record = self.spans.process();
        self.recorder.record(record);
    }

    /// The counts so far (spans exported, records dropped).
    pub fn counts(&self) -> SpanCounts {
        self.pipeline.counts()
    }

    /// Stops recording, exports everything and returns the final counts.
    pub fn finish(self) -> SpanCounts {
        let HotPath {
            recorder, pipeline, ..
        } = self;
        drop(recorder);
        pipeline.shutdown()
    }
}

/// A recorder and the exporter thread's work on its ring, both on the caller's thread.
#[derive(Debug)]
pub struct LocalPath {
    thread: ExporterThread,
    recorder: Recorder,
    spans: Spans,
}

impl LocalPath {
    /// A ring of at least `capacity` records drained to `export`.
    ///
    /// # Panics
    /// If the settings are invalid or `capacity` is 0 or too large for a ring.
    pub fn new(export: SpanExport, capacity: usize) -> LocalPath {
        export.validate().expect("valid span export settings");
        let (tx, rx) = crate::ring::spsc::<SpanRecord>(capacity).expect("a ring of `capacity`");
        let (_control_tx, control_rx) = crossbeam_channel::unbounded();
        let mut thread = ExporterThread::new(
            export,
            names(),
            control_rx,
            Arc::new(PublishedTally::default()),
        );
        thread.register(rx);
        LocalPath {
            thread,
            recorder: Recorder::new(tx, Arc::new(AtomicU64::new(0))),
            spans: Spans::new(),
        }
    }

    /// Records one sampled publish's span, as an endpoint does.
    #[inline]
    pub fn publish_span(&mut self, fanout: usize) {
        let record = self.spans.publish(fanout);
        self.recorder.record(record);
    }

    /// Records one subscriber's `process` span, as a worker does.
    #[inline]
    pub fn process_span(&mut self) {
        let record = self.spans.process();
        self.recorder.record(record);
    }

    /// Records dropped so far (the ring was full).
    pub fn dropped(&self) -> u64 {
        self.recorder.dropped()
    }

    /// Drains the ring, converts every record and hands the batches to the target, as the
    /// exporter thread does; returns the spans the target accepted so far.
    pub fn drain(&mut self) -> u64 {
        self.thread.drain_all(None);
        self.thread.hand_over();
        self.thread.tally().exported
    }
}
