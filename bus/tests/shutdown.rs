//! Nothing lost, nothing hanging: shutdown drains a pipeline's onward publishes, stops a cycle
//! at its deadline and counts what it left, every refused onward publish is counted, handlers
//! that subscribe or flush cannot hang their worker, live counts add up, and a bus whose mesh
//! cannot be allocated fails to build instead of aborting.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::{bus, topic};
use tracebus::ring::RingError;
use tracebus::{BuildError, Bus, BusError, Pinning, Report, TryPublishError, MAX_WORKERS};

/// Every count adds up: copies accepted (here, with one subscriber per topic, messages) are
/// delivered, panicked or lost.
fn assert_adds_up(r: &Report) {
    let handled: u64 = r.workers.iter().map(|w| w.messages).sum();
    assert_eq!(
        r.published,
        handled + r.lost,
        "published = handled + lost: {r:?}"
    );
    assert_eq!(
        r.published,
        r.delivered + r.handler_panics + r.lost,
        "one subscriber per topic: {r:?}"
    );
}

/// A two-stage pipeline: `orders` on worker 0 forwards each order to `fills` on worker 1.
/// Shutting down right after the last publish delivers every fill.
#[test]
fn shutdown_right_after_the_last_publish_delivers_the_pipeline() {
    const N: u64 = 2_000;
    let bus = bus(2, 1024);
    let orders = topic(&bus, "orders");
    let fills = topic(&bus, "fills");
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    bus.subscribe_on(0, &orders, move |m, out| {
        // Backpressure handled: wait for room rather than drop.
        out.publish_timeout(&fills, *m.payload(), Duration::from_secs(10))
            .expect("room within 10 s");
    })
    .unwrap();
    bus.subscribe_on(1, &fills, move |m, _| {
        g.fetch_add(*m.payload() + 1, Relaxed);
    })
    .unwrap();
    let mut p = bus.publisher().unwrap();
    for i in 0..N {
        p.publish(&orders, i).unwrap();
    }
    drop(p);
    let report = bus.shutdown();
    assert_eq!(got.load(Relaxed), N * (N + 1) / 2, "every fill delivered");
    assert_eq!(report.published, 2 * N);
    assert_eq!(report.delivered, 2 * N);
    assert_eq!(
        (report.lost, report.refused_full, report.refused_closed),
        (0, 0, 0)
    );
    assert!(!report.drain_timed_out);
    assert_adds_up(&report);
}

/// A slow second stage behind small rings: the first stage's non-waiting onward publishes are
/// refused `Full`, and every refusal is counted, so published, delivered and refused add up.
#[test]
fn refused_onward_publishes_are_counted_and_add_up() {
    const N: u64 = 2_000;
    let bus = bus(2, 16);
    let orders = topic(&bus, "orders");
    let fills = topic(&bus, "fills");
    let dropped = Arc::new(AtomicU64::new(0));
    let d = dropped.clone();
    bus.subscribe_on(0, &orders, move |m, out| {
        if let Err(e) = out.try_publish(&fills, *m.payload()) {
            assert!(e.is_full());
            d.fetch_add(1, Relaxed);
        }
    })
    .unwrap();
    bus.subscribe_on(1, &fills, |_, _| thread::sleep(Duration::from_micros(200)))
        .unwrap();
    let mut p = bus.publisher().unwrap();
    for i in 0..N {
        p.publish(&orders, i).unwrap();
    }
    drop(p);
    let stats = bus.stats();
    assert!(stats.refused_full > 0, "live: {stats:?}");
    let report = bus.shutdown();
    let dropped = dropped.load(Relaxed);
    assert!(dropped > 0, "the slow stage made rings fill");
    assert_eq!(report.refused_full, dropped, "every refusal counted");
    assert_eq!(
        report.workers[0].refused_full, dropped,
        "on the worker that refused"
    );
    assert_eq!(report.workers[1].refused_full, 0);
    assert_eq!(
        report.published,
        N + (N - dropped),
        "onward publishes: accepted + refused = attempted"
    );
    assert_eq!(report.lost, 0);
    assert_adds_up(&report);
}

/// A cycle (A -> B -> A, forever) never quiesces: shutdown stops it at the drain deadline,
/// refuses the handlers' later publishes (counted) and counts the copies it left as lost.
#[test]
fn a_cycle_is_stopped_at_the_drain_deadline_and_what_it_left_is_counted() {
    let bus = bus(2, 64);
    let a = topic(&bus, "a");
    let b = topic(&bus, "b");
    let closed = Arc::new(AtomicU64::new(0));
    for (w, from, to) in [(0, a, b), (1, b, a)] {
        let closed = closed.clone();
        bus.subscribe_on(w, &from, move |m, out| {
            match out.try_publish(&to, *m.payload()) {
                Ok(_) => {}
                Err(TryPublishError::Closed(_)) => {
                    closed.fetch_add(1, Relaxed);
                }
                Err(e) => panic!("{e}"),
            }
        })
        .unwrap();
    }
    let mut p = bus.publisher().unwrap();
    for i in 0..8 {
        p.publish(&a, i).unwrap();
    }
    drop(p);
    let report = bus.shutdown_timeout(Duration::from_millis(200));
    assert!(report.drain_timed_out, "{report:?}");
    assert_eq!(report.refused_closed, closed.load(Relaxed));
    assert_eq!(report.workers_abandoned, 0);
    // Eight messages circulate: each is in a ring or was refused when the gate closed.
    assert_eq!(report.lost + report.refused_closed, 8, "{report:?}");
    assert_adds_up(&report);
}

