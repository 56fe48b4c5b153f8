//! Waiting, both sides of it, in one place: how a worker waits between passes ([`Idle`]: the
//! catch-up pause while it streams, the [`WaitStrategy`]'s spin / yield / park when it finds
//! nothing), how a publisher wakes a parked worker without a lost wake-up
//! ([`Wakers::after_commit`]), and how a publisher waits for room in a full ring ([`snooze`]).
//! The worker, the endpoints and the loom model of the handshake all call these.
//!
//! [`WaitStrategy`] picks between busy-spinning (lowest latency, burns a core), spinning then
//! yielding, and spinning then parking the thread (no CPU while idle). Parking uses a Dekker-style
//! handshake on [`Sleeper`]:
//!
//! - the worker announces `sleeping = true`, issues a heavy fence, checks its rings once more,
//!   and parks only if they are still empty;
//! - a publisher commits its message, issues a light fence, and unparks the worker if it sees
//!   `sleeping == true`.
//!
//! The two fences forbid the outcome where the worker misses the message *and* the publisher
//! misses the flag: at least one of them sees the other's write. `thread::park` keeps a token,
//! so an unpark that lands before the park is not lost either. The fences are asymmetric (see
//! `barrier.rs`): the publisher's, paid on every publish, is a compiler fence where the OS
//! allows; the worker's, paid once per sleep, is a `membarrier` call.

use std::sync::OnceLock;

use crossbeam_utils::CachePadded;

use crate::barrier::{heavy, light};
use crate::sync::{thread, AtomicBool, Ordering};

/// How an idle worker waits for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Spin on the rings forever: lowest latency, one busy core per worker. Use only with as
    /// many cores as workers plus publishers.
    BusySpin,
    /// Spin for a while, then `thread::yield_now` between polls.
    SpinThenYield,
    /// Spin, yield, then park until a publisher wakes the worker (the default: no CPU while
    /// idle, a wake-up costs a futex call).
    #[default]
    SpinThenPark,
}

/// Polls before an idle worker starts yielding (1 under loom and Miri, so that their short
/// runs reach the park handshake).
pub(crate) const SPIN_POLLS: u32 = if cfg!(any(tracebus_loom, miri)) {
    1
} else {
    256
};
/// Polls (spinning and yielding) before an idle worker parks.
pub(crate) const YIELD_POLLS: u32 = if cfg!(any(tracebus_loom, miri)) {
    2
} else {
    512
};

/// The "I am about to sleep" flag of one worker.
#[derive(Debug, Default)]
pub struct Sleeper {
    sleeping: AtomicBool,
}

impl Sleeper {
    /// A flag for an awake worker.
    pub fn new() -> Sleeper {
        Sleeper {
            sleeping: AtomicBool::new(false),
        }
    }

    /// Worker side, step 1: announce the intent to sleep. The caller must then re-check its
    /// rings and either [`Sleeper::cancel`] or park.
    #[inline]
    pub fn prepare(&self) {
        self.sleeping.store(true, Ordering::Relaxed);
        // Heavy fence: orders the flag store before the caller's re-check of the rings,
        // against the publisher's light fence between its commit and its flag load.
        heavy(); // worker: flag before the re-check
    }

    /// Worker side: announce sleep, park unless `pending()` finds work after the announcement,
    /// then mark awake. A publisher that commits and then calls [`Wakers::after_commit`]
    /// cannot be missed: either `pending()` sees its message or it sees
    /// the flag and unparks this thread (a park after that unpark returns at once).
    #[inline]
    pub fn sleep_unless(&self, pending: impl FnOnce() -> bool) {
        self.prepare();
        if !pending() {
            thread::park();
        }
        self.cancel();
    }

    /// Worker side: awake again (after a park, or instead of one).
    #[inline]
    pub fn cancel(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Publisher side, after committing and the fence of [`Wakers::after_commit`]: whether the
    /// worker may be asleep and needs an unpark. (The fence is the caller's, so one fence
    /// serves all destinations.)
    #[inline]
    pub fn is_sleeping(&self) -> bool {
        self.sleeping.load(Ordering::Relaxed)
    }
}

/// A pass that finds fewer messages than this (half a worker's per-ring read), right after a
/// pass that found some, means the worker is chasing its producers: it waits a catch-up pause
/// before its next pass (see `pause.rs`).
const SMALL_PASS: usize = crate::worker::BATCH / 2;

/// A worker's waiting between passes.
#[derive(Debug)]
pub struct Idle {
    strategy: WaitStrategy,
    /// Empty polls in a row.
    polls: u32,
    /// Whether the last pass found messages.
    streaming: bool,
    /// Spin-loop hints in a catch-up pause (see `pause.rs`), measured once per process.
    catch_up: u32,
}

impl Idle {
    /// The waiting state of a worker that waits as `strategy` says, with catch-up pauses of
    /// `catch_up` spin-loop hints (0: none; see `pause.rs`).
    pub fn new(strategy: WaitStrategy, catch_up: u32) -> Idle {
        Idle {
            strategy,
            polls: 0,
            streaming: false,
            catch_up,
        }
    }

