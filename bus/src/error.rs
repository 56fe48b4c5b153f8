//! The bus's typed errors. Every error that refuses a message hands the message back.

/// Why a publish was refused. The payload is handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError<T> {
    /// The ring to this worker is full (only from `try_publish`; `publish` waits). Nothing was
    /// written to any worker.
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

impl<T> PublishError<T> {
    /// The message that was not published.
    pub fn into_payload(self) -> T {
        match self {
            PublishError::Full { payload, .. } | PublishError::Closed(payload) => payload,
        }
    }
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
}

/// Why a batch publish stopped. The caller still holds the payloads; `published` says how many
/// of them, from the start of the slice, were accepted before it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// A destination ring has no room for the whole batch (only from `try_publish_batch`,
    /// which writes all or nothing).
    #[error("the ring to worker {worker} has no room for the batch; nothing was written")]
    Full {
        /// The first worker whose ring had no room.
        worker: usize,
    },
    /// A batch that never fits: more payloads than a ring holds (`try_publish_batch` only;
    /// `publish_batch` splits it).
    #[error("a batch of {len} does not fit rings of {capacity}")]
    TooLarge {
        /// Payloads in the batch.
        len: usize,
        /// Ring capacity.
        capacity: usize,
    },
    /// The bus shut down; the first `published` payloads were accepted, the rest were not.
    #[error("the bus is shut down ({published} of the batch were published before)")]
    Closed {
        /// Payloads accepted before the refusal.
        published: usize,
    },
}
