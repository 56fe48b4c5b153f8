//! A worker: one thread that drains its inbound rings (one per endpoint) and runs the local
//! subscribers of each message's topic, by reference, in the slot.
//!
//! Subscribers are found by the topic's dense index (a vector, no hashing). Control messages
//! (new inbound rings, subscribe, unsubscribe, drain, stop) arrive on a channel and are applied
//! between batches, so a handler never changes under a running delivery. The worker also
//! publishes the routes of the subscriptions it installs and removes, in the order it applies
//! them, so a route never points at a handler that is not there yet. A handler panic is
//! caught, counted, and the worker goes on with the next subscriber and message.
//!
//! After each non-empty pass the worker publishes its counts ([`WorkerLive`]): the message
//! copies it has handled, which shutdown's quiescence check compares with what was sent (see
//! `drain.rs`), and the deliveries and panics `Bus::stats` reports.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::drain::Done;
use crate::endpoint::Endpoint;
use crate::handler::{Handler, Outbox};
use crate::layout::SlotSize;
use crate::ring::Consumer;
use crate::shared::BusShared;
use crate::slot::Slot;
use crate::spans::{self, new_span_id, Ticks};
use crate::sync::chan::{self, Receiver, Sender};
use crate::sync::TryRecvError;
use crate::sync::{AtomicU64, Ordering};
use crate::telemetry::process_span;
use crate::wait::Idle;
use tracebus_context::TraceContext;

/// Messages to a worker.
pub(crate) enum Control<S: SlotSize> {
    /// A new endpoint's ring to this worker.
    Inbound(Consumer<Slot<S::Area>>),
    /// Add a subscriber, then publish its route; acknowledged (if asked) once both are done.
    Subscribe {
        id: u64,
        topic: u32,
        handler: Handler<S>,
        ack: Option<Sender<()>>,
    },
    /// Withdraw a subscriber's route, then drop it; acknowledged (if asked, with whether it
    /// existed) once it is gone.
    Unsubscribe { id: u64, ack: Option<Sender<bool>> },
    /// Deliver everything in the rings, then stop. Sent once the bus is quiescent, after
    /// every gate closed: the rings are empty and stay so.
    Drain,
    /// Stop after the current pass, leaving what is in the rings (the drain deadline passed:
    /// shutdown counts what is left as lost).
    Stop,
}

/// What a worker publishes after each non-empty pass, for shutdown and `Bus::stats` (written
/// only by the worker, on a cache line of its own).
#[derive(Debug, Default)]
pub(crate) struct WorkerLive {
    /// Message copies read and handled (see `drain.rs`).
    pub(crate) done: Done,
    /// Handler calls that returned (`Relaxed`: a count).
    pub(crate) delivered: AtomicU64,
    /// Handler calls that panicked (`Relaxed`: a count).
    pub(crate) handler_panics: AtomicU64,
}

/// What one worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerReport {
    /// Handler calls that returned.
    pub delivered: u64,
    /// Handler calls that panicked (caught).
    pub handler_panics: u64,
    /// Whether the thread was pinned to a core.
    pub pinned: bool,
    /// Messages read from the worker's inbound rings (each once, whatever its local
    /// subscriber count).
    pub messages: u64,
    /// Passes over the inbound rings that found at least one message: `messages / passes`
    /// is how many messages a pass took on average (a worker on its publisher's heels takes
    /// one or two; see the catch-up pause in the crate's architecture notes).
    pub passes: u64,
    /// Onward publishes of this worker's handlers refused because a ring was full.
    pub refused_full: u64,
    /// Onward publishes of this worker's handlers refused because the bus was shutting down
    /// (after the drain deadline, or from a handler running when it passed).
    pub refused_closed: u64,
}

impl WorkerReport {
    /// Messages per non-empty pass over the inbound rings (0 when there was none).
    pub fn messages_per_pass(&self) -> f64 {
        if self.passes == 0 {
            0.0
        } else {
            self.messages as f64 / self.passes as f64
        }
    }
}

/// Messages read from one ring per batch.
pub(crate) const BATCH: usize = 64;

/// One topic's subscribers on this worker, with their subscription ids (empty: none).
type Subscribers<S> = Vec<(u64, Handler<S>)>;

