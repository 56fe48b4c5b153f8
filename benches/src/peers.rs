//! The systems busbench measures, each in its idiomatic best form, in one place: tracebus's SPSC
//! ring and its bus, and the peers a user would embed instead (rtrb, the `disruptor` crate,
//! crossbeam-channel, crossbeam's `ArrayQueue`, std's `sync_channel`). What is here: how each
//! system is built for a capacity and a message type, and every call its sending and receiving
//! sides make. The sections (`spsc`, `bus_vs_peers`, `latency_at_rate`) are harnesses generic
//! over these traits; they decide what to send, when, and what to time.
//!
//! Two shapes of system:
//!
//! - [`Queue`]: a bounded single-producer, single-consumer pair whose two ends the harness drives
//!   from threads of its own: [`Ring`], [`Rtrb`], [`CrossbeamChannel`], [`ArrayQueue`],
//!   [`SyncChannel`], and [`Disruptor`] with an event poller as its consumer. Each sends one
//!   message per call ([`Queue::try_send`]) and receives one per call ([`Queue::try_recv`]) or,
//!   the fastest way it offers, everything available ([`Queue::read`]: in place, as one chunk,
//!   where the queue has such an API). [`BatchQueue`]: the queues with a batch producer API.
//! - [`Peer`]: a system delivering `u64` messages from a publishing thread to a handler that runs
//!   on a consumer core: the bus ([`Bus`]), the disruptor with the processor thread it runs
//!   itself ([`Disruptor`]), and any queue with a consumer thread that runs the handler over its
//!   [`Queue::read`] ([`Queued`]). A publish waits for room. [`BatchPeer`]: the peers with a
//!   batch publish (the bus and the disruptor).
//!
//! Messages ([`Payload`]) are `u64` (as users of the peers write it), [`Msg64`] (a 64-byte,
//! 64-aligned struct) or, for tracebus, its one-line slot [`LineSlot`] (trace header, metadata
//! and the `u64` in its payload area; with the ring's stamp, one cache line).
//!
//! Threads ([`Cores`]): the publishing side on the first of two cores, the consuming side on the
//! second. Systems that start their own consumer thread (the bus's worker, the disruptor's
//! processor) are asked to pin it; the publishing thread pins itself only once the system is
//! built, since both check the core they are asked for against the calling thread's affinity.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use disruptor::{
    BusySpin, EventPoller, Polling, ProcessorSettings as _, Producer as _, SingleConsumerBarrier,
    SingleProducer, SingleProducerBarrier,
};
use tracebus::slot::LineSlot;
use tracebus::{Pinning, Report, Topic, WaitStrategy};

/// Ring or queue capacity of every system, in messages.
pub const CAPACITY: usize = 4096;

/// Messages per call of a batch API (the most a batch send moves).
pub const BATCH: usize = 64;

/// The 64-byte message the peers carry.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
pub struct Msg64 {
    /// Sequence number (the `u64` the message stands for).
    pub seq: u64,
    /// Filler up to 64 bytes.
    pub pad: [u64; 7],
}

const _: () = assert!(core::mem::size_of::<Msg64>() == 64);
const _: () = assert!(core::mem::size_of::<LineSlot>() <= tracebus::slot::CACHE_LINE - 8);

/// A message as a system carries it: made from the `u64` it stands for, which the receiving side
/// reads back.
pub trait Payload: Copy + Send + Sync + 'static {
    /// The message carrying `v`.
    fn make(v: u64) -> Self;
    /// The `u64` the message carries.
    fn value(&self) -> u64;
    /// Makes `self`, a message already in place, carry `v`, writing only what differs between
    /// messages (by default the whole message).
    #[inline(always)]
    fn set(&mut self, v: u64) {
        *self = Self::make(v);
    }
}

impl Payload for u64 {
    #[inline(always)]
    fn make(v: u64) -> Self {
        v
    }
    #[inline(always)]
    fn value(&self) -> u64 {
        *self
    }
}

impl Payload for Msg64 {
    #[inline(always)]
    fn make(v: u64) -> Self {
        Msg64 {
            seq: v,
            pad: [0; 7],
        }
    }
    #[inline(always)]
    fn value(&self) -> u64 {
        self.seq
    }
    /// The sequence number alone: every message's filler is the same.
    #[inline(always)]
    fn set(&mut self, v: u64) {
        self.seq = v;
    }
}

