//! The bus runtime: fanout and ordering, backpressure, faults, shutdown, subscriptions changing
//! while messages flow. Every test uses yield or park waits (CI has 2 cores) and is bounded by
//! count, not time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tracebus::{BuildError, Bus, BusError, Pinning, PublishError, WaitStrategy};

fn bus(workers: usize, capacity: usize) -> Bus<u64> {
    Bus::builder()
        .workers(workers)
        .capacity(capacity)
        .pinning(Pinning::Off)
        .wait_strategy(WaitStrategy::SpinThenPark)
        .build::<u64>()
        .expect("valid settings")
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
    // Each subscriber records what it saw, per producer.
    let seen: Vec<Arc<Mutex<Vec<Vec<u64>>>>> = (0..SUBSCRIBERS)
        .map(|_| Arc::new(Mutex::new(vec![Vec::new(); PRODUCERS as usize])))
        .collect();
    for (i, log) in seen.iter().enumerate() {
        let log = log.clone();
        bus.subscribe(7, Some(i % 2), move |m, _| {
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
                    let sent = publisher.publish(7, tag(p, s)).unwrap();
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
    let mut p = bus.publisher().unwrap();
    for _ in 0..100 {
        // More than the ring holds: nothing is written, so nothing fills up.
        assert_eq!(p.try_publish(3, 1).unwrap().fanout, 0);
    }
    let report = bus.shutdown();
    assert_eq!((report.published, report.delivered), (0, 0));
}

#[test]
fn a_panicking_handler_is_caught_and_nothing_else_is_lost() {
    const N: u64 = 1_000;
    let bus = bus(2, 64);
    let good = Arc::new(AtomicU64::new(0));
    let g = good.clone();
    bus.subscribe(1, Some(0), |m, _| {
        if *m.payload() % 10 == 0 {
            panic!("handler panic on {}", m.payload());
        }
    })
    .unwrap();
    bus.subscribe(1, Some(0), move |_, _| {
        g.fetch_add(1, Relaxed);
    })
    .unwrap();
    let other = Arc::new(AtomicU64::new(0));
    let o = other.clone();
    bus.subscribe(1, Some(1), move |_, _| {
        o.fetch_add(1, Relaxed);
    })
    .unwrap();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut p = bus.publisher().unwrap();
    for i in 0..N {
        p.publish(1, i).unwrap();
    }
    let report = bus.shutdown();
    std::panic::set_hook(quiet);
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

#[test]
fn full_rings_hand_the_message_back_and_blocking_publish_waits() {
    let bus = bus(1, 4);
    let gate = Arc::new(AtomicBool::new(false));
    let got = Arc::new(Mutex::new(Vec::new()));
    let (g, log) = (gate.clone(), got.clone());
    bus.subscribe(1, None, move |m, _| {
        while !g.load(Relaxed) {
            thread::sleep(Duration::from_millis(1));
        }
        log.lock().unwrap().push(*m.payload());
    })
    .unwrap();
    let mut p = bus.publisher().unwrap();
    let mut accepted = 0u64;
    let refused = loop {
        match p.try_publish(1, accepted) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100, "a 4-slot ring never filled");
    };
    assert_eq!(
        refused,
        PublishError::Full {
            payload: accepted,
            worker: 0
        }
    );
    assert_eq!(refused.into_payload(), accepted);
    // A blocking publish waits for room, then succeeds.
    let opener = {
        let gate = gate.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            gate.store(true, Relaxed);
        })
    };
    for v in accepted..accepted + 50 {
        p.publish(1, v).unwrap();
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
    let delivered = Arc::new(AtomicU64::new(0));
    for w in 0..2 {
        let d = delivered.clone();
        bus.subscribe(5, Some(w), move |_, _| {
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
                    match p.publish(5, accepted) {
                        Ok(_) => accepted += 1,
                        Err(PublishError::Closed(v)) => {
                            assert_eq!(v, accepted, "the refused message comes back");
                            return accepted;
                        }
                        Err(e) => panic!("unexpected {e}"),
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
    let mut p = bus.publisher().unwrap();
    bus.subscribe(1, None, |_, _| {}).unwrap();
    drop(bus); // dropping is shutting down
    assert_eq!(p.publish(1, 42), Err(PublishError::Closed(42)));
    assert_eq!(p.try_publish(1, 43), Err(PublishError::Closed(43)));
}

#[test]
fn invalid_settings_fail_before_any_thread_starts() {
    assert_eq!(
        Bus::builder().workers(0).build::<u64>().err(),
        Some(BuildError::NoWorkers)
    );
    assert!(matches!(
        Bus::builder().capacity(0).build::<u64>(),
        Err(BuildError::Capacity { capacity: 0, .. })
    ));
    assert!(matches!(
        Bus::builder()
            .pinning(Pinning::Cores(vec![100_000]))
            .build::<u64>(),
        Err(BuildError::MissingCore { core: 100_000, .. })
    ));
    assert_eq!(
        Bus::builder()
            .workers(3)
            .pinning(Pinning::Cores(vec![0]))
            .build::<u64>()
            .err(),
        Some(BuildError::TooFewCores {
            workers: 3,
            cores: 1
        })
    );
    let e = Bus::builder().workers(0).build::<u64>().err().unwrap();
    assert!(e.to_string().contains("at least one worker"));
    // More workers than cores: a warning, not a failure.
    let many = Bus::builder().workers(64).build::<u64>().unwrap();
    assert!(many.warnings().iter().any(|w| w.contains("unpinned")));
    let bus = bus(2, 8);
    assert_eq!(
        bus.subscribe(1, Some(2), |_, _| {}).err(),
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
    let stayer = Arc::new(AtomicU64::new(0));
    let s = stayer.clone();
    bus.subscribe(9, Some(1), move |_, _| {
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
                p.publish(9, n).unwrap();
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
            .subscribe(9, Some((round % 2) as usize), move |_, _| {
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
            .build::<u64>()
            .unwrap();
        let waited = Arc::new(Mutex::new(Vec::new()));
        let w = waited.clone();
        bus.subscribe(1, None, move |m, _| w.lock().unwrap().push(m.waited()))
            .unwrap();
        let mut p = bus.publisher().unwrap();
        p.publish(1, 0).unwrap();
        bus.shutdown();
        let waited = waited.lock().unwrap();
        assert_eq!(waited.len(), 1);
        assert_eq!(waited[0].is_some(), record);
    }
}

#[test]
fn batch_publish_is_all_or_nothing_and_keeps_order() {
    let bus = bus(2, 8);
    let logs: Vec<Arc<Mutex<Vec<u64>>>> = (0..2).map(|_| Arc::default()).collect();
    let gate = Arc::new(AtomicBool::new(false));
    for (w, log) in logs.iter().enumerate() {
        let (log, gate) = (log.clone(), gate.clone());
        bus.subscribe(4, Some(w), move |m, _| {
            while !gate.load(Relaxed) {
                thread::yield_now();
            }
            log.lock().unwrap().push(*m.payload());
        })
        .unwrap();
    }
    let mut p = bus.publisher().unwrap();
    let batch: Vec<u64> = (0..6).collect();
    let sent = p.try_publish_batch(4, &batch).unwrap();
    assert_eq!((sent.fanout, sent.workers), (2, 2));
    // 6 of 8 slots taken (the workers may hold one each in hand): 7 more can never fit all.
    assert_eq!(
        p.try_publish_batch(4, &[9; 7]),
        Err(tracebus::BatchError::Full { worker: 0 })
    );
    assert_eq!(
        p.try_publish_batch(4, &[9; 9]),
        Err(tracebus::BatchError::TooLarge {
            len: 9,
            capacity: 8
        })
    );
    gate.store(true, Relaxed);
    // Larger than a ring: split, waiting for room.
    let big: Vec<u64> = (6..100).collect();
    p.publish_batch(4, &big).unwrap();
    let report = bus.shutdown();
    assert_eq!(report.published, 100);
    for log in &logs {
        assert!(
            log.lock().unwrap().iter().copied().eq(0..100),
            "in order, nothing else"
        );
    }
    assert_eq!(
        p.publish_batch(4, &[1, 2]),
        Err(tracebus::BatchError::Closed { published: 0 })
    );
}

#[test]
fn unplaced_subscriptions_spread_over_workers() {
    let bus = bus(2, 8);
    let on_worker = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..4 {
        let log = on_worker.clone();
        bus.subscribe(6, None, move |_, ctx| {
            log.lock().unwrap().push(ctx.worker())
        })
        .unwrap();
    }
    bus.publisher().unwrap().publish(6, 0).unwrap();
    bus.shutdown();
    let mut seen = on_worker.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(seen, [0, 0, 1, 1]);
}

#[test]
fn handles_are_send_and_the_bus_is_shareable() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<tracebus::Publisher<u64>>(); // one per producing thread
    send::<Bus<u64>>();
    sync::<Bus<u64>>(); // subscribe and make publishers from several threads
    send::<tracebus::Report>();
}
