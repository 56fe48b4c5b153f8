//! `Bus`: builds the workers and the SPSC mesh, owns the topics, manages subscriptions and
//! publishers, and shuts down with every accepted message delivered.

use std::collections::HashMap;
use std::sync::Arc;

use bytemuck::Pod;
use crossbeam_utils::CachePadded;

use crate::config::{BuildError, BusBuilder};
use crate::endpoint::{Endpoint, EndpointState};
use crate::error::BusError;
use crate::gate::Gate;
use crate::handler::{Message, Outbox};
use crate::layout::{Fits, Lines, SlotSize};
use crate::publisher::Publisher;
use crate::ring::{self, Consumer, Producer};
use crate::routing::Routes;
use crate::shared::BusShared;
use crate::slot::Slot;
use crate::spans::{SpanCounts, SpanExport, SpanExportError};
use crate::sync::chan::{self, Sender};
use crate::sync::{lock, thread, Mutex, Ordering};
use crate::telemetry::{Tracing, TracingControl};
use crate::topic::{Registry, Topic, TopicError};
use crate::wait::Wakers;
use crate::worker::{Control, Handler, Worker, WorkerReport};

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

/// Counts from a [`Bus::shutdown`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Messages accepted with at least one subscriber (each counted once, whatever its fanout;
    /// a batch counts its messages).
    pub published: u64,
    /// Handler calls that returned, over all workers.
    pub delivered: u64,
    /// Handler calls that panicked and were caught.
    pub handler_panics: u64,
    /// Per worker, in order.
    pub workers: Vec<WorkerReport>,
    /// Worker threads that died (not a handler panic: a bug in tracebus); 0 expected.
    pub worker_failures: u64,
    /// What the span pipeline did: spans exported, dropped (a full record ring), export
    /// failures (all zero for a bus that never traced).
    pub spans: SpanCounts,
}

/// A message bus whose slots have the size `S` (default one cache line: 16 bytes of payload;
/// see [`crate::layout`]). See the crate docs for an example.
pub struct Bus<S: SlotSize = Lines<1>> {
    shared: Arc<BusShared>,
    control: Vec<Sender<Control<S>>>,
    /// Every endpoint's shutdown state: the workers' and every publisher's.
    endpoints: Mutex<Vec<Arc<EndpointState>>>,
    threads: Vec<thread::JoinHandle<WorkerReport>>,
    /// Live subscriptions: id -> (topic, worker), and how many each worker has.
    subs: Mutex<Subscriptions>,
    next_id: Mutex<u64>,
    capacity: usize,
    warnings: Vec<String>,
}

/// The bus's record of live subscriptions.
#[derive(Default)]
struct Subscriptions {
    by_id: HashMap<u64, (u32, Arc<str>, usize)>,
    per_worker: Vec<usize>,
}

impl Bus {
    /// Starts building a bus (finish with [`BusBuilder::build`]).
    pub fn builder() -> BusBuilder {
        BusBuilder::default()
    }
}

