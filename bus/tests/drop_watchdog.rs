//! Dropping a `Publisher` or the `Bus` at any point never blocks forever and never leaks a
//! thread. Each scenario runs under a watchdog that fails the test instead of hanging it, and
//! afterwards no `tracebus-worker` thread may be left in the process.
//!
//! The scenarios run one after another in a single test, so that the thread count is this
//! test's alone.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use tracebus::{Bus, Pinning, Topic, TryPublishError, WaitStrategy};

/// Generous: these scenarios take milliseconds; a limit is only there to turn a hang into a
/// failure on a loaded CI machine.
const LIMIT: Duration = Duration::from_secs(60);

/// Runs `f` on its own thread and fails if it has not returned within [`LIMIT`].
fn within<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name(format!("watched: {what}"))
        .spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
        })
        .unwrap();
    match rx.recv_timeout(LIMIT) {
        Ok(Ok(r)) => r,
        Ok(Err(panic)) => resume_unwind(panic),
        Err(_) => panic!("{what}: still blocked after {LIMIT:?}"),
    }
}

/// Worker threads alive in this process (their names start with `tracebus-worker`).
fn worker_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0; // not Linux: the joins in `Bus::drop` are what is tested then
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("tracebus-worker"))
        .count()
}

fn assert_no_worker_threads(after: &str) {
    // `join` has returned for every worker; give the kernel a moment to reap the task entries.
    let deadline = Instant::now() + Duration::from_secs(5);
    while worker_threads() > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(worker_threads(), 0, "worker threads left after {after}");
}

fn bus(workers: usize, capacity: usize, wait: WaitStrategy) -> Bus {
    Bus::builder()
        .workers(workers)
        .capacity(capacity)
        .pinning(Pinning::Off)
        .wait_strategy(wait)
        .build()
        .unwrap()
}

/// A new `u64` topic on `bus`.
fn topic(bus: &Bus, name: &str) -> Topic<u64> {
    bus.topic(name)
        .expect("a valid name, not taken by another type")
}

/// Publishers blocked in `publish` on full rings (a slow handler) are released by the bus
/// being dropped: they get `Closed` with their message, and the drop delivers what was
/// accepted.
fn drop_bus_under_blocked_publishers() {
    let bus = bus(2, 2, WaitStrategy::SpinThenPark);
    let t = topic(&bus, "slow");
    let delivered = Arc::new(AtomicU64::new(0));
    for w in 0..2 {
        let d = delivered.clone();
        bus.subscribe_on(w, &t, move |_, _| {
            thread::sleep(Duration::from_millis(1));
            d.fetch_add(1, Relaxed);
        })
        .unwrap();
    }
    let publishers: Vec<_> = (0..3)
        .map(|_| {
            let mut p = bus.publisher().unwrap();
            thread::spawn(move || {
                let mut accepted = 0u64;
                loop {
                    // A waiting publish fails only when the bus is closed.
                    match p.publish(&t, accepted) {
                        Ok(_) => accepted += 1,
                        Err(closed) => {
                            assert_eq!(closed.into_inner(), accepted);
                            return accepted;
                        }
                    }
                }
            })
        })
        .collect();
    while delivered.load(Relaxed) < 20 {
        thread::yield_now();
    }
    drop(bus);
    let accepted: u64 = publishers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(
        delivered.load(Relaxed),
        2 * accepted,
        "every accepted message reached both subscribers"
    );
}

/// Publishers dropped mid-stream, at different points, while their rings still hold messages;
/// then the bus. Everything accepted is delivered.
fn drop_publishers_mid_stream() {
    let bus = bus(2, 8, WaitStrategy::SpinThenYield);
    let t = topic(&bus, "mid-stream");
    let delivered = Arc::new(AtomicU64::new(0));
    let d = delivered.clone();
    bus.subscribe(&t, move |_, _| {
        thread::yield_now();
        d.fetch_add(1, Relaxed);
    })
    .unwrap();
    let handles: Vec<_> = (0..4u64)
        .map(|i| {
            let mut p = bus.publisher().unwrap();
            thread::spawn(move || {
                for v in 0..100 * (i + 1) {
                    p.publish(&t, v).unwrap();
                }
                100 * (i + 1)
                // `p` is dropped here, with messages still in its ring.
            })
        })
        .collect();
    let accepted: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let report = bus.shutdown();
    assert_eq!(report.published, accepted);
    assert_eq!(delivered.load(Relaxed), accepted);
}

/// A publisher that outlives its bus is refused, with its message, and drops quietly.
fn publisher_outlives_bus() {
    let bus = bus(1, 4, WaitStrategy::SpinThenPark);
    let t = topic(&bus, "outlived");
    bus.subscribe(&t, |_, _| {}).unwrap();
    let mut p = bus.publisher().unwrap();
    p.publish(&t, 1).unwrap();
    drop(bus);
    assert_eq!(p.publish(&t, 2).unwrap_err().into_inner(), 2);
    assert_eq!(p.try_publish(&t, 3), Err(TryPublishError::Closed(3)));
    drop(p);
}

/// Workers parked for a long idle spell wake for the drop.
fn drop_with_parked_workers() {
    let bus = bus(2, 4, WaitStrategy::SpinThenPark);
    let t = topic(&bus, "idle");
    bus.subscribe(&t, |_, _| {}).unwrap();
    let p = bus.publisher().unwrap();
    thread::sleep(Duration::from_millis(50)); // long enough to park
    drop(bus);
    drop(p);
}

