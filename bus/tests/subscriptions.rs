//! Subscriptions while messages flow: unsubscribing stops delivery to that handler only, and
//! unplaced subscriptions spread over the workers.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;

use common::{bus, topic};
use tracebus::BusError;

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
