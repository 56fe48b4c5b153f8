//! `Bus`: builds the workers and the SPSC mesh, manages subscriptions and publishers, and shuts
//! down with every accepted message delivered.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytemuck::Pod;
use crossbeam_utils::CachePadded;

use crate::config::{BuildError, BusBuilder};
use crate::endpoint::{Endpoint, EndpointState, Published};
use crate::error::{BatchError, BusError, PublishError};
use crate::gate::Gate;
use crate::handler::{Context, Delivery};
use crate::ring::{self, Consumer, Producer};
use crate::routing::{Routes, Topic};
use crate::slot::Slot;
use crate::sync::chan::{self, Sender};
use crate::sync::{lock, thread, Mutex, Ordering};
use crate::telemetry::{Tracing, TracingControl};
use crate::wait::{Sleeper, WaitStrategy};
use crate::worker::{Control, Worker, WorkerReport};

/// State every endpoint and worker of one bus shares.
pub(crate) struct BusShared {
    /// Closed once by shutdown; publishes pass through it (see `gate.rs`).
    pub(crate) gate: Gate,
    pub(crate) routes: Routes,
    pub(crate) sleepers: Vec<CachePadded<Sleeper>>,
    /// The worker threads, for unparking; set right after they are spawned.
    pub(crate) threads: OnceLock<Vec<thread::Thread>>,
    pub(crate) wait: WaitStrategy,
    pub(crate) record_publish_time: bool,
    pub(crate) epoch: Instant,
    /// The tracer and sampler, when the bus traces.
    pub(crate) tracing: Option<Tracing>,
}

impl BusShared {
    /// Unparks worker `w` (a no-op before the threads exist).
    pub(crate) fn wake(&self, w: usize) {
        if let Some(threads) = self.threads.get() {
            threads[w].unpark();
        }
    }
}

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
    /// Publishes accepted with at least one subscriber (each counted once, whatever its fanout).
    pub published: u64,
    /// Handler calls that returned, over all workers.
    pub delivered: u64,
    /// Handler calls that panicked and were caught.
    pub handler_panics: u64,
    /// Per worker, in order.
    pub workers: Vec<WorkerReport>,
    /// Worker threads that died (not a handler panic: a bug in tracebus); 0 expected.
    pub worker_failures: u64,
}

/// A message bus for payloads of type `T`. See the crate docs for an example.
pub struct Bus<T: Pod + Send> {
    shared: Arc<BusShared>,
    control: Vec<Sender<Control<T>>>,
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
    by_id: HashMap<u64, (Topic, usize)>,
    per_worker: Vec<usize>,
}

impl Bus<()> {
    /// Starts building a bus (finish with [`BusBuilder::build`]).
    pub fn builder() -> BusBuilder {
        BusBuilder::default()
    }
}

impl BusBuilder {
    /// Checks the settings and starts the workers.
    pub fn build<T: Pod + Send>(self) -> Result<Bus<T>, BuildError> {
        let (cores, warnings) = self.validate::<Slot<T>>()?;
        for w in &warnings {
            eprintln!("{w}");
        }
        let n = self.workers;
        let shared = Arc::new(BusShared {
            gate: Gate::new(),
            routes: Routes::default(),
            sleepers: (0..n).map(|_| CachePadded::new(Sleeper::new())).collect(),
            threads: OnceLock::new(),
            wait: self.wait,
            record_publish_time: self.record_publish_time,
            epoch: Instant::now(),
            tracing: self.tracer.map(|t| Tracing::new(t, self.sampler)),
        });
        // The mesh: worker s has a ring to every worker d (itself included).
        let mut inbound: Vec<Vec<Consumer<Slot<T>>>> = (0..n).map(|_| Vec::new()).collect();
        let mut outbound: Vec<Vec<Producer<Slot<T>>>> = (0..n).map(|_| Vec::new()).collect();
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
        let _ = shared
            .threads
            .set(handles.iter().map(|h| h.thread().clone()).collect());
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

impl<T: Pod + Send> Bus<T> {
    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.control.len()
    }

    /// The live tracing settings (switch on/off, sampler `k` and root policy), if the bus was
    /// built with a tracer.
    pub fn tracing(&self) -> Option<&TracingControl> {
        self.shared.tracing.as_ref().map(|t| &t.control)
    }

    /// Warnings from building the bus (also printed to stderr), such as running unpinned.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn send(&self, worker: usize, msg: Control<T>) -> Result<(), BusError> {
        self.control[worker]
            .send(msg)
            .map_err(|_| BusError::Closed)?;
        self.shared.wake(worker);
        Ok(())
    }

