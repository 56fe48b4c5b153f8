//! # tracebus
//!
//! A zero-copy, lock-free, in-process message bus with distributed tracing built into every
//! message slot.
//!
//! - [`ring`]: tracebus's own SPSC ring (rtrb's algorithm, verified by loom models).
//! - [`slot`]: the fixed-layout message slot carrying the 26-byte trace header.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod ring;
pub mod slot;
mod sync;

pub use tracebus_context as context;
