//! The bus runtime: fanout and ordering, backpressure, faults, shutdown, subscriptions changing
//! while messages flow, typed named topics (several message types on one bus, the largest
//! that fit, 100,000 topics) and the error of each call. Every test uses yield or park waits
//! (CI has 2 cores) and is bounded by count, not time.

use std::any::type_name;
use std::mem::{align_of, size_of};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use tracebus::slot::PAYLOAD_OFFSET;
use tracebus::{
    BuildError, Bus, BusError, Lines, Message, Pinning, SlotSize, Topic, TopicError, TryBatchError,
    TryPublishError, WaitStrategy,
};

fn bus(workers: usize, capacity: usize) -> Bus {
    Bus::builder()
        .workers(workers)
        .capacity(capacity)
        .pinning(Pinning::Off)
        .wait_strategy(WaitStrategy::SpinThenPark)
        .build()
        .expect("valid settings")
}

/// A new `u64` topic on `bus`.
fn topic(bus: &Bus, name: &str) -> Topic<u64> {
    bus.topic(name)
        .expect("a valid name, not taken by another type")
}

/// `producer << 32 | seq`.
fn tag(producer: u64, seq: u64) -> u64 {
    producer << 32 | seq
}

#[test]
fn fanout_delivers_everything_in_order_per_producer() {
    const PRODUCERS: u64 = 3;
    const MESSAGES: u64 = 20_000;
    const SUBSCRIBERS: usize = 5;
    let bus = bus(2, 64);
    let fanout = topic(&bus, "fanout");
    // Each subscriber records what it saw, per producer.
    let seen: Vec<Arc<Mutex<Vec<Vec<u64>>>>> = (0..SUBSCRIBERS)
        .map(|_| Arc::new(Mutex::new(vec![Vec::new(); PRODUCERS as usize])))
        .collect();
    for (i, log) in seen.iter().enumerate() {
        let log = log.clone();
        bus.subscribe_on(i % 2, &fanout, move |m, _| {
            let v = *m.payload();
            log.lock().unwrap()[(v >> 32) as usize].push(v & 0xffff_ffff);
        })
        .unwrap();
    }
    let handles: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let mut publisher = bus.publisher().unwrap();
            thread::spawn(move || {
                for s in 0..MESSAGES {
                    let sent = publisher.publish(&fanout, tag(p, s)).unwrap();
                    assert_eq!(sent.fanout, SUBSCRIBERS);
                    assert_eq!(sent.workers, 2);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let report = bus.shutdown();
    assert_eq!(report.published, PRODUCERS * MESSAGES);
    assert_eq!(report.delivered, PRODUCERS * MESSAGES * SUBSCRIBERS as u64);
    assert_eq!(report.handler_panics, 0);
    assert_eq!(report.worker_failures, 0);
    for log in &seen {
        for per_producer in log.lock().unwrap().iter() {
            assert_eq!(per_producer.len() as u64, MESSAGES);
            assert!(
                per_producer.iter().copied().eq(0..MESSAGES),
                "publish order kept"
            );
        }
    }
}

#[test]
fn no_subscribers_means_fanout_zero_and_nothing_written() {
    let bus = bus(1, 8);
    let nobody = topic(&bus, "nobody");
    let mut p = bus.publisher().unwrap();
    for _ in 0..100 {
        // More than the ring holds: nothing is written, so nothing fills up.
        assert_eq!(p.try_publish(&nobody, 1).unwrap().fanout, 0);
    }
    let report = bus.shutdown();
    assert_eq!((report.published, report.delivered), (0, 0));
}

#[test]
fn a_panicking_handler_is_caught_and_nothing_else_is_lost() {
    const N: u64 = 1_000;
    let bus = bus(2, 64);
    let t = topic(&bus, "faulty");
    let good = Arc::new(AtomicU64::new(0));
    let g = good.clone();
    bus.subscribe_on(0, &t, |m, _| {
        if *m.payload() % 10 == 0 {
            panic!("handler panic on {}", m.payload());
        }
    })
    .unwrap();
    bus.subscribe_on(0, &t, move |_, _| {
        g.fetch_add(1, Relaxed);
    })
    .unwrap();
    let other = Arc::new(AtomicU64::new(0));
    let o = other.clone();
    bus.subscribe_on(1, &t, move |_, _| {
        o.fetch_add(1, Relaxed);
    })
    .unwrap();
    tracebus_test_support::quiet_injected_panics("handler panic on ");
    let mut p = bus.publisher().unwrap();
    for i in 0..N {
        p.publish(&t, i).unwrap();
    }
    let report = bus.shutdown();
    assert_eq!(report.handler_panics, N / 10);
    assert_eq!(report.delivered, 3 * N - N / 10);
    assert_eq!(
        good.load(Relaxed),
        N,
        "same worker, next subscriber unaffected"
    );
    assert_eq!(other.load(Relaxed), N, "other worker unaffected");
    assert_eq!(report.workers[0].handler_panics, N / 10);
}

/// A handler in the middle of a worker's list panics now and then: the handlers before it
/// count as delivered, the ones after it still run, traced or not.
#[test]
fn a_panic_mid_list_counts_the_handlers_before_it() {
    const N: u64 = 500;
    tracebus_test_support::quiet_injected_panics("mid-list panic on ");
    for traced in [false, true] {
        let builder = Bus::builder()
            .workers(1)
            .capacity(64)
            .pinning(Pinning::Off)
            .wait_strategy(WaitStrategy::SpinThenPark);
        let builder = if traced {
            // k far above the fanout: every message sampled, so the traced path runs.
            builder
                .tracing(tracebus::SpanExport::exporter(
                    opentelemetry_sdk::trace::InMemorySpanExporter::default(),
                ))
                .sampler(tracebus::context::FanoutSampler::new(1_000.0))
        } else {
            builder
        };
        let bus = builder.build().unwrap();
        let t = topic(&bus, "mid");
        let calls: Vec<Arc<AtomicU64>> = (0..4).map(|_| Arc::default()).collect();
        for (i, c) in calls.iter().enumerate() {
            let c = c.clone();
            bus.subscribe_on(0, &t, move |m, _| {
                c.fetch_add(1, Relaxed);
                if i == 2 && *m.payload() % 5 == 0 {
                    panic!("mid-list panic on {}", m.payload());
                }
            })
            .unwrap();
        }
        let mut p = bus.publisher().unwrap();
        for i in 0..N {
            p.publish(&t, i).unwrap();
        }
        let report = bus.shutdown();
        for (i, c) in calls.iter().enumerate() {
            assert_eq!(c.load(Relaxed), N, "handler {i} ran on every message");
        }
        assert_eq!(report.handler_panics, N / 5, "traced: {traced}");
        assert_eq!(report.delivered, 4 * N - N / 5, "traced: {traced}");
    }
}

#[test]
fn a_worker_reports_messages_and_the_passes_that_took_them() {
    let bus = bus(1, 1024);
    let t = topic(&bus, "held");
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    // Two subscribers: a message is read once, whatever its local fanout.
    bus.subscribe_on(0, &t, move |m, _| {
        if *m.payload() == 0 {
            entered_tx.send(()).unwrap();
            release_rx.recv().unwrap(); // holds the worker inside its first pass
        }
    })
    .unwrap();
    bus.subscribe_on(0, &t, |_, _| {}).unwrap();
    let mut p = bus.publisher().unwrap();
    p.publish(&t, 0).unwrap();
    entered_rx.recv().unwrap();
    // A backlog the held worker finds all at once when it goes on.
    for v in 1..=200 {
        p.publish(&t, v).unwrap();
    }
    release_tx.send(()).unwrap();
    drop(p);
    let report = bus.shutdown();
    let w = report.workers[0];
    assert_eq!(w.messages, 201, "{w:?}");
    assert_eq!(w.delivered, 402, "{w:?}");
    // The first pass took message 0 alone; the backlog went in batches, not one per pass.
    assert!((2..=10).contains(&w.passes), "{w:?}");
    assert!(w.messages_per_pass() > 20.0, "{w:?}");
}

#[test]
fn full_rings_hand_the_message_back_and_blocking_publish_waits() {
    let bus = bus(1, 4);
    let t = topic(&bus, "slow");
    let gate = Arc::new(AtomicBool::new(false));
    let got = Arc::new(Mutex::new(Vec::new()));
    let (g, log) = (gate.clone(), got.clone());
    bus.subscribe(&t, move |m, _| {
        while !g.load(Relaxed) {
            thread::sleep(Duration::from_millis(1));
        }
        log.lock().unwrap().push(*m.payload());
    })
    .unwrap();
    let mut p = bus.publisher().unwrap();
    let mut accepted = 0u64;
    let refused = loop {
        match p.try_publish(&t, accepted) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100, "a 4-slot ring never filled");
    };
    assert_eq!(
        refused,
        TryPublishError::Full {
            payload: accepted,
            worker: 0
        }
    );
    assert!(refused.is_full() && !refused.is_closed());
    assert_eq!(refused.into_inner(), accepted);
    // A blocking publish waits for room, then succeeds.
    let opener = {
        let gate = gate.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            gate.store(true, Relaxed);
        })
    };
    for v in accepted..accepted + 50 {
        p.publish(&t, v).unwrap();
    }
    opener.join().unwrap();
    let report = bus.shutdown();
    assert_eq!(report.delivered, accepted + 50);
    assert!(
        got.lock().unwrap().iter().copied().eq(0..accepted + 50),
        "nothing lost or reordered"
    );
}