/// Every handler call panics; the bus still drains and drops.
fn drop_with_panicking_handlers() {
    let bus = bus(2, 4, WaitStrategy::SpinThenYield);
    let t = topic(&bus, "panicky");
    for w in 0..2 {
        bus.subscribe_on(w, &t, |_, _| panic!("watchdog: injected handler panic"))
            .unwrap();
    }
    let mut p = bus.publisher().unwrap();
    for v in 0..50 {
        p.publish(&t, v).unwrap();
    }
    let report = bus.shutdown();
    assert_eq!(report.handler_panics, 100);
    drop(p);
}

/// A handler that owns a `Publisher` to its own worker and publishes with the waiting
/// `publish`: its ring fills while the worker is busy in that very handler. Shutdown closes the
/// gate, the waiting publish is refused, and the drop completes.
fn drop_with_a_handler_waiting_on_its_own_ring() {
    let bus = bus(1, 2, WaitStrategy::SpinThenPark);
    let (first, onward) = (topic(&bus, "first"), topic(&bus, "onward"));
    let mut own = bus.publisher().unwrap();
    let refused = Arc::new(AtomicU64::new(0));
    let r = refused.clone();
    bus.subscribe_on(0, &first, move |m, _| {
        // Never drained while this handler runs: waits until the bus shuts down.
        loop {
            match own.publish(&onward, *m.payload()) {
                Ok(_) => {}
                // A waiting publish fails only when the bus is closed.
                Err(closed) => {
                    assert_eq!(closed.into_inner(), *m.payload());
                    r.fetch_add(1, Relaxed);
                    return;
                }
            }
        }
    })
    .unwrap();
    bus.subscribe_on(0, &onward, |_, _| {}).unwrap();
    let mut p = bus.publisher().unwrap();
    p.publish(&first, 7).unwrap();
    thread::sleep(Duration::from_millis(20)); // the handler is now waiting on its own ring
    drop(bus);
    assert_eq!(refused.load(Relaxed), 1);
}

/// Something inside a publish panics after the message was committed (injected: in debug
/// builds `tracebus::fault` can arm one), and the publishing thread catches it, stops
/// publishing and keeps its `Publisher` while shutdown runs. Shutdown must still finish (a
/// publish that unwinds leaves the gate), deliver every message it accepted, and count each
/// one in `Report::published`, while the other publisher keeps racing it.
#[cfg(debug_assertions)]
fn shutdown_after_a_panic_inside_a_publish() {
    use std::sync::atomic::AtomicBool;
    let bus = bus(2, 8, WaitStrategy::SpinThenYield);
    let t = topic(&bus, "faulty");
    let delivered = Arc::new(AtomicU64::new(0));
    let d = delivered.clone();
    bus.subscribe(&t, move |_, _| {
        d.fetch_add(1, Relaxed);
    })
    .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let panicked = Arc::new(AtomicU64::new(0));
    let publishers: Vec<_> = (0..2u64)
        .map(|i| {
            let mut p = bus.publisher().unwrap();
            let (done, panicked) = (done.clone(), panicked.clone());
            thread::spawn(move || {
                let mut ok = 0u64;
                for v in 0.. {
                    if i == 0 && v == 50 {
                        tracebus::fault::panic_inside_next_publish();
                    }
                    match catch_unwind(AssertUnwindSafe(|| p.publish(&t, v))) {
                        Ok(Ok(_)) => ok += 1,
                        Ok(Err(_closed)) => return ok,
                        Err(_) => {
                            panicked.fetch_add(1, Relaxed);
                            // Idle, holding the publisher, until shutdown has returned.
                            while !done.load(Relaxed) {
                                thread::sleep(Duration::from_millis(1));
                            }
                            return ok;
                        }
                    }
                }
                unreachable!("publishes until closed or a panic")
            })
        })
        .collect();
    while delivered.load(Relaxed) < 200 || panicked.load(Relaxed) == 0 {
        thread::yield_now();
    }
    let report = bus.shutdown(); // races the publisher that did not panic
    done.store(true, Relaxed);
    let ok: u64 = publishers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(
        report.delivered,
        delivered.load(Relaxed),
        "the report counts what the handler saw"
    );
    assert_eq!(
        report.published,
        ok + 1,
        "every accepted message counted: the Ok ones and the one whose publish panicked"
    );
    assert_eq!(
        report.published, report.delivered,
        "every accepted message delivered"
    );
}

#[test]
fn drops_never_block_and_never_leak_threads() {
    tracebus_test_support::quiet_injected_panics("watchdog: injected");
    tracebus_test_support::quiet_injected_panics("tracebus fault injection");
    let scenarios: Vec<(&str, fn())> = vec![
        (
            "drop the bus under blocked publishers",
            drop_bus_under_blocked_publishers,
        ),
        ("drop publishers mid-stream", drop_publishers_mid_stream),
        ("a publisher outlives its bus", publisher_outlives_bus),
        ("drop with parked workers", drop_with_parked_workers),
        ("drop with panicking handlers", drop_with_panicking_handlers),
        (
            "drop with a handler waiting on its own ring",
            drop_with_a_handler_waiting_on_its_own_ring,
        ),
    ];
    // Fault injection exists in debug builds only (`tracebus::fault`).
    #[cfg(debug_assertions)]
    let scenarios = {
        let mut s = scenarios;
        s.push((
            "shutdown after a panic inside a publish",
            shutdown_after_a_panic_inside_a_publish,
        ));
        s
    };
    for (what, scenario) in scenarios {
        within(what, scenario);
        assert_no_worker_threads(what);
    }
}
