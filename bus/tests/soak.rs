//! The seeded soak test: several publishers, handlers that panic at random or are slow enough
//! to fill their rings, subscribers added and removed at random while messages flow, tracing
//! switched on and off and its sampler changed at random, and shutdown at a random moment.
//!
//! Bounded by count, not time. After every run it checks, from what each side recorded:
//!
//! - every accepted message reached every subscriber that was subscribed for its whole
//!   lifetime exactly once, and no subscriber saw any message twice;
//! - each subscriber saw each producer's messages in the order they were published;
//! - nothing refused (`Full`, `Closed`) and nothing published to nobody was ever delivered, and
//!   nothing reached a subscriber after its `unsubscribe` returned or on another topic;
//! - the `Report` adds up: accepted publishes, handler calls returned and panics caught;
//! - with tracing, every process span is the child of a publish span of the same trace.
//!
//! `SOAK_RUNS` (default 12) sets the number of seeded runs, `SOAK_SEED` replays one seed, and
//! `SOAK_MESSAGES` (default 3000) the messages per publisher. A failure names its seed.

/// Fault injection exists in debug builds only (`tracebus::fault`); a release build injects
/// none (the soak still runs, without panics inside publishes).
mod fault {
    #[cfg(debug_assertions)]
    pub use tracebus::fault::{disarm, panic_inside_next_publish};
    #[cfg(not(debug_assertions))]
    pub fn panic_inside_next_publish() {}
    #[cfg(not(debug_assertions))]
    pub fn disarm() {}
}

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use opentelemetry::trace::{SpanId, SpanKind};
use opentelemetry_sdk::trace::InMemorySpanExporter;
use tracebus::{
    Bus, Pinning, Report, SpanExport, Topic, TryBatchError, TryPublishError, WaitStrategy,
};

/// The topics, by index (`Subscriber::topic`, `Accepted::topic`).
const TOPICS: [&str; 3] = ["orders", "quotes", "fills"];
const PANIC_MESSAGE: &str = "soak: injected handler panic";

/// SplitMix64: small, seedable, good enough to choose actions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A message: `producer << 40 | seq`.
fn tag(producer: u64, seq: u64) -> u64 {
    producer << 40 | seq
}

fn producer_of(tag: u64) -> u64 {
    tag >> 40
}

/// A logical clock: one `SeqCst` read-modify-write per event, so "event a has a smaller tick
/// than event b" means a happened before b.
#[derive(Default)]
struct Clock(AtomicU64);

