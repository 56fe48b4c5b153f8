//! # tracebus
//!
//! A zero-copy, lock-free, in-process message bus with distributed tracing built into every
//! message slot. Pinned worker threads exchange fixed-layout slots over single-producer,
//! single-consumer rings; every slot carries a 26-byte W3C trace-context header, and whether a
//! message is traced is decided once, at publish time, from its fanout.
//!
//! - [Topics and types](#topics-and-types)
//! - [Publishing and backpressure](#publishing-and-backpressure)
//! - [Shutdown](#shutdown)
//! - [Tracing](#tracing)
//! - [Slot sizes](#slot-sizes)
//! - [Wait strategies and pinning](#wait-strategies-and-pinning)
//! - [Example](#example)
//!
//! How it works and why (the data path, each concurrent protocol with its invariant and loom
//! model, the slot layout): `docs/ARCHITECTURE.md` in the repository; the benchmarks and what
//! is verified how: `docs/benchmarks.md` and `docs/reliability.md` there.
//!
//! # Topics and types
//!
//! A [`Bus`] is built with [`Bus::builder`]; every [`BusBuilder`] setting is checked before a
//! thread starts ([`BuildError`]). One bus carries many message types, each on its own typed,
//! named topic: [`Bus::topic`] returns a [`Topic<T>`], a `Copy` handle, and asking again with
//! the same name and type returns the same topic (another type is a
//! [`TopicError::TypeMismatch`]). A message type is any `bytemuck::Pod` type that fits the bus's
//! slots (see [Slot sizes](#slot-sizes)); it is written into the slot once and read in place.
//!
//! [`Bus::subscribe`] installs a handler on the worker with the fewest subscriptions,
//! [`Bus::subscribe_on`] on a given one; [`Bus::unsubscribe`] removes it by its
//! [`SubscriptionId`]. A handler is an `FnMut(&Message<T>, &mut Outbox)` that runs on its
//! worker: [`Message::payload`] borrows the message in place, [`Message::topic`] names its
//! topic, and the [`Outbox`] publishes onward. Every subscriber of a topic receives every
//! message published to it, in per-publisher order: the message is written once to each worker
//! with a subscriber, which hands it to each of its own. A handler that panics is caught and
//! counted ([`Report::handler_panics`]); its worker goes on.
//!
//! # Publishing and backpressure
//!
//! Every endpoint has its own bounded ring to every worker ([`BusBuilder::capacity`] messages,
//! default [`DEFAULT_CAPACITY`]): each [`Publisher`] ([`Bus::publisher`]; `Send`, not `Sync`,
//! one per producing thread), and each worker for its handlers' onward publishes. No ring has
//! two producers. A publish to several workers is all or nothing, and reports its fanout
//! ([`Published`]; 0 when nobody subscribed, and nothing is written). As with
//! crossbeam-channel's `send` and `try_send`:
//!
//! - [`Publisher::publish`] waits with backoff while a destination ring is full, and fails
//!   only when the bus is shut down ([`PublishError`], which hands the payload back).
//! - [`Publisher::try_publish`] never waits: a full ring hands the payload back
//!   ([`TryPublishError::Full`], naming the worker), as does a closed bus
//!   ([`TryPublishError::Closed`]).
//! - [`Publisher::publish_batch`] and [`Publisher::try_publish_batch`] commit a batch to each
//!   destination ring at once ([`BatchPublishError`], [`TryBatchError`]).
//!
//! A handler publishes onward through its [`Outbox`]: [`Outbox::try_publish`] never waits, and
//! [`Outbox::publish_timeout`] waits for room for a bounded time. Lay stages out so that waits
//! go one way across workers: a wait on a worker that waits, directly or not, on this one, and
//! a full ring to the handler's own worker, can never end well and are refused at once. Every
//! refused onward publish is counted ([`Stats::refused_full`], [`Stats::refused_closed`], and
//! the same in [`Report`] and per worker in [`WorkerReport`]), so a message a handler drops
//! after a refusal is never lost silently.
//!
//! # Shutdown
//!
//! [`Bus::shutdown`] (and dropping the bus) first refuses new publishes from [`Publisher`]s,
//! handing the payload back, then keeps the workers running while handlers publish onward until
//! the bus is quiescent: every ring empty and no handler running. Then every message accepted,
//! onward ones included, has reached every subscriber it was addressed to, and
//! [`Report::lost`] is 0.
//!
//! A pipeline that does not quiesce within the drain deadline ([`BusBuilder::drain_timeout`],
//! default [`DEFAULT_DRAIN_TIMEOUT`], 30 s; per call [`Bus::shutdown_timeout`]), such as a cycle
//! or a stage slower than the deadline, is stopped there: handlers' publishes are refused from
//! then on ([`Report::refused_closed`]), [`Report::drain_timed_out`] is set, and the message
//! copies left in the rings are counted in [`Report::lost`]. A worker still inside a handler
//! 1 s later is left behind and counted ([`Report::workers_abandoned`]); the span pipeline gets
//! its own [`SpanExport::shutdown_timeout`] (5 s) and counts the spans it could not export
//! ([`SpanCounts::abandoned`]). So shutdown returns within those bounds whatever handlers and
//! exporters do.
//!
//! The counts add up. Each accepted message is written once to every worker with a subscriber
//! of its topic (a copy); after shutdown, the copies accepted are the workers' handled copies
//! ([`WorkerReport::messages`]) plus [`Report::lost`], every handler call on a handled copy is
//! in [`Report::delivered`] or [`Report::handler_panics`], and every onward publish was
//! accepted ([`Report::published`]) or refused and counted. Where every topic has one
//! subscriber, `published = delivered + handler_panics + lost`.
//!
//! While the bus runs, [`Bus::stats`] reads the same counts ([`Stats`]) from counters the data
//! path keeps anyway, and [`Bus::flush`] waits for quiescence without shutting down.
//!
//! # Tracing
//!
//! Give the builder somewhere to export spans ([`BusBuilder::tracing`] with a [`SpanExport`]:
//! an OpenTelemetry `SpanExporter` through [`SpanExport::exporter`], or a `SpanProcessor`
//! through [`SpanExport::processor`]), or start tracing later on a running bus
//! ([`Bus::trace_to`]). Each publish then decides once, from its fanout, with the consistent
//! [`context::FanoutSampler`] (`p(n) = min(1, k / n)`, `k = 10`; set with
//! [`BusBuilder::sampler`]). A sampled message gets a `publish <topic>` span, whose context
//! rides in the slot's header, and a `process <topic>` span per subscriber; a handler's onward
//! publishes continue its trace. Unsampled messages cost no span, no clock read, no allocation.
//!
//! Spans are recorded on the hot path as fixed-size records into each endpoint's own record
//! ring ([`SpanExport::ring_capacity`]; a full ring drops the span and counts it), and turned
//! into OpenTelemetry spans by the bus's exporter thread, where an exporter that fails, panics
//! or stays pending past [`SpanExport::export_timeout`] is caught and counted
//! ([`SpanCounts`], in [`Report::spans`] and [`Stats::spans`]).
//!
//! - [`Bus::tracing`] switches tracing off and on and re-tunes the sampler while the bus runs
//!   ([`telemetry::TracingControl`]).
//! - In a handler, [`Message::trace_context`] is the message's context (the header),
//!   [`Outbox::trace_context`] the handler's `process` span, to send on as a W3C
//!   `traceparent` where the message leaves the process, and [`Outbox::otel_context`] a parent
//!   for the handler's own OpenTelemetry spans.
//! - A message that arrives with a context from elsewhere is published with
//!   [`Publisher::publish_with_parent`]; on the receiving side of another process,
//!   [`context::StrictTraceContextPropagator`] extracts a `traceparent` strictly.
//! - [`BusBuilder::record_publish_time`] lets handlers see how long a message waited
//!   ([`Message::waited`]).
//!
//! The [`telemetry`] module describes the sampling decision and the spans in full;
//! [`context`] is the `tracebus-context` crate (the header, the sampler, the W3C forms).
//!
//! # Slot sizes
//!
//! A bus's slots have one size, chosen as a type ([`SlotSize`], implemented by [`Lines`]) with
//! [`BusBuilder::slot_size`]. A message type that does not fit is refused when the program is
//! compiled, never truncated at run time.
//!
//! | slot size | cache lines per message | payload area |
//! |---|---:|---:|
//! | [`Lines<1>`] (the default) | 1 | 16 bytes |
//! | [`Lines<2>`] | 2 | 80 bytes |
//! | [`Lines<4>`] | 4 | 208 bytes |
//! | [`Lines<8>`] | 8 | 464 bytes |
//!
//! Payload types may need alignment up to [`layout::MAX_PAYLOAD_ALIGN`] (8). Name the bus's
//! type once and the rest follows:
//!
//! ```
//! use tracebus::{Bus, Lines, Publisher};
//!
//! type AppBus = Bus<Lines<2>>; // 80-byte payloads
//! type AppPublisher = Publisher<Lines<2>>;
//!
//! let bus: AppBus = Bus::builder().slot_size::<Lines<2>>().build().unwrap();
//! let quotes = bus.topic::<[u64; 10]>("quotes").unwrap(); // 80 bytes
//! let mut publisher: AppPublisher = bus.publisher().unwrap();
//! publisher.publish(&quotes, [7; 10]).unwrap();
//! ```
//!
//! Memory grows with the slot: a bus has `workers²` rings plus `workers` per publisher, each of
//! `capacity` slots, backed by the OS only where they are first written
//! ([`BusBuilder::capacity`] has the arithmetic). The [`layout`] module describes the slot.
//!
//! # Wait strategies and pinning
//!
//! [`BusBuilder::wait_strategy`] says how an idle worker waits ([`WaitStrategy`]):
//!
//! - [`WaitStrategy::BusySpin`]: polls forever; the lowest latency, one busy core per worker.
//!   Use it only with as many cores as workers and publishers.
//! - [`WaitStrategy::SpinThenYield`]: spins, then yields the thread between polls.
//! - [`WaitStrategy::SpinThenPark`] (the default): spins, yields, then parks until a publisher
//!   wakes it; no CPU while idle, and a wake-up costs a futex call.
//!
//! [`BusBuilder::workers`] sets the number of workers (default 1, at most [`MAX_WORKERS`]),
//! and [`BusBuilder::pinning`] where they run ([`Pinning::Auto`], the default, pins worker `i`
//! to the `i`-th available core; [`Pinning::Cores`] to listed cores; [`Pinning::Off`]).
//! Anything the builder had to give up, such as pinning on a machine with too few cores, is in
//! [`Bus::warnings`].
//!
//! # Modules
//!
//! - [`ring`]: tracebus's own SPSC ring, usable on its own.
//! - [`slot`]: the fixed-layout message slot carrying the 26-byte trace header.
//! - [`layout`]: slot sizes.
//! - [`telemetry`]: sampling at publish and the spans.
//!
//! # Example
//!
//! Two subscribers of `orders`, one on each worker; the first publishes onward to `fills`. The
//! bus is shut down right after the last publish, and shutdown still delivers every onward
//! publish.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use tracebus::{Bus, WaitStrategy};
//!
//! #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C)]
//! struct Order {
//!     id: u32,
//!     qty: u32,
//!     price: u64,
//! }
//!
//! let bus = Bus::builder()
//!     .workers(2)
//!     .wait_strategy(WaitStrategy::SpinThenPark)
//!     .build()
//!     .expect("valid settings");
//! let orders = bus.topic::<Order>("orders").unwrap();
//! let fills = bus.topic::<u64>("fills").unwrap();
//!
//! let total = Arc::new(AtomicU64::new(0));
//! let t = total.clone();
//! bus.subscribe_on(0, &orders, move |msg, out| {
//!     let order = msg.payload(); // &Order, in place in the slot
//!     assert_eq!(msg.topic(), "orders");
//!     out.try_publish(&fills, order.price * u64::from(order.qty)).expect("room in the ring");
//! }).unwrap();
//! bus.subscribe_on(1, &orders, |_, _| {}).unwrap();
//! bus.subscribe(&fills, move |msg, _| { t.fetch_add(*msg.payload(), Ordering::Relaxed); })
//!     .unwrap();
//!
//! let mut publisher = bus.publisher().unwrap();
//! for id in 1..=3 {
//!     let sent = publisher.publish(&orders, Order { id, qty: 2, price: 10 }).unwrap();
//!     assert_eq!(sent.fanout, 2);
//! }
//! let nobody = bus.topic::<u64>("nobody listens").unwrap();
//! assert_eq!(publisher.publish(&nobody, 0).unwrap().fanout, 0); // nothing written
//!
//! // Shutdown right after the last publish: it refuses new external publishes, lets the
//! // handlers publish onward until every ring is empty and no handler runs, then stops.
//! let report = bus.shutdown();
//! assert_eq!(total.load(Ordering::Relaxed), 3 * 20); // every onward fill delivered
//! assert_eq!(report.published, 3 + 3); // 3 orders, 3 onward fills
//! assert_eq!(report.delivered, 3 * 2 + 3);
//! assert_eq!((report.handler_panics, report.lost, report.refused_full), (0, 0, 0));
//! assert!(!report.drain_timed_out);
//! // After shutdown a publish is refused and the payload handed back.
//! let refused = publisher.publish(&fills, 7).unwrap_err();
//! assert_eq!(refused.into_inner(), 7);
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

