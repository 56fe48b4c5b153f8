//! An endpoint: one producer of messages (an external [`crate::Publisher`] or a worker), with
//! its own SPSC ring to every worker, so no ring ever has two producers and the data path needs
//! no CAS.
//!
//! A publish to a topic with subscribers on `k` workers writes one slot into each of the `k`
//! rings. Because this endpoint is the only producer of those rings, it checks that all `k` have
//! room first and only then writes: either every destination gets the message or the caller
//! gets it back. Free space cannot shrink between the check and the write.
//!
//! Every publish passes one of the bus's shutdown gates (`gate.rs`): external
//! publishers the one shutdown closes first, workers (handlers publishing onward) the one it
//! closes once the bus is quiescent or the drain deadline passed. A publish is refused once its
//! gate is closed, or shutdown waits for it. Each publish counts its message copies before it
//! commits them (see `drain.rs`), which is what lets shutdown see when the last onward publish
//! has been handled.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytemuck::Pod;
use crossbeam_utils::CachePadded;

use crate::drain::Sent;
use crate::error::{BatchPublishError, PublishError, TryBatchError, TryPublishError};
use crate::gate::Gate;
use crate::layout::SlotSize;
use crate::ring::Producer;
use crate::routing::{Route, RouteCache};
use crate::shared::BusShared;
use crate::slot::Slot;
use crate::spans::{self, Recorder, SpanRecord};
use crate::sync::{debug_or_loom_assert, AtomicU64, Ordering};
use crate::telemetry::{Parent, Trace};
use crate::topic::Topic;
use crate::wait::snooze;

/// The part of an endpoint that shutdown, [`crate::Bus::stats`] and the report read.
#[derive(Debug, Default)]
pub(crate) struct EndpointState {
    /// Messages accepted with fanout >= 1 and their copies, counted before they are
    /// committed; the count is also how a publish enters the shutdown gate (see
    /// [`crate::gate`]). Written only by the owner; read by shutdown (for quiescence and the
    /// report) and by `stats`.
    pub(crate) sent: Sent,
    /// Onward publishes (from handlers, through the `Outbox`) refused because a ring was full.
    /// Written only by the owner (a worker), `Relaxed`: counts, publishing nothing else.
    pub(crate) refused_full: AtomicU64,
    /// Onward publishes refused because the bus was shutting down.
    pub(crate) refused_closed: AtomicU64,
}

impl EndpointState {
    /// Counts `messages` refused by one onward publish (owner only; a cold path).
    #[cold]
    pub(crate) fn count_refusal(&self, full: bool, messages: usize) {
        let c = if full {
            &self.refused_full
        } else {
            &self.refused_closed
        };
        c.store(
            c.load(Ordering::Relaxed) + messages as u64,
            Ordering::Relaxed,
        );
    }
}

/// Which gate an endpoint's publishes pass (an index into `BusShared::gates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// A [`crate::Publisher`]: closed first at shutdown.
    External = 0,
    /// A worker (its handlers' onward publishes): closed once the bus is quiescent or the
    /// drain deadline passed.
    Worker = 1,
}

/// The result of an accepted publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// Subscribers the message was addressed to (0: nobody subscribed, nothing written).
    pub fanout: usize,
    /// Workers (rings) it was written to.
    pub workers: usize,
}

/// Why a publish wrote nothing.
enum Refused {
    /// This worker's ring lacked room.
    Full { worker: usize },
    /// The endpoint's shutdown gate is closed.
    Closed,
}

pub(crate) struct Endpoint<S: SlotSize> {
    out: Out<S>,
    pub(crate) state: Arc<EndpointState>,
    bus: Arc<BusShared>,
    /// The gate this endpoint's publishes pass: `Side as usize`.
    gate: usize,
    /// The bus's id, which every topic handle must carry (kept here: one load instead of two
    /// through the bus's shared state on every publish).
    bus_id: u32,
}

/// What a publish writes through, borrowed apart from the rest of the endpoint.
struct Out<S: SlotSize> {
    /// `rings[w]` goes to worker `w`. Each producer (its `tail` and cached `head`, written on
    /// every publish) on cache lines of its own: a small heap block allocated next to it,
    /// such as a subscriber's handler state that a worker writes per message, would otherwise
    /// share its line and bounce it between the cores on every message (measured: a handler's
    /// state and a publisher's producer on one line, in busbench's fanout-100 setup).
    rings: Vec<CachePadded<Producer<Slot<S::Area>>>>,
    routes: RouteCache,
    /// This endpoint's span recorder, made on its first sampled span.
    recorder: Option<Recorder>,
}

