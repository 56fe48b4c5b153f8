//! `Bus`: builds the workers and the SPSC mesh, owns the topics, manages subscriptions and
//! publishers, reports live counts, and shuts down without losing an accepted message: it
//! stops external publishes, lets handlers publish onward until the bus is quiescent (or a
//! deadline passes), then stops the workers and reports.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytemuck::Pod;
use crossbeam_utils::CachePadded;

use crate::config::{BuildError, BusBuilder};
use crate::drain;
use crate::endpoint::{Endpoint, EndpointState, Side};
use crate::error::BusError;
use crate::gate::Gate;
use crate::handler::{Message, Outbox};
use crate::layout::{Fits, Lines, SlotSize};
use crate::publisher::Publisher;
use crate::report::{Report, Stats};
use crate::ring::{self, Consumer, Producer};
use crate::routing::Routes;
use crate::shared::BusShared;
use crate::slot::Slot;
use crate::spans::{SpanExport, SpanExportError};
use crate::stall::Stalls;
use crate::sync::chan::{self, Sender};
use crate::sync::{lock, thread, Mutex, Ordering};
use crate::telemetry::{Tracing, TracingControl};
use crate::topic::{Registry, Topic, TopicError};
use crate::wait::{poll_until, Wakers};
use crate::worker::{Control, Worker, WorkerLive, WorkerReport};

/// How long shutdown waits, after the drain deadline, for workers to finish the handler they
/// are running before it leaves them behind.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Identifies a subscription, for [`Bus::unsubscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionId(u64);

impl SubscriptionId {
    /// The id as a number (unique within one bus; the one [`BusError::NoSuchSubscription`]
    /// names).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A message bus whose slots have the size `S` (default one cache line: 16 bytes of payload;
/// see [`crate::layout`]). See the crate docs for an example.
pub struct Bus<S: SlotSize = Lines<1>> {
    shared: Arc<BusShared>,
    control: Vec<Sender<Control<S>>>,
    /// Worker `w`'s endpoint state (its handlers' onward publishes) and its live counts.
    workers: Vec<WorkerHandle>,
    /// The external publishers' endpoint states.
    publishers: Mutex<Publishers>,
    threads: Vec<thread::JoinHandle<WorkerReport>>,
    /// Live subscriptions: id -> (topic, worker), and how many each worker has.
    subs: Mutex<Subscriptions>,
    capacity: usize,
    /// Whether rings are resident from the start (`BusBuilder::resident_rings`).
    resident_rings: bool,
    drain_timeout: Duration,
    warnings: Vec<String>,
}

/// What the bus reads of one worker.
struct WorkerHandle {
    endpoint: Arc<EndpointState>,
    live: Arc<CachePadded<WorkerLive>>,
}

/// The external publishers: the live ones' states, and the counts of those dropped (folded in
/// when they are found gone, so the list grows only with live publishers).
#[derive(Default)]
struct Publishers {
    live: Vec<Arc<EndpointState>>,
    gone_messages: usize,
    gone_copies: usize,
}

impl Publishers {
    /// Folds the counts of dropped publishers into the totals.
    fn prune(&mut self) {
        let mut live = Vec::with_capacity(self.live.len());
        for state in self.live.drain(..) {
            // `try_unwrap` succeeds only for the last owner and synchronises with the
            // publisher's drop, so its final counts are read.
            match Arc::try_unwrap(state) {
                Ok(gone) => {
                    self.gone_messages += gone.sent.messages();
                    self.gone_copies += gone.sent.copies();
                }
                Err(state) => live.push(state),
            }
        }
        self.live = live;
    }
}

/// The bus's record of live subscriptions.
#[derive(Default)]
struct Subscriptions {
    by_id: HashMap<u64, usize>,
    per_worker: Vec<usize>,
    next_id: u64,
}

impl Bus {
    /// Starts building a bus (finish with [`BusBuilder::build`]).
    pub fn builder() -> BusBuilder {
        BusBuilder::default()
    }
}

/// Allocates the rings from one endpoint to each of `workers` workers, resident from the start
/// if `resident` (see `BusBuilder::resident_rings`).
#[allow(clippy::type_complexity)]
fn rings_to<T: Send>(
    workers: usize,
    capacity: usize,
    resident: bool,
) -> Result<(Vec<Producer<T>>, Vec<Consumer<T>>), ring::RingError> {
    let mut tx = Vec::with_capacity(workers);
    let mut rx = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (p, c) = if resident {
            ring::spsc_resident(capacity)?
        } else {
            ring::spsc(capacity)?
        };
        tx.push(p);
        rx.push(c);
    }
    Ok((tx, rx))
}