pub(crate) struct Worker<S: SlotSize> {
    pub(crate) index: usize,
    pub(crate) bus: Arc<BusShared>,
    pub(crate) control: Receiver<Control<S>>,
    /// One consumer per endpoint, each on cache lines of its own (its `head` and cached `tail`
    /// change on every pass; see the producers in `endpoint.rs`).
    pub(crate) inbound: Vec<CachePadded<Consumer<Slot<S::Area>>>>,
    pub(crate) endpoint: Endpoint<S>,
    pub(crate) core: Option<usize>,
    /// By topic index, up to the highest index subscribed here; empty where nobody is.
    subs: Vec<Subscribers<S>>,
    /// Subscription id -> topic index, to find it on unsubscribe.
    topics: HashMap<u64, u32>,
    draining: bool,
    stopping: bool,
    report: WorkerReport,
    /// Counts published after each non-empty pass.
    live: Arc<CachePadded<WorkerLive>>,
}

impl<S: SlotSize> Worker<S> {
    pub(crate) fn new(
        index: usize,
        bus: Arc<BusShared>,
        control: Receiver<Control<S>>,
        inbound: Vec<Consumer<Slot<S::Area>>>,
        endpoint: Endpoint<S>,
        core: Option<usize>,
        live: Arc<CachePadded<WorkerLive>>,
    ) -> Self {
        Worker {
            index,
            bus,
            control,
            inbound: inbound.into_iter().map(CachePadded::new).collect(),
            endpoint,
            core,
            subs: Vec::new(),
            topics: HashMap::new(),
            draining: false,
            stopping: false,
            report: WorkerReport::default(),
            live,
        }
    }

    pub(crate) fn run(mut self) -> WorkerReport {
        if let Some(core) = self.core {
            self.report.pinned = core_affinity::set_for_current(core_affinity::CoreId { id: core });
        }
        let mut idle = Idle::new(self.bus.wait, self.bus.catch_up_hints);
        let mut counts_due = false;
        loop {
            let control_empty = self.apply_control();
            if counts_due {
                // After the control messages: a subscription a handler made during the last
                // pass is in place before that pass counts as done (so `flush` covers it).
                self.publish_counts();
                counts_due = false;
            }
            if self.stopping {
                return self.finish();
            }
            let found = self.deliver_pass();
            if found > 0 {
                self.report.messages += found as u64;
                self.report.passes += 1;
                counts_due = true;
                idle.found(found);
                continue;
            }
            if self.draining && control_empty {
                // Every accepted message was committed before `Drain` was sent, and this pass
                // found every ring empty: all delivered.
                return self.finish();
            }
            let sleeper = self.bus.wakers.sleeper(self.index);
            idle.wait(sleeper, || self.any_pending());
        }
    }

    /// Publishes the counts of the passes so far: their copies are handled (every handler
    /// returned or was caught), so `done` may count them (see `drain.rs`).
    #[inline]
    fn publish_counts(&self) {
        let live = &self.live;
        live.delivered
            .store(self.report.delivered, Ordering::Relaxed);
        live.handler_panics
            .store(self.report.handler_panics, Ordering::Relaxed);
        live.done.store(self.report.messages as usize);
    }

    /// The final report, with the refusals its endpoint counted.
    fn finish(mut self) -> WorkerReport {
        self.publish_counts();
        let state = self.endpoint.state();
        self.report.refused_full = state.refused_full.load(Ordering::Relaxed);
        self.report.refused_closed = state.refused_closed.load(Ordering::Relaxed);
        self.report
    }

