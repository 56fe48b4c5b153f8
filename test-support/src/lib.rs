//! # tracebus-test-support
//!
//! Helpers that more than one of the workspace's test binaries (and `busbench`) need, kept in
//! one place so that each exists once:
//!
//! - [`alloc`]: [`CountingAllocator`], a global allocator that counts every allocation of the
//!   process and of each thread, for the "no allocation per message" tests and busbench's
//!   allocations-per-message section.
//! - [`panics`]: [`quiet_injected_panics`], a panic hook that silences the panics a test injects
//!   on purpose (in handlers, to check that they are caught) and reports every other one.
//! - [`nats_server`]: [`NatsServer`], a `nats-server` child process for the NATS bridge's tests
//!   and busbench's bridge section (started on a free port, killed and restarted at will).
//!
//! Not published: the workspace's crates take it as a dev-dependency (by path, without a
//! version, so `cargo publish` leaves it out of their manifests).

pub mod alloc;
pub mod nats_server;
pub mod panics;

pub use alloc::{allocations, thread_allocations, CountingAllocator};
pub use nats_server::NatsServer;
pub use panics::quiet_injected_panics;