impl<S: SlotSize> BusBuilder<S> {
    /// Checks the settings, allocates the mesh and starts the workers.
    ///
    /// # Errors
    /// A [`BuildError`] naming the setting that was wrong, or the memory or thread the
    /// system refused; nothing is left running.
    pub fn build(self) -> Result<Bus<S>, BuildError> {
        let (cores, mut warnings) = self.validate::<Slot<S::Area>>()?;
        let n = self.workers;
        // The mesh first, before any thread starts: worker s has a ring to every worker d
        // (itself included).
        let mut inbound: Vec<Vec<Consumer<Slot<S::Area>>>> = (0..n).map(|_| Vec::new()).collect();
        let mut outbound = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = rings_to(n, self.capacity, self.resident_rings).map_err(|reason| {
                BuildError::Capacity {
                    capacity: self.capacity,
                    reason,
                }
            })?;
            outbound.push(tx);
            for (inb, c) in inbound.iter_mut().zip(rx) {
                inb.push(c);
            }
        }
        if !crate::barrier::init() {
            warnings.push(
                "tracebus: no asymmetric barriers (membarrier) here; every publish pays a full \
                 fence"
                    .to_owned(),
            );
        }
        for w in &warnings {
            log::warn!("{w}");
        }
        let topics = Arc::new(Registry::new());
        let names = Arc::clone(&topics);
        let routes = Routes::default();
        let tracing = Tracing::new(
            self.sampler,
            self.tracing,
            Arc::new(move |index| names.name(index)),
            exporter_core(&cores),
            routes.epoch(),
        )
        .map_err(BuildError::Tracing)?;
        let shared = Arc::new(BusShared {
            gates: [Gate::new(), Gate::new()],
            routes,
            topics,
            wakers: Wakers::new(n),
            stalls: Stalls::new(n),
            wait: self.wait,
            catch_up_hints: crate::pause::catch_up_hints(self.catch_up_pause),
            record_publish_time: self.record_publish_time,
            tracing,
        });
        let mut control = Vec::with_capacity(n);
        let mut workers = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for (i, ((rings, inb), core)) in outbound.into_iter().zip(inbound).zip(cores).enumerate() {
            let (tx, rx) = chan::channel();
            let endpoint = Endpoint::new(rings, Arc::clone(&shared), Side::Worker);
            let live = Arc::new(CachePadded::new(WorkerLive::default()));
            workers.push(WorkerHandle {
                endpoint: Arc::clone(&endpoint.state),
                live: Arc::clone(&live),
            });
            let worker = Worker::new(i, Arc::clone(&shared), rx, inb, endpoint, core, live);
            let spawned = thread::Builder::new()
                .name(format!("tracebus-worker-{i}"))
                .spawn(move || worker.run());
            match spawned {
                Ok(handle) => {
                    control.push(tx);
                    handles.push(handle);
                }
                Err(e) => {
                    // Stop the workers already started (their channels close) before failing.
                    drop(control);
                    for h in handles {
                        let _ = h.join();
                    }
                    return Err(BuildError::Spawn(e.to_string()));
                }
            }
        }
        shared
            .wakers
            .set_threads(handles.iter().map(|h| h.thread().clone()).collect());
        Ok(Bus {
            shared,
            control,
            workers,
            publishers: Mutex::new(Publishers::default()),
            threads: handles,
            subs: Mutex::new(Subscriptions {
                by_id: HashMap::new(),
                per_worker: vec![0; n],
                next_id: 0,
            }),
            capacity: self.capacity,
            resident_rings: self.resident_rings,
            drain_timeout: self.drain_timeout,
            warnings,
        })
    }
}

/// A core for the span exporter thread that no worker is pinned to: the last such core this
/// process may use, or `None` (unpinned) when the workers are not pinned or use them all.
fn exporter_core(workers: &[Option<usize>]) -> Option<usize> {
    if workers.iter().all(Option::is_none) {
        return None;
    }
    crate::cores::usable()
        .into_iter()
        .rfind(|c| !workers.contains(&Some(*c)))
}

