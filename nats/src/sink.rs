//! The bus side of an import, as the import task sees it: a place that takes one payload of a
//! fixed size with an optional parent context, and says whether it took it. The bridge's
//! `import` implements it for a bus publisher and a typed topic; [`crate::Bridge::import_into`]
//! takes any other (a test's, a benchmark's, another bus).

use tracebus_context::{RootPolicy, TraceContext};

/// What the bus did with one offered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Published, to `fanout` subscribers (0: nobody listens, nothing written).
    Published {
        /// Number of subscribers it went to.
        fanout: usize,
    },
    /// No room now: offer it again later.
    Full,
    /// The bus is shut down: it never will be published.
    Closed,
    /// The payload is not a value of the topic's type: never published.
    BadPayload,
}

/// Where an import delivers.
pub trait ImportSink: Send + 'static {
    /// The exact payload size the topic's type has.
    fn payload_size(&self) -> usize;

    /// Publishes `payload` (exactly [`ImportSink::payload_size`] bytes) without waiting: with
    /// `parent` as the parent of its trace, or, with no parent, untraced (`ContinueOnly`) or
    /// as a root the bus's sampler may trace (`Start`).
    fn offer(&mut self, payload: &[u8], parent: Option<TraceContext>, roots: RootPolicy) -> Offer;
}