/// A handler that never returns cannot hold shutdown: its worker is left behind after the
/// deadline and a grace period, and counted.
#[test]
fn a_handler_that_never_returns_is_left_behind_and_counted() {
    let bus = bus(2, 64);
    let stuck = topic(&bus, "stuck");
    let fine = topic(&bus, "fine");
    let entered = Arc::new(AtomicBool::new(false));
    let e = entered.clone();
    bus.subscribe_on(0, &stuck, move |_, _| {
        e.store(true, Relaxed);
        loop {
            thread::park();
        }
    })
    .unwrap();
    bus.subscribe_on(1, &fine, |_, _| {}).unwrap();
    let mut p = bus.publisher().unwrap();
    for i in 0..3 {
        p.publish(&stuck, i).unwrap();
        p.publish(&fine, i).unwrap();
    }
    while !entered.load(Relaxed) {
        thread::yield_now();
    }
    let report = bus.shutdown_timeout(Duration::from_millis(100));
    assert!(report.drain_timed_out);
    assert_eq!(report.workers_abandoned, 1);
    assert_eq!(report.workers[1].delivered, 3, "the other worker drained");
    assert_eq!(report.published, 6);
    assert_eq!(report.lost, 3, "the stuck message and the two behind it");
}

/// Subscribing and unsubscribing from a handler, on its own worker and on another, does not
/// wait for the worker (which may be the caller): it takes effect after the current pass, and
/// before `flush` sees that pass done.
#[test]
fn subscribing_from_a_handler_never_hangs_its_worker() {
    let bus = Arc::new(bus(2, 64));
    let control = topic(&bus, "control");
    let data = topic(&bus, "data");
    let got = Arc::new(AtomicU64::new(0));
    let slot: Arc<Mutex<Option<Arc<Bus>>>> = Arc::new(Mutex::new(Some(bus.clone())));
    let kept = Arc::new(Mutex::new(None));
    let (s, g, k) = (slot.clone(), got.clone(), kept.clone());
    bus.subscribe_on(0, &control, move |m, _| {
        let guard = s.lock().unwrap();
        let bus = guard.as_ref().expect("the test's bus");
        if *m.payload() == 0 {
            let g = g.clone();
            let id = bus
                .subscribe_on(0, &data, move |m, _| {
                    g.fetch_add(*m.payload(), Relaxed);
                })
                .expect("subscribed from a handler on its own worker");
            *k.lock().unwrap() = Some(id);
            let other = bus.subscribe_on(1, &data, |_, _| {}).unwrap();
            bus.unsubscribe(other).expect("unsubscribed from a handler");
        } else {
            let id = k.lock().unwrap().take().unwrap();
            bus.unsubscribe(id).expect("unsubscribed on its own worker");
        }
        assert!(matches!(
            bus.flush(Duration::from_secs(1)),
            Err(BusError::WouldDeadlock { worker: 0 })
        ));
    })
    .unwrap();
    let mut p = bus.publisher().unwrap();
    p.publish(&control, 0).unwrap();
    bus.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(
        p.publish(&data, 5).unwrap().fanout,
        1,
        "installed and routed"
    );
    bus.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(got.load(Relaxed), 5);
    p.publish(&control, 1).unwrap();
    bus.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(p.publish(&data, 7).unwrap().fanout, 0, "removed");
    drop(p);
    // The handler holds the bus: let it go before shutting down.
    slot.lock().unwrap().take();
    let bus = Arc::try_unwrap(bus).expect("the last handle");
    let report = bus.shutdown();
    assert_eq!(report.handler_panics, 0, "{report:?}");
    assert_eq!(got.load(Relaxed), 5);
}

/// `stats` reads live counts while messages wait behind a held handler; `flush` waits until
/// they are handled, or says it timed out.
#[test]
fn live_stats_and_flush() {
    let bus = bus(1, 64);
    let t = topic(&bus, "t");
    let hold = Arc::new(AtomicBool::new(true));
    let h = hold.clone();
    bus.subscribe(&t, move |m, _| {
        while h.load(Relaxed) {
            thread::yield_now();
        }
        if *m.payload() == 0 {
            panic!("test: injected panic");
        }
    })
    .unwrap();
    tracebus_test_support::quiet_injected_panics("test: injected");
    let mut p = bus.publisher().unwrap();
    for i in 0..10 {
        p.publish(&t, i).unwrap();
    }
    let s = bus.stats();
    assert_eq!(s.published, 10);
    assert_eq!(
        s.queued, 10,
        "nothing handled while the first handler holds"
    );
    assert_eq!((s.delivered, s.handler_panics), (0, 0));
    assert!(matches!(
        bus.flush(Duration::from_millis(50)),
        Err(BusError::Timeout { .. })
    ));
    hold.store(false, Relaxed);
    bus.flush(Duration::from_secs(10)).unwrap();
    let s = bus.stats();
    assert_eq!(
        (s.published, s.delivered, s.handler_panics, s.queued),
        (10, 9, 1, 0)
    );
    drop(p);
    let r = bus.shutdown();
    assert_eq!(
        (r.published, r.delivered, r.handler_panics, r.lost),
        (10, 9, 1, 0)
    );
}