impl<S: SlotSize> Bus<S> {
    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.control.len()
    }

    /// The live tracing settings: switch on/off, sampler `k` and root policy.
    pub fn tracing(&self) -> &TracingControl {
        &self.shared.tracing.control
    }

    /// Starts tracing a bus that was built without it (or switches it back on), exporting where
    /// `export` says; no restart, nothing lost. A bus already exporting somewhere keeps that
    /// pipeline (and ignores `export`) and is switched on.
    pub fn trace_to(&self, export: SpanExport) -> Result<(), SpanExportError> {
        self.shared.tracing.start(export)
    }

    /// Warnings from building the bus (also logged through the `log` crate), such as running
    /// unpinned.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The topic named `name`, carrying messages of type `T`; made on first use. Asking again
    /// with the same name and type returns the same topic.
    ///
    /// `T` must fit the bus's payload area (at most [`SlotSize::PAYLOAD_BYTES`] bytes, alignment
    /// at most 8): a type that does not is refused when the program is built, with its size
    /// and the area's in the error (`cargo build` and `cargo test` report it; `cargo check`
    /// does not evaluate the check).
    ///
    /// ```compile_fail
    /// # use tracebus::Bus;
    /// let bus = Bus::builder().build().unwrap(); // one-line slots: 16 bytes of payload
    /// let too_big = bus.topic::<[u8; 17]>("too big"); // does not compile
    /// ```
    ///
    /// # Errors
    /// [`TopicError::TypeMismatch`] if `name` is a topic of another type (the error names
    /// both), [`TopicError::EmptyName`] for an empty name.
    pub fn topic<T: Pod>(&self, name: &str) -> Result<Topic<T>, TopicError> {
        let () = Fits::<T, S::Area>::OK;
        self.shared.topics.topic(name)
    }

    /// The name of `topic`.
    ///
    /// # Panics
    /// If `topic` was made by another bus.
    pub fn topic_name<T>(&self, topic: &Topic<T>) -> Arc<str> {
        self.shared.topics.check(topic);
        self.shared
            .topics
            .name(topic.index())
            .expect("a checked topic is registered")
    }

    fn send(&self, worker: usize, msg: Control<S>) -> Result<(), BusError> {
        self.control[worker]
            .send(msg)
            .map_err(|_| BusError::Closed)?;
        self.shared.wakers.wake(worker);
        Ok(())
    }

    /// Subscribes `handler` to `topic` on the worker with the fewest subscriptions. The handler
    /// reads each message in place ([`Message::payload`]) and may publish onward through its
    /// [`Outbox`]. Every message published after this returns reaches it. A message published
    /// before may reach it too, if it was still queued on that worker when the handler was
    /// installed (because its topic already had a subscriber there).
    ///
    /// Called from a handler (on one of this bus's workers), it does not wait for the worker
    /// to install the handler (that worker may be the caller, or waiting for it): the
    /// subscription takes effect once its worker finishes its current pass, and messages
    /// published before that may not reach it.
    ///
    /// # Panics
    /// If `topic` was made by another bus.
    pub fn subscribe<T, F>(&self, topic: &Topic<T>, handler: F) -> Result<SubscriptionId, BusError>
    where
        T: Pod,
        F: FnMut(&Message<'_, T>, &mut Outbox<'_, S>) + Send + 'static,
    {
        self.subscribe_where(None, topic, handler)
    }

    /// Subscribes `handler` to `topic` on worker `worker` (see [`Bus::subscribe`]).
    ///
    /// # Panics
    /// If `topic` was made by another bus.
    pub fn subscribe_on<T, F>(
        &self,
        worker: usize,
        topic: &Topic<T>,
        handler: F,
    ) -> Result<SubscriptionId, BusError>
    where
        T: Pod,
        F: FnMut(&Message<'_, T>, &mut Outbox<'_, S>) + Send + 'static,
    {
        self.subscribe_where(Some(worker), topic, handler)
    }

    fn subscribe_where<T, F>(
        &self,
        worker: Option<usize>,
        topic: &Topic<T>,
        handler: F,
    ) -> Result<SubscriptionId, BusError>
    where
        T: Pod,
        F: FnMut(&Message<'_, T>, &mut Outbox<'_, S>) + Send + 'static,
    {
        let name = self.topic_name(topic);
        let workers = self.workers();
        // The bookkeeping under the lock; never wait for a worker while holding it (a handler
        // that subscribes takes it too).
        let (id, w) = {
            let mut subs = lock(&self.subs);
            let w = match worker {
                Some(w) if w >= workers => {
                    return Err(BusError::NoSuchWorker { worker: w, workers })
                }
                Some(w) => w,
                None => (0..workers)
                    .min_by_key(|&w| subs.per_worker[w])
                    .unwrap_or(0),
            };
            subs.next_id += 1;
            let id = subs.next_id;
            subs.by_id.insert(id, w);
            subs.per_worker[w] += 1;
            (id, w)
        };
        let handler = crate::handler::erase::<S, T, F>(Arc::clone(&name), handler);
        // The worker installs the handler and only then publishes the route, so no message
        // reaches it before it knows the handler. A caller outside the bus waits for that; a
        // handler does not (see the docs).
        let (ack, done) = self.ack_channel();
        let sent = self.send(
            w,
            Control::Subscribe {
                id,
                topic: topic.index(),
                handler,
                ack,
            },
        );
        if let Err(e) = sent {
            let mut subs = lock(&self.subs);
            subs.by_id.remove(&id);
            subs.per_worker[w] -= 1;
            return Err(e);
        }
        if let Some(done) = done {
            done.recv().map_err(|_| BusError::Closed)?;
        }
        Ok(SubscriptionId(id))
    }

    /// An acknowledgement channel for a control message, or none when the caller is one of
    /// this bus's workers (a handler), which must not wait for a worker.
    #[allow(clippy::type_complexity)]
    fn ack_channel<A>(&self) -> (Option<Sender<A>>, Option<chan::Receiver<A>>) {
        if self.shared.wakers.current_worker().is_some() {
            return (None, None);
        }
        let (tx, rx) = chan::channel();
        (Some(tx), Some(rx))
    }

    /// Removes a subscription. Once this returns, its handler is never called again; messages
    /// still queued for it when it is removed may not reach it. Every message reaches every
    /// subscriber that stayed subscribed from before its publish until its delivery.
    ///
    /// Called from a handler, it does not wait: the handler is removed once its worker
    /// finishes its current pass (see [`Bus::subscribe`]).
    pub fn unsubscribe(&self, id: SubscriptionId) -> Result<(), BusError> {
        let w = {
            let mut subs = lock(&self.subs);
            let w = subs
                .by_id
                .remove(&id.0)
                .ok_or(BusError::NoSuchSubscription(id.0))?;
            subs.per_worker[w] -= 1;
            w
        };
        // The worker withdraws the route first, then drops the handler.
        let (ack, done) = self.ack_channel();
        self.send(w, Control::Unsubscribe { id: id.0, ack })?;
        if let Some(done) = done {
            done.recv().map_err(|_| BusError::Closed)?;
        }
        Ok(())
    }

    /// A new publishing handle with its own ring to every worker. `Send`, not `Sync`: one per
    /// producing thread.
    ///
    /// # Errors
    /// [`BusError::Closed`] once shutdown began; [`BusError::Ring`] if the rings' memory
    /// cannot be had.
    pub fn publisher(&self) -> Result<Publisher<S>, BusError> {
        if self.shared.gates[Side::External as usize].is_closed() {
            return Err(BusError::Closed);
        }
        let (rings, inbound) =
            rings_to(self.workers(), self.capacity, self.resident_rings).map_err(BusError::Ring)?;
        for (w, rx) in inbound.into_iter().enumerate() {
            self.send(w, Control::Inbound(rx))?;
        }
        let endpoint = Endpoint::new(rings, Arc::clone(&self.shared), Side::External);
        let mut publishers = lock(&self.publishers);
        publishers.prune();
        publishers.live.push(Arc::clone(&endpoint.state));
        Ok(Publisher { endpoint })
    }

    /// Counts from the running bus: messages published, handler calls, panics, refused onward
    /// publishes, copies still queued, and the span pipeline's counts. Cheap: loads of
    /// counters the endpoints and workers keep anyway (and a lock taken by publisher creation
    /// and shutdown only).
    pub fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        let (mut done, mut copies) = (0usize, 0usize);
        for w in &self.workers {
            let live = &w.live;
            stats.delivered += live.delivered.load(Ordering::Relaxed);
            stats.handler_panics += live.handler_panics.load(Ordering::Relaxed);
            done += live.done.load();
        }
        let mut publishers = lock(&self.publishers);
        publishers.prune();
        let mut messages = publishers.gone_messages;
        copies += publishers.gone_copies;
        let states = self.workers.iter().map(|w| &*w.endpoint);
        for state in states.chain(publishers.live.iter().map(|p| &**p)) {
            messages += state.sent.messages();
            copies += state.sent.copies();
            stats.refused_full += state.refused_full.load(Ordering::Relaxed);
            stats.refused_closed += state.refused_closed.load(Ordering::Relaxed);
        }
        stats.published = messages as u64;
        stats.queued = copies.saturating_sub(done) as u64;
        stats.spans = self.shared.tracing.counts();
        stats
    }

    /// Whether every message copy accepted so far has been handled and no handler runs (see
    /// `drain.rs`: every `done` load, then every `sent` load).
    fn quiescent(&self) -> bool {
        let publishers = lock(&self.publishers);
        let done = self.workers.iter().map(|w| &w.live.done);
        let sent = self.workers.iter().map(|w| &w.endpoint.sent);
        let sent = sent.chain(publishers.live.iter().map(|p| &p.sent));
        drain::quiescent(done, sent, publishers.gone_copies)
    }

    /// Waits until [`Bus::quiescent`] or `deadline` (`None`: no deadline); returns whether it
    /// got there.
    fn wait_quiescent(&self, deadline: Option<Instant>) -> bool {
        poll_until(deadline, || self.quiescent())
    }

    /// Waits until every message published before this call (by publishers whose publish
    /// returned before it) has been handled, with every onward publish it caused, and no
    /// handler is running: the bus is quiescent, as shutdown waits for it to be. Publishing
    /// goes on meanwhile; what is published during the wait may keep the bus busy longer.
    ///
    /// # Errors
    /// [`BusError::Timeout`] if the bus was not quiescent within `timeout` (a cycle of onward
    /// publishes, a slow stage, a steady stream of new messages);
    /// [`BusError::WouldDeadlock`] when called from a handler (it would wait for itself).
    pub fn flush(&self, timeout: Duration) -> Result<(), BusError> {
        if let Some(worker) = self.shared.wakers.current_worker() {
            return Err(BusError::WouldDeadlock { worker });
        }
        if self.wait_quiescent(Instant::now().checked_add(timeout)) {
            Ok(())
        } else {
            Err(BusError::Timeout { timeout })
        }
    }

    /// Shuts down with the drain deadline the bus was built with
    /// ([`BusBuilder::drain_timeout`], 30 s by default); see [`Bus::shutdown_timeout`].
    pub fn shutdown(mut self) -> Report {
        let drain = self.drain_timeout;
        self.stop(drain)
    }

    /// Shuts down: refuses new publishes from [`Publisher`]s, keeps the workers running
    /// while handlers publish onward until the bus is quiescent (every ring empty, no handler
    /// running) or `drain` has passed, then stops the workers, joins them and reports.
    ///
    /// - Drained (the usual case): every message accepted, onward ones included, reached
    ///   every subscriber it was addressed to; [`Report::lost`] is 0.
    /// - Not drained within `drain` (a cycle of onward publishes, a stage slower than the
    ///   deadline): handlers' publishes are refused from then on (counted in
    ///   [`Report::refused_closed`]), each worker stops after its current pass, and the
    ///   copies left in the rings are counted in [`Report::lost`].
    /// - A worker still inside a handler 1 s after the deadline is left behind (counted in
    ///   [`Report::workers_abandoned`]), and the span pipeline is given its own
    ///   [`SpanExport::shutdown_timeout`]; so this returns within `drain` + 1 s + that
    ///   timeout, whatever handlers and exporters do.
    pub fn shutdown_timeout(mut self, drain: Duration) -> Report {
        self.stop(drain)
    }

    fn stop(&mut self, drain: Duration) -> Report {
        if self.threads.is_empty() {
            return Report::default();
        }
        let deadline = Instant::now().checked_add(drain);
        // External publishes stop: after this, each accepted one is counted (its copies are
        // committed after their count, so the quiescence check waits for them), and no new
        // one comes.
        self.shared.gates[Side::External as usize].close();
        let drained = self.wait_quiescent(deadline);
        // Handlers' publishes stop too (none can come once quiescent; after the deadline
        // they are refused and counted).
        self.shared.gates[Side::Worker as usize].close();
        for w in 0..self.workers() {
            let _ = self.send(
                w,
                if drained {
                    Control::Drain
                } else {
                    Control::Stop
                },
            );
        }
        let mut report = Report {
            drain_timed_out: !drained,
            ..Report::default()
        };
        let bound = deadline
            .map(|d| d.max(Instant::now()))
            .and_then(|d| d.checked_add(STOP_GRACE));
        let joined = join_within(std::mem::take(&mut self.threads), bound);
        for (w, outcome) in self.workers.iter().zip(joined) {
            let r = match outcome {
                Joined::Done(r) => r,
                Joined::Died => {
                    report.worker_failures += 1;
                    w.last_report()
                }
                Joined::Abandoned => {
                    report.workers_abandoned += 1;
                    w.last_report()
                }
            };
            report.delivered += r.delivered;
            report.handler_panics += r.handler_panics;
            report.refused_full += r.refused_full;
            report.refused_closed += r.refused_closed;
            report.workers.push(r);
        }
        let mut publishers = lock(&self.publishers);
        publishers.prune();
        let mut messages = publishers.gone_messages;
        let mut copies = publishers.gone_copies;
        let states = self.workers.iter().map(|w| &*w.endpoint);
        for state in states.chain(publishers.live.iter().map(|p| &**p)) {
            messages += state.sent.messages();
            copies += state.sent.copies();
        }
        let done: usize = self.workers.iter().map(|w| w.live.done.load()).sum();
        report.published = messages as u64;
        report.lost = copies.saturating_sub(done) as u64;
        // After the workers stopped: a publish records its span before committing its copies,
        // so every publish whose copies were handled has recorded it (one still between its
        // count and its commit past the drain deadline is counted lost, and its span may come
        // too late for the export).
        report.spans = self.shared.tracing.shutdown();
        report
    }
}