    /// After a pass that found `found` (more than 0) messages. On the producers' heels (a
    /// small pass right after a non-empty one) it waits a catch-up pause (if the bus has one:
    /// [`crate::BusBuilder::catch_up_pause`]), so that they write a
    /// batch's worth undisturbed. Only a pass right after a non-empty one waits, so a worker
    /// that was idle (a message after a quiet spell, a round trip) takes its message at once;
    /// in a stream, a message that arrives during a pause waits at most the pause.
    #[inline]
    pub fn found(&mut self, found: usize) {
        if self.streaming && found < SMALL_PASS {
            crate::pause::pause(self.catch_up);
        }
        self.streaming = true;
        self.polls = 0;
    }

    /// After a pass that found nothing: waits one step of the strategy (a spin hint, a yield,
    /// or, under [`WaitStrategy::SpinThenPark`] after enough empty polls, a park on `sleeper`
    /// unless `pending` finds work once the sleep is announced).
    pub fn wait(&mut self, sleeper: &Sleeper, pending: impl FnOnce() -> bool) {
        self.streaming = false;
        self.polls = self.polls.saturating_add(1);
        match self.strategy {
            WaitStrategy::BusySpin => core::hint::spin_loop(),
            WaitStrategy::SpinThenYield if self.polls < SPIN_POLLS => core::hint::spin_loop(),
            WaitStrategy::SpinThenYield => thread::yield_now(),
            WaitStrategy::SpinThenPark if self.polls < SPIN_POLLS => core::hint::spin_loop(),
            WaitStrategy::SpinThenPark if self.polls < YIELD_POLLS => thread::yield_now(),
            WaitStrategy::SpinThenPark => {
                sleeper.sleep_unless(pending);
                self.polls = 0;
            }
        }
    }
}

/// Waits until `done()` holds or `deadline` passes (`None`: no deadline), checking every 20 us
/// at first and every millisecond at most; returns whether `done()` held. For the rare waits
/// of shutdown, `flush` and the span pipeline. Under loom there is no deadline and each check
/// is followed by a yield (loom explores interleavings, not time).
pub(crate) fn poll_until(
    deadline: Option<std::time::Instant>,
    mut done: impl FnMut() -> bool,
) -> bool {
    use std::time::{Duration, Instant};
    let mut pause = Duration::from_micros(20);
    loop {
        if done() {
            return true;
        }
        if cfg!(tracebus_loom) {
            thread::yield_now();
            continue;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return false;
        }
        let left = deadline.map_or(pause, |d| d - now);
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(1));
    }
}

/// A publisher's step of waiting for room in a full ring: spin with backoff, then yield.
pub(crate) fn snooze(backoff: &crossbeam_utils::Backoff) {
    if backoff.is_completed() {
        thread::yield_now();
    } else {
        backoff.snooze();
    }
}

/// Every worker's sleeper and thread handle: what a publisher needs to wake a worker.
pub struct Wakers {
    /// Worker `w`'s "about to sleep" flag, each on its own cache line.
    sleepers: Vec<CachePadded<Sleeper>>,
    /// The worker threads, for unparking; set right after they are spawned.
    threads: OnceLock<Vec<thread::Thread>>,
}

impl Wakers {
    /// Flags for `workers` awake workers; threads come later ([`Wakers::set_threads`]).
    pub fn new(workers: usize) -> Wakers {
        Wakers {
            sleepers: (0..workers)
                .map(|_| CachePadded::new(Sleeper::new()))
                .collect(),
            threads: OnceLock::new(),
        }
    }

    /// The worker threads, once spawned (later calls are ignored).
    pub fn set_threads(&self, threads: Vec<thread::Thread>) {
        let _ = self.threads.set(threads);
    }

    /// Worker `w`'s sleeper.
    #[inline]
    pub fn sleeper(&self, w: usize) -> &Sleeper {
        &self.sleepers[w]
    }

    /// The worker the calling thread is, if it is one of this bus's workers (a handler
    /// calling into the bus). A cold path: it reads the thread's id.
    pub(crate) fn current_worker(&self) -> Option<usize> {
        let threads = self.threads.get()?;
        let me = thread::current().id();
        threads.iter().position(|t| t.id() == me)
    }

    /// Publisher side, after committing to the rings of `workers` (only under
    /// [`WaitStrategy::SpinThenPark`]; the other strategies never park): one light fence that
    /// orders every commit before the flag loads, against the heavy fence in
    /// [`Sleeper::prepare`], then an unpark for each of those workers that may be asleep.
    #[inline(always)]
    pub fn after_commit(&self, strategy: WaitStrategy, workers: impl IntoIterator<Item = usize>) {
        if strategy == WaitStrategy::SpinThenPark {
            light(); // publisher: commits before the flag loads
            for w in workers {
                if self.sleeper(w).is_sleeping() {
                    self.wake(w);
                }
            }
        }
    }

    /// Unparks worker `w` (a no-op before the threads exist).
    pub fn wake(&self, w: usize) {
        if let Some(threads) = self.threads.get() {
            threads[w].unpark();
        }
    }
}
