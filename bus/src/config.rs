//! `BusBuilder`: the settings of a bus, checked before any thread starts.

use core::marker::PhantomData;
use std::time::Duration;

use crate::layout::{Lines, SlotSize};
use crate::wait::WaitStrategy;

/// Default ring capacity (messages per ring; each endpoint has one ring to each worker).
pub const DEFAULT_CAPACITY: usize = if cfg!(tracebus_loom) { 2 } else { 1024 };

/// The most workers a bus can have. The mesh has a ring from every worker to every worker
/// (workers², plus one per worker for each publisher): 256 workers make 65,536 rings, which a
/// worker polls 256 at a time, and more workers than cores gain nothing.
pub const MAX_WORKERS: usize = 256;

/// Default [`BusBuilder::catch_up_pause`]: 0.4 us.
pub const DEFAULT_CATCH_UP_PAUSE: Duration = Duration::from_nanos(400);

/// Default [`BusBuilder::drain_timeout`]: how long shutdown lets handlers finish publishing
/// onward before it counts what is left as lost.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The mesh's memory above which building a bus warns (see [`BusBuilder::capacity`]).
const MESH_WARN_BYTES: usize = 1 << 30;

/// Why a bus could not be built. Nothing was started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A bus needs at least one worker.
    #[error("a bus needs at least one worker")]
    NoWorkers,
    /// More workers than [`MAX_WORKERS`].
    #[error("{workers} workers asked for; a bus has at most {max} (its mesh has workers² rings)")]
    TooManyWorkers {
        /// Workers asked for.
        workers: usize,
        /// The most there can be.
        max: usize,
    },
    /// The ring capacity is 0, too large for the message type, or more than the machine could
    /// allocate for the mesh (the bus allocates nothing that can abort the process).
    #[error("invalid ring capacity {capacity}: {reason}")]
    Capacity {
        /// The capacity asked for.
        capacity: usize,
        /// Why the ring refused it.
        reason: crate::ring::RingError,
    },
    /// A core in the pinning list does not exist on this machine.
    #[error("core {core} does not exist (this machine has cores {available:?})")]
    MissingCore {
        /// The core asked for.
        core: usize,
        /// The machine's online cores.
        available: Vec<usize>,
    },
    /// The pinning list names a core twice: two workers pinned to one core would take turns
    /// on it (each spinning through the other's time slice).
    #[error("core {core} is listed twice; each worker needs a core of its own")]
    DuplicateCore {
        /// The core listed twice.
        core: usize,
    },
    /// The pinning list names fewer cores than there are workers.
    #[error("{workers} workers but only {cores} cores listed to pin them to")]
    TooFewCores {
        /// Workers asked for.
        workers: usize,
        /// Cores listed.
        cores: usize,
    },
    /// The operating system refused to start a worker thread.
    #[error("could not start worker thread: {0}")]
    Spawn(String),
    /// The span pipeline for [`BusBuilder::tracing`] could not start.
    #[error("tracing: {0}")]
    Tracing(#[source] crate::spans::SpanExportError),
}

/// Where workers run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Pinning {
    /// Worker `i` on the `i`-th core of the building thread's affinity mask, or, when that
    /// mask has fewer cores than there are workers (say the caller pinned itself), of the
    /// machine's online cores; with fewer cores than workers, a warning (see
    /// [`crate::Bus::warnings`]) and unpinned threads.
    #[default]
    Auto,
    /// Worker `i` on core `cores[i]`; every core must be online (the building thread's own
    /// affinity does not matter: a thread pinned to core 0 may build a bus pinned to core 1).
    Cores(Vec<usize>),
    /// No pinning.
    Off,
}

/// Settings of a [`crate::Bus`]; start with [`crate::Bus::builder`], finish with
/// [`BusBuilder::build`]. `S` is the slot size ([`BusBuilder::slot_size`]).
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct BusBuilder<S: SlotSize = Lines<1>> {
    pub(crate) workers: usize,
    pub(crate) pinning: Pinning,
    pub(crate) capacity: usize,
    pub(crate) wait: WaitStrategy,
    pub(crate) catch_up_pause: Duration,
    pub(crate) resident_rings: bool,
    pub(crate) record_publish_time: bool,
    pub(crate) tracing: Option<crate::spans::SpanExport>,
    pub(crate) sampler: tracebus_context::FanoutSampler,
    pub(crate) drain_timeout: Duration,
    pub(crate) slot_size: PhantomData<S>,
}

