//! `Publisher`: a publishing handle for threads outside the bus, with its own ring to every
//! worker (so it is `Send` but not `Sync`: one per producing thread).

use bytemuck::Pod;
use tracebus_context::TraceContext;

use crate::endpoint::{Endpoint, Published};
use crate::error::{BatchPublishError, PublishError, TryBatchError, TryPublishError};
use crate::layout::{Lines, SlotSize};
use crate::telemetry::Parent;
use crate::topic::Topic;

/// A publishing handle (see [`crate::Bus::publisher`]). Every method panics if given a topic
/// made by another bus.
pub struct Publisher<S: SlotSize = Lines<1>> {
    pub(crate) endpoint: Endpoint<S>,
}

impl<S: SlotSize> std::fmt::Debug for Publisher<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("published", &self.endpoint.state().sent.messages())
            .finish_non_exhaustive()
    }
}

impl<S: SlotSize> Publisher<S> {
    /// Publishes `payload` to `topic`, waiting with backoff while a destination ring is full.
    /// Reports the fanout (0: nobody subscribed, nothing written). May start a trace (the
    /// sampler's root policy).
    ///
    /// # Errors
    /// Only when the bus is shut down; the payload is handed back.
    #[inline]
    pub fn publish<T: Pod>(
        &mut self,
        topic: &Topic<T>,
        payload: T,
    ) -> Result<Published, PublishError<T>> {
        self.endpoint.publish(topic, payload, || Parent::Root)
    }

    /// Publishes without waiting: every destination gets the message, or the caller gets it
    /// back with the reason.
    #[inline]
    pub fn try_publish<T: Pod>(
        &mut self,
        topic: &Topic<T>,
        payload: T,
    ) -> Result<Published, TryPublishError<T>> {
        self.endpoint.try_publish(topic, payload, Parent::Root)
    }

    /// [`Publisher::publish`] for a message that arrived with a trace context from elsewhere
    /// (another process, a bridge): with a sampled `parent` the publish continues that trace;
    /// with `None` (or an unsampled one) it is not traced, whatever the root policy.
    pub fn publish_with_parent<T: Pod>(
        &mut self,
        topic: &Topic<T>,
        payload: T,
        parent: Option<TraceContext>,
    ) -> Result<Published, PublishError<T>> {
        self.endpoint
            .publish(topic, payload, move || Parent::Remote(parent))
    }

    /// [`Publisher::try_publish`] with a parent context, as [`Publisher::publish_with_parent`].
    pub fn try_publish_with_parent<T: Pod>(
        &mut self,
        topic: &Topic<T>,
        payload: T,
        parent: Option<TraceContext>,
    ) -> Result<Published, TryPublishError<T>> {
        self.endpoint
            .try_publish(topic, payload, Parent::Remote(parent))
    }

    /// Publishes `payloads` in order, each destination ring receiving them as one batch (one
    /// commit), without waiting: all reach every destination, or none does.
    pub fn try_publish_batch<T: Pod>(
        &mut self,
        topic: &Topic<T>,
        payloads: &[T],
    ) -> Result<Published, TryBatchError> {
        self.endpoint
            .try_publish_batch(topic, payloads, Parent::Root)
    }

    /// Publishes `payloads` in order, in batches of at most a ring's capacity, waiting while a
    /// destination ring lacks room.
    ///
    /// # Errors
    /// Only when the bus shut down: the payloads before
    /// [`BatchPublishError::published`] were accepted and the rest were not.
    pub fn publish_batch<T: Pod>(
        &mut self,
        topic: &Topic<T>,
        payloads: &[T],
    ) -> Result<Published, BatchPublishError> {
        self.endpoint.publish_batch(topic, payloads, Parent::Root)
    }
}
