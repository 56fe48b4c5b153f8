//! The span pipeline: spans recorded on the hot path as fixed-size records, exported off it.
//!
//! This is fastrace's design with tracebus's own parts. On the hot path, a sampled publish or
//! delivery reads a TSC clock ([`now`]), makes a span-id ([`new_span_id`]) and writes one
//! 80-byte [`SpanRecord`] into a ring owned by that endpoint or worker ([`Recorder::record`]):
//! no lock, no allocation, no OpenTelemetry call, no syscall; a full ring drops the record and
//! counts it. One background thread per bus ([`SpanPipeline`]) drains every recorder's ring,
//! turns records into OpenTelemetry `SpanData` (wall-clock times from a clock anchor renewed
//! every second, names from the bus's topic registry, the current messaging semantic
//! conventions) and hands them to the user's `SpanExporter` or `SpanProcessor`
//! ([`SpanExport`]), catching and counting its errors and panics. Shutdown exports everything
//! recorded before it.
//!
//! | file | what |
//! |---|---|
//! | `record.rs` | [`SpanRecord`], [`Parent`]: one finished span, `Copy`, 80 bytes |
//! | `clock.rs` | [`now`] (raw ticks), `WallClock` (ticks to `SystemTime`, re-anchored every second) |
//! | `ids.rs` | [`random_trace_id`](tracebus_context::random_trace_id), [`new_span_id`] |
//! | `recorder.rs` | [`Recorder`]: the hot-path writer, one per endpoint or worker |
//! | `config.rs` | [`SpanExport`] (public): target, batch size, intervals, ring capacity, resource, scope |
//! | `sink.rs` | the exporter / processor behind one trait, faults caught and counted |
//! | `convert.rs` | records to `SpanData`; topic names cached per topic, span names interned |
//! | `exporter.rs` | the exporter thread's loop |
//! | `pipeline.rs` | [`SpanPipeline`] (start, recorders, counts, shutdown), [`SpanCounts`] (public) |
//! | `bench.rs` | hidden public hooks for busbench's `span_cost` section and the allocation test |
//!
//! # How the bus uses it
//!
//! - **Start.** `telemetry::Tracing` starts one pipeline per bus ([`SpanPipeline::start_on`],
//!   with the topic registry as the name lookup and a core no worker uses for the thread),
//!   when the bus is built with a [`SpanExport`] or when `Bus::trace_to` is called. Starting
//!   validates the settings, calibrates the clock (so no publish pays for it) and spawns the
//!   `tracebus-spans` thread. The pipeline is not loom-modelled. `SpanExport` is `Clone`:
//!   pipelines started from clones share one target, and the last to shut down shuts it down.
//! - **Recorders.** Every endpoint (each `Publisher`, each worker) makes its [`Recorder`] on
//!   its first sampled span (`Tracing::recorder`, which allocates the ring once); a worker's
//!   `process` spans and its handlers' onward `publish` spans share the worker's recorder.
//! - **Spans.** A sampled publish records its span through `telemetry::Sampled::record` (one
//!   span per publish call, a batch included); each handler run on a sampled slot records its
//!   `process` span through `telemetry::process_span`, the end tick of one handler being the
//!   start of the next. A panicking handler's span is marked so by the worker's unwind guard.
//!
//! The id and parent rules, in one place:
//! - the publish span's context (its own span-id) goes into the slot header;
//! - each subscriber's `process` span has the header's span-id as its parent (remote: it came
//!   through the header), the header's trace-id and flags, and a new span-id;
//! - a handler's onward publish has that handler's `process` span as its parent (local), in
//!   the same trace;
//! - a trace the bus starts uses the trace-id its sampling decision was made on
//!   ([`random_trace_id`](tracebus_context::random_trace_id) only if there is no decision to take one from);
//! - unsampled messages make no record and read no clock for spans.
//!
//! A handler that starts its own OpenTelemetry spans needs an OpenTelemetry `Context` with the
//! `process` span as parent: build it only when the handler asks for it (it allocates),
//! `Context::new().with_remote_span_context(current.to_span_context(false))`.
//!
//! **Counts and shutdown.** [`SpanPipeline::counts`] reads the counts at any time (for
//! `Bus::stats`); [`SpanPipeline::shutdown`], called after the workers stopped, exports every
//! record, flushes the target, stops the thread (or, past the shutdown timeout, leaves it and
//! counts what it had not exported) and returns the final [`SpanCounts`] for the `Report`.
//! Dropping the pipeline shuts it down too.
//!
//! Costs (busbench's `span_cost` section; `benches/src/span_cost.rs`), measured on the
//! project's 2-core VM, where one TSC read costs 9.5 ns: a publish span (two clock reads, an
//! id, a record) 19.5 ns, a process span (one clock read, an id, a record) 9.9 ns, no
//! allocation; the exporter thread 72 ns per span; the OpenTelemetry SDK 172 ns per span. A
//! record whose cells the exporter read on another core last lap waits for those lines when
//! records come in a burst (up to about 80 ns each, when the scheduler separates the threads).
//! An idle exporter thread polls every 8 ms (0.2% of a core), a busy one every 1 ms.

mod clock;
mod config;
mod convert;
mod exporter;
mod ids;
mod pipeline;
mod record;
mod recorder;
mod sink;

#[cfg(feature = "test-util")]
#[doc(hidden)]
pub mod bench;

pub(crate) use clock::{nanos_since, now, Ticks};
pub use config::{SpanExport, SpanExportError};
pub(crate) use convert::TopicNames;
pub use convert::MESSAGING_SYSTEM;
pub(crate) use ids::new_span_id;
#[cfg(test)]
pub(crate) use ids::new_trace_id;
pub use pipeline::SpanCounts;
pub(crate) use pipeline::SpanPipeline;
pub(crate) use record::{Parent, SpanRecord};
pub(crate) use recorder::Recorder;

#[cfg(all(test, not(tracebus_loom)))]
mod tests;