impl Payload for LineSlot {
    /// A slot on topic index 0 with no trace context and no publish time.
    #[inline(always)]
    fn make(v: u64) -> Self {
        LineSlot::new(0, None, None, &v)
    }
    #[inline(always)]
    fn value(&self) -> u64 {
        *self.payload::<u64>()
    }
}

/// A system's name in the reports and the JSON documents.
pub trait Named {
    /// The name.
    const NAME: &'static str;
}

/// A bounded SPSC queue whose two ends the harness drives (see the module docs).
pub trait Queue: Named {
    /// The message it carries.
    type Msg: Payload;
    /// Sending side.
    type Tx: Send + 'static;
    /// Receiving side.
    type Rx: Send + 'static;
    /// A queue of at least `capacity` messages.
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx);
    /// Sends `m` with the queue's one-message call, without waiting; gives it back when full.
    fn try_send(tx: &mut Self::Tx, m: Self::Msg) -> Result<(), Self::Msg>;
    /// Receives one message with the queue's one-message call, without waiting, passing it to
    /// `f`; returns 1, or 0 when empty.
    fn try_recv(rx: &mut Self::Rx, f: &mut impl FnMut(&Self::Msg)) -> usize;
    /// Receives what is waiting, up to `max`, the fastest way the queue offers (by default one
    /// [`Queue::try_recv`]), passing each message to `f`; returns how many.
    #[inline(always)]
    fn read(rx: &mut Self::Rx, max: usize, f: &mut impl FnMut(&Self::Msg)) -> usize {
        let _ = max;
        Self::try_recv(rx, f)
    }
}

/// What a one-message receive hands on: `f` on the message, if there was one; 1 or 0.
#[inline(always)]
fn one<M>(received: Option<M>, f: &mut impl FnMut(&M)) -> usize {
    received.map_or(0, |m| {
        f(&m);
        1
    })
}

/// A queue with a batch producer API.
pub trait BatchQueue: Queue {
    /// Sends the messages for `start..start + k` for some `k <= max` with the batch API, without
    /// waiting; returns `k` (0 when full).
    fn try_send_batch(tx: &mut Self::Tx, start: u64, max: usize) -> usize;
}

/// tracebus's SPSC ring of one-line slots: `try_push`; `claim_up_to` and `Claim::push` (batch);
/// `try_pop`; `read`, up to `max` slots in place, released together when the chunk drops.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ring;

impl Named for Ring {
    const NAME: &'static str = "tracebus ring";
}

impl Queue for Ring {
    type Msg = LineSlot;
    type Tx = tracebus::ring::Producer<LineSlot>;
    type Rx = tracebus::ring::Consumer<LineSlot>;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        tracebus::ring::spsc(capacity).expect("valid capacity")
    }
    #[inline(always)]
    fn try_send(tx: &mut Self::Tx, m: LineSlot) -> Result<(), LineSlot> {
        tx.try_push(m).map_err(|full| full.into_inner())
    }
    #[inline(always)]
    fn try_recv(rx: &mut Self::Rx, f: &mut impl FnMut(&LineSlot)) -> usize {
        one(rx.try_pop(), f)
    }
    #[inline(always)]
    fn read(rx: &mut Self::Rx, max: usize, f: &mut impl FnMut(&LineSlot)) -> usize {
        let chunk = rx.read(max);
        for s in chunk.iter() {
            f(s);
        }
        chunk.len()
    }
}

impl BatchQueue for Ring {
    #[inline(always)]
    fn try_send_batch(tx: &mut Self::Tx, start: u64, max: usize) -> usize {
        let mut claim = tx.claim_up_to(max);
        let n = claim.len();
        for i in 0..n as u64 {
            let _ = claim.push(LineSlot::make(start + i));
        }
        n
    }
}

/// rtrb: `push`; `write_chunk_uninit` (batch); `pop`; everything available as one
/// `read_chunk` (none when no slot is filled), committed at once.
pub struct Rtrb<P>(PhantomData<P>);

impl<P: Payload> Named for Rtrb<P> {
    const NAME: &'static str = "rtrb";
}