impl WorkerHandle {
    /// A report from the worker's live counts, for a worker whose thread gave none.
    fn last_report(&self) -> WorkerReport {
        let live = &self.live;
        WorkerReport {
            delivered: live.delivered.load(Ordering::Relaxed),
            handler_panics: live.handler_panics.load(Ordering::Relaxed),
            messages: live.done.load() as u64,
            refused_full: self.endpoint.refused_full.load(Ordering::Relaxed),
            refused_closed: self.endpoint.refused_closed.load(Ordering::Relaxed),
            ..WorkerReport::default()
        }
    }
}

/// How a worker thread ended.
enum Joined {
    /// Returned its report.
    Done(WorkerReport),
    /// Panicked (a bug in tracebus: handler panics are caught).
    Died,
    /// Still running at the bound: left behind, detached.
    #[cfg_attr(tracebus_loom, allow(dead_code))] // loom joins without a bound
    Abandoned,
}

/// Joins `threads`, waiting for them until `bound` (`None`: as long as it takes).
fn join_within(
    threads: Vec<thread::JoinHandle<WorkerReport>>,
    bound: Option<Instant>,
) -> Vec<Joined> {
    let join = |h: thread::JoinHandle<WorkerReport>| match h.join() {
        Ok(r) => Joined::Done(r),
        Err(_) => Joined::Died,
    };
    #[cfg(tracebus_loom)]
    {
        let _ = bound;
        threads.into_iter().map(join).collect()
    }
    #[cfg(not(tracebus_loom))]
    {
        poll_until(bound, || threads.iter().all(|h| h.is_finished()));
        threads
            .into_iter()
            .map(|h| {
                if h.is_finished() || bound.is_none() {
                    join(h)
                } else {
                    Joined::Abandoned // dropping the handle detaches the thread
                }
            })
            .collect()
    }
}

