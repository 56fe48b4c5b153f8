//! What can go wrong when a bridge starts, or when an export or an import is set up. Once
//! running, nothing is returned: events are counted in the stats and warned about through `log`.

/// An error setting up a bridge, an export or an import.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The bridge's runtime could not start.
    #[error("could not start the bridge's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The first connection to the server failed.
    #[error("could not connect to NATS at {url}: {source}")]
    Connect {
        /// The server URL.
        url: String,
        /// What the client said.
        #[source]
        source: async_nats::ConnectError,
    },
    /// A NATS or JetStream request failed (subscribe, stream or consumer set-up).
    #[error("{what}: {source}")]
    Nats {
        /// What the bridge was doing.
        what: String,
        /// What the client said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The bus refused a subscription or a publisher.
    #[error("bus: {0}")]
    Bus(#[from] tracebus::BusError),
    /// The bridge was shut down.
    #[error("the bridge is shut down")]
    Closed,
}

impl BridgeError {
    /// A NATS error while doing `what`.
    pub(crate) fn nats(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> BridgeError {
        BridgeError::Nats {
            what: what.into(),
            source: source.into(),
        }
    }
}