impl<P: Payload> Queue for Rtrb<P> {
    type Msg = P;
    type Tx = rtrb::Producer<P>;
    type Rx = rtrb::Consumer<P>;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        rtrb::RingBuffer::new(capacity)
    }
    #[inline(always)]
    fn try_send(tx: &mut Self::Tx, m: P) -> Result<(), P> {
        tx.push(m).map_err(|rtrb::PushError::Full(m)| m)
    }
    #[inline(always)]
    fn try_recv(rx: &mut Self::Rx, f: &mut impl FnMut(&P)) -> usize {
        one(rx.pop().ok(), f)
    }
    #[inline(always)]
    fn read(rx: &mut Self::Rx, max: usize, f: &mut impl FnMut(&P)) -> usize {
        let n = max.min(rx.slots());
        if n == 0 {
            return 0;
        }
        let chunk = rx.read_chunk(n).expect("n slots are available");
        let (a, b) = chunk.as_slices();
        for m in a.iter().chain(b) {
            f(m);
        }
        chunk.commit_all();
        n
    }
}

impl<P: Payload> BatchQueue for Rtrb<P> {
    #[inline(always)]
    fn try_send_batch(tx: &mut Self::Tx, start: u64, max: usize) -> usize {
        let n = max.min(tx.slots());
        match tx.write_chunk_uninit(n) {
            Ok(chunk) => chunk.fill_from_iter((start..start + n as u64).map(P::make)),
            Err(_) => 0,
        }
    }
}

/// crossbeam-channel `bounded`: `try_send` / `try_recv`.
pub struct CrossbeamChannel<P>(PhantomData<P>);

impl<P: Payload> Named for CrossbeamChannel<P> {
    const NAME: &'static str = "crossbeam-channel";
}

impl<P: Payload> Queue for CrossbeamChannel<P> {
    type Msg = P;
    type Tx = crossbeam_channel::Sender<P>;
    type Rx = crossbeam_channel::Receiver<P>;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        crossbeam_channel::bounded(capacity)
    }
    #[inline(always)]
    fn try_send(tx: &mut Self::Tx, m: P) -> Result<(), P> {
        tx.try_send(m).map_err(|e| e.into_inner())
    }
    #[inline(always)]
    fn try_recv(rx: &mut Self::Rx, f: &mut impl FnMut(&P)) -> usize {
        one(rx.try_recv().ok(), f)
    }
}

/// crossbeam's `ArrayQueue` (a bounded MPMC queue): `push` / `pop`.
pub struct ArrayQueue<P>(PhantomData<P>);

impl<P: Payload> Named for ArrayQueue<P> {
    const NAME: &'static str = "crossbeam ArrayQueue";
}

impl<P: Payload> Queue for ArrayQueue<P> {
    type Msg = P;
    type Tx = Arc<crossbeam_queue::ArrayQueue<P>>;
    type Rx = Arc<crossbeam_queue::ArrayQueue<P>>;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        let q = Arc::new(crossbeam_queue::ArrayQueue::new(capacity));
        (q.clone(), q)
    }
    #[inline(always)]
    fn try_send(tx: &mut Self::Tx, m: P) -> Result<(), P> {
        tx.push(m)
    }
    #[inline(always)]
    fn try_recv(rx: &mut Self::Rx, f: &mut impl FnMut(&P)) -> usize {
        one(rx.pop(), f)
    }
}

/// std's `sync_channel`: `try_send` / `try_recv`.
pub struct SyncChannel<P>(PhantomData<P>);

impl<P: Payload> Named for SyncChannel<P> {
    const NAME: &'static str = "std sync_channel";
}

impl<P: Payload> Queue for SyncChannel<P> {
    type Msg = P;
    type Tx = std::sync::mpsc::SyncSender<P>;
    type Rx = std::sync::mpsc::Receiver<P>;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        std::sync::mpsc::sync_channel(capacity)
    }
    #[inline(always)]
    fn try_send(tx: &mut Self::Tx, m: P) -> Result<(), P> {
        use std::sync::mpsc::TrySendError;
        tx.try_send(m).map_err(|e| match e {
            TrySendError::Full(m) | TrySendError::Disconnected(m) => m,
        })
    }
    #[inline(always)]
    fn try_recv(rx: &mut Self::Rx, f: &mut impl FnMut(&P)) -> usize {
        one(rx.try_recv().ok(), f)
    }
}

