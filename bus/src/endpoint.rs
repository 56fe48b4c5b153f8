//! An endpoint: one producer of messages (an external [`crate::Publisher`] or a worker), with
//! its own SPSC ring to every worker, so no ring ever has two producers and the data path needs
//! no CAS.
//!
//! A publish to a topic with subscribers on `k` workers writes one slot into each of the `k`
//! rings. Because this endpoint is the only producer of those rings, it checks that all `k` have
//! room first and only then writes: either every destination gets the message or the caller
//! gets it back. Free space cannot shrink between the check and the write.
//!
//! Every publish passes the bus's shutdown [`Gate`](crate::gate::Gate): it is refused once
//! shutdown began, or shutdown waits for it, so each accepted message is in its rings before the
//! workers are told to drain.

use std::sync::Arc;
use std::time::Instant;

use crate::error::{BatchError, PublishError};
use crate::gate::Busy;
use crate::ring::Producer;
use crate::routing::{RouteCache, Topic};
use crate::slot::Slot;
use crate::sync::{AtomicUsize, Ordering};
use crate::wait::WaitStrategy;
use crate::BusShared;
use bytemuck::Pod;
use tracebus_context::TraceContext;

/// The part of an endpoint that shutdown and the report read.
#[derive(Debug, Default)]
pub(crate) struct EndpointState {
    /// Set for the duration of a publish (see [`crate::gate`]).
    pub(crate) busy: Busy,
    /// Publishes accepted with fanout >= 1. Written only by the owner.
    pub(crate) published: AtomicUsize,
}

/// The result of an accepted publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Subscribers the message was addressed to (0: nobody subscribed, nothing written).
    pub fanout: usize,
    /// Workers (rings) it was written to.
    pub workers: usize,
}

pub(crate) struct Endpoint<T: Pod + Send> {
    out: Out<T>,
    pub(crate) state: Arc<EndpointState>,
    bus: Arc<BusShared>,
}

/// What a publish writes through, borrowed apart from the rest of the endpoint.
struct Out<T: Pod + Send> {
    /// `rings[w]` goes to worker `w`.
    rings: Vec<Producer<Slot<T>>>,
    routes: RouteCache,
    /// Bus epoch, for publish times.
    epoch: Instant,
}

impl<T: Pod + Send> Endpoint<T> {
    pub(crate) fn new(rings: Vec<Producer<Slot<T>>>, bus: Arc<BusShared>) -> Self {
        let routes = bus.routes.cache();
        let epoch = bus.epoch;
        Endpoint {
            out: Out {
                rings,
                routes,
                epoch,
            },
            state: Arc::default(),
            bus,
        }
    }

    /// Runs `f` inside the shutdown gate (`None` when the gate is closed) and counts the
    /// `count` messages it published.
    #[inline]
    fn gated<E>(
        &mut self,
        count: usize,
        f: impl FnOnce(Option<(&mut Out<T>, &BusShared)>) -> Result<Published, E>,
    ) -> Result<Published, E> {
        let gate = &self.bus.gate;
        let open = gate.enter(&self.state.busy);
        let result = f(open.then_some((&mut self.out, &*self.bus)));
        gate.leave(&self.state.busy);
        if result.as_ref().is_ok_and(|p| p.fanout > 0) {
            let p = &self.state.published;
            p.store(p.load(Ordering::Relaxed) + count, Ordering::Relaxed);
        }
        result
    }

    /// Publishes without waiting, from outside a handler (may start a trace): delivered to
    /// every subscriber's worker, or handed back.
    #[inline]
    pub(crate) fn try_publish(
        &mut self,
        topic: Topic,
        payload: T,
    ) -> Result<Published, PublishError<T>> {
        self.try_publish_from(topic, payload, None)
    }

    /// Publishes without waiting. `parent`: `None` from outside a handler; from a handler,
    /// `Some` of its trace context (`Some(None)` when its message is not traced), so the
    /// publish only continues that trace.
    #[inline]
    pub(crate) fn try_publish_from(
        &mut self,
        topic: Topic,
        payload: T,
        parent: Option<Option<TraceContext>>,
    ) -> Result<Published, PublishError<T>> {
        self.gated(1, |open| {
            let Some((out, bus)) = open else {
                return Err(PublishError::Closed(payload));
            };
            out.write(bus, topic, core::slice::from_ref(&payload), parent)
                .map_err(|e| match e {
                    BatchError::Full { worker } => PublishError::Full { payload, worker },
                    // One message always fits a ring, and `write` does not see the gate.
                    BatchError::TooLarge { .. } | BatchError::Closed { .. } => {
                        unreachable!("a single message is never too large or closed here")
                    }
                })
        })
    }