    /// Applies pending control messages; returns whether the channel was empty.
    fn apply_control(&mut self) -> bool {
        loop {
            match chan::try_recv(&self.control) {
                Ok(Control::Inbound(c)) => self.inbound.push(CachePadded::new(c)),
                Ok(Control::Subscribe {
                    id,
                    topic,
                    handler,
                    ack,
                }) => {
                    let t = topic as usize;
                    if self.subs.len() <= t {
                        self.subs.resize_with(t + 1, Vec::new);
                    }
                    self.subs[t].push((id, handler));
                    self.topics.insert(id, topic);
                    // The handler is in place: publishers may route to it now.
                    self.bus.routes.update(topic, self.index, true);
                    if let Some(ack) = ack {
                        let _ = ack.send(());
                    }
                }
                Ok(Control::Unsubscribe { id, ack }) => {
                    let found = self.topics.remove(&id).is_some_and(|topic| {
                        // Publishers stop routing to it first; then the handler goes.
                        self.bus.routes.update(topic, self.index, false);
                        let list = &mut self.subs[topic as usize];
                        list.retain(|(i, _)| *i != id);
                        if list.is_empty() {
                            *list = Vec::new(); // its memory too
                        }
                        true
                    });
                    if let Some(ack) = ack {
                        let _ = ack.send(found);
                    }
                }
                Ok(Control::Drain) => self.draining = true,
                Ok(Control::Stop) => {
                    self.stopping = true;
                    return true;
                }
                Err(TryRecvError::Empty) => return true,
                // The bus is gone without a drain (it always sends one): stop after this pass.
                Err(TryRecvError::Disconnected) => {
                    self.draining = true;
                    return true;
                }
            }
        }
    }

    /// Reads one batch from every inbound ring and delivers it; returns messages read.
    ///
    /// Panic isolation costs one `catch_unwind` per batch, not per handler call: the batch is
    /// delivered inside one guard that records which handler of which message runs; when one
    /// panics, the panic is counted and delivery resumes with the next handler in a new guard.
    fn deliver_pass(&mut self) -> usize {
        let Worker {
            index,
            inbound,
            endpoint,
            subs,
            report,
            ..
        } = self;
        let mut total = 0;
        let mut i = 0;
        while i < inbound.len() {
            let chunk = inbound[i].read(BATCH);
            let n = chunk.len();
            if n == 0 {
                drop(chunk);
                // A ring whose publisher is gone and which is drained is dropped.
                if inbound[i].is_closed() && inbound[i].is_empty() {
                    inbound.swap_remove(i);
                } else {
                    i += 1;
                }
                continue;
            }
            let mut at = Cursor::default();
            loop {
                let run = || {
                    // Each run of cells in a loop of its own (see `ReadChunk::runs_from`).
                    for run in chunk.runs_from(at.slot) {
                        deliver(run, &mut at, subs, endpoint, *index, &mut report.delivered);
                    }
                };
                match catch_unwind(AssertUnwindSafe(run)) {
                    Ok(()) => break,
                    Err(_) => {
                        report.handler_panics += 1;
                        // The handlers of this message that returned before it.
                        report.delivered += (at.handler - at.first) as u64;
                        // The process span of the handler that panicked, marked so.
                        if let (Some((header, span_id, start)), Some(slot)) =
                            (at.span.take(), chunk.get(at.slot))
                        {
                            let end = spans::now();
                            endpoint.record_span(
                                process_span(slot, &header, span_id, start, end)
                                    .with_handler_panicked(),
                            );
                            at.tick = Some(end);
                        }
                        at.handler += 1; // resume after the handler that panicked
                        at.first = at.handler;
                    }
                }
            }
            drop(chunk);
            total += n;
            i += 1;
        }
        total
    }

    fn any_pending(&self) -> bool {
        !chan::is_empty(&self.control) || self.inbound.iter().any(|c| !c.is_empty())
    }
}

/// Where delivery of a batch stands: handler `handler` of the batch's message `slot` is the
/// next to run (or running, if it panics).
#[derive(Debug, Default, Clone, Copy)]
struct Cursor {
    slot: usize,
    handler: usize,
    /// The handler this message's delivery (re)started at: 0, or the one after a handler
    /// that panicked. The handlers from `first` up to `handler` have returned; they are
    /// counted as delivered when the message is done, or by the unwind guard.
    first: usize,
    /// For a traced message: the end tick of the last handler, the start of the next (the
    /// `process` spans of one message share clock reads).
    tick: Option<Ticks>,
    /// The `process` span of the handler running now: the message's header context, the
    /// span's id and start tick (recorded as panicked if the handler unwinds).
    span: Option<(TraceContext, [u8; 8], Ticks)>,
}