impl Clock {
    fn tick(&self) -> u64 {
        self.0.fetch_add(1, SeqCst)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Plain,
    /// Sleeps every 32nd message and yields otherwise: fills its rings.
    Slow,
    /// Panics on about one message in 16 (after recording it).
    Panicky,
}

/// What one subscription saw, and when it existed.
struct Subscriber {
    /// Index into [`TOPICS`].
    topic: usize,
    behaviour: Behaviour,
    /// Tick after `subscribe` returned.
    subscribed: u64,
    /// Ticks before `unsubscribe` was called and after it returned (`u64::MAX`: never).
    unsubscribing: u64,
    unsubscribed: u64,
    log: Arc<Mutex<Vec<u64>>>,
}

/// One accepted publish, as its publisher saw it.
#[derive(Clone, Copy, Debug)]
struct Accepted {
    tag: u64,
    /// Index into [`TOPICS`].
    topic: usize,
    /// Ticks before the publish call and after it returned.
    start: u64,
    end: u64,
    fanout: usize,
}

/// What a publisher recorded.
#[derive(Default)]
struct PublisherLog {
    accepted: Vec<Accepted>,
    /// Messages handed back (`Full` then given up, or `Closed`): never to be delivered.
    refused: Vec<u64>,
}

impl PublisherLog {
    /// Records `tags`, published to `topic` between ticks `start` and `end`, as accepted.
    fn accept(&mut self, tags: &[u64], topic: usize, (start, end): (u64, u64), fanout: usize) {
        self.accepted.extend(tags.iter().map(|&tag| Accepted {
            tag,
            topic,
            start,
            end,
            fanout,
        }));
    }
}

/// Counters the handlers share.
#[derive(Default)]
struct Calls {
    /// Handler calls, returned or not.
    total: AtomicU64,
    /// Injected panics.
    panics: AtomicU64,
}

fn subscribe(
    bus: &Bus,
    topics: &[Topic<u64>],
    rng: &mut Rng,
    clock: &Clock,
    calls: &Arc<Calls>,
    seed: u64,
) -> (tracebus::SubscriptionId, Subscriber) {
    let topic = rng.below(topics.len() as u64) as usize;
    let behaviour = match rng.below(4) {
        0 => Behaviour::Slow,
        1 => Behaviour::Panicky,
        _ => Behaviour::Plain,
    };
    let worker = (!rng.chance(3)).then(|| rng.below(bus.workers() as u64) as usize);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (l, c) = (log.clone(), calls.clone());
    let salt = mix(seed ^ rng.next());
    let handler = move |m: &tracebus::Message<'_, u64>, _: &mut tracebus::Outbox<'_>| {
        let tag = *m.payload();
        l.lock().unwrap().push(tag);
        c.total.fetch_add(1, Relaxed);
        match behaviour {
            Behaviour::Plain => {}
            Behaviour::Slow if tag % 32 == 0 => thread::sleep(Duration::from_micros(100)),
            Behaviour::Slow => thread::yield_now(),
            Behaviour::Panicky if mix(salt ^ tag) % 16 == 0 => {
                c.panics.fetch_add(1, Relaxed);
                panic!("{PANIC_MESSAGE}");
            }
            Behaviour::Panicky => {}
        }
    };
    let id = match worker {
        Some(w) => bus.subscribe_on(w, &topics[topic], handler),
        None => bus.subscribe(&topics[topic], handler),
    }
    .expect("the bus is running");
    let subscribed = clock.tick();
    let sub = Subscriber {
        topic,
        behaviour,
        subscribed,
        unsubscribing: u64::MAX,
        unsubscribed: u64::MAX,
        log,
    };
    (id, sub)
}

/// Publishes `messages` messages to random topics with a random mix of blocking, non-blocking
/// and batch publishes, until done or the bus refuses with `Closed`.
fn publish(
    mut p: tracebus::Publisher,
    topics: &[Topic<u64>],
    producer: u64,
    messages: u64,
    capacity: usize,
    seed: u64,
    clock: &Clock,
) -> PublisherLog {
    let mut rng = Rng(mix(seed ^ producer));
    let mut log = PublisherLog::default();
    let mut seq = 0;
    'outer: while seq < messages {
        let topic = rng.below(topics.len() as u64) as usize;
        let dest = &topics[topic];
        match rng.below(3) {
            0 => {
                let t = tag(producer, seq);
                seq += 1;
                // Now and then something panics inside the publish, after the commit (injected):
                // the message is accepted all the same, and the publisher goes on.
                let fault = rng.chance(40) && cfg!(debug_assertions);
                if fault {
                    fault::panic_inside_next_publish();
                }
                let start = clock.tick();
                let r =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.publish(dest, t)));
                let end = clock.tick();
                let r = match r {
                    Ok(r) => {
                        fault::disarm(); // nothing committed (fanout 0), or no fault
                        r
                    }
                    Err(_) => {
                        assert!(fault, "a publish panicked without an injected fault");
                        log.accept(&[t], topic, (start, end), 1); // committed, so subscribed
                        continue;
                    }
                };
                match r {
                    Ok(pb) => log.accept(&[t], topic, (start, end), pb.fanout),
                    // A waiting publish fails only when the bus is closed.
                    Err(closed) => {
                        assert_eq!(closed.into_inner(), t, "Closed hands the message back");
                        log.refused.push(t);
                        break 'outer;
                    }
                }
            }
            1 => {
                let t = tag(producer, seq);
                seq += 1;
                // A few tries, then give up on this one: it is refused, never delivered.
                for attempt in 0.. {
                    let start = clock.tick();
                    let r = p.try_publish(dest, t);
                    let end = clock.tick();
                    match r {
                        Ok(pb) => {
                            log.accept(&[t], topic, (start, end), pb.fanout);
                            break;
                        }
                        Err(TryPublishError::Full { payload, .. }) if attempt < 8 => {
                            assert_eq!(payload, t, "Full hands the message back");
                            thread::yield_now();
                        }
                        Err(e) => {
                            let closed = e.is_closed();
                            assert_eq!(e.into_inner(), t);
                            log.refused.push(t);
                            if closed {
                                break 'outer;
                            }
                            break;
                        }
                    }
                }
            }
            _ => {
                let len = (1 + rng.below(capacity as u64)).min(messages - seq);
                let batch: Vec<u64> = (seq..seq + len).map(|s| tag(producer, s)).collect();
                seq += len;
                loop {
                    let start = clock.tick();
                    let r = p.try_publish_batch(dest, &batch);
                    let end = clock.tick();
                    match r {
                        Ok(pb) => {
                            log.accept(&batch, topic, (start, end), pb.fanout);
                            break;
                        }
                        Err(TryBatchError::Full { .. }) => thread::yield_now(),
                        // All or nothing: a refused batch published none of its messages.
                        Err(TryBatchError::Closed) => {
                            log.refused.extend(&batch);
                            break 'outer;
                        }
                        Err(e) => panic!("a batch within capacity cannot fail with {e}"),
                    }
                }
            }
        }
    }
    log
}