mod barrier;
mod bus;
mod config;
mod cores;
mod drain;
mod endpoint;
mod error;
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub mod fault;
mod gate;
mod handler;
pub mod layout;
mod pause;
mod publisher;
mod report;
pub mod ring;
mod routing;
mod shared;
pub mod slot;
mod spans;
mod stall;
mod sync;
pub mod telemetry;
mod topic;
mod wait;
mod worker;

pub use bus::{Bus, SubscriptionId};
pub use config::{
    BuildError, BusBuilder, Pinning, DEFAULT_CAPACITY, DEFAULT_CATCH_UP_PAUSE,
    DEFAULT_DRAIN_TIMEOUT, MAX_WORKERS,
};
pub use endpoint::Published;
pub use error::{BatchPublishError, BusError, PublishError, TryBatchError, TryPublishError};
pub use handler::{Message, Outbox};
pub use layout::{Lines, SlotSize};
pub use publisher::Publisher;
pub use report::{Report, Stats};
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub use spans::bench as span_bench;
pub use spans::{SpanCounts, SpanExport, SpanExportError};
pub use topic::{Topic, TopicError};
pub use tracebus_context as context;
pub use wait::WaitStrategy;
pub use worker::WorkerReport;

/// The runtime's protocols, for the loom models in `loom-tests` only. It exists only in builds
/// with `--cfg tracebus_loom`, so no ordinary build of tracebus (or of a crate using it) sees
/// it.
#[cfg(tracebus_loom)]
#[doc(hidden)]
pub mod loom_support {
    pub use crate::drain::{quiescent, Done, Sent, Undo};
    pub use crate::gate::Gate;
    pub use crate::routing::{RouteCache, Routes};
    pub use crate::wait::{Idle, Sleeper, Wakers};
    pub use crate::WaitStrategy;

    /// A tracing switch, off, whose every flip bumps `routes`' epoch (as a bus's does).
    pub fn tracing_control(routes: &Routes) -> crate::telemetry::TracingControl {
        crate::telemetry::TracingControl::new(Default::default(), routes.epoch())
    }
}

/// The README's Rust examples, compiled and run as doc tests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
