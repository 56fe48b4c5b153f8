//! The one place tracebus takes its atomics, `Arc`, `UnsafeCell`, locks, threads and control
//! channels from (the pattern of tokio's `loom/` module): `std_sync.rs` in ordinary builds,
//! `loom_sync.rs` under `--cfg tracebus_loom`, behind the same API, so the model checker sees
//! every access the ring and the runtime make. `UnsafeCell` always has loom's closure API
//! (`with` / `with_mut`), so the code that touches slot memory is the same in both builds.
//! The cfg is tracebus's own (as crossbeam has `crossbeam_loom`), so a crate that runs its own
//! loom models with `--cfg loom` does not change tracebus.

mod assert;
#[cfg(tracebus_loom)]
mod loom_sync;
#[cfg(not(tracebus_loom))]
mod std_sync;

pub(crate) use assert::debug_or_loom_assert;
#[cfg(tracebus_loom)]
pub(crate) use loom_sync::*;
#[cfg(not(tracebus_loom))]
pub(crate) use std_sync::*;

/// Locks `m`, ignoring poisoning: every value behind the runtime's mutexes is replaced whole
/// or updated in one step, so a panic elsewhere cannot leave it half-written.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why `chan::try_recv` returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TryRecvError {
    /// Nothing queued.
    Empty,
    /// Nothing queued, and every sender is gone.
    Disconnected,
}