#[test]
fn shutdown_under_load_delivers_every_accepted_message() {
    const PRODUCERS: usize = 2;
    let bus = bus(2, 16);
    let t = topic(&bus, "load");
    let delivered = Arc::new(AtomicU64::new(0));
    for w in 0..2 {
        let d = delivered.clone();
        bus.subscribe_on(w, &t, move |_, _| {
            d.fetch_add(1, Relaxed);
        })
        .unwrap();
    }
    let started = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let mut p = bus.publisher().unwrap();
            let started = started.clone();
            thread::spawn(move || {
                let mut accepted = 0u64;
                loop {
                    // A waiting publish can only fail because the bus closed.
                    match p.publish(&t, accepted) {
                        Ok(_) => accepted += 1,
                        Err(e) => {
                            assert_eq!(e.into_inner(), accepted, "the refused message comes back");
                            return accepted;
                        }
                    }
                    if accepted == 1_000 {
                        started.fetch_add(1, Relaxed);
                    }
                }
            })
        })
        .collect();
    while started.load(Relaxed) < PRODUCERS as u64 {
        thread::yield_now();
    }
    let report = bus.shutdown();
    let accepted: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(report.published, accepted);
    assert_eq!(
        report.delivered,
        accepted * 2,
        "every accepted message, to both subscribers"
    );
    assert_eq!(delivered.load(Relaxed), accepted * 2);
}