impl Default for BusBuilder {
    fn default() -> Self {
        BusBuilder {
            workers: 1,
            pinning: Pinning::Auto,
            capacity: DEFAULT_CAPACITY,
            wait: WaitStrategy::default(),
            catch_up_pause: DEFAULT_CATCH_UP_PAUSE,
            resident_rings: false,
            record_publish_time: false,
            tracing: None,
            sampler: tracebus_context::FanoutSampler::default(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            slot_size: PhantomData,
        }
    }
}

impl<S: SlotSize> BusBuilder<S> {
    /// The slot size, and so the largest message the bus carries (default [`Lines<1>`]: one
    /// cache line per message, 16 bytes of payload; see [`crate::layout`]).
    ///
    /// ```
    /// use tracebus::{Bus, Lines};
    /// let bus: Bus<Lines<2>> = Bus::builder().slot_size::<Lines<2>>().build().unwrap();
    /// let quotes = bus.topic::<[u64; 10]>("quotes").unwrap(); // 80 bytes fit two lines
    /// # let _ = quotes;
    /// ```
    pub fn slot_size<S2: SlotSize>(self) -> BusBuilder<S2> {
        BusBuilder {
            workers: self.workers,
            pinning: self.pinning,
            capacity: self.capacity,
            wait: self.wait,
            catch_up_pause: self.catch_up_pause,
            resident_rings: self.resident_rings,
            record_publish_time: self.record_publish_time,
            tracing: self.tracing,
            sampler: self.sampler,
            drain_timeout: self.drain_timeout,
            slot_size: PhantomData,
        }
    }

    /// Number of worker threads (default 1, at most [`MAX_WORKERS`]).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Where to run the workers (default [`Pinning::Auto`]).
    pub fn pinning(mut self, pinning: Pinning) -> Self {
        self.pinning = pinning;
        self
    }

    /// Messages per ring (rounded up to a power of two; default [`DEFAULT_CAPACITY`]).
    ///
    /// Memory: every ring holds `capacity` slots of [`crate::SlotSize::LINES`] cache lines
    /// (64 bytes for the default one-line slot), and a bus has `workers²` rings plus `workers` per
    /// [`crate::Publisher`]. A ring's pages are taken as it first cycles through them (all at
    /// once with [`BusBuilder::resident_rings`]), so a busy mesh ends up using
    /// `rings × capacity × slot bytes`: 2 workers at the default 1,024
    /// take 256 KiB, 16 workers 16 MiB. Past a few thousand slots a ring only adds latency
    /// (messages wait longer) and cache misses (a ring bigger than the cache misses on every
    /// slot); 2^16 is about the largest that makes sense. Building warns when the mesh could
    /// take more than 1 GiB, and fails with [`BuildError::Capacity`] when the memory cannot be
    /// had.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// How idle workers wait (default [`WaitStrategy::SpinThenPark`]).
    pub fn wait_strategy(mut self, wait: WaitStrategy) -> Self {
        self.wait = wait;
        self
    }

    /// How long a worker that keeps up with a stream waits before its next pass over its rings
    /// (default [`DEFAULT_CATCH_UP_PAUSE`], 0.4 us; [`Duration::ZERO`]: never). After a pass
    /// that found a few messages right after one that found some, the worker is on its
    /// publishers' heels, and its polls pull the lines they are writing away from them; a
    /// pause lets them write a batch undisturbed. That raises the throughput of publishers
    /// writing back to back (fanout 1 on the project's machine: about 20 M msgs/s without a
    /// pause, 25-28 with the default), most where a cache line is slow to cross between the
    /// cores (busbench `latency_at_rate` on a VM whose two cores were far apart: 4.3 M msgs/s
    /// without the pause, 6 M with it). But a message that arrives during a pause waits for its
    /// end, and in a steady stream of millions of messages per second most do (the same
    /// section with the cores close: p50 about 0.1 us without the pause, as the disruptor's,
    /// and 0.4-0.6 us with it, at 5 and 10 M msgs/s). Steadily paced, latency-critical streams
    /// on cores that share a cache want `Duration::ZERO`.
    pub fn catch_up_pause(mut self, pause: Duration) -> Self {
        self.catch_up_pause = pause;
        self
    }

    /// Whether every ring's memory is made resident when the ring is made (the mesh's when the
    /// bus is built, a publisher's rings when [`crate::Bus::publisher`] makes them) rather than
    /// page by page as the ring is first used (off by default). By default the first message
    /// into each 4 KiB page of a ring waits for a page fault: one message in 64 on a ring's
    /// first lap with one-line slots, 13-57 us each on the project's VM. With this on, no
    /// publish waits for one, the first lap included, and the mesh takes all its memory at
    /// once (see [`BusBuilder::capacity`]). For latency-critical services whose first seconds
    /// count; see [`crate::ring::spsc_resident`].
    pub fn resident_rings(mut self, on: bool) -> Self {
        self.resident_rings = on;
        self
    }