impl<S: SlotSize> Endpoint<S> {
    pub(crate) fn new(
        rings: Vec<Producer<Slot<S::Area>>>,
        bus: Arc<BusShared>,
        side: Side,
    ) -> Self {
        let routes = bus.routes.cache(|| fast_ok(&bus));
        Endpoint {
            out: Out {
                rings: rings.into_iter().map(CachePadded::new).collect(),
                routes,
                recorder: None,
            },
            state: Arc::default(),
            bus_id: bus.topics.id(),
            bus,
            gate: side as usize,
        }
    }

    /// Publishes without waiting: delivered to every subscriber's worker, or handed back.
    ///
    /// `inline(always)`, so that the whole publish inlines into the caller's loop: every store
    /// it makes (spilled registers and pushed ones included) waits in the core's store buffer
    /// behind the stores to the ring's line, so the fewer the better (see
    /// [`Out::write_fast`]). Left to its heuristics, the compiler kept it out of line
    /// (callgrind, one publisher, fanout 1: 126 instructions per publish as a call, 90
    /// inlined).
    #[inline(always)]
    pub(crate) fn try_publish<T: Pod>(
        &mut self,
        topic: &Topic<T>,
        payload: T,
        parent: Parent,
    ) -> Result<Published, TryPublishError<T>> {
        crate::topic::check(self.bus_id, topic);
        let at = Entry::of(&self.bus, self.gate, &self.state);
        let written = match self.out.write_fast(at, topic.index(), &payload, parent) {
            Some(written) => written,
            None => self.write_one_general(topic.index(), payload, parent),
        };
        match written {
            Ok(published) => Ok(published),
            Err(Refused::Full { worker }) => Err(TryPublishError::Full { payload, worker }),
            Err(Refused::Closed) => Err(TryPublishError::Closed(payload)),
        }
    }

    /// Publishes, waiting with backoff while a destination ring is full. The first attempt
    /// inlines into the caller (see [`Endpoint::try_publish`]); the wait is out of line.
    ///
    /// The parent comes as a function that makes it, not as a value: handed to the out-of-line
    /// wait, a `Parent` value (a 26-byte context and a tag) lives in memory whose address
    /// escapes into that call, and the compiler then wrote it to the stack on every publish of
    /// the caller's loop (seven stores, measured in busbench's loop) and read the tag back
    /// instead of knowing it; `|| Parent::Root` is a type of size zero.
    #[inline(always)]
    pub(crate) fn publish<T: Pod>(
        &mut self,
        topic: &Topic<T>,
        payload: T,
        parent: impl Fn() -> Parent + Copy,
    ) -> Result<Published, PublishError<T>> {
        match self.try_publish(topic, payload, parent()) {
            Ok(p) => Ok(p),
            Err(TryPublishError::Closed(back)) => Err(PublishError::new(back)),
            Err(e) => self.publish_waiting(topic, e.into_inner(), parent),
        }
    }

    /// [`Endpoint::publish`] after its first attempt found a ring full: retries with backoff.
    #[cold]
    #[inline(never)]
    fn publish_waiting<T: Pod>(
        &mut self,
        topic: &Topic<T>,
        mut payload: T,
        parent: impl Fn() -> Parent + Copy,
    ) -> Result<Published, PublishError<T>> {
        let backoff = crossbeam_utils::Backoff::new();
        snooze(&backoff);
        loop {
            match self.try_publish(topic, payload, parent()) {
                Ok(p) => return Ok(p),
                Err(TryPublishError::Closed(back)) => return Err(PublishError::new(back)),
                Err(e) => {
                    payload = e.into_inner();
                    snooze(&backoff);
                }
            }
        }
    }

