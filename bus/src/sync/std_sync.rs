//! The standard library half of the `sync` shim: std's atomics, `Arc`, locks and threads,
//! crossbeam's channels, and an `UnsafeCell` with loom's closure API. Its twin is
//! `loom_sync.rs`; `mod.rs` picks one.

pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};
pub(crate) use std::thread;

/// std's `UnsafeCell` with loom's closure API. `repr(transparent)`, so a slice of cells has the
/// layout of a slice of values.
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

impl<T> UnsafeCell<T> {
    /// Wraps `value`. (The ring builds its cells from zeroed memory outside loom, so only
    /// tests use this.)
    #[allow(dead_code)]
    #[inline(always)]
    pub(crate) const fn new(value: T) -> UnsafeCell<T> {
        UnsafeCell(core::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a shared raw pointer to the contents.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with an exclusive raw pointer to the contents.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// The runtime's control channels: crossbeam's unbounded channels.
pub(crate) mod chan {
    use super::super::TryRecvError;

    pub(crate) use crossbeam_channel::{Receiver, Sender};

    /// An unbounded channel.
    pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
        crossbeam_channel::unbounded()
    }

    /// Takes a message without waiting.
    pub(crate) fn try_recv<T>(rx: &Receiver<T>) -> Result<T, TryRecvError> {
        rx.try_recv().map_err(|e| match e {
            crossbeam_channel::TryRecvError::Empty => TryRecvError::Empty,
            crossbeam_channel::TryRecvError::Disconnected => TryRecvError::Disconnected,
        })
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty<T>(rx: &Receiver<T>) -> bool {
        rx.is_empty()
    }
}