/// Two stages that wait on each other's workers, with rings of 2: stage 1 (worker 0)
/// publishes each message onward to worker 1, whose stage 2 publishes three messages back to
/// worker 0 per message. Stage 2 takes its time over the first message, so stage 1 fills its
/// ring and waits on worker 1; stage 2 then fills its ring back to worker 0 (which empties
/// nothing while it waits) and would wait on worker 0: neither could make room for the other,
/// so the wait that closes the cycle is refused at once (counted) instead of stalling both for
/// the whole timeout.
#[test]
fn a_cycle_of_waits_is_refused_at_once_not_after_the_timeout() {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let bus = bus(2, 2);
        let (a, b, c) = (topic(&bus, "a"), topic(&bus, "b"), topic(&bus, "c"));
        let wait = Duration::from_secs(60);
        bus.subscribe_on(0, &a, move |m, out| {
            let _ = out.publish_timeout(&b, *m.payload(), wait);
        })
        .unwrap();
        bus.subscribe_on(1, &b, move |m, out| {
            if *m.payload() == 0 {
                thread::sleep(Duration::from_millis(200));
            }
            for _ in 0..3 {
                let _ = out.publish_timeout(&c, *m.payload(), wait);
            }
        })
        .unwrap();
        bus.subscribe_on(0, &c, |_, _| {}).unwrap();
        let mut p = bus.publisher().unwrap();
        for i in 0..10 {
            p.publish(&a, i).unwrap();
        }
        drop(p);
        tx.send(bus.shutdown()).unwrap();
    });
    let report = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("no wait stalled for its 60 s timeout");
    assert!(report.refused_full > 0, "the cycle was found: {report:?}");
    // Stage 1 refused `a` of its 10 onward publishes; stage 2 `b` of its three per message.
    let (a, b) = (
        report.workers[0].refused_full,
        report.workers[1].refused_full,
    );
    assert_eq!(report.published, 10 + (10 - a) + (3 * (10 - a) - b));
    assert_adds_up(&report);
}

/// A publish to a full ring on the handler's own worker cannot be helped by waiting (only this
/// worker empties it): `publish_timeout` refuses it at once.
#[test]
fn publish_timeout_to_its_own_full_ring_is_refused_at_once() {
    let bus = bus(1, 2);
    let first = topic(&bus, "first");
    let second = topic(&bus, "second");
    let refused = Arc::new(Mutex::new(Vec::new()));
    let r = refused.clone();
    bus.subscribe(&first, move |_, out| {
        let timeout = Duration::from_secs(60);
        for i in 0..4 {
            let start = Instant::now();
            if let Err(e) = out.publish_timeout(&second, i, timeout) {
                r.lock()
                    .unwrap()
                    .push((e.is_full(), start.elapsed() < timeout));
            }
        }
    })
    .unwrap();
    bus.subscribe(&second, |_, _| {}).unwrap();
    let mut p = bus.publisher().unwrap();
    p.publish(&first, 0).unwrap();
    drop(p);
    let report = bus.shutdown();
    assert_eq!(*refused.lock().unwrap(), [(true, true), (true, true)]);
    assert_eq!(report.refused_full, 2);
    assert_eq!(report.published, 3);
    assert_adds_up(&report);
}

/// Bad sizes fail the build with a clear error, before any thread starts, instead of
/// aborting the process on an allocation.
#[test]
fn a_mesh_that_cannot_be_allocated_is_a_build_error() {
    // 2^40 slots of 64 bytes per ring, four rings: more than the address space.
    let big = Bus::builder()
        .workers(2)
        .capacity(1 << 40)
        .pinning(Pinning::Off)
        .build();
    match big {
        Err(
            e @ BuildError::Capacity {
                reason: RingError::OutOfMemory { .. },
                ..
            },
        ) => {
            assert!(e.to_string().contains("could not allocate"), "{e}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a 256 TiB mesh was built"),
    }
    let many = Bus::builder().workers(MAX_WORKERS + 1).build();
    assert!(matches!(
        many,
        Err(BuildError::TooManyWorkers { workers, max: MAX_WORKERS }) if workers == MAX_WORKERS + 1
    ));
    // A mesh that could take gigabytes as it cycles builds, with a warning.
    let warned = Bus::builder()
        .workers(4)
        .capacity(1 << 22)
        .pinning(Pinning::Off)
        .build()
        .unwrap();
    assert!(
        warned.warnings().iter().any(|w| w.contains("4096 MiB")),
        "{:?}",
        warned.warnings()
    );
}
