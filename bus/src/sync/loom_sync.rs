//! The loom half of the `sync` shim: loom's atomics, `Arc`, locks, threads, `UnsafeCell` and
//! `mpsc` channels (behind the API of crossbeam's), so the model checker sees every access the
//! ring and the runtime make. Its twin is `std_sync.rs`; `mod.rs` picks one.

pub(crate) use loom::{
    cell::UnsafeCell,
    sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering},
    sync::{Arc, Mutex, MutexGuard},
    thread,
};

/// The runtime's control channels: loom's `mpsc`, with the small API of crossbeam's.
pub(crate) mod chan {
    use super::super::TryRecvError;

    pub(crate) use loom::sync::mpsc::Sender;

    /// loom's receiver with one message of look-ahead, for `is_empty`.
    pub(crate) struct Receiver<T> {
        inner: loom::sync::mpsc::Receiver<T>,
        peeked: core::cell::RefCell<Option<T>>,
    }

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
