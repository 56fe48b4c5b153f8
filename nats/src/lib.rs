//! # tracebus-nats
//!
//! A bridge between tracebus buses and a NATS server, carrying the W3C trace context of sampled
//! messages across.
//!
//! - Export: a bus topic to a subject (`tracebus.<topic name>` by default). A bus subscriber
//!   hands each message to the bridge without blocking its worker (a bounded queue; a full one
//!   drops and counts). The payload goes as the type's `Pod` bytes, as they lie in memory: the
//!   bridge assumes little-endian machines on both sides (x86-64, AArch64). A sampled message
//!   carries a strict W3C `traceparent` (and, with a tracer, a `send <subject>` PRODUCER span
//!   with `messaging.system = "nats"` whose id is in that header); an unsampled one carries no
//!   trace header at all.
//! - Import: a subject (wildcards allowed) to a bus topic. The fast filter reads only the
//!   sampled flag of `traceparent` ([`filter`]); only sampled values are parsed, strictly, and
//!   become the parent of the bus publish. Absent, unsampled, malformed, duplicated and
//!   oversized headers give no context and are counted; such messages are published untraced
//!   unless the import allows roots. A payload of the wrong size is counted and not delivered.
//! - Delivery: core NATS, at most once; JetStream, at least once into the stream and once into
//!   the bus ([`Mode`]). The client reconnects by itself in both.
//! - [`StatsSnapshot`]: every count above, readable at any time.
//!
//! Warnings (disconnections, dropped messages) go through the `log` crate; the bridge prints
//! nothing.
//!
//! ## Example
//!
//! A bus exports its `orders` and imports replies; the other end is any NATS client (another
//! bus with its own bridge, say). Both ends must carry the same `Pod` type on each subject.
//!
//! ```no_run
//! use std::time::Duration;
//! use tracebus::Bus;
//! use tracebus_nats::{Bridge, BridgeConfig, ExportOptions, ImportOptions};
//!
//! let bus = Bus::builder().build()?;
//! let orders = bus.topic::<u64>("orders")?;
//! let replies = bus.topic::<u64>("replies")?;
//! bus.subscribe(&replies, |msg, _| println!("reply {}", msg.payload()))?;
//!
//! let bridge = Bridge::connect(BridgeConfig::new("nats://127.0.0.1:4222"))?; // core NATS
//! bridge.export(&bus, &orders, ExportOptions::default())?; // to `tracebus.orders`
//! bridge.import(&bus, &replies, ImportOptions::subject("tracebus.replies"))?;
//!
//! bus.publisher()?.publish(&orders, 42)?; // sampled messages carry `traceparent`
//! bridge.flush(Duration::from_secs(5)); // everything exported so far is at the server
//! let stats = bridge.shutdown(Duration::from_secs(2));
//! assert_eq!(stats.export_dropped_full, 0);
//! bus.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Bridge::stats`] may be read at any time.

#![forbid(unsafe_code)]

mod bridge;
pub mod config;
mod connection;
mod dedup;
mod error;
mod export;
pub mod filter;
mod handoff;
pub mod headers;
mod import;
mod sink;
mod span;
mod stats;
mod topics;

pub use bridge::Bridge;
pub use config::{BridgeConfig, ExportOptions, ImportOptions, JetStreamConfig, Mode};
pub use error::BridgeError;
pub use export::Handoff;
pub use sink::{ImportSink, Offer};
pub use span::MESSAGING_SYSTEM;
pub use stats::StatsSnapshot;
pub use topics::Export;