/// One seeded run; panics with the seed in the message if any promise is broken.
fn run(seed: u64, messages: u64) {
    let mut rng = Rng(seed);
    let workers = 1 + rng.below(2) as usize;
    let capacity = [2usize, 4, 16, 64][rng.below(4) as usize];
    let wait = if rng.chance(2) {
        WaitStrategy::SpinThenPark
    } else {
        WaitStrategy::SpinThenYield
    };
    let traced = rng.chance(2);
    let exporter = InMemorySpanExporter::default();
    let mut builder = Bus::builder()
        .workers(workers)
        .capacity(capacity)
        .pinning(Pinning::Off)
        .wait_strategy(wait);
    if traced {
        builder = builder.tracing(
            SpanExport::exporter(exporter.clone())
                .shutdown_target(false)
                .ring_capacity(1 << 16),
        );
    }
    let bus: Bus = builder.build().expect("valid settings");
    let topics: Vec<Topic<u64>> = TOPICS
        .iter()
        .map(|name| bus.topic(name).expect("a new topic"))
        .collect();
    let topics = &topics[..];
    let clock = Clock::default();
    let calls = Arc::new(Calls::default());

    // Stable subscribers: one or two per topic, never removed.
    let mut subs: Vec<Subscriber> = Vec::new();
    for _ in 0..TOPICS.len() + rng.below(TOPICS.len() as u64) as usize {
        subs.push(subscribe(&bus, topics, &mut rng, &clock, &calls, seed).1);
    }
    let producers = 2 + rng.below(2);
    let publishers: Vec<_> = (0..producers).map(|_| bus.publisher().unwrap()).collect();
    let total = producers * messages;
    // Shutdown comes at a random tick: mostly mid-stream, sometimes after the last message.
    let shutdown_at = total / 4 + rng.below(total * 2);
    let churn_seed = rng.next();
    let toggle_seed = rng.next();

    let bus = Mutex::new(Some(bus));
    let done = AtomicBool::new(false);
    let (logs, churned, report) = thread::scope(|s| {
        let clock = &clock;
        let handles: Vec<_> = publishers
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                s.spawn(move || publish(p, topics, i as u64, messages, capacity, seed, clock))
            })
            .collect();
        // Subscribers come and go while messages flow.
        let churn = s.spawn(|| {
            let mut rng = Rng(churn_seed);
            let mut live: Vec<(tracebus::SubscriptionId, Subscriber)> = Vec::new();
            let mut gone = Vec::new();
            while !done.load(Relaxed) {
                {
                    let guard = bus.lock().unwrap();
                    let Some(bus) = guard.as_ref() else { break };
                    if live.is_empty() || rng.chance(2) {
                        live.push(subscribe(bus, topics, &mut rng, clock, &calls, seed));
                    } else {
                        let (id, mut sub) = live.swap_remove(rng.below(live.len() as u64) as usize);
                        sub.unsubscribing = clock.tick();
                        bus.unsubscribe(id).expect("a live subscription");
                        sub.unsubscribed = clock.tick();
                        gone.push(sub);
                    }
                }
                thread::sleep(Duration::from_micros(200 + rng.below(800)));
            }
            gone.extend(live.into_iter().map(|(_, sub)| sub));
            gone
        });
        // Tracing on and off, and the sampler's k, at random.
        s.spawn(|| {
            let mut rng = Rng(toggle_seed);
            while !done.load(Relaxed) {
                {
                    let guard = bus.lock().unwrap();
                    let Some(control) = guard.as_ref().map(|b| b.tracing()) else {
                        break;
                    };
                    control.set_enabled(!rng.chance(3));
                    control
                        .sampler()
                        .set_k([0.5, 1.0, 10.0, 100.0][rng.below(4) as usize])
                        .unwrap();
                }
                thread::sleep(Duration::from_micros(100 + rng.below(400)));
            }
        });
        // Shutdown at a random moment (or once every publisher is done).
        while clock.0.load(SeqCst) < shutdown_at && !handles.iter().all(|h| h.is_finished()) {
            thread::sleep(Duration::from_micros(100));
        }
        let report = bus.lock().unwrap().take().unwrap().shutdown();
        let logs: Vec<PublisherLog> = handles
            .into_iter()
            .map(|h| h.join().expect("publisher thread"))
            .collect();
        done.store(true, Relaxed);
        let churned = churn.join().expect("churn thread");
        (logs, churned, report)
    });
    let churned_count = churned.len();
    subs.extend(churned);
    eprintln!(
        "seed {seed}: {workers} workers, capacity {capacity}, {wait:?}, tracing {traced}: \
         {} accepted, {} refused, {} handler calls ({} panics), {churned_count} subscribers \
         churned, shutdown at tick {shutdown_at} of ~{}",
        logs.iter().map(|l| l.accepted.len()).sum::<usize>(),
        logs.iter().map(|l| l.refused.len()).sum::<usize>(),
        calls.total.load(Relaxed),
        calls.panics.load(Relaxed),
        2 * total,
    );
    check(seed, &logs, &subs, &calls, &report);
    if traced {
        assert_eq!(report.spans.dropped, 0, "seed {seed}: span records dropped");
        check_spans(seed, &exporter);
    }
}