/// The `disruptor` crate (v4), a single producer, busy-spinning, its events made once by the
/// factory (`P::make(0)`) and written in place by every publish.
///
/// As a [`Peer`], its idiomatic form: `build_single_producer(..).pin_at_core(..)
/// .handle_events_with(handler)`, whose processor thread reads the cursor once and handles every
/// event available; `publish` / `batch_publish`, writing the whole message into the event.
///
/// As a [`Queue`], the form a harness that receives on a thread of its own needs (round trips):
/// an `EventPoller` taking up to `max` events per call (`take`), sends with `try_publish` /
/// `try_batch_publish`, which set the message's value in the event ([`Payload::set`]). The
/// producer is the same type in both forms, so a harness may send with the queue's calls to the
/// processor ([`Peer::start`]).
pub struct Disruptor<P>(PhantomData<P>);

impl<P> Disruptor<P> {
    /// The disruptor carrying `P`.
    pub const fn new() -> Self {
        Disruptor(PhantomData)
    }
}

impl<P> Default for Disruptor<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Payload> Named for Disruptor<P> {
    const NAME: &'static str = "disruptor";
}

impl<P: Payload> Queue for Disruptor<P> {
    type Msg = P;
    type Tx = SingleProducer<P, SingleConsumerBarrier>;
    type Rx = EventPoller<P, SingleProducerBarrier>;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        let builder = disruptor::build_single_producer(capacity, || P::make(0), BusySpin);
        let (poller, builder) = builder.new_event_poller();
        (builder.build(), poller)
    }
    #[inline(always)]
    fn try_send(tx: &mut Self::Tx, m: P) -> Result<(), P> {
        match tx.try_publish(|e| e.set(m.value())) {
            Ok(_) => Ok(()),
            Err(_) => Err(m),
        }
    }
    #[inline(always)]
    fn try_recv(rx: &mut Self::Rx, f: &mut impl FnMut(&P)) -> usize {
        Self::read(rx, 1, f)
    }
    fn read(rx: &mut Self::Rx, max: usize, f: &mut impl FnMut(&P)) -> usize {
        match rx.take(max as u64) {
            Ok(mut events) => {
                let mut n = 0;
                for e in &mut events {
                    f(e);
                    n += 1;
                }
                n
            }
            Err(Polling::NoEvents) | Err(Polling::Shutdown) => 0,
        }
    }
}

impl<P: Payload> BatchQueue for Disruptor<P> {
    #[inline(always)]
    fn try_send_batch(tx: &mut Self::Tx, start: u64, max: usize) -> usize {
        let ok = tx.try_batch_publish(max, |iter| {
            for (i, e) in iter.enumerate() {
                e.set(start + i as u64);
            }
        });
        if ok.is_ok() {
            max
        } else {
            0
        }
    }
}

impl<P: Payload> Peer for Disruptor<P> {
    type Publisher = SingleProducer<P, SingleConsumerBarrier>;
    fn start<H: FnMut(u64) + Send + 'static>(
        &self,
        capacity: usize,
        cores: Cores,
        _messages: u64,
        mut handler: H,
    ) -> Self::Publisher {
        let builder = disruptor::build_single_producer(capacity, || P::make(0), BusySpin);
        let builder = match cores.consumer_id() {
            Some(c) => builder.pin_at_core(c),
            None => builder,
        };
        builder
            .handle_events_with(move |e: &P, _seq, _end_of_batch| handler(e.value()))
            .build()
    }
    #[inline(always)]
    fn publish(p: &mut Self::Publisher, v: u64) {
        p.publish(|e| *e = P::make(v));
    }
    /// Dropping the producer waits for the processor to handle every event, then joins it.
    fn stop<T>(p: Self::Publisher, at_stop: impl FnOnce() -> T) -> (T, Option<Report>) {
        drop(p);
        (at_stop(), None)
    }
}

impl<P: Payload> BatchPeer for Disruptor<P> {
    #[inline(always)]
    fn publish_batch(p: &mut Self::Publisher, start: u64, n: usize) {
        p.batch_publish(n, |events| {
            for (k, e) in events.enumerate() {
                *e = P::make(start + k as u64);
            }
        });
    }
}