    /// Publishes, waiting with backoff while a destination ring is full, for at most `timeout`,
    /// from worker `own`'s endpoint. Refused at once when waiting cannot help: the full ring
    /// is `own`'s own (only `own` empties it), or the worker it goes to is waiting, directly
    /// or through others, on `own` (see `stall.rs`).
    pub(crate) fn publish_timeout<T: Pod>(
        &mut self,
        topic: &Topic<T>,
        payload: T,
        parent: Parent,
        timeout: Duration,
        own: usize,
    ) -> Result<Published, TryPublishError<T>> {
        let mut deadline = None;
        let backoff = crossbeam_utils::Backoff::new();
        let mut payload = payload;
        let outcome = loop {
            match self.try_publish(topic, payload, parent) {
                Err(TryPublishError::Full {
                    payload: back,
                    worker,
                }) => {
                    let stalls = &self.bus.stalls;
                    let deadline =
                        *deadline.get_or_insert_with(|| Instant::now().checked_add(timeout));
                    if stalls.closes_cycle(own, worker)
                        || deadline.is_some_and(|d| Instant::now() >= d)
                    {
                        break Err(TryPublishError::Full {
                            payload: back,
                            worker,
                        });
                    }
                    stalls.set(own, Some(worker));
                    payload = back;
                    snooze(&backoff);
                }
                other => break other,
            }
        };
        if deadline.is_some() {
            self.bus.stalls.set(own, None);
        }
        outcome
    }

    /// [`Endpoint::try_publish`] where [`Out::write_fast`] does not apply: [`Out::write`] with
    /// a batch of one. Out of line, taking the payload by value and the endpoint rather than
    /// what the fast path computed from it, so that the inlined fast path keeps nothing on the
    /// stack for the sake of this call (every such store waits in the store buffer behind the
    /// slot's).
    #[inline(never)]
    fn write_one_general<T: Pod>(
        &mut self,
        topic: u32,
        payload: T,
        parent: Parent,
    ) -> Result<Published, Refused> {
        let at = Entry::of(&self.bus, self.gate, &self.state);
        self.out
            .write(at, topic, core::slice::from_ref(&payload), parent, false)
    }

    /// The counts shutdown and `stats` read.
    pub(crate) fn state(&self) -> &EndpointState {
        &self.state
    }

    /// Publishes `payloads` in order as one batch per destination ring (one commit each),
    /// without waiting: all of them reach every destination, or none does.
    pub(crate) fn try_publish_batch<T: Pod>(
        &mut self,
        topic: &Topic<T>,
        payloads: &[T],
        parent: Parent,
    ) -> Result<Published, TryBatchError> {
        self.bus.topics.check(topic);
        let capacity = self.capacity();
        if payloads.len() > capacity {
            return Err(TryBatchError::TooLarge {
                len: payloads.len(),
                capacity,
            });
        }
        let at = Entry::of(&self.bus, self.gate, &self.state);
        self.out
            .write(at, topic.index(), payloads, parent, true)
            .map_err(|refused| match refused {
                Refused::Full { worker } => TryBatchError::Full { worker },
                Refused::Closed => TryBatchError::Closed,
            })
    }

    /// Publishes `payloads` in order, in batches of at most a ring's capacity, waiting with
    /// backoff while a destination ring lacks room.
    pub(crate) fn publish_batch<T: Pod>(
        &mut self,
        topic: &Topic<T>,
        payloads: &[T],
        parent: Parent,
    ) -> Result<Published, BatchPublishError> {
        let capacity = self.capacity();
        let mut last = NOBODY;
        for (i, chunk) in payloads.chunks(capacity).enumerate() {
            let backoff = crossbeam_utils::Backoff::new();
            last = loop {
                match self.try_publish_batch(topic, chunk, parent) {
                    Ok(p) => break p,
                    Err(TryBatchError::Closed) => return Err(BatchPublishError::new(i * capacity)),
                    // Full (chunks never exceed the capacity, so never TooLarge): wait.
                    Err(_) => snooze(&backoff),
                }
            };
        }
        Ok(last)
    }

    /// Records a span (a worker's `process` spans go through its endpoint's recorder).
    #[inline]
    pub(crate) fn record_span(&mut self, span: SpanRecord) {
        self.out.record_span(&self.bus, span);
    }

    /// Messages each ring holds (all of an endpoint's rings have the same capacity).
    fn capacity(&self) -> usize {
        self.out.rings.first().map_or(1, |r| r.capacity())
    }
}

/// A publish to a topic nobody subscribes to: nothing written.
const NOBODY: Published = Published {
    fanout: 0,
    workers: 0,
};

/// Whether publishes may take the fast path (see `routing.rs`'s fast entries): the bus neither
/// traces nor stamps publish times.
fn fast_ok(bus: &BusShared) -> bool {
    !bus.tracing.is_on() && !bus.record_publish_time
}

/// Brings this endpoint's route cache up to date if anything it depends on changed.
#[inline(always)]
fn refresh(bus: &BusShared, routes: &mut RouteCache) {
    routes.refresh(&bus.routes, || fast_ok(bus));
}