#[test]
fn after_shutdown_everything_is_refused_with_the_payload() {
    let bus = bus(1, 8);
    let t = topic(&bus, "closed");
    let mut p = bus.publisher().unwrap();
    bus.subscribe(&t, |_, _| {}).unwrap();
    drop(bus); // dropping is shutting down
    assert_eq!(p.publish(&t, 42).unwrap_err().into_inner(), 42);
    assert_eq!(p.try_publish(&t, 43), Err(TryPublishError::Closed(43)));
}

#[test]
fn invalid_settings_fail_before_any_thread_starts() {
    assert_eq!(
        Bus::builder().workers(0).build().err(),
        Some(BuildError::NoWorkers)
    );
    assert!(matches!(
        Bus::builder().capacity(0).build(),
        Err(BuildError::Capacity { capacity: 0, .. })
    ));
    assert!(matches!(
        Bus::builder()
            .pinning(Pinning::Cores(vec![100_000]))
            .build(),
        Err(BuildError::MissingCore { core: 100_000, .. })
    ));
    assert_eq!(
        Bus::builder()
            .workers(3)
            .pinning(Pinning::Cores(vec![0]))
            .build()
            .err(),
        Some(BuildError::TooFewCores {
            workers: 3,
            cores: 1
        })
    );
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    if let Some(c) = cores.first() {
        assert_eq!(
            Bus::builder()
                .workers(2)
                .pinning(Pinning::Cores(vec![c.id, c.id]))
                .build()
                .err(),
            Some(BuildError::DuplicateCore { core: c.id })
        );
    }
    let e = Bus::builder().workers(0).build().err().unwrap();
    assert!(e.to_string().contains("at least one worker"));
    // More workers than cores: a warning, not a failure.
    let many = Bus::builder().workers(64).build().unwrap();
    assert!(many.warnings().iter().any(|w| w.contains("unpinned")));
    let bus = bus(2, 8);
    let dbg = format!("{bus:?}");
    assert!(
        dbg.contains("workers: 2") && dbg.contains("capacity: 8"),
        "{dbg}"
    );
    let p = bus.publisher().unwrap();
    assert!(format!("{p:?}").contains("published: 0"));
    let t = topic(&bus, "placed");
    assert_eq!(
        bus.subscribe_on(2, &t, |_, _| {}).err(),
        Some(BusError::NoSuchWorker {
            worker: 2,
            workers: 2
        })
    );
}

