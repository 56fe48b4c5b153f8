//! # tracebus
//!
//! A zero-copy, lock-free, in-process message bus with distributed tracing built into every
//! message slot.
//!
//! - [`Bus`]: pinned worker threads, an SPSC mesh (every endpoint has its own ring to every
//!   worker), typed named [`Topic`]s with fanout, backpressure, shutdown that delivers
//!   everything accepted, and handler panics caught and counted.
//! - [`layout`]: slot sizes. One bus carries many `bytemuck::Pod` message types: each slot has
//!   a payload area of fixed size per bus (16 bytes by default, one cache line per message with
//!   header and metadata), where a topic's `T` is written and read in place; a type that does
//!   not fit is refused at compile time.
//! - [`ring`]: tracebus's own SPSC ring (verified by loom models).
//! - [`slot`]: the fixed-layout message slot carrying the 26-byte trace header.
//!
//! The design, the protocols and why they were chosen: `docs/ARCHITECTURE.md` in the
//! repository.
//!
//! ## Example
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
//! // Two subscribers of `orders`, one on each worker; the first publishes onward to `fills`.
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
    BuildError, BusBuilder, Pinning, DEFAULT_CAPACITY, DEFAULT_DRAIN_TIMEOUT, MAX_WORKERS,
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
    pub use crate::gate::{Busy, Gate, Inside};
    pub use crate::wait::{Idle, Sleeper, Wakers};
    pub use crate::WaitStrategy;
}

/// The README's Rust examples, compiled and run as doc tests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