    /// Publishes `payloads` in order as one batch per destination ring (one commit each),
    /// without waiting: all of them reach every destination, or none does.
    pub(crate) fn try_publish_batch(
        &mut self,
        topic: Topic,
        payloads: &[T],
    ) -> Result<Published, BatchError> {
        self.gated(payloads.len(), |open| match open {
            Some((out, bus)) => out.write(bus, topic, payloads, None),
            None => Err(BatchError::Closed { published: 0 }),
        })
    }

    /// Publishes `payloads` in order, in batches of at most a ring's capacity, waiting with
    /// backoff while a destination ring lacks room.
    pub(crate) fn publish_batch(
        &mut self,
        topic: Topic,
        payloads: &[T],
    ) -> Result<Published, BatchError> {
        let capacity = self.out.rings.first().map_or(1, |r| r.capacity());
        let mut last = Published {
            fanout: 0,
            workers: 0,
        };
        for (i, chunk) in payloads.chunks(capacity).enumerate() {
            let backoff = crossbeam_utils::Backoff::new();
            last = loop {
                match self.try_publish_batch(topic, chunk) {
                    Err(BatchError::Full { .. }) if backoff.is_completed() => {
                        crate::sync::thread::yield_now()
                    }
                    Err(BatchError::Full { .. }) => backoff.snooze(),
                    Err(BatchError::Closed { .. }) => {
                        return Err(BatchError::Closed {
                            published: i * capacity,
                        })
                    }
                    other => break other?,
                }
            };
        }
        Ok(last)
    }

    /// Publishes, waiting with backoff while a destination ring is full.
    pub(crate) fn publish(
        &mut self,
        topic: Topic,
        payload: T,
    ) -> Result<Published, PublishError<T>> {
        let backoff = crossbeam_utils::Backoff::new();
        let mut payload = payload;
        loop {
            match self.try_publish(topic, payload) {
                Err(PublishError::Full { payload: back, .. }) => {
                    payload = back;
                    if backoff.is_completed() {
                        crate::sync::thread::yield_now();
                    } else {
                        backoff.snooze();
                    }
                }
                other => return other,
            }
        }
    }
}

impl<T: Pod + Send> Out<T> {
    /// A publish inside the gate: route, check room for all of `payloads` on every destination
    /// ring, then claim, fill and commit each ring once (a single message is a batch of one).
    ///
    /// The sampling decision is made here, once, from the fanout: a batch is one publish and
    /// all its messages carry the same header. `parent`: `None` for an external publish (may
    /// start a trace), `Some(context)` for a handler's (only continues it).
    fn write(
        &mut self,
        bus: &BusShared,
        topic: Topic,
        payloads: &[T],
        parent: Option<Option<TraceContext>>,
    ) -> Result<Published, BatchError> {
        let Out {
            rings,
            routes,
            epoch,
        } = self;
        bus.routes.refresh(routes);
        let Some(route) = routes.get(topic) else {
            return Ok(Published {
                fanout: 0,
                workers: 0,
            });
        };
        let n = payloads.len();
        for &(w, _) in &route.workers {
            let capacity = rings[w].capacity();
            if n > capacity {
                return Err(BatchError::TooLarge { len: n, capacity });
            }
            if !rings[w].has_room(n) {
                return Err(BatchError::Full { worker: w });
            }
        }
        let sampled = bus.tracing.as_ref().and_then(|t| match parent {
            Some(handler_ctx) => t.decide(topic, route.fanout, handler_ctx.as_ref(), true),
            None => t.decide(topic, route.fanout, None, false),
        });
        let header = sampled.as_ref().map(|s| s.header);
        // Sampled messages always carry their publish time (the process span reports it).
        let publish_ns = (bus.record_publish_time || sampled.is_some())
            .then(|| epoch.elapsed().as_nanos() as u64);
        for &(w, _) in &route.workers {
            let Ok(mut claim) = rings[w].claim(n) else {
                unreachable!("room was checked and this endpoint is the ring's only producer");
            };
            for &payload in payloads {
                if claim
                    .push(Slot::new(topic, header.as_ref(), publish_ns, payload))
                    .is_err()
                {
                    unreachable!("the claim holds n slots");
                }
            }
            claim.commit();
        }
        if bus.wait == WaitStrategy::SpinThenPark {
            // One fence for all destinations (see `wait::after_commit`).
            crate::wait::after_commit();
            for &(w, _) in &route.workers {
                if bus.sleepers[w].is_sleeping() {
                    bus.wake(w);
                }
            }
        }
        if let Some(s) = sampled {
            s.end();
        }
        Ok(Published {
            fanout: route.fanout,
            workers: route.workers.len(),
        })
    }
}
