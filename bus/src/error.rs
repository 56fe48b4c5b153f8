//! The bus's typed errors, one per call, as crossbeam-channel has `SendError` and
//! `TrySendError`: a waiting publish can only fail because the bus closed, a non-waiting one
//! because a ring was full or the bus closed, and batches say how many were published. Every
//! error that refuses a message hands it back.

/// [`crate::Publisher::publish`] was refused: the bus is shutting down or gone. The payload is
/// handed back.
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the bus is shut down")]
pub struct PublishError<T> {
    payload: T,
}

impl<T> PublishError<T> {
    pub(crate) fn new(payload: T) -> Self {
        PublishError { payload }
    }

    /// The message that was not published.
    pub fn into_inner(self) -> T {
        self.payload
    }
}

impl<T> core::fmt::Debug for PublishError<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PublishError { .. }")
    }
}

/// Why a `try_publish` was refused. The payload is handed back.
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TryPublishError<T> {
    /// The ring to this worker is full. Nothing was written to any worker.
    #[error("the ring to worker {worker} is full; nothing was written")]
    Full {
        /// The message, not published.
        payload: T,
        /// The first worker whose ring had no room.
        worker: usize,
    },
    /// The bus is shutting down or gone.
    #[error("the bus is shut down")]
    Closed(T),
}

impl<T> TryPublishError<T> {
    /// The message that was not published.
    pub fn into_inner(self) -> T {
        match self {
            TryPublishError::Full { payload, .. } | TryPublishError::Closed(payload) => payload,
        }
    }

    /// Whether a ring was full (trying again later may succeed).
    pub fn is_full(&self) -> bool {
        matches!(self, TryPublishError::Full { .. })
    }

    /// Whether the bus is shut down (trying again never succeeds).
    pub fn is_closed(&self) -> bool {
        matches!(self, TryPublishError::Closed(_))
    }
}

impl<T> core::fmt::Debug for TryPublishError<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TryPublishError::Full { worker, .. } => write!(f, "Full {{ worker: {worker}, .. }}"),
            TryPublishError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> From<PublishError<T>> for TryPublishError<T> {
    fn from(e: PublishError<T>) -> Self {
        TryPublishError::Closed(e.payload)
    }
}

/// [`crate::Publisher::publish_batch`] stopped because the bus shut down. The caller still holds
/// the payloads: the first [`published`](BatchPublishError::published) were accepted, the rest
/// were not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the bus is shut down ({published} of the batch were published before)")]
pub struct BatchPublishError {
    published: usize,
}

impl BatchPublishError {
    pub(crate) fn new(published: usize) -> Self {
        BatchPublishError { published }
    }

    /// Payloads, from the start of the slice, accepted before the refusal.
    pub fn published(&self) -> usize {
        self.published
    }
}

/// Why a `try_publish_batch` (all or nothing) was refused. Nothing was written; the caller
/// still holds the payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TryBatchError {
    /// A destination ring has no room for the whole batch.
    #[error("the ring to worker {worker} has no room for the batch; nothing was written")]
    Full {
        /// The first worker whose ring had no room.
        worker: usize,
    },
    /// More payloads than a ring holds: this batch never fits (`publish_batch` splits it).
    #[error("a batch of {len} does not fit rings of {capacity}")]
    TooLarge {
        /// Payloads in the batch.
        len: usize,
        /// Ring capacity.
        capacity: usize,
    },
    /// The bus is shutting down or gone.
    #[error("the bus is shut down")]
    Closed,
}

/// Why a subscription or a publisher could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The bus is shutting down or gone.
    #[error("the bus is shut down")]
    Closed,
    /// No such worker.
    #[error("worker {worker} does not exist (the bus has {workers})")]
    NoSuchWorker {
        /// The worker asked for.
        worker: usize,
        /// Workers the bus has.
        workers: usize,
    },
    /// No such subscription (already removed, or from another bus).
    #[error("no subscription {0}")]
    NoSuchSubscription(u64),
    /// [`crate::Bus::flush`] was called from a handler, on worker `worker`: it would wait for
    /// the handler that called it.
    #[error("called from a handler on worker {worker}, it would wait for itself")]
    WouldDeadlock {
        /// The worker the calling handler runs on.
        worker: usize,
    },
    /// [`crate::Bus::flush`] did not see the bus quiescent within `timeout`.
    #[error("the bus was not quiescent within {timeout:?}")]
    Timeout {
        /// How long it waited.
        timeout: std::time::Duration,
    },
    /// A new publisher's rings could not be made (out of memory).
    #[error("could not make the publisher's rings: {0}")]
    Ring(#[source] crate::ring::RingError),
}