#[test]
fn unsubscribe_stops_delivery_and_others_keep_everything() {
    const ROUNDS: u64 = 200;
    let bus = Arc::new(bus(2, 32));
    let t = topic(&bus, "churn");
    let stayer = Arc::new(AtomicU64::new(0));
    let s = stayer.clone();
    bus.subscribe_on(1, &t, move |_, _| {
        s.fetch_add(1, Relaxed);
    })
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let mut p = bus.publisher().unwrap();
        let stop = stop.clone();
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                p.publish(&t, n).unwrap();
                n += 1;
            }
            n
        })
    };
    for round in 0..ROUNDS {
        let calls = Arc::new(AtomicU64::new(0));
        let gone = Arc::new(AtomicBool::new(false));
        let (c, g) = (calls.clone(), gone.clone());
        let id = bus
            .subscribe_on((round % 2) as usize, &t, move |_, _| {
                assert!(!g.load(Relaxed), "delivered after unsubscribe returned");
                c.fetch_add(1, Relaxed);
            })
            .unwrap();
        thread::yield_now();
        bus.unsubscribe(id).unwrap();
        gone.store(true, Relaxed);
        assert_eq!(
            bus.unsubscribe(id),
            Err(BusError::NoSuchSubscription(id.get()))
        );
    }
    stop.store(true, Relaxed);
    let published = publisher.join().unwrap();
    let bus = Arc::into_inner(bus).unwrap();
    let report = bus.shutdown();
    assert_eq!(
        stayer.load(Relaxed),
        published,
        "the subscriber that stayed got everything"
    );
    assert_eq!(report.handler_panics, 0, "no delivery after unsubscribe");
}

#[test]
fn publish_times_are_recorded_when_asked() {
    for record in [false, true] {
        let bus = Bus::builder()
            .workers(1)
            .pinning(Pinning::Off)
            .record_publish_time(record)
            .build()
            .unwrap();
        let t = topic(&bus, "timed");
        let waited = Arc::new(Mutex::new(Vec::new()));
        let w = waited.clone();
        bus.subscribe(&t, move |m, _| w.lock().unwrap().push(m.waited()))
            .unwrap();
        let mut p = bus.publisher().unwrap();
        p.publish(&t, 0).unwrap();
        bus.shutdown();
        let waited = waited.lock().unwrap();
        assert_eq!(waited.len(), 1);
        assert_eq!(waited[0].is_some(), record);
    }
}

#[test]
fn batch_publish_is_all_or_nothing_and_keeps_order() {
    let bus = bus(2, 8);
    let t = topic(&bus, "batches");
    let logs: Vec<Arc<Mutex<Vec<u64>>>> = (0..2).map(|_| Arc::default()).collect();
    let gate = Arc::new(AtomicBool::new(false));
    for (w, log) in logs.iter().enumerate() {
        let (log, gate) = (log.clone(), gate.clone());
        bus.subscribe_on(w, &t, move |m, _| {
            while !gate.load(Relaxed) {
                thread::yield_now();
            }
            log.lock().unwrap().push(*m.payload());
        })
        .unwrap();
    }
    let mut p = bus.publisher().unwrap();
    let batch: Vec<u64> = (0..6).collect();
    let sent = p.try_publish_batch(&t, &batch).unwrap();
    assert_eq!((sent.fanout, sent.workers), (2, 2));
    // 6 of 8 slots taken (the workers may hold one each in hand): 7 more can never fit all.
    assert_eq!(
        p.try_publish_batch(&t, &[9; 7]),
        Err(TryBatchError::Full { worker: 0 })
    );
    assert_eq!(
        p.try_publish_batch(&t, &[9; 9]),
        Err(TryBatchError::TooLarge {
            len: 9,
            capacity: 8
        })
    );
    // An empty batch writes nothing, full rings or not.
    let empty = p.try_publish_batch(&t, &[]).unwrap();
    assert_eq!((empty.fanout, empty.workers), (2, 2));
    p.publish_batch(&t, &[]).unwrap();
    gate.store(true, Relaxed);
    // Larger than a ring: split, waiting for room.
    let big: Vec<u64> = (6..100).collect();
    p.publish_batch(&t, &big).unwrap();
    let report = bus.shutdown();
    assert_eq!(report.published, 100);
    for log in &logs {
        assert!(
            log.lock().unwrap().iter().copied().eq(0..100),
            "in order, nothing else"
        );
    }
    assert_eq!(p.publish_batch(&t, &[1, 2]).unwrap_err().published(), 0);
}