/// The route of `topic` in this endpoint's cache, brought up to date first (`None`: no
/// subscribers).
#[inline(always)]
fn current_route<'a>(bus: &BusShared, routes: &'a mut RouteCache, topic: u32) -> Option<&'a Route> {
    refresh(bus, routes);
    routes.get(topic)
}

/// After messages were committed to `workers`' rings: wakes the destinations that sleep (see
/// `wait.rs`). The messages were counted before the commit (see `drain.rs`), so shutdown sees
/// them whatever happens after it.
#[inline(always)]
fn committed(bus: &BusShared, workers: &[(usize, usize)]) {
    bus.wakers
        .after_commit(bus.wait, workers.iter().map(|&(w, _)| w));
}

/// The endpoint's span recorder in `slot`, made on first use (`None` if the bus has no span
/// pipeline any more).
#[inline]
fn made<'r>(slot: &'r mut Option<Recorder>, bus: &BusShared) -> Option<&'r mut Recorder> {
    if slot.is_none() {
        *slot = bus.tracing.recorder();
    }
    slot.as_mut()
}

/// What a write needs of its endpoint besides [`Out`]: the bus, the gate the endpoint's
/// publishes pass, and the counts it keeps.
#[derive(Clone, Copy)]
struct Entry<'a> {
    bus: &'a BusShared,
    gate: &'a Gate,
    state: &'a EndpointState,
}

impl<'a> Entry<'a> {
    /// The entry of an endpoint whose publishes pass `bus`'s gate `side` (`Side as usize`).
    #[inline(always)]
    fn of(bus: &'a BusShared, side: usize, state: &'a EndpointState) -> Self {
        Entry {
            bus,
            // `& 1`: the index is 0 or 1, and the compiler then knows it (no bounds check).
            gate: &bus.gates[side & 1],
            state,
        }
    }

    /// A publish that writes nothing (no subscriber, or no room): refused as closed if the
    /// gate is, so a publish to a shut-down bus is told so whatever its topic or rings hold
    /// (and `publish`, waiting on a full ring nobody will empty again, stops).
    #[cold]
    fn nothing_written(self, otherwise: Result<Published, Refused>) -> Result<Published, Refused> {
        if self.gate.is_closed() {
            return Err(Refused::Closed);
        }
        otherwise
    }
}

impl<S: SlotSize> Out<S> {
    /// Records `span` through this endpoint's recorder, made on first use (dropped if the bus
    /// has no span pipeline any more).
    #[inline]
    fn record_span(&mut self, bus: &BusShared, span: SpanRecord) {
        if let Some(r) = made(&mut self.recorder, bus) {
            r.record(span);
        }
    }

    /// A single-message publish in the common case (one destination worker, tracing off, no
    /// publish time, no parent context): one push, kept small because it is on every such
    /// publish: a ring write is a handful of stores to a line the consumer last held, and
    /// until that line arrives every later store of the publisher waits in the store buffer
    /// (about 25 extra stores per message halve the ring's own throughput on the project's
    /// machine). `None`: not the common case; the caller takes [`Out::write`] (out of line).
    #[inline(always)]
    fn write_fast<T: Pod>(
        &mut self,
        at: Entry<'_>,
        topic: u32,
        payload: &T,
        parent: Parent,
    ) -> Option<Result<Published, Refused>> {
        let Entry { bus, gate, state } = at;
        let Out { rings, routes, .. } = self;
        refresh(bus, routes);
        // The fast entry: one destination worker, no tracing, no publish time. A parent with a
        // context goes the general way even when the bus records no spans: the context is
        // carried through unchanged.
        if let Some((w, fanout)) = routes.fast(topic) {
            if parent.context().is_none() {
                // Counted (which enters the gate) before the commit (see `drain.rs`,
                // `gate.rs`), and taken back if the ring is full: a count without its copy
                // only delays quiescence, never fakes it.
                let Some(before) = gate.enter(&state.sent, 1, 1) else {
                    return Some(Err(Refused::Closed));
                };
                if rings[w]
                    .try_push_in_place(|s| {
                        s.rewrite(&Slot::new(topic, None, None, payload), payload)
                    })
                    .is_err()
                {
                    state.sent.undo(before);
                    return Some(Err(Refused::Full { worker: w }));
                }
                bus.wakers.after_commit(bus.wait, [w]);
                let published = Published { fanout, workers: 1 };
                #[cfg(all(feature = "test-util", debug_assertions))]
                crate::fault::hit();
                return Some(Ok(published));
            }
        }
        None
    }

