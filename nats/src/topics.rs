//! The bus side of the bridge, for typed topics: [`Bridge::export`] subscribes a handler that
//! hands each message to the export's queue, and [`Bridge::import`] publishes into a topic
//! through a bus [`Publisher`] of its own.
//!
//! The payload crosses as the bytes of the `Pod` type as it lies in memory
//! (`bytemuck::bytes_of`), read back with `bytemuck::try_pod_read_unaligned`: both ends must
//! agree on the type and be little-endian (every machine tracebus targets is).

use bytemuck::Pod;
use tracebus::{Bus, Publisher, SlotSize, SubscriptionId, Topic, TryPublishError};
use tracebus_context::{RootPolicy, TraceContext};

use crate::config::{default_subject, ExportOptions, ImportOptions};
use crate::error::BridgeError;
use crate::sink::{ImportSink, Offer};
use crate::Bridge;

/// A running export: its subject and the bus subscription that feeds it.
#[derive(Debug, Clone)]
pub struct Export {
    subject: String,
    subscription: SubscriptionId,
}

impl Export {
    /// The subject it publishes to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The bus subscription of its handler (unsubscribe it to stop exporting).
    pub fn subscription(&self) -> SubscriptionId {
        self.subscription
    }
}

/// An import's way into the bus: its own publisher and the topic.
struct TopicSink<S: SlotSize, T> {
    publisher: Publisher<S>,
    topic: Topic<T>,
}

impl<S: SlotSize, T: Pod> TopicSink<S, T> {
    fn publish(
        &mut self,
        value: T,
        parent: Option<TraceContext>,
        roots: RootPolicy,
    ) -> Result<tracebus::Published, TryPublishError<T>> {
        match (parent, roots) {
            (Some(_), _) | (None, RootPolicy::ContinueOnly) => self
                .publisher
                .try_publish_with_parent(&self.topic, value, parent),
            (None, RootPolicy::Start) => self.publisher.try_publish(&self.topic, value),
        }
    }
}

impl<S, T> ImportSink for TopicSink<S, T>
where
    S: SlotSize + 'static,
    T: Pod + Send + 'static,
    Publisher<S>: Send,
{
    fn payload_size(&self) -> usize {
        size_of::<T>()
    }

    fn offer(&mut self, payload: &[u8], parent: Option<TraceContext>, roots: RootPolicy) -> Offer {
        let Ok(value) = bytemuck::try_pod_read_unaligned::<T>(payload) else {
            return Offer::BadPayload;
        };
        match self.publish(value, parent, roots) {
            Ok(p) => Offer::Published { fanout: p.fanout },
            Err(TryPublishError::Full { .. }) => Offer::Full,
            // Closed, and whatever a later bus adds: never published.
            Err(_) => Offer::Closed,
        }
    }
}

impl Bridge {
    /// Exports `topic` of `bus` to `options.subject` (default `tracebus.<topic name>`): a bus
    /// subscriber hands every message to the bridge without waiting (a full queue drops and
    /// counts, see [`crate::StatsSnapshot::export_dropped_full`]). Sampled messages carry
    /// `traceparent`: the context of the export handler's `process` span (or, with a bridge
    /// tracer, of the `send` span under it).
    pub fn export<S, T>(
        &self,
        bus: &Bus<S>,
        topic: &Topic<T>,
        options: ExportOptions,
    ) -> Result<Export, BridgeError>
    where
        S: SlotSize,
        T: Pod,
    {
        let name = bus.topic_name(topic);
        let subject = options.subject.unwrap_or_else(|| default_subject(&name));
        let handoff = self.export_bytes(subject.clone())?;
        let subscription = bus.subscribe(topic, move |msg, out| {
            let cx = out.trace_context().or_else(|| msg.trace_context());
            handoff.offer(bytemuck::bytes_of(msg.payload()), cx);
        })?;
        Ok(Export {
            subject,
            subscription,
        })
    }

    /// Imports `options.subject` into `topic` of `bus` (see the crate docs for what each
    /// incoming message goes through); returns once the server has the subscription or the
    /// durable consumer (default name `<stream>-<topic name>`).
    pub fn import<S, T>(
        &self,
        bus: &Bus<S>,
        topic: &Topic<T>,
        options: ImportOptions,
    ) -> Result<(), BridgeError>
    where
        S: SlotSize + 'static,
        T: Pod + Send + 'static,
        Publisher<S>: Send,
    {
        let name = bus.topic_name(topic);
        let sink = TopicSink {
            publisher: bus.publisher()?,
            topic: *topic,
        };
        self.import_into(&options, &name, Box::new(sink))
    }
}