    /// Whether every message records its publish time, so handlers see how long it waited in
    /// the ring. Off by default: a clock read per message costs more than the ring itself.
    pub fn record_publish_time(mut self, on: bool) -> Self {
        self.record_publish_time = on;
        self
    }

    /// Traces sampled messages, exporting their spans where `export` says (an OpenTelemetry
    /// `SpanExporter` or `SpanProcessor`, batch size, interval, resource, scope). Default: no
    /// tracing (it can be started later with [`crate::Bus::trace_to`]). Spans are recorded on
    /// the hot path as fixed-size records and turned into OpenTelemetry spans on a background
    /// thread (see [`crate::telemetry`]).
    pub fn tracing(mut self, export: crate::spans::SpanExport) -> Self {
        self.tracing = Some(export);
        self
    }

    /// The sampler that decides at publish time (default: `k = 10`, roots may start traces).
    /// It is a shared handle: keep a clone, or use [`crate::Bus::tracing`], to change it live.
    pub fn sampler(mut self, sampler: tracebus_context::FanoutSampler) -> Self {
        self.sampler = sampler;
        self
    }

    /// How long [`crate::Bus::shutdown`] (and dropping the bus) waits for the bus to become
    /// quiescent (default [`DEFAULT_DRAIN_TIMEOUT`], 30 s): after refusing new external
    /// publishes, it lets handlers run and publish onward until every ring is empty and no
    /// handler runs. A pipeline that never quiesces (a cycle, a stage slower than the drain)
    /// is stopped at this deadline; what is still queued then is counted in
    /// [`crate::Report::lost`]. See [`crate::Bus::shutdown_timeout`] for the whole bound.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Checks the settings; returns the cores to pin worker `i` to (or `None` per worker) and
    /// any warnings.
    pub(crate) fn validate<T: Send>(
        &self,
    ) -> Result<(Vec<Option<usize>>, Vec<String>), BuildError> {
        if self.workers == 0 {
            return Err(BuildError::NoWorkers);
        }
        if self.workers > MAX_WORKERS {
            return Err(BuildError::TooManyWorkers {
                workers: self.workers,
                max: MAX_WORKERS,
            });
        }
        let capacity = crate::ring::checked_capacity::<T>(self.capacity).map_err(|reason| {
            BuildError::Capacity {
                capacity: self.capacity,
                reason,
            }
        })?;
        let mut warnings = Vec::new();
        let rings = self.workers * self.workers;
        let mesh = rings
            .saturating_mul(capacity)
            .saturating_mul(crate::ring::cell_size::<T>());
        if mesh > MESH_WARN_BYTES {
            warnings.push(format!(
                "tracebus: {rings} rings of {capacity} slots can take {} MiB as they cycle \
                 (plus {} MiB per publisher); see BusBuilder::capacity",
                mesh >> 20,
                (mesh / self.workers) >> 20
            ));
        }
        // The caller's own mask first (in a container limited to some cores it is that
        // limit), else every online core (the caller may have pinned itself to one core).
        let mut available = crate::cores::calling_thread();
        if available.len() < self.workers || matches!(self.pinning, Pinning::Cores(_)) {
            available = crate::cores::usable();
        }
        let cores = match &self.pinning {
            Pinning::Off => vec![None; self.workers],
            Pinning::Auto if available.len() >= self.workers => {
                available[..self.workers].iter().map(|&c| Some(c)).collect()
            }
            Pinning::Auto => {
                warnings.push(format!(
                    "tracebus: {} workers but {} cores available; running unpinned",
                    self.workers,
                    available.len()
                ));
                vec![None; self.workers]
            }
            Pinning::Cores(list) => {
                if list.len() < self.workers {
                    return Err(BuildError::TooFewCores {
                        workers: self.workers,
                        cores: list.len(),
                    });
                }
                if let Some(&core) = list.iter().find(|c| !available.contains(c)) {
                    return Err(BuildError::MissingCore { core, available });
                }
                let used = &list[..self.workers];
                if let Some(&core) = used
                    .iter()
                    .enumerate()
                    .find_map(|(i, c)| used[..i].contains(c).then_some(c))
                {
                    return Err(BuildError::DuplicateCore { core });
                }
                list[..self.workers].iter().map(|&c| Some(c)).collect()
            }
        };
        Ok((cores, warnings))
    }
}
