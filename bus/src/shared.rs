//! `BusShared`: the state every endpoint and worker of one bus reads (the shutdown gate, the
//! routes, the topics, the sleepers, the settings the hot path needs).

use std::sync::OnceLock;

use crossbeam_utils::CachePadded;

use crate::gate::Gate;
use crate::routing::Routes;
use crate::sync::thread;
use crate::telemetry::Tracing;
use crate::topic::Registry;
use crate::wait::{Sleeper, WaitStrategy};

/// State every endpoint and worker of one bus shares.
pub(crate) struct BusShared {
    /// Closed once by shutdown; publishes pass through it (see `gate.rs`).
    pub(crate) gate: Gate,
    pub(crate) routes: Routes,
    /// The topics, by name and index.
    pub(crate) topics: std::sync::Arc<Registry>,
    pub(crate) sleepers: Vec<CachePadded<Sleeper>>,
    /// The worker threads, for unparking; set right after they are spawned.
    pub(crate) threads: OnceLock<Vec<thread::Thread>>,
    pub(crate) wait: WaitStrategy,
    pub(crate) record_publish_time: bool,
    /// The switch, the sampler and the span pipeline.
    pub(crate) tracing: Tracing,
}

impl BusShared {
    /// Unparks worker `w` (a no-op before the threads exist).
    pub(crate) fn wake(&self, w: usize) {
        if let Some(threads) = self.threads.get() {
            threads[w].unpark();
        }
    }
}
