//! # tracebus
//!
//! A zero-copy, lock-free, in-process message bus with distributed tracing built into every
//! message slot.
//!
//! - [`Bus`]: pinned worker threads, an SPSC mesh (every endpoint has its own ring to every
//!   worker), topics with fanout, backpressure, shutdown that delivers everything accepted, and
//!   handler panics caught and counted.
//! - [`ring`]: tracebus's own SPSC ring (verified by loom models).
//! - [`slot`]: the fixed-layout message slot carrying the 26-byte trace header.
//!
//! ## Example
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use tracebus::{Bus, WaitStrategy};
//!
//! let bus = Bus::builder()
//!     .workers(2)
//!     .wait_strategy(WaitStrategy::SpinThenPark)
//!     .build::<u64>()
//!     .expect("valid settings");
//!
//! // Two subscribers of topic 1, one on each worker; the first forwards to topic 2.
//! let sum = Arc::new(AtomicU64::new(0));
//! let s = sum.clone();
//! bus.subscribe(1, Some(0), move |msg, ctx| {
//!     s.fetch_add(*msg.payload(), Ordering::Relaxed);
//!     ctx.try_publish(2, *msg.payload() * 10).expect("room in the ring");
//! }).unwrap();
//! bus.subscribe(1, Some(1), |_, _| {}).unwrap();
//! let s = sum.clone();
//! bus.subscribe(2, None, move |msg, _| { s.fetch_add(*msg.payload(), Ordering::Relaxed); })
//!     .unwrap();
//!
//! let mut publisher = bus.publisher().unwrap();
//! for i in 1..=3 {
//!     let sent = publisher.publish(1, i).unwrap();
//!     assert_eq!(sent.fanout, 2);
//! }
//! assert_eq!(publisher.publish(99, 0).unwrap().fanout, 0); // nobody listens: nothing written
//!
//! // Shutdown refuses new publishes, onward ones from handlers included, so let the forwards
//! // happen first.
//! while sum.load(Ordering::Relaxed) < 6 + 60 {
//!     std::thread::yield_now();
//! }
//! let report = bus.shutdown();
//! assert_eq!(report.published, 3 + 3); // 3 external publishes, 3 onward ones
//! assert_eq!(report.delivered, 3 * 2 + 3);
//! assert_eq!(report.handler_panics, 0);
//! assert!(publisher.publish(1, 4).is_err()); // refused after shutdown, payload handed back
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

mod bus;
mod config;
mod endpoint;
mod error;
pub mod gate;
mod handler;
pub mod ring;
mod routing;
pub mod slot;
// The span pipeline (issue 13): standalone until the publish and delivery paths call it;
// remove the `allow` then.
#[allow(dead_code, unused_imports)]
mod spans;
mod sync;
pub mod telemetry;
pub mod wait;
mod worker;

pub(crate) use bus::BusShared;
pub use bus::{Bus, Publisher, Report, SubscriptionId};
pub use config::{BuildError, BusBuilder, Pinning, DEFAULT_CAPACITY};
pub use endpoint::Published;
pub use error::{BatchError, BusError, PublishError};
pub use handler::{Context, Delivery};
pub use routing::Topic;
#[doc(hidden)]
pub use spans::bench as span_bench;
pub use spans::{SpanCounts, SpanExport, SpanExportError};
pub use tracebus_context as context;
pub use wait::WaitStrategy;
pub use worker::WorkerReport;

/// The README's Rust examples, compiled and run as doc tests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
