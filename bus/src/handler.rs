//! What a handler sees: the message in its slot ([`Delivery`]) and a [`Context`] to publish
//! onward through.

use std::time::Duration;

use bytemuck::Pod;
use tracebus_context::TraceContext;

use crate::endpoint::{Endpoint, Published};
use crate::error::PublishError;
use crate::routing::Topic;
use crate::slot::Slot;

/// A message as a handler receives it: by reference, in its ring slot (no copy).
#[derive(Debug)]
pub struct Delivery<'a, T> {
    pub(crate) slot: &'a Slot<T>,
    pub(crate) waited: Option<Duration>,
}

impl<T: Pod> Delivery<'_, T> {
    /// The payload, in place.
    #[inline]
    pub fn payload(&self) -> &T {
        self.slot.payload()
    }

    /// The topic it was published to.
    #[inline]
    pub fn topic(&self) -> Topic {
        self.slot.topic()
    }

    /// How long it waited between publish and this handler, when the bus records publish times.
    #[inline]
    pub fn waited(&self) -> Option<Duration> {
        self.waited
    }

    /// The trace context it carries (the single normalization point), or `None`.
    #[inline]
    pub fn trace_context(&self) -> Option<TraceContext> {
        self.slot.context()
    }

    /// The whole slot.
    #[inline]
    pub fn slot(&self) -> &Slot<T> {
        self.slot
    }
}

/// A handler's way to publish onward, from its worker's own endpoint.
///
/// Publishing from a handler never waits: a worker that blocked on a full ring could wait for a
/// worker that waits for it. A full ring hands the message back ([`PublishError::Full`]); the
/// handler decides what to do with it.
pub struct Context<'a, T: Pod + Send> {
    pub(crate) endpoint: &'a mut Endpoint<T>,
    pub(crate) worker: usize,
    /// The handler's current trace context (its `process` span), if the message was sampled.
    pub(crate) current: Option<TraceContext>,
}

impl<T: Pod + Send> Context<'_, T> {
    /// Publishes `payload` to `topic` without waiting. When the message being handled is
    /// traced, this publish continues its trace (as a child of the handler's `process` span)
    /// if the sampler keeps it at this fanout; a handler never starts a new trace.
    pub fn try_publish(&mut self, topic: Topic, payload: T) -> Result<Published, PublishError<T>> {
        self.endpoint
            .try_publish_from(topic, payload, Some(self.current))
    }

    /// The handler's current trace context (its `process` span), if the message is traced.
    pub fn trace_context(&self) -> Option<TraceContext> {
        self.current
    }

    /// The worker this handler runs on.
    pub fn worker(&self) -> usize {
        self.worker
    }
}