#[test]
fn unplaced_subscriptions_spread_over_workers() {
    let bus = bus(2, 8);
    let t = topic(&bus, "spread");
    let on_worker = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..4 {
        let log = on_worker.clone();
        bus.subscribe(&t, move |_, out| log.lock().unwrap().push(out.worker()))
            .unwrap();
    }
    bus.publisher().unwrap().publish(&t, 0).unwrap();
    bus.shutdown();
    let mut seen = on_worker.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(seen, [0, 0, 1, 1]);
}

#[test]
fn handles_are_send_and_the_bus_is_shareable() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<tracebus::Publisher>(); // one per producing thread
    send::<Bus>();
    sync::<Bus>(); // subscribe and make publishers from several threads
    send::<tracebus::Publisher<Lines<2>>>();
    sync::<Bus<Lines<2>>>();
    send::<Topic<u64>>(); // a handle to copy into handlers and producer threads
    sync::<Topic<u64>>();
    send::<tracebus::Report>();
}

// ---- Typed, named topics ----

/// 12 bytes, 4-aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
struct Quote {
    bid: u32,
    ask: u32,
    size: u32,
}

/// 16 bytes, 8-aligned: the whole payload area of a one-line slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
struct Order {
    id: u64,
    price: u64,
}

const _: () = {
    assert!(size_of::<[u8; 3]>() == 3 && align_of::<[u8; 3]>() == 1);
    assert!(size_of::<Quote>() == 12 && align_of::<Quote>() == 4);
    assert!(size_of::<Order>() == 16 && align_of::<Order>() == 8);
};

/// What a handler saw of one message: the payload's bytes, where the payload lay relative to
/// the slot's header, and the topic name.
struct Seen {
    bytes: Vec<u8>,
    /// Address of the payload minus address of the slot's trace header.
    offset: isize,
    /// Payload address modulo the type's alignment.
    misalignment: usize,
    topic: String,
}

fn seen<T: Pod>(m: &Message<'_, T>) -> Seen {
    let payload = m.payload() as *const T as usize;
    let header = m.header() as *const _ as usize;
    Seen {
        bytes: bytemuck::bytes_of(m.payload()).to_vec(),
        offset: payload as isize - header as isize,
        misalignment: payload % align_of::<T>(),
        topic: m.topic().to_owned(),
    }
}

/// Subscribes a handler to `topic` on `worker` that records what it sees.
fn record<S: SlotSize, T: Pod>(
    bus: &Bus<S>,
    worker: usize,
    topic: &Topic<T>,
) -> Arc<Mutex<Vec<Seen>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    bus.subscribe_on(worker, topic, move |m, _| l.lock().unwrap().push(seen(m)))
        .unwrap();
    log
}

/// Every message in `log` was read in place (in its slot, right after the header and
/// metadata, aligned for `T`) on topic `name`, and the payloads are exactly `sent`, in order.
fn assert_in_place<T: Pod>(log: &Mutex<Vec<Seen>>, name: &str, sent: &[T]) {
    let log = log.lock().unwrap();
    assert_eq!(log.len(), sent.len(), "{name}: every message, once");
    for (i, (s, v)) in log.iter().zip(sent).enumerate() {
        assert_eq!(s.topic, name, "{name} #{i}: topic name");
        assert_eq!(
            s.offset, PAYLOAD_OFFSET as isize,
            "{name} #{i}: payload read in place in the slot"
        );
        assert_eq!(s.misalignment, 0, "{name} #{i}: payload aligned");
        assert_eq!(s.bytes, bytemuck::bytes_of(v), "{name} #{i}: exact bytes");
    }
}

