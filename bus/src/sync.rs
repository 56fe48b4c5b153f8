//! The one place tracebus takes its atomics, `Arc` and `UnsafeCell` from.
//!
//! Under `cfg(loom)` they are loom's, so the model checker sees every access the ring and the
//! runtime make; otherwise they are std's, behind the same API. `UnsafeCell` always has loom's
//! closure API (`with` / `with_mut`), so the code that touches slot memory is the same in both
//! builds (the pattern of tokio's `loom/` module).

#[cfg(loom)]
pub(crate) use loom::{
    cell::UnsafeCell,
    sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering},
    sync::Arc,
    thread,
};

#[cfg(not(loom))]
pub(crate) use std::thread;

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicUsize, Ordering},
    Arc,
};

/// std's `UnsafeCell` with loom's closure API. `repr(transparent)`, so a slice of cells has the
/// layout of a slice of values.
#[cfg(not(loom))]
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
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

/// `assert!` in debug and loom builds, nothing in release builds: the ring's invariants, checked
/// by every test run and every loom model (nexosim's `debug_or_loom_assert!`). The condition is
/// still type-checked in release, and `if cfg!(..)` lets the optimiser remove it there.
macro_rules! debug_or_loom_assert {
    ($($arg:tt)*) => {
        if cfg!(any(debug_assertions, loom)) {
            assert!($($arg)*);
        }
    };
}
pub(crate) use debug_or_loom_assert;

#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Locks `m`, ignoring poisoning: every value behind the runtime's mutexes is replaced whole
/// or updated in one step, so a panic elsewhere cannot leave it half-written.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The runtime's control channels: crossbeam's, or loom's `mpsc` behind the same small API.
pub(crate) mod chan {
    /// Why `try_recv` returned nothing.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum TryRecvError {
        /// Nothing queued.
        Empty,
        /// Nothing queued, and every sender is gone.
        Disconnected,
    }

    #[cfg(not(loom))]
    pub(crate) use crossbeam_channel::{Receiver, Sender};

    /// An unbounded channel.
    #[cfg(not(loom))]
    pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
        crossbeam_channel::unbounded()
    }

    /// Takes a message without waiting.
    #[cfg(not(loom))]
    pub(crate) fn try_recv<T>(rx: &Receiver<T>) -> Result<T, TryRecvError> {
        rx.try_recv().map_err(|e| match e {
            crossbeam_channel::TryRecvError::Empty => TryRecvError::Empty,
            crossbeam_channel::TryRecvError::Disconnected => TryRecvError::Disconnected,
        })
    }

    /// Whether nothing is queued.
    #[cfg(not(loom))]
    pub(crate) fn is_empty<T>(rx: &Receiver<T>) -> bool {
        rx.is_empty()
    }

    #[cfg(loom)]
    pub(crate) use loom::sync::mpsc::Sender;

    /// loom's receiver with one message of look-ahead, for `is_empty`.
    #[cfg(loom)]
    pub(crate) struct Receiver<T> {
        inner: loom::sync::mpsc::Receiver<T>,
        peeked: core::cell::RefCell<Option<T>>,
    }

    #[cfg(loom)]
    impl<T> Receiver<T> {
        /// Waits for a message.
        pub(crate) fn recv(&self) -> Result<T, std::sync::mpsc::RecvError> {
            match self.peeked.borrow_mut().take() {
                Some(v) => Ok(v),
                None => self.inner.recv(),
            }
        }
    }

    /// An unbounded channel.
    #[cfg(loom)]
    pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
        let (tx, rx) = loom::sync::mpsc::channel();
        (
            tx,
            Receiver {
                inner: rx,
                peeked: core::cell::RefCell::new(None),
            },
        )
    }

    /// Takes a message without waiting.
    #[cfg(loom)]
    pub(crate) fn try_recv<T>(rx: &Receiver<T>) -> Result<T, TryRecvError> {
        if let Some(v) = rx.peeked.borrow_mut().take() {
            return Ok(v);
        }
        rx.inner.try_recv().map_err(|e| match e {
            std::sync::mpsc::TryRecvError::Empty => TryRecvError::Empty,
            std::sync::mpsc::TryRecvError::Disconnected => TryRecvError::Disconnected,
        })
    }

    /// Whether nothing is queued.
    #[cfg(loom)]
    pub(crate) fn is_empty<T>(rx: &Receiver<T>) -> bool {
        let mut peeked = rx.peeked.borrow_mut();
        if peeked.is_some() {
            return false;
        }
        match rx.inner.try_recv() {
            Ok(v) => {
                *peeked = Some(v);
                false
            }
            Err(_) => true,
        }
    }
}