/// Runs the handlers of `list` from `at.handler` on for `slot`, without spans, and moves the
/// cursor to the next message. The cursor names the running handler for the unwind guard with
/// a plain store of the loop's index (no read-modify-write chained through memory from one
/// call to the next), and the deliveries are counted once, after the loop.
#[inline(always)]
fn run_handlers<S: SlotSize>(
    list: &mut [(u64, Handler<S>)],
    slot: &Slot<S::Area>,
    out: &mut Outbox<'_, S>,
    at: &mut Cursor,
    delivered: &mut u64,
) {
    let first = at.handler;
    for (i, (_, handler)) in list.iter_mut().enumerate().skip(first) {
        at.handler = i;
        handler(slot, out);
    }
    *delivered += (list.len() - first) as u64;
    at.slot += 1;
    at.handler = 0;
    at.first = 0;
}

/// Delivers `slots` (one run of the chunk's cells, from message `at.slot` on) to their topics'
/// subscribers, starting at handler `at.handler` of the first, and keeps `at` on the handler
/// about to run.
///
/// Per untraced message this is a pointer step, a subscriber-list lookup and, per handler, one
/// indirect call with the slot and the outbox in registers (the outbox is built once per call,
/// not per message) and the cursor's updates (kept in memory for the unwind guard). Out of
/// line on purpose: inlined into the worker's loop, the pass's state stayed live across the
/// handler call and was saved and restored around every message (callgrind: 64 instructions
/// per delivery inlined, 55 out of line).
#[inline(never)]
fn deliver<'s, S: SlotSize>(
    slots: impl Iterator<Item = &'s Slot<S::Area>>,
    at: &mut Cursor,
    subs: &mut [Subscribers<S>],
    endpoint: &mut Endpoint<S>,
    worker: usize,
    delivered: &mut u64,
) {
    let mut out = Outbox {
        endpoint,
        worker,
        current: None,
    };
    for slot in slots {
        if let Some(list) = subs.get_mut(slot.topic() as usize) {
            // The fast filter first: an unsampled slot costs no decode, no span, no clock read.
            let traced = if slot.is_sampled() {
                slot.context()
            } else {
                None
            };
            let Some(header) = traced else {
                // Untraced (the common case). One subscriber: one indirect call, nothing else
                // (if it unwinds, the cursor names this message's handler 0).
                if let ([(_, handler)], 0) = (&mut list[..], at.handler) {
                    handler(slot, &mut out);
                    *delivered += 1;
                    at.slot += 1;
                    continue;
                }
                // Several: a tight loop over the handlers, one indirect call each.
                run_handlers(list, slot, &mut out, at, delivered);
                continue;
            };
            deliver_traced(list, slot, header, &mut out, at, delivered);
            continue;
        }
        at.slot += 1;
        at.handler = 0;
        at.first = 0;
        at.tick = None;
    }
}

/// [`deliver`] for a traced message (out of line: the untraced loop keeps its registers). A
/// carried context is handed to the handlers unchanged; a recorded one gets a `process` span
/// per handler, whose start and end ticks the handlers share.
#[inline(never)]
fn deliver_traced<S: SlotSize>(
    list: &mut [(u64, Handler<S>)],
    slot: &Slot<S::Area>,
    header: TraceContext,
    out: &mut Outbox<'_, S>,
    at: &mut Cursor,
    delivered: &mut u64,
) {
    if !slot.is_recorded() {
        // Carried through a publish that recorded no span (the bus records none): the
        // handlers' context is the header's, unchanged, and their onward publishes
        // carry it on (no span, no clock read).
        out.current = Some(header);
        run_handlers(list, slot, out, at, delivered);
        out.current = None;
        return;
    }
    let first = at.handler;
    while let Some((_, handler)) = list.get_mut(at.handler) {
        let span_id = new_span_id();
        let start = at.tick.unwrap_or_else(spans::now);
        at.span = Some((header, span_id, start));
        out.current = header.with_span_id(span_id);
        handler(slot, out);
        out.current = None;
        if let Some((header, span_id, start)) = at.span.take() {
            let end = spans::now();
            out.endpoint
                .record_span(process_span(slot, &header, span_id, start, end));
            at.tick = Some(end);
        }
        at.handler += 1;
    }
    *delivered += (list.len() - first) as u64;
    at.slot += 1;
    at.handler = 0;
    at.first = 0;
    at.tick = None;
}
