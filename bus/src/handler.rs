//! What a handler sees: the message in its slot ([`Message`]) and an [`Outbox`] to publish
//! onward through; and how a typed handler becomes the worker's untyped [`Handler`].

use std::sync::Arc;
use std::time::Duration;

use bytemuck::Pod;
use tracebus_context::{is_sampled, TraceContext, TraceHeader};
use zerocopy::IntoBytes;

use crate::endpoint::{Endpoint, Published};
use crate::error::{TryBatchError, TryPublishError};
use crate::layout::{Lines, SlotSize};
use crate::slot::Slot;
use crate::telemetry::Parent;
use crate::topic::Topic;

/// A subscriber's handler, with its message type erased (it reads its `T` from the slot) and
/// its topic's name inside (so the worker's call passes only the slot and the outbox).
pub(crate) type Handler<S> =
    Box<dyn FnMut(&Slot<<S as SlotSize>::Area>, &mut Outbox<'_, S>) + Send>;

/// Erases the message type of `handler`, a subscriber of the topic `name` of `T`s: the worker
/// hands over the slot, and the returned closure reads its `T` in place (the topic's type,
/// which the registry keeps unique per name). The handler's state goes on cache lines of its
/// own: a worker writes it on every message, and a neighbour on its line (another worker's
/// handler, a publisher's ring state) would bounce it between cores.
pub(crate) fn erase<S, T, F>(name: Arc<str>, handler: F) -> Handler<S>
where
    S: SlotSize,
    T: Pod,
    F: FnMut(&Message<'_, T>, &mut Outbox<'_, S>) + Send + 'static,
{
    let mut handler = crossbeam_utils::CachePadded::new(handler);
    Box::new(move |slot: &Slot<S::Area>, out: &mut Outbox<'_, S>| {
        let msg = Message {
            payload: slot.payload::<T>(),
            header: slot.header(),
            topic: &name,
            published: slot.publish_tick(),
        };
        (*handler)(&msg, out)
    })
}

/// A message as a handler receives it: by reference, in its ring slot (no copy).
#[derive(Debug)]
pub struct Message<'a, T> {
    pub(crate) payload: &'a T,
    pub(crate) header: &'a TraceHeader,
    pub(crate) topic: &'a str,
    /// Publish time in ticks of the bus's clock, when recorded.
    pub(crate) published: Option<u64>,
}

impl<T: Pod> Message<'_, T> {
    /// The payload, in place in the slot.
    #[inline]
    pub fn payload(&self) -> &T {
        self.payload
    }

    /// The name of the topic it was published to.
    #[inline]
    pub fn topic(&self) -> &str {
        self.topic
    }

    /// How long it has waited since it was published, when the bus records publish times
    /// ([`crate::BusBuilder::record_publish_time`]) and for every traced message. Reads the
    /// clock (a TSC read) when called.
    #[inline]
    pub fn waited(&self) -> Option<Duration> {
        self.published
            .map(|t| Duration::from_nanos(crate::spans::nanos_since(t)))
    }

    /// The trace context it carries (the single normalization point), or `None`.
    #[inline]
    pub fn trace_context(&self) -> Option<TraceContext> {
        tracebus_context::header_context(self.header.as_bytes())
    }

    /// Whether it is traced, from the header's sampled flag alone (the fast filter).
    #[inline]
    pub fn is_sampled(&self) -> bool {
        is_sampled(self.header.as_bytes())
    }

    /// The slot's trace header, in place.
    #[inline]
    pub fn header(&self) -> &TraceHeader {
        self.header
    }
}

/// A handler's way to publish onward, from its worker's own endpoint.
///
/// [`Outbox::try_publish`] never waits: a full ring hands the message back
/// ([`TryPublishError::Full`]) and the handler decides what to do with it.
/// [`Outbox::publish_timeout`] waits for room, for a bounded time. Every refused onward
/// publish is counted (per worker in [`crate::WorkerReport`], in total in [`crate::Report`]
/// and [`crate::Stats`]), so a message a handler drops after a refusal is never lost
/// silently.
///
/// During shutdown, handlers keep publishing onward until the bus is quiescent (every ring
/// empty, no handler running); only after the drain deadline are their publishes refused with
/// [`TryPublishError::Closed`].
///
/// When the message being handled is traced, what the handler publishes continues its trace
/// (as a child of the handler's `process` span) if the sampler keeps it at that fanout; a
/// handler never starts a new trace. On a bus that records no spans, a sampled message's
/// context is carried on unchanged.
pub struct Outbox<'a, S: SlotSize = Lines<1>> {
    pub(crate) endpoint: &'a mut Endpoint<S>,
    pub(crate) worker: usize,
    /// The handler's current trace context (its `process` span), if the message was sampled.
    pub(crate) current: Option<TraceContext>,
}