#[test]
fn three_message_types_on_one_bus_each_read_in_place_by_its_own_handlers() {
    const N: u32 = 500;
    let bus = bus(2, 16);
    let tags = bus.topic::<[u8; 3]>("tags").unwrap();
    let quotes = bus.topic::<Quote>("quotes").unwrap();
    let orders = bus.topic::<Order>("orders").unwrap();
    // Two handlers per type, one on each worker: all three types share every ring.
    let tag_logs = [record(&bus, 0, &tags), record(&bus, 1, &tags)];
    let quote_logs = [record(&bus, 0, &quotes), record(&bus, 1, &quotes)];
    let order_logs = [record(&bus, 1, &orders), record(&bus, 0, &orders)];
    let sent_tags: Vec<[u8; 3]> = (0..N)
        .map(|i| [i as u8, (i >> 8) as u8, 0xa5 ^ i as u8])
        .collect();
    let sent_quotes: Vec<Quote> = (0..N)
        .map(|i| Quote {
            bid: i,
            ask: !i,
            size: i.wrapping_mul(0x9e37_79b9),
        })
        .collect();
    let sent_orders: Vec<Order> = (0..u64::from(N))
        .map(|i| Order {
            id: u64::MAX - i,
            price: i << 40 | 0xdead_beef,
        })
        .collect();
    let mut p = bus.publisher().unwrap();
    // Interleaved, so each ring carries the three types mixed.
    for i in 0..N as usize {
        assert_eq!(p.publish(&tags, sent_tags[i]).unwrap().fanout, 2);
        assert_eq!(p.publish(&quotes, sent_quotes[i]).unwrap().fanout, 2);
        assert_eq!(p.publish(&orders, sent_orders[i]).unwrap().fanout, 2);
    }
    let report = bus.shutdown();
    assert_eq!(report.published, 3 * u64::from(N));
    assert_eq!(report.delivered, 3 * 2 * u64::from(N));
    assert_eq!(report.handler_panics, 0);
    for log in &tag_logs {
        assert_in_place(log, "tags", &sent_tags);
    }
    for log in &quote_logs {
        assert_in_place(log, "quotes", &sent_quotes);
    }
    for log in &order_logs {
        assert_in_place(log, "orders", &sent_orders);
    }
}

/// Publishes `values` to a new topic of `bus` with one subscriber per worker and checks that
/// each arrives whole, in place.
fn round_trip<S: SlotSize, T: Pod>(bus: Bus<S>, name: &str, values: &[T]) {
    let topic = bus.topic::<T>(name).unwrap();
    let logs: Vec<_> = (0..bus.workers())
        .map(|w| record(&bus, w, &topic))
        .collect();
    let mut p = bus.publisher().unwrap();
    for &v in values {
        assert_eq!(p.publish(&topic, v).unwrap().fanout, bus.workers());
    }
    let report = bus.shutdown();
    assert_eq!(report.handler_panics, 0);
    for log in &logs {
        assert_in_place(log, name, values);
    }
}

#[test]
fn the_largest_type_that_fits_works_on_one_and_two_line_slots() {
    // One more byte (or more than 8-byte alignment) does not compile: see the compile_fail
    // doc test on `Bus::topic`.
    assert_eq!(<Lines<1> as SlotSize>::PAYLOAD_BYTES, 16);
    assert_eq!(<Lines<2> as SlotSize>::PAYLOAD_BYTES, 80);
    let one = || bus(2, 8);
    let two = || {
        Bus::builder()
            .workers(2)
            .capacity(8)
            .pinning(Pinning::Off)
            .slot_size::<Lines<2>>()
            .build()
            .unwrap()
    };
    // Distinct bytes everywhere, so a truncated or shifted message shows.
    let bytes16: Vec<[u8; 16]> = (0..50u8)
        .map(|i| core::array::from_fn(|j| i.wrapping_mul(31) ^ j as u8 ^ 0x80))
        .collect();
    let words2: Vec<[u64; 2]> = (0..50u64).map(|i| [!i, i << 32 | 0x1234]).collect();
    let bytes80: Vec<[u8; 80]> = (0..50u8)
        .map(|i| core::array::from_fn(|j| i.wrapping_mul(17) ^ j as u8 ^ 0x55))
        .collect();
    let words10: Vec<[u64; 10]> = (0..50u64)
        .map(|i| core::array::from_fn(|j| i << 32 | j as u64 | 0xff00_0000_0000_0000))
        .collect();
    round_trip(one(), "16 bytes", &bytes16);
    round_trip(one(), "two words", &words2);
    round_trip(two(), "80 bytes", &bytes80);
    round_trip(two(), "ten words", &words10);
    // Small types on a big-slot bus too.
    round_trip(two(), "tags", &[[1u8, 2, 3], [4, 5, 6]]);
}