    /// Subscribes `handler` to `topic` on `worker` (or, with `None`, on the worker with the
    /// fewest subscriptions). Every message published after this returns reaches it. A message
    /// published before may reach it too, if it was still queued on that worker when the handler
    /// was installed (because its topic already had a subscriber there).
    ///
    /// This waits for the worker to take the handler, so do not call it (or
    /// [`Bus::unsubscribe`]) from a handler running on that worker: it would wait for itself.
    pub fn subscribe<F>(
        &self,
        topic: Topic,
        worker: Option<usize>,
        handler: F,
    ) -> Result<SubscriptionId, BusError>
    where
        F: FnMut(&Delivery<'_, T>, &mut Context<'_, T>) + Send + 'static,
    {
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
        let (ack, done) = chan::channel();
        // The worker knows the handler before any publisher can route to it.
        self.send(
            w,
            Control::Subscribe {
                id,
                topic,
                handler: Box::new(handler),
                ack,
            },
        )?;
        done.recv().map_err(|_| BusError::Closed)?;
        self.shared.routes.update(topic, w, true);
        subs.by_id.insert(id, (topic, w));
        subs.per_worker[w] += 1;
        Ok(SubscriptionId(id))
    }

    /// Removes a subscription. Once this returns, its handler is never called again; messages
    /// still queued for it when it is removed may not reach it. Every message reaches every
    /// subscriber that stayed subscribed from before its publish until its delivery.
    pub fn unsubscribe(&self, id: SubscriptionId) -> Result<(), BusError> {
        let mut subs = lock(&self.subs);
        let (topic, w) = subs
            .by_id
            .remove(&id.0)
            .ok_or(BusError::NoSuchSubscription(id.0))?;
        subs.per_worker[w] -= 1;
        // Publishers stop routing to it first; then the worker drops the handler.
        self.shared.routes.update(topic, w, false);
        let (ack, done) = chan::channel();
        self.send(w, Control::Unsubscribe { id: id.0, ack })?;
        done.recv().map_err(|_| BusError::Closed)?;
        Ok(())
    }

    /// A new publishing handle with its own ring to every worker. `Send`, not `Sync`: one per
    /// producing thread.
    pub fn publisher(&self) -> Result<Publisher<T>, BusError> {
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
        report
    }
}

impl<T: Pod + Send> Drop for Bus<T> {
    /// Dropping a bus shuts it down (every accepted message is delivered) and joins the workers.
    fn drop(&mut self) {
        self.stop();
    }
}

/// A publishing handle (see [`Bus::publisher`]).
pub struct Publisher<T: Pod + Send> {
    endpoint: Endpoint<T>,
}

impl<T: Pod + Send> Publisher<T> {
    /// Publishes `payload` to `topic`, waiting with backoff while a destination ring is full.
    /// Reports the fanout (0: nobody subscribed, nothing written).
    pub fn publish(&mut self, topic: Topic, payload: T) -> Result<Published, PublishError<T>> {
        self.endpoint.publish(topic, payload)
    }

    /// Publishes without waiting: every destination gets the message, or the caller gets it
    /// back with the reason.
    pub fn try_publish(&mut self, topic: Topic, payload: T) -> Result<Published, PublishError<T>> {
        self.endpoint.try_publish(topic, payload)
    }

    /// Publishes `payloads` in order, each destination ring receiving them as one batch (one
    /// commit), without waiting: all reach every destination, or none does.
    pub fn try_publish_batch(
        &mut self,
        topic: Topic,
        payloads: &[T],
    ) -> Result<Published, BatchError> {
        self.endpoint.try_publish_batch(topic, payloads)
    }

    /// Publishes `payloads` in order, in batches of at most a ring's capacity, waiting while a
    /// destination ring lacks room. On [`BatchError::Closed`], the payloads before `published`
    /// were accepted and the rest were not.
    pub fn publish_batch(&mut self, topic: Topic, payloads: &[T]) -> Result<Published, BatchError> {
        self.endpoint.publish_batch(topic, payloads)
    }
}