/// A system that delivers `u64` messages from a publishing thread to a handler running on a
/// consumer core (see the module docs).
pub trait Peer: Named {
    /// The publishing side (and whatever the system needs to stop).
    type Publisher;
    /// Builds the system with rings of `capacity` and `handler` on `cores`' consumer core, for
    /// `messages` messages (a queue's consumer thread stops after that many). The calling thread
    /// is the publishing one; it pins itself after this returns ([`Cores::pin_publisher`]).
    fn start<H: FnMut(u64) + Send + 'static>(
        &self,
        capacity: usize,
        cores: Cores,
        messages: u64,
        handler: H,
    ) -> Self::Publisher;
    /// Whether the consumer is pinned and polling (a queue's consumer thread says so once it
    /// is; the others are as soon as they are built).
    #[inline(always)]
    fn ready(p: &Self::Publisher) -> bool {
        let _ = p;
        true
    }
    /// Publishes `v`, waiting for room.
    fn publish(p: &mut Self::Publisher, v: u64);
    /// Waits until every message published has been handled and the consumer has stopped, calls
    /// `at_stop` (a harness reads its clock there), then drops what is left of the publisher.
    /// Returns what `at_stop` returned and, for the bus, its report.
    fn stop<T>(p: Self::Publisher, at_stop: impl FnOnce() -> T) -> (T, Option<Report>);
}

/// A peer with a batch publish.
pub trait BatchPeer: Peer {
    /// Publishes `start..start + n` (`n <= BATCH`) in one call, waiting for room.
    fn publish_batch(p: &mut Self::Publisher, start: u64, n: usize);
}

/// tracebus's bus: one worker, pinned to the consumer core, with the given wait strategy and
/// catch-up pause; subscribers on that worker; `Publisher::publish` / `publish_batch` of `u64`s
/// (each carried in the bus's one-line slot).
#[derive(Debug, Clone)]
pub struct Bus {
    /// The worker's wait strategy.
    pub wait: WaitStrategy,
    /// The worker's catch-up pause (`BusBuilder::catch_up_pause`).
    pub catch_up_pause: Duration,
}

impl Bus {
    /// The worker busy-spinning, with the default catch-up pause.
    pub fn busy_spin() -> Bus {
        Bus {
            wait: WaitStrategy::BusySpin,
            catch_up_pause: tracebus::DEFAULT_CATCH_UP_PAUSE,
        }
    }

    /// Builds the bus with one subscriber per handler, all on its one worker. The bus delivers
    /// every message to each of them ([`Peer::start`] subscribes one).
    pub fn start_subscribers<H: FnMut(u64) + Send + 'static>(
        &self,
        capacity: usize,
        cores: Cores,
        handlers: impl IntoIterator<Item = H>,
    ) -> BusPublisher {
        let bus = tracebus::Bus::builder()
            .workers(1)
            .capacity(capacity)
            .pinning(
                cores
                    .consumer_id()
                    .map_or(Pinning::Off, |c| Pinning::Cores(vec![c])),
            )
            .wait_strategy(self.wait)
            .catch_up_pause(self.catch_up_pause)
            .build()
            .expect("valid settings");
        let topic = bus.topic::<u64>("u64").expect("topic");
        for mut h in handlers {
            bus.subscribe_on(0, &topic, move |m, _| h(*m.payload()))
                .expect("subscribe");
        }
        let publisher = bus.publisher().expect("publisher");
        BusPublisher {
            bus,
            publisher,
            topic,
            buf: [0; BATCH],
        }
    }
}

/// The bus's publishing side.
pub struct BusPublisher {
    bus: tracebus::Bus,
    publisher: tracebus::Publisher,
    topic: Topic<u64>,
    /// A batch's payloads.
    buf: [u64; BATCH],
}

impl Named for Bus {
    const NAME: &'static str = "tracebus";
}