impl<S: SlotSize> BusBuilder<S> {
    /// Checks the settings and starts the workers.
    pub fn build(self) -> Result<Bus<S>, BuildError> {
        let (cores, mut warnings) = self.validate::<Slot<S::Area>>()?;
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
        let n = self.workers;
        let topics = Arc::new(Registry::new());
        let names = Arc::clone(&topics);
        let tracing = Tracing::new(
            self.sampler,
            self.tracing,
            Arc::new(move |index| names.name(index)),
            exporter_core(&cores),
        )
        .map_err(BuildError::Tracing)?;
        let shared = Arc::new(BusShared {
            gate: Gate::new(),
            routes: Routes::default(),
            topics,
            wakers: Wakers::new(n),
            wait: self.wait,
            record_publish_time: self.record_publish_time,
            tracing,
        });
        // The mesh: worker s has a ring to every worker d (itself included).
        let mut inbound: Vec<Vec<Consumer<Slot<S::Area>>>> = (0..n).map(|_| Vec::new()).collect();
        let mut outbound: Vec<Vec<Producer<Slot<S::Area>>>> = (0..n).map(|_| Vec::new()).collect();
        for out in outbound.iter_mut() {
            for inb in inbound.iter_mut() {
                let (tx, rx) =
                    ring::spsc(self.capacity).map_err(|reason| BuildError::Capacity {
                        capacity: self.capacity,
                        reason,
                    })?;
                out.push(tx);
                inb.push(rx);
            }
        }
        let mut control = Vec::with_capacity(n);
        let mut endpoints = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for (i, ((rings, inb), core)) in outbound.into_iter().zip(inbound).zip(cores).enumerate() {
            let (tx, rx) = chan::channel();
            let endpoint = Endpoint::new(rings, Arc::clone(&shared));
            endpoints.push(Arc::clone(&endpoint.state));
            let worker = Worker::new(i, Arc::clone(&shared), rx, inb, endpoint, core);
            let handle = thread::Builder::new()
                .name(format!("tracebus-worker-{i}"))
                .spawn(move || worker.run())
                .map_err(|e| BuildError::Spawn(e.to_string()))?;
            control.push(tx);
            handles.push(handle);
        }
        shared
            .wakers
            .set_threads(handles.iter().map(|h| h.thread().clone()).collect());
        Ok(Bus {
            shared,
            control,
            endpoints: Mutex::new(endpoints),
            threads: handles,
            subs: Mutex::new(Subscriptions {
                by_id: HashMap::new(),
                per_worker: vec![0; n],
            }),
            next_id: Mutex::new(0),
            capacity: self.capacity,
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
    /// at most 8): a type that does not is refused when the program is compiled.
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
    /// This waits for the worker to take the handler, so do not call it (or
    /// [`Bus::unsubscribe`]) from a handler running on that worker: it would wait for itself.
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
        let mut subs = lock(&self.subs);
        let w = match worker {
            Some(w) if w >= workers => return Err(BusError::NoSuchWorker { worker: w, workers }),
            Some(w) => w,
            None => (0..workers)
                .min_by_key(|&w| subs.per_worker[w])
                .unwrap_or(0),
        };
        let id = {
            let mut next = lock(&self.next_id);
            *next += 1;
            *next
        };
        // The message type is erased here: the worker hands the slot over, this closure reads
        // its `T` in place (the topic's type, which the registry keeps unique per name).
        // The handler's state on cache lines of its own: a worker writes it on every message,
        // and a neighbour on its line (another worker's handler, a publisher's ring state)
        // would bounce it between cores.
        let mut handler = CachePadded::new(handler);
        let handler: Handler<S> = Box::new(
            move |slot: &Slot<S::Area>, name: &str, out: &mut Outbox<'_, S>| {
                let msg = Message {
                    payload: slot.payload::<T>(),
                    header: slot.header(),
                    topic: name,
                    published: slot.publish_tick(),
                };
                (*handler)(&msg, out)
            },
        );
        let (ack, done) = chan::channel();
        // The worker knows the handler before any publisher can route to it.
        self.send(
            w,
            Control::Subscribe {
                id,
                topic: topic.index(),
                name: Arc::clone(&name),
                handler,
                ack,
            },
        )?;
        done.recv().map_err(|_| BusError::Closed)?;
        self.shared.routes.update(topic.index(), &name, w, true);
        subs.by_id.insert(id, (topic.index(), name, w));
        subs.per_worker[w] += 1;
        Ok(SubscriptionId(id))
    }

    /// Removes a subscription. Once this returns, its handler is never called again; messages
    /// still queued for it when it is removed may not reach it. Every message reaches every
    /// subscriber that stayed subscribed from before its publish until its delivery.
    pub fn unsubscribe(&self, id: SubscriptionId) -> Result<(), BusError> {
        let mut subs = lock(&self.subs);
        let (topic, name, w) = subs
            .by_id
            .remove(&id.0)
            .ok_or(BusError::NoSuchSubscription(id.0))?;
        subs.per_worker[w] -= 1;
        // Publishers stop routing to it first; then the worker drops the handler.
        self.shared.routes.update(topic, &name, w, false);
        let (ack, done) = chan::channel();
        self.send(w, Control::Unsubscribe { id: id.0, ack })?;
        done.recv().map_err(|_| BusError::Closed)?;
        Ok(())
    }

    /// A new publishing handle with its own ring to every worker. `Send`, not `Sync`: one per
    /// producing thread.
    pub fn publisher(&self) -> Result<Publisher<S>, BusError> {
        if self.shared.gate.is_closed() {
            return Err(BusError::Closed);
        }
        let mut rings = Vec::with_capacity(self.workers());
        for w in 0..self.workers() {
            let (tx, rx) = ring::spsc(self.capacity).expect("capacity validated at build");
            self.send(w, Control::Inbound(rx))?;
            rings.push(tx);
        }
        let endpoint = Endpoint::new(rings, Arc::clone(&self.shared));
        lock(&self.endpoints).push(Arc::clone(&endpoint.state));
        Ok(Publisher { endpoint })
    }

    /// Stops new publishes, delivers every message already accepted to every subscriber it was
    /// addressed to, joins the workers and reports.
    pub fn shutdown(mut self) -> Report {
        self.stop()
    }

    fn stop(&mut self) -> Report {
        if self.threads.is_empty() {
            return Report::default();
        }
        let endpoints = lock(&self.endpoints).clone();
        // After this, every accepted publish has committed; the `Drain` sent below carries
        // that to the workers.
        self.shared.gate.close(endpoints.iter().map(|e| &e.busy));
        for w in 0..self.workers() {
            let _ = self.send(w, Control::Drain);
        }
        let mut report = Report::default();
        for h in self.threads.drain(..) {
            match h.join() {
                Ok(r) => {
                    report.delivered += r.delivered;
                    report.handler_panics += r.handler_panics;
                    report.workers.push(r);
                }
                Err(_) => {
                    report.worker_failures += 1;
                    report.workers.push(WorkerReport::default());
                }
            }
        }
        report.published = endpoints
            .iter()
            .map(|e| e.published.load(Ordering::Relaxed) as u64)
            .sum();
        // After the workers joined and every publish left the gate: every span was recorded.
        report.spans = self.shared.tracing.shutdown();
        report
    }
}

impl<S: SlotSize> Drop for Bus<S> {
    /// Dropping a bus shuts it down (every accepted message is delivered) and joins the workers.
    fn drop(&mut self) {
        self.stop();
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