impl<S: SlotSize> std::fmt::Debug for Outbox<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("worker", &self.worker)
            .field("trace_context", &self.current)
            .finish_non_exhaustive()
    }
}

impl<S: SlotSize> Outbox<'_, S> {
    /// Publishes `payload` to `topic` without waiting.
    ///
    /// # Panics
    /// If `topic` was made by another bus.
    #[inline]
    pub fn try_publish<T: Pod>(
        &mut self,
        topic: &Topic<T>,
        payload: T,
    ) -> Result<Published, TryPublishError<T>> {
        let sent = self
            .endpoint
            .try_publish(topic, payload, Parent::Handler(self.current));
        if let Err(e) = &sent {
            self.endpoint.state().count_refusal(e.is_full(), 1);
        }
        sent
    }

    /// Publishes `payload` to `topic`, waiting with backoff while a destination ring is full,
    /// for at most `timeout`; then hands it back ([`TryPublishError::Full`], counted like any
    /// refusal).
    ///
    /// This is the way to publish onward under backpressure, from a fast stage to a slower
    /// one. Waiting holds up this worker: it does not empty its own rings meanwhile, so the
    /// messages queued for it wait too. Lay stages out so that waits go one way across
    /// workers (say, each stage on a worker after its upstream's, or each on its own
    /// worker): if the worker a wait goes to is itself waiting, directly or through others,
    /// on this worker, neither could ever make room for the other, and the publish is refused
    /// at once instead (`Full`, counted). A full ring to this worker itself is refused at
    /// once too: only this worker empties it. Where stages publish to each other both ways,
    /// size the rings ([`crate::BusBuilder::capacity`]) for the largest burst.
    ///
    /// # Panics
    /// If `topic` was made by another bus.
    pub fn publish_timeout<T: Pod>(
        &mut self,
        topic: &Topic<T>,
        payload: T,
        timeout: Duration,
    ) -> Result<Published, TryPublishError<T>> {
        let parent = Parent::Handler(self.current);
        let sent = self
            .endpoint
            .publish_timeout(topic, payload, parent, timeout, self.worker);
        if let Err(e) = &sent {
            self.endpoint.state().count_refusal(e.is_full(), 1);
        }
        sent
    }

    /// Publishes `payloads` in order without waiting, all or nothing (one ring commit per
    /// destination).
    ///
    /// # Panics
    /// If `topic` was made by another bus.
    pub fn try_publish_batch<T: Pod>(
        &mut self,
        topic: &Topic<T>,
        payloads: &[T],
    ) -> Result<Published, TryBatchError> {
        let sent = self
            .endpoint
            .try_publish_batch(topic, payloads, Parent::Handler(self.current));
        if let Err(e) = &sent {
            let full = !matches!(e, TryBatchError::Closed);
            self.endpoint.state().count_refusal(full, payloads.len());
        }
        sent
    }

    /// The handler's current trace context (its `process` span), if the message is traced.
    pub fn trace_context(&self) -> Option<TraceContext> {
        self.current
    }

    /// An OpenTelemetry `Context` whose parent is this handler's `process` span, for spans the
    /// handler starts with any OpenTelemetry tracer; an empty `Context` when the message is not
    /// traced. Builds it when called (it allocates): call it only when a span is wanted.
    pub fn otel_context(&self) -> opentelemetry::Context {
        use opentelemetry::trace::TraceContextExt;
        match self.current {
            Some(c) => {
                opentelemetry::Context::new().with_remote_span_context(c.to_span_context(false))
            }
            None => opentelemetry::Context::new(),
        }
    }

    /// The worker this handler runs on.
    pub fn worker(&self) -> usize {
        self.worker
    }
}