impl Peer for Bus {
    type Publisher = BusPublisher;
    fn start<H: FnMut(u64) + Send + 'static>(
        &self,
        capacity: usize,
        cores: Cores,
        _messages: u64,
        handler: H,
    ) -> BusPublisher {
        self.start_subscribers(capacity, cores, [handler])
    }
    #[inline(always)]
    fn publish(p: &mut BusPublisher, v: u64) {
        p.publisher.publish(&p.topic, v).expect("bus open");
    }
    /// Drops the publisher and shuts the bus down (its worker delivers everything first).
    fn stop<T>(p: BusPublisher, at_stop: impl FnOnce() -> T) -> (T, Option<Report>) {
        let BusPublisher { bus, publisher, .. } = p;
        drop(publisher);
        let report = bus.shutdown();
        (at_stop(), Some(report))
    }
}

impl BatchPeer for Bus {
    #[inline(always)]
    fn publish_batch(p: &mut BusPublisher, start: u64, n: usize) {
        for (k, x) in p.buf[..n].iter_mut().enumerate() {
            *x = start + k as u64;
        }
        p.publisher
            .publish_batch(&p.topic, &p.buf[..n])
            .expect("bus open");
    }
}

/// A [`Queue`] as a [`Peer`]: a consumer thread on the consumer core runs the handler over
/// [`Queue::read`] (up to the capacity per call), spinning while the queue is empty; a publish
/// makes the message once and retries [`Queue::try_send`], spinning, until the queue takes it.
pub struct Queued<Q>(PhantomData<Q>);

impl<Q> Queued<Q> {
    /// The queue `Q` with a consumer thread.
    pub const fn new() -> Self {
        Queued(PhantomData)
    }
}

impl<Q> Default for Queued<Q> {
    fn default() -> Self {
        Self::new()
    }
}

/// A queue peer's publishing side.
pub struct QueuedPublisher<Q: Queue> {
    tx: Q::Tx,
    consumer: ConsumerThread,
}

/// A peer's consumer thread, pinned to the consumer core, which says when it is pinned and
/// about to take messages; joined at stop.
pub struct ConsumerThread {
    handle: thread::JoinHandle<()>,
    ready: Arc<AtomicBool>,
}

impl ConsumerThread {
    /// Runs `body` on a new thread pinned to `cores`' consumer core.
    fn spawn(cores: Cores, body: impl FnOnce() + Send + 'static) -> ConsumerThread {
        let ready = Arc::new(AtomicBool::new(false));
        let up = ready.clone();
        let handle = thread::spawn(move || {
            cores.pin_consumer();
            up.store(true, Ordering::Release);
            body();
        });
        ConsumerThread { handle, ready }
    }

    /// Whether the thread is pinned and taking messages.
    #[inline(always)]
    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Waits for the thread to finish (it stops after the messages it was started for).
    fn join(self) {
        self.handle.join().expect("consumer thread");
    }
}

impl<Q: Queue> Named for Queued<Q> {
    const NAME: &'static str = Q::NAME;
}

impl<Q: Queue> Peer for Queued<Q> {
    type Publisher = QueuedPublisher<Q>;
    fn start<H: FnMut(u64) + Send + 'static>(
        &self,
        capacity: usize,
        cores: Cores,
        messages: u64,
        mut handler: H,
    ) -> QueuedPublisher<Q> {
        let (tx, mut rx) = Q::pair(capacity);
        let consumer = ConsumerThread::spawn(cores, move || {
            let mut got = 0u64;
            while got < messages {
                let n = Q::read(&mut rx, capacity, &mut |m| handler(m.value()));
                if n == 0 {
                    std::hint::spin_loop();
                }
                got += n as u64;
            }
        });
        QueuedPublisher { tx, consumer }
    }
    #[inline(always)]
    fn ready(p: &QueuedPublisher<Q>) -> bool {
        p.consumer.is_ready()
    }
    #[inline(always)]
    fn publish(p: &mut QueuedPublisher<Q>, v: u64) {
        let mut m = Q::Msg::make(v);
        while let Err(back) = Q::try_send(&mut p.tx, m) {
            m = back;
            std::hint::spin_loop();
        }
    }
    /// Joins the consumer thread (it stops after the messages it was started for).
    fn stop<T>(p: QueuedPublisher<Q>, at_stop: impl FnOnce() -> T) -> (T, Option<Report>) {
        let QueuedPublisher { tx, consumer } = p;
        consumer.join();
        let t = at_stop();
        drop(tx);
        (t, None)
    }
}