impl<S: SlotSize> std::fmt::Debug for Bus<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("workers", &self.workers())
            .field("payload_bytes", &S::PAYLOAD_BYTES)
            .field("capacity", &self.capacity)
            .field("wait", &self.shared.wait)
            .field("drain_timeout", &self.drain_timeout)
            .field("tracing", &self.shared.tracing.control.is_enabled())
            .field("running", &!self.threads.is_empty())
            .finish_non_exhaustive()
    }
}

impl<S: SlotSize> Drop for Bus<S> {
    /// Dropping a bus shuts it down (as [`Bus::shutdown`]) and joins the workers.
    fn drop(&mut self) {
        let drain = self.drain_timeout;
        self.stop(drain);
    }
}

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    use super::exporter_core;

    #[test]
    fn the_exporter_thread_gets_a_core_no_worker_is_pinned_to() {
        assert_eq!(
            exporter_core(&[None, None]),
            None,
            "unpinned workers: unpinned exporter"
        );
        let cores = crate::cores::usable();
        let Some(&first) = cores.first() else {
            return; // no affinity support here
        };
        let picked = exporter_core(&[Some(first)]);
        if cores.len() == 1 {
            assert_eq!(picked, None, "the only core is the worker's");
        } else {
            let picked = picked.expect("a free core");
            assert_ne!(picked, first);
            assert!(cores.contains(&picked));
        }
        let all: Vec<Option<usize>> = cores.iter().map(|&c| Some(c)).collect();
        assert_eq!(exporter_core(&all), None, "every core has a worker");
    }
}