    /// A publish: route, check room for all of `payloads` on every destination ring, enter the
    /// gate (count), then claim, fill and commit each ring once (a single message is a batch
    /// of one).
    /// The caller made sure `payloads` fits an empty ring. Out of line: the single-message
    /// fast path in [`Out::write_fast`] stays small where it is inlined.
    ///
    /// The sampling decision is made here, once, from the fanout: a batch (`batch`: the call
    /// was a batch publish) is one publish, one span, and all its messages carry the same
    /// header.
    #[inline(never)]
    fn write<T: Pod>(
        &mut self,
        at: Entry<'_>,
        topic: u32,
        payloads: &[T],
        parent: Parent,
        batch: bool,
    ) -> Result<Published, Refused> {
        let Entry { bus, gate, state } = at;
        let Out {
            rings,
            routes,
            recorder,
        } = self;
        let Some(route) = current_route(bus, routes, topic) else {
            return at.nothing_written(Ok(NOBODY));
        };
        let n = payloads.len();
        for &(w, _) in &route.workers {
            if !rings[w].has_room(n) {
                return at.nothing_written(Err(Refused::Full { worker: w }));
            }
        }
        // The one decision of this publish. A bus that records no spans (none configured, or
        // switched off) still carries a sampled parent's context through unchanged.
        let trace = if bus.tracing.is_on() || parent.context().is_some() {
            bus.tracing.decide(route.fanout, parent)
        } else {
            Trace::None
        };
        let (header, sampled) = match trace {
            Trace::Recorded(s) => (Some(s.header), Some(s)),
            Trace::Carried(c) => (Some(c), None),
            Trace::None => (None, None),
        };
        // Recorded messages always carry their publish time (the process spans report the time
        // in the ring); others only when the bus records it (a TSC read).
        let publish_tick = match &sampled {
            Some(s) => Some(s.start),
            None if bus.record_publish_time => Some(spans::now()),
            None => None,
        };
        // A sampled publish's recorder, made on its first span before anything is counted
        // (making it takes a lock and allocates).
        let recorder = match sampled {
            Some(_) => made(recorder, bus),
            None => None,
        };
        let recorded = sampled.is_some();
        let slot = |payload: &T| {
            let slot = Slot::new(topic, header.as_ref(), publish_tick, payload);
            if recorded {
                slot.recorded()
            } else {
                slot
            }
        };
        // Counted, which enters the gate, before the first commit (see `drain.rs`, `gate.rs`):
        // every ring has room, so nothing below can refuse the copies. Nothing that can panic
        // comes between the count and the commits either (the sampler ran above), so a count
        // never outlives its copies.
        if gate.enter(&state.sent, n, route.workers.len()).is_none() {
            return Err(Refused::Closed);
        }
        // The span is recorded before the commits: a shutdown that sees the copies handled
        // then finds the span in the recorder's ring (it does not wait for publishes to end).
        if let (Some(s), Some(r)) = (sampled, recorder) {
            r.record(s.record(topic, route.fanout, batch.then_some(n)));
        }
        for &(w, _) in &route.workers {
            let ring = &mut rings[w];
            if let [payload] = payloads {
                // One message: a push (one stamp store, one tail store). Room was checked
                // above and only this endpoint fills the ring, so it succeeds.
                let pushed = ring.try_push_in_place(|s| s.rewrite(&slot(payload), payload));
                debug_or_loom_assert!(pushed.is_ok(), "room for 1 was checked");
                continue;
            }
            // A batch: claim, fill in place and commit once. Room for `n` was checked above, so
            // the claim and every push succeed (asserted in test builds). The slot is built
            // once; each message is a copy of it with its own payload.
            let Some(first) = payloads.first() else {
                continue; // an empty batch writes nothing
            };
            let claim = ring.claim(n);
            debug_or_loom_assert!(claim.is_ok(), "room for {n} was checked");
            if let Ok(mut claim) = claim {
                let template = slot(first);
                for p in payloads {
                    let pushed = claim.push_in_place(|s| s.rewrite(&template, p));
                    debug_or_loom_assert!(pushed.is_ok(), "the claim holds {n} slots");
                }
                claim.commit();
            }
        }
        committed(bus, &route.workers);
        let published = Published {
            fanout: route.fanout,
            workers: route.workers.len(),
        };
        // Test builds can inject a panic here: after the span, the count and the commit.
        #[cfg(all(feature = "test-util", debug_assertions))]
        crate::fault::hit();
        Ok(published)
    }
}