/// crossbeam-channel in its blocking form: `bounded`, a consumer thread blocked in `recv` (it
/// sleeps in the kernel while the channel is empty and a `send` wakes it), the publisher
/// `send`ing (blocking while the channel is full). What a service picks when idle consumers
/// must not burn a core: the peer of the bus's default wait strategy (spin, yield, park), whose
/// wake-up it prices. (The `disruptor` crate has no blocking wait strategy: busy-spinning or
/// sleeping a fixed time only.)
pub struct BlockingChannel;

impl Named for BlockingChannel {
    const NAME: &'static str = "crossbeam-channel blocking";
}

/// [`BlockingChannel`]'s publishing side.
pub struct BlockingPublisher {
    tx: crossbeam_channel::Sender<u64>,
    consumer: ConsumerThread,
}

impl Peer for BlockingChannel {
    type Publisher = BlockingPublisher;
    fn start<H: FnMut(u64) + Send + 'static>(
        &self,
        capacity: usize,
        cores: Cores,
        messages: u64,
        mut handler: H,
    ) -> BlockingPublisher {
        let (tx, rx) = crossbeam_channel::bounded::<u64>(capacity);
        let consumer = ConsumerThread::spawn(cores, move || {
            for _ in 0..messages {
                handler(rx.recv().expect("the publisher sends every message"));
            }
        });
        BlockingPublisher { tx, consumer }
    }
    #[inline(always)]
    fn ready(p: &BlockingPublisher) -> bool {
        p.consumer.is_ready()
    }
    #[inline(always)]
    fn publish(p: &mut BlockingPublisher, v: u64) {
        p.tx.send(v).expect("the consumer receives every message");
    }
    /// Joins the consumer thread (it stops after the messages it was started for).
    fn stop<T>(p: BlockingPublisher, at_stop: impl FnOnce() -> T) -> (T, Option<Report>) {
        let BlockingPublisher { tx, consumer } = p;
        consumer.join();
        let t = at_stop();
        drop(tx);
        (t, None)
    }
}

/// Where a run's two sides go: the publishing (or pinging) thread on `publisher`, the consumer
/// on `consumer`; `None` where the machine has fewer than two cores.
#[derive(Debug, Clone, Copy)]
pub struct Cores {
    /// The publishing side's core.
    pub publisher: Option<core_affinity::CoreId>,
    /// The consuming side's core.
    pub consumer: Option<core_affinity::CoreId>,
}

impl Cores {
    /// The first two cores of the machine ([`two_cores`]).
    pub fn two() -> Cores {
        let two = two_cores();
        Cores {
            publisher: two.map(|c| c[0]),
            consumer: two.map(|c| c[1]),
        }
    }

    /// Pins the calling thread to the publishing core; returns whether it worked.
    pub fn pin_publisher(self) -> bool {
        pin(self.publisher)
    }

    /// Pins the calling thread to the consuming core; returns whether it worked.
    pub fn pin_consumer(self) -> bool {
        pin(self.consumer)
    }

    /// The consuming core's id, for systems that pin a consumer thread of their own.
    pub fn consumer_id(self) -> Option<usize> {
        self.consumer.map(|c| c.id)
    }
}

/// Two distinct cores to pin producer and consumer to, if the machine has them.
pub fn two_cores() -> Option<[core_affinity::CoreId; 2]> {
    let ids = core_affinity::get_core_ids()?;
    match ids.as_slice() {
        [a, b, ..] => Some([*a, *b]),
        _ => None,
    }
}

/// Whether two threads can actually be pinned to the two cores the benchmarks use (each is
/// tried on a thread of its own, so the caller's affinity is left alone).
pub fn pinning_works() -> bool {
    let Some(cores) = two_cores() else {
        return false;
    };
    cores
        .into_iter()
        .map(|c| thread::spawn(move || pin(Some(c))))
        .collect::<Vec<_>>()
        .into_iter()
        .all(|h| h.join().unwrap_or(false))
}

