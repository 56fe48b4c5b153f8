//! Delivery through the bus: fanout and per-producer order, nothing written without
//! subscribers, handler panics caught, backpressure, batches, publish times, worker reports,
//! and shutdown under load delivering every accepted message. Every test uses yield or park
//! waits (CI has 2 cores) and is bounded by count, not time.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tracebus::{Bus, Pinning, TryBatchError, TryPublishError, WaitStrategy};

use common::{bus, tag, topic, OpenOnDrop};

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

/// The gate refuses a publish that would write nothing too: to a topic nobody subscribes to,
/// and to a ring that stays full because its worker was left behind (so `publish` returns
/// instead of waiting for room forever), on the inlined path and the general one alike.
#[test]
fn after_shutdown_publishes_that_write_nothing_are_refused_too() {
    let bus = bus(1, 2);
    let nobody = topic(&bus, "nobody");
    let t = topic(&bus, "held");
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = Mutex::new(held);
    bus.subscribe(&t, move |_, _| {
        let _ = held.lock().unwrap().recv();
    })
    .unwrap();
    let mut p = bus.publisher().unwrap();
    // The first message holds the worker in its handler; the ring then fills.
    let mut accepted = 0;
    while p.try_publish(&t, 1).is_ok() {
        accepted += 1;
        assert!(accepted < 100, "the ring of 2 never filled");
    }
    let report = bus.shutdown_timeout(Duration::from_millis(20));
    assert_eq!(report.workers_abandoned, 1);
    assert_eq!(report.published, accepted);
    assert_eq!(p.try_publish(&nobody, 5), Err(TryPublishError::Closed(5)));
    assert_eq!(
        p.try_publish_batch(&nobody, &[5]),
        Err(TryBatchError::Closed)
    );
    assert_eq!(p.try_publish(&t, 6), Err(TryPublishError::Closed(6)));
    assert_eq!(p.publish(&t, 7).unwrap_err().into_inner(), 7);
    assert_eq!(p.try_publish_batch(&t, &[8]), Err(TryBatchError::Closed));
    assert_eq!(p.publish_batch(&t, &[9]).unwrap_err().published(), 0);
    drop(release);
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