#[test]
fn the_same_name_with_another_type_is_refused_naming_both() {
    let bus = bus(1, 8);
    let orders = bus.topic::<Order>("orders").unwrap();
    let again = bus.topic::<Order>("orders").unwrap();
    assert_eq!(orders, again, "same name, same type: the same topic");
    for refused in [
        bus.topic::<u64>("orders").unwrap_err(),
        // Same size as an `Order`, still another type.
        bus.topic::<[u8; 16]>("orders").map(|_| ()).unwrap_err(),
    ] {
        let TopicError::TypeMismatch {
            name,
            existing,
            requested,
        } = &refused
        else {
            panic!("expected TypeMismatch, got {refused:?}");
        };
        assert_eq!(name, "orders");
        assert_eq!(*existing, type_name::<Order>());
        assert_ne!(requested, existing);
        let text = refused.to_string();
        assert!(
            text.contains(existing) && text.contains(requested) && text.contains("orders"),
            "the message names the topic and both types: {text}"
        );
    }
    assert_eq!(
        bus.topic::<u64>("orders"),
        Err(TopicError::TypeMismatch {
            name: "orders".into(),
            existing: type_name::<Order>(),
            requested: "u64",
        })
    );
    assert_eq!(bus.topic::<u64>(""), Err(TopicError::EmptyName));
    // The refusals changed nothing: the topic works through either handle.
    let log = record(&bus, 0, &again);
    let order = Order { id: 7, price: 99 };
    assert_eq!(
        bus.publisher()
            .unwrap()
            .publish(&orders, order)
            .unwrap()
            .fanout,
        1
    );
    bus.shutdown();
    assert_in_place(&log, "orders", &[order]);
}

#[test]
fn a_hundred_thousand_topics_on_one_bus() {
    const TOPICS: usize = 100_000;
    let bus = bus(1, 1024);
    let started = Instant::now();
    let topics: Vec<Topic<u64>> = (0..TOPICS).map(|i| topic(&bus, &format!("t{i}"))).collect();
    for (i, t) in topics.iter().enumerate() {
        assert_eq!(t.index() as usize, i, "dense indices in creation order");
    }
    assert_eq!(topic(&bus, "t99999"), topics[99_999], "found again by name");
    assert_eq!(&*bus.topic_name(&topics[12_345]), "t12345");
    let registered = started.elapsed();
    // One subscriber per topic; the handlers share their counters.
    let delivered = Arc::new(AtomicU64::new(0));
    let wrong = Arc::new(AtomicU64::new(0));
    for (i, t) in topics.iter().enumerate() {
        let (d, w) = (delivered.clone(), wrong.clone());
        bus.subscribe(t, move |m, _| {
            let named = m.topic().strip_prefix('t').and_then(|n| n.parse().ok());
            if *m.payload() != i as u64 || named != Some(i) {
                w.fetch_add(1, Relaxed);
            }
            d.fetch_add(1, Relaxed);
        })
        .unwrap();
    }
    let subscribed = started.elapsed();
    let mut p = bus.publisher().unwrap();
    for (i, t) in topics.iter().enumerate() {
        let sent = p.publish(t, i as u64).unwrap();
        assert_eq!((sent.fanout, sent.workers), (1, 1), "topic t{i}");
    }
    // A topic nobody subscribes: fanout 0, nothing written.
    let nobody = topic(&bus, "nobody");
    assert_eq!(nobody.index() as usize, TOPICS);
    let sent = p.publish(&nobody, 1).unwrap();
    assert_eq!((sent.fanout, sent.workers), (0, 0));
    assert_eq!(p.try_publish(&nobody, 2).unwrap().fanout, 0);
    let report = bus.shutdown();
    eprintln!(
        "{TOPICS} topics: registered after {registered:?}, subscribed after {subscribed:?}, \
         published and delivered after {:?}",
        started.elapsed()
    );
    assert_eq!(
        report.published, TOPICS as u64,
        "the unsubscribed topic counts nothing"
    );
    assert_eq!(report.delivered, TOPICS as u64);
    assert_eq!(delivered.load(Relaxed), TOPICS as u64);
    assert_eq!(
        wrong.load(Relaxed),
        0,
        "each message on its topic, with its name"
    );
}

#[test]
#[should_panic(expected = "topics belong to the bus that made them")]
fn a_topic_from_another_bus_panics_on_publish() {
    let (ours, theirs) = (bus(1, 8), bus(1, 8));
    // The same name and index on both buses, and still not the same topic.
    let foreign = topic(&theirs, "orders");
    let own = topic(&ours, "orders");
    assert_eq!(foreign.index(), own.index());
    ours.subscribe(&own, |_, _| {}).unwrap();
    let mut p = ours.publisher().unwrap();
    let _ = p.publish(&foreign, 1);
}

