//! `BusShared`: the state every endpoint and worker of one bus reads (the shutdown gates, the
//! routes, the topics, the workers' wakers, the settings the hot path needs).

use crate::gate::Gate;
use crate::routing::Routes;
use crate::stall::Stalls;
use crate::telemetry::Tracing;
use crate::topic::Registry;
use crate::wait::{WaitStrategy, Wakers};

/// State every endpoint and worker of one bus shares.
pub(crate) struct BusShared {
    /// The shutdown gates, indexed by `endpoint::Side`: external publishers pass the first,
    /// which shutdown closes at once; workers' onward publishes the second, which it closes
    /// once the bus is quiescent or the drain deadline passed (see `gate.rs`, `drain.rs`).
    pub(crate) gates: [Gate; 2],
    pub(crate) routes: Routes,
    /// The topics, by name and index.
    pub(crate) topics: std::sync::Arc<Registry>,
    /// The workers' sleepers and threads (see `wait.rs`).
    pub(crate) wakers: Wakers,
    /// Which worker each worker's handler waits on, if any (see `stall.rs`).
    pub(crate) stalls: Stalls,
    pub(crate) wait: WaitStrategy,
    /// Spin-loop hints in a worker's catch-up pause (0: none; see `pause.rs`).
    pub(crate) catch_up_hints: u32,
    pub(crate) record_publish_time: bool,
    /// The switch, the sampler and the span pipeline.
    pub(crate) tracing: Tracing,
}