fn check(seed: u64, logs: &[PublisherLog], subs: &[Subscriber], calls: &Calls, report: &Report) {
    let accepted: HashMap<u64, Accepted> = logs
        .iter()
        .flat_map(|l| &l.accepted)
        .map(|a| (a.tag, *a))
        .collect();
    let refused: HashSet<u64> = logs.iter().flat_map(|l| &l.refused).copied().collect();
    let mut handler_calls = 0;
    for (i, sub) in subs.iter().enumerate() {
        let log = sub.log.lock().unwrap();
        handler_calls += log.len() as u64;
        let what = format!(
            "seed {seed}, subscriber {i} ({:?}, topic {})",
            sub.behaviour, TOPICS[sub.topic]
        );
        let mut seen = HashSet::new();
        let mut last: HashMap<u64, u64> = HashMap::new();
        for &t in log.iter() {
            assert!(seen.insert(t), "{what}: message {t:#x} delivered twice");
            assert!(
                !refused.contains(&t),
                "{what}: refused message {t:#x} delivered"
            );
            let a = accepted
                .get(&t)
                .unwrap_or_else(|| panic!("{what}: {t:#x} was never accepted"));
            assert_eq!(
                a.topic, sub.topic,
                "{what}: {t:#x} was published to another topic"
            );
            assert!(
                a.fanout > 0,
                "{what}: {t:#x} had no subscriber when published"
            );
            assert!(
                a.start < sub.unsubscribed,
                "{what}: {t:#x} published after unsubscribe returned, delivered"
            );
            if let Some(prev) = last.insert(producer_of(t), t) {
                assert!(
                    prev < t,
                    "{what}: {t:#x} after {prev:#x}: out of producer order"
                );
            }
        }
        // Whole-lifetime subscribers miss nothing.
        for a in accepted.values() {
            if a.topic == sub.topic && sub.subscribed < a.start && sub.unsubscribing == u64::MAX {
                assert!(seen.contains(&a.tag), "{what}: accepted {:#x} lost", a.tag);
            }
        }
    }
    let published_with_subscribers = accepted.values().filter(|a| a.fanout > 0).count() as u64;
    assert_eq!(
        report.published, published_with_subscribers,
        "seed {seed}: report.published"
    );
    assert_eq!(
        calls.total.load(Relaxed),
        handler_calls,
        "seed {seed}: handler calls"
    );
    assert_eq!(
        report.delivered + report.handler_panics,
        handler_calls,
        "seed {seed}: report.delivered + report.handler_panics"
    );
    assert_eq!(
        report.handler_panics,
        calls.panics.load(Relaxed),
        "seed {seed}: report.handler_panics"
    );
    assert_eq!(report.worker_failures, 0, "seed {seed}: worker_failures");
    // The clock itself: every accepted publish returned after it started.
    assert!(accepted.values().all(|a| a.start < a.end));
}

fn check_spans(seed: u64, exporter: &InMemorySpanExporter) {
    let spans = exporter.get_finished_spans().unwrap();
    let publishes: HashMap<SpanId, _> = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Producer)
        .map(|s| (s.span_context.span_id(), s.span_context.trace_id()))
        .collect();
    for s in spans.iter().filter(|s| s.span_kind == SpanKind::Consumer) {
        let parent = publishes.get(&s.parent_span_id);
        assert_eq!(
            parent,
            Some(&s.span_context.trace_id()),
            "seed {seed}: process span {} has no publish span of its trace as parent",
            s.name
        );
    }
}

#[test]
fn soak() {
    tracebus_test_support::quiet_injected_panics(PANIC_MESSAGE);
    tracebus_test_support::quiet_injected_panics("tracebus fault injection");
    let messages = env("SOAK_MESSAGES", 3000);
    if let Ok(seed) = std::env::var("SOAK_SEED") {
        run(seed.parse().expect("SOAK_SEED is a number"), messages);
        return;
    }
    for seed in 0..env("SOAK_RUNS", 12) {
        run(seed, messages);
    }
}