#[test]
#[should_panic(expected = "topics belong to the bus that made them")]
fn a_topic_from_another_bus_panics_on_subscribe() {
    let (ours, theirs) = (bus(1, 8), bus(1, 8));
    let foreign = topic(&theirs, "orders");
    let _ = ours.subscribe(&foreign, |_, _| {});
}

/// Sets its flag when dropped, so a handler held on the flag is let go even when an assertion
/// fails first (the bus's drop then does not wait for it forever).
struct OpenOnDrop(Arc<AtomicBool>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

#[test]
fn each_call_fails_with_its_own_error() {
    let bus = bus(1, 4);
    let t = topic(&bus, "errors");
    // The handler holds the ring full until `open`.
    let open = Arc::new(AtomicBool::new(false));
    let o = open.clone();
    let _release = OpenOnDrop(open.clone());
    bus.subscribe(&t, move |_, _| {
        while !o.load(Relaxed) {
            thread::yield_now();
        }
    })
    .unwrap();
    let mut p = bus.publisher().unwrap();
    // try_publish on a full ring: Full, with the payload and the worker.
    let mut accepted = 0u64;
    let full = loop {
        match p.try_publish(&t, 100 + accepted) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100, "a 4-slot ring never filled");
    };
    assert_eq!(
        full,
        TryPublishError::Full {
            payload: 100 + accepted,
            worker: 0
        }
    );
    assert!(full.is_full() && !full.is_closed());
    assert!(full.to_string().contains("full"), "{full}");
    assert_eq!(full.into_inner(), 100 + accepted);
    // try_publish_batch: a batch that does not fit now is Full; one larger than a ring is
    // TooLarge (it never fits).
    assert_eq!(
        p.try_publish_batch(&t, &[1]),
        Err(TryBatchError::Full { worker: 0 })
    );
    assert_eq!(
        p.try_publish_batch(&t, &[0; 5]),
        Err(TryBatchError::TooLarge {
            len: 5,
            capacity: 4
        })
    );
    open.store(true, Relaxed);
    let report = bus.shutdown();
    assert_eq!((report.published, report.delivered), (accepted, accepted));
    // After shutdown: publish hands the payload back, publish_batch published nothing, and the
    // non-waiting calls say Closed.
    let refused = p.publish(&t, 42).unwrap_err();
    assert!(refused.to_string().contains("shut down"), "{refused}");
    assert_eq!(refused.into_inner(), 42);
    let batch = p.publish_batch(&t, &[1, 2, 3]).unwrap_err();
    assert_eq!(batch.published(), 0);
    assert_eq!(p.try_publish(&t, 43), Err(TryPublishError::Closed(43)));
    assert!(p.try_publish(&t, 44).unwrap_err().is_closed());
    assert_eq!(p.try_publish_batch(&t, &[1]), Err(TryBatchError::Closed));
}

#[test]
fn a_batch_cut_short_by_shutdown_reports_what_was_published() {
    let bus = bus(1, 4);
    let t = topic(&bus, "cut short");
    let (entered, open) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (e, o) = (entered.clone(), open.clone());
    let _release = OpenOnDrop(open.clone());
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    bus.subscribe(&t, move |m, _| {
        e.store(true, Relaxed);
        while !o.load(Relaxed) {
            thread::yield_now();
        }
        g.lock().unwrap().push(*m.payload());
    })
    .unwrap();
    let mut p = bus.publisher().unwrap();
    let publisher = thread::spawn(move || {
        let batch: Vec<u64> = (0..12).collect();
        p.publish_batch(&t, &batch)
    });
    // The handler holds the first message: the first chunk of 4 is in, the second can never
    // fit until the handler is let go.
    while !entered.load(Relaxed) {
        thread::yield_now();
    }
    let shutdown = thread::spawn(move || bus.shutdown());
    let cut = publisher
        .join()
        .unwrap()
        .expect_err("shutdown stops the batch");
    assert_eq!(cut.published(), 4, "{cut}");
    open.store(true, Relaxed);
    let report = shutdown.join().unwrap();
    assert_eq!((report.published, report.delivered), (4, 4));
    assert_eq!(*got.lock().unwrap(), [0, 1, 2, 3]);
}
