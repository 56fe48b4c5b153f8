//! Hidden hooks into the span pipeline for busbench's `span_cost` section and for the
//! allocation test: the hot path and the exporter thread's work, driven from outside the crate
//! exactly as the bus drives them. Not part of tracebus's API; may change at any time.
//!
//! - [`HotPath`] records spans the way a publishing endpoint and a worker do (clock reads, a
//!   span-id, a `SpanRecord` into a `Recorder`), with a real pipeline draining behind it.
//! - [`ExportPath`] does one exporter-thread pass on the caller's thread over records put in a
//!   ring beforehand: ring read, conversion to `SpanData`, hand-over to the target.

use tracebus_context::TraceContext;

use super::clock::{now, Ticks};
use super::config::SpanExport;
use super::exporter::{ExporterThread, PublishedTally};
use super::ids::new_span_id;
use super::pipeline::{SpanCounts, SpanPipeline};
use super::record::SpanRecord;
use super::recorder::Recorder;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The topic index every benchmark span is on; named `bench`.
const TOPIC: u32 = 0;

fn names() -> super::TopicNames {
    let name: Arc<str> = Arc::from("bench");
    Arc::new(move |t| (t == TOPIC).then(|| Arc::clone(&name)))
}

fn header() -> TraceContext {
    TraceContext::new(
        [0x5a; 16],
        [0x11; 8],
        tracebus_context::FLAG_SAMPLED | tracebus_context::FLAG_RANDOM,
    )
    .expect("non-zero ids")
}

/// The hot path of sampled spans, recording into a running pipeline.
#[derive(Debug)]
pub struct HotPath {
    /// Declared before `pipeline`: dropped first, so shutdown sees its ring closed.
    recorder: Recorder,
    pipeline: SpanPipeline,
    /// The context of the message being "delivered".
    header: TraceContext,
    /// The end of the last process span: the next one starts there.
    last: Ticks,
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
            header: header(),
            last: now(),
        }
    }

    /// One sampled publish's span, as an endpoint records it: a clock read, a span-id, the
    /// context for the header, a clock read, the record.
    #[inline]
    pub fn publish_span(&mut self, fanout: usize) {
        let start = now();
        let ctx = self
            .header
            .with_span_id(new_span_id())
            .expect("span-ids are non-zero");
        let end = now();
        self.recorder.record(
            SpanRecord::publish(&ctx, None, TOPIC, start, end)
                .with_fanout(fanout)
                .with_sampling_rate(1.0),
        );
    }

    /// One subscriber's `process` span, as a worker records it: a span-id, one clock read (the
    /// start is the previous span's end), the record.
    #[inline]
    pub fn process_span(&mut self) {
        let span_id = new_span_id();
        let end = now();
        self.recorder.record(
            SpanRecord::process(&self.header, span_id, TOPIC, self.last, end)
                .with_enqueued(self.last),
        );
        self.last = end;
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

/// The exporter thread's work on records made beforehand, run on the caller's thread.
#[derive(Debug)]
pub struct ExportPath {
    thread: ExporterThread,
    recorder: Recorder,
    spans: usize,
}

impl ExportPath {
    /// An exporter pass to `export`, over `spans` records per [`ExportPath::fill`].
    ///
    /// # Panics
    /// If the settings are invalid or `spans` is 0 or too large for a ring.
    pub fn new(export: SpanExport, spans: usize) -> ExportPath {
        export.validate().expect("valid span export settings");
        let (tx, rx) = crate::ring::spsc::<SpanRecord>(spans).expect("a ring of `spans`");
        let (_control_tx, control_rx) = crossbeam_channel::unbounded();
        let mut thread = ExporterThread::new(
            export,
            names(),
            control_rx,
            Arc::new(PublishedTally::default()),
        );
        thread.register(rx);
        ExportPath {
            thread,
            recorder: Recorder::new(tx, Arc::new(AtomicU64::new(0))),
            spans,
        }
    }

    /// Records `spans` spans (half publish, half process) into the ring; not the part to time.
    pub fn fill(&mut self) {
        let header = header();
        let t = now();
        for i in 0..self.spans {
            let span_id = new_span_id();
            let t = t + i as u64 * 100;
            let record = if i % 2 == 0 {
                let ctx = header.with_span_id(span_id).expect("non-zero");
                SpanRecord::publish(&ctx, None, TOPIC, t, t + 50)
                    .with_fanout(1)
                    .with_sampling_rate(1.0)
            } else {
                SpanRecord::process(&header, span_id, TOPIC, t, t + 50).with_enqueued(t - 10)
            };
            self.recorder.record(record);
        }
    }

    /// Drains the ring, converts every record and hands the batches to the target, as the
    /// exporter thread does; returns the spans handed over and accepted so far.
    pub fn drain(&mut self) -> u64 {
        self.thread.drain_all(None);
        self.thread.hand_over();
        self.thread.tally().exported
    }
}
