//! How a bridge connects and delivers: the server URL, core NATS or JetStream, the tracer for
//! `send` spans, queue sizes; and the options of one export or one import.

use std::time::Duration;

use opentelemetry_sdk::trace::SdkTracer;
use tracebus_context::RootPolicy;

/// Prefix of the default subject of a topic: topic `orders` goes to `tracebus.orders`.
pub const DEFAULT_SUBJECT_PREFIX: &str = "tracebus.";

/// Default capacity of each export's hand-off queue (bus worker to bridge).
pub const DEFAULT_QUEUE_CAPACITY: usize = 8192;

/// The default subject of a topic: `tracebus.<topic name>`.
pub fn default_subject(topic: &str) -> String {
    format!("{DEFAULT_SUBJECT_PREFIX}{topic}")
}

/// How messages cross the server.
#[derive(Debug, Clone, Default)]
pub enum Mode {
    /// Core NATS: at most once. A message is handed to the client and written to the server
    /// when the connection allows; what is in flight when the connection drops is lost, and a
    /// subscriber misses whatever is published while it is disconnected. While the client
    /// reconnects, exports wait in its buffer and then in the bridge's queue, and once that is
    /// full they are dropped on the bus side and counted.
    #[default]
    Core,
    /// JetStream: at least once into the stream, and once into the bus. Every publish waits for
    /// the stream's acknowledgement and is sent again (same `Nats-Msg-Id`, so the stream keeps
    /// one copy) until it comes; imports read a durable consumer, acknowledge each message
    /// after the bus accepted it, and drop redeliveries of messages already delivered.
    JetStream(JetStreamConfig),
}

/// The stream and the consumers of JetStream mode.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    /// Name of the stream, created (file storage) if it does not exist.
    pub stream: String,
    /// Subjects the stream captures when the bridge creates it; every exported and imported
    /// subject must be inside them.
    pub subjects: Vec<String>,
    /// The stream's de-duplication window (`Nats-Msg-Id`), when the bridge creates it.
    pub duplicate_window: Duration,
    /// How long a publish waits for its acknowledgement before it is sent again.
    pub ack_timeout: Duration,
    /// Publishes awaiting acknowledgement at once, per export.
    pub max_in_flight: usize,
    /// How long the server waits for an import's acknowledgement before redelivering.
    pub ack_wait: Duration,
    /// How many recent stream sequences an import remembers to drop redeliveries.
    pub dedup_window: usize,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        JetStreamConfig {
            stream: "TRACEBUS".to_owned(),
            subjects: vec![format!("{DEFAULT_SUBJECT_PREFIX}>")],
            duplicate_window: Duration::from_secs(120),
            ack_timeout: Duration::from_secs(2),
            max_in_flight: 512,
            ack_wait: Duration::from_secs(5),
            dedup_window: 1 << 16,
        }
    }
}

/// Settings of a [`crate::Bridge`].
#[derive(Debug, Clone)]
#[must_use = "a bridge config does nothing until a bridge is started with it"]
pub struct BridgeConfig {
    pub(crate) url: String,
    pub(crate) mode: Mode,
    pub(crate) tracer: Option<SdkTracer>,
    pub(crate) queue_capacity: usize,
    pub(crate) io_threads: usize,
    pub(crate) reconnect_delay_max: Duration,
    pub(crate) name: String,
}

impl BridgeConfig {
    /// A core-NATS bridge to the server at `url` (`nats://127.0.0.1:4222`), no `send` spans.
    pub fn new(url: impl Into<String>) -> BridgeConfig {
        BridgeConfig {
            url: url.into(),
            mode: Mode::Core,
            tracer: None,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            io_threads: 1,
            reconnect_delay_max: Duration::from_secs(1),
            name: "tracebus-nats".to_owned(),
        }
    }

    /// Core NATS or JetStream.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// JetStream mode with these settings.
    pub fn jetstream(self, js: JetStreamConfig) -> Self {
        self.mode(Mode::JetStream(js))
    }

    /// Record a `send <subject>` PRODUCER span (`messaging.system = "nats"`) for every sampled
    /// exported message, child of the message's bus context; its id then goes in `traceparent`.
    /// The OpenTelemetry tracer for the bridge's own `send <subject>` spans (any SDK tracer;
    /// the bus exports its own spans itself).
    pub fn tracer(mut self, tracer: SdkTracer) -> Self {
        self.tracer = Some(tracer);
        self
    }

    /// Capacity of each export's hand-off queue; a full queue drops (and counts) on the bus
    /// side rather than make a worker wait. At least 1.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Threads of the bridge's own runtime (default 1). At least 1.
    pub fn io_threads(mut self, n: usize) -> Self {
        self.io_threads = n.max(1);
        self
    }

    /// Longest wait between reconnection attempts (default 1 s; attempts never stop).
    pub fn reconnect_delay_max(mut self, max: Duration) -> Self {
        self.reconnect_delay_max = max;
        self
    }

    /// Connection name shown by the server.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The server URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Options of one export (bus topic to subject).
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// The subject; `None`: `tracebus.<topic name>`.
    pub subject: Option<String>,
}

impl ExportOptions {
    /// Export to this subject.
    pub fn subject(subject: impl Into<String>) -> ExportOptions {
        ExportOptions {
            subject: Some(subject.into()),
        }
    }
}

/// Options of one import (subject to bus topic).
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The subject; wildcards (`*`, `>`) allowed.
    pub subject: String,
    /// What an imported message without a usable context may do. `ContinueOnly` (the default):
    /// it is published untraced, never starting a trace. `Start`: it is published like any
    /// publish from outside a handler, and the bus's sampler may start a trace.
    pub roots: RootPolicy,
    /// JetStream: the durable consumer's name; `None`: derived from the stream and the topic.
    pub durable: Option<String>,
}

impl ImportOptions {
    /// Import this subject, continue-only.
    pub fn subject(subject: impl Into<String>) -> ImportOptions {
        ImportOptions {
            subject: subject.into(),
            roots: RootPolicy::ContinueOnly,
            durable: None,
        }
    }

    /// With this root policy for messages without context.
    pub fn roots(mut self, roots: RootPolicy) -> Self {
        self.roots = roots;
        self
    }

    /// With this durable consumer name (JetStream).
    pub fn durable(mut self, name: impl Into<String>) -> Self {
        self.durable = Some(name.into());
        self
    }
}