/// Pins the current thread to `core` (if any); returns whether it worked.
pub fn pin(core: Option<core_affinity::CoreId>) -> bool {
    core.is_some_and(core_affinity::set_for_current)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On one thread: `Q` takes messages until full, gives the next one back, and yields them
    /// in order, one per `try_recv` and then up to `max` per `read`.
    fn queue_in_order<Q: Queue>() {
        let (mut tx, mut rx) = Q::pair(8);
        let mut sent = 0u64;
        while Q::try_send(&mut tx, Q::Msg::make(sent)).is_ok() {
            sent += 1;
            assert!(sent <= 64, "{}: a queue of 8 took {sent}", Q::NAME);
        }
        assert!(sent >= 8, "{}: full after {sent}", Q::NAME);
        let refused = Q::try_send(&mut tx, Q::Msg::make(sent)).unwrap_err();
        assert_eq!(refused.value(), sent, "{}: the message given back", Q::NAME);
        let mut got = Vec::new();
        assert_eq!(Q::try_recv(&mut rx, &mut |m| got.push(m.value())), 1);
        while got.len() < sent as usize {
            let n = Q::read(&mut rx, 3, &mut |m| got.push(m.value()));
            assert!((1..=3).contains(&n), "{}: read {n}", Q::NAME);
        }
        assert_eq!(got, (0..sent).collect::<Vec<_>>(), "{}", Q::NAME);
        assert_eq!(Q::read(&mut rx, 3, &mut |_| ()), 0, "{}: empty", Q::NAME);
        assert_eq!(Q::try_recv(&mut rx, &mut |_| ()), 0, "{}: empty", Q::NAME);
    }

    fn batches_in_order<Q: BatchQueue>() {
        let (mut tx, mut rx) = Q::pair(8);
        assert_eq!(Q::try_send_batch(&mut tx, 0, 4), 4, "{}", Q::NAME);
        assert_eq!(Q::try_send_batch(&mut tx, 4, 4), 4, "{}", Q::NAME);
        let mut got = Vec::new();
        while got.len() < 8 {
            assert!(Q::read(&mut rx, 8, &mut |m| got.push(m.value())) > 0);
        }
        assert_eq!(got, (0..8).collect::<Vec<_>>(), "{}", Q::NAME);
    }

    #[test]
    fn every_queue_sends_and_receives_in_order() {
        queue_in_order::<Ring>();
        queue_in_order::<Rtrb<Msg64>>();
        queue_in_order::<Rtrb<u64>>();
        queue_in_order::<Disruptor<Msg64>>();
        queue_in_order::<CrossbeamChannel<u64>>();
        queue_in_order::<ArrayQueue<Msg64>>();
        queue_in_order::<SyncChannel<Msg64>>();
        batches_in_order::<Ring>();
        batches_in_order::<Rtrb<Msg64>>();
        batches_in_order::<Disruptor<Msg64>>();
    }

    /// `peer` hands every message `publish` publishes (0..256) to its handler, in order, and
    /// stops.
    fn delivers<S: Peer>(peer: &S, publish: impl FnOnce(&mut S::Publisher)) {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let into = seen.clone();
        let mut p = peer.start(64, Cores::two(), 256, move |v| {
            into.lock().expect("not poisoned").push(v)
        });
        while !S::ready(&p) {
            std::hint::spin_loop();
        }
        publish(&mut p);
        let ((), report) = S::stop(p, || ());
        let seen = seen.lock().expect("not poisoned");
        assert_eq!(*seen, (0..256).collect::<Vec<_>>(), "{}", S::NAME);
        if let Some(r) = report {
            assert_eq!(r.delivered, 256, "{}", S::NAME);
        }
    }

    fn delivers_each<S: Peer>(peer: &S) {
        delivers(peer, |p| (0..256).for_each(|i| S::publish(p, i)));
    }

    fn delivers_batches<S: BatchPeer>(peer: &S) {
        delivers(peer, |p| {
            for base in (0..256).step_by(BATCH) {
                S::publish_batch(p, base, BATCH);
            }
        });
    }

    #[test]
    fn every_peer_delivers_in_order() {
        delivers_each(&Bus::busy_spin());
        delivers_batches(&Bus::busy_spin());
        delivers_each(&Disruptor::<Msg64>::new());
        delivers_batches(&Disruptor::<u64>::new());
        delivers_each(&Queued::<Ring>::new());
        delivers_each(&Queued::<Rtrb<u64>>::new());
        delivers_each(&Queued::<CrossbeamChannel<Msg64>>::new());
    }
}
