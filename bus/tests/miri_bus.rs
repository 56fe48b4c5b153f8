//! A whole bus small enough for Miri (`scripts/miri.sh` runs it on several seeds): two workers,
//! two publishers (single messages and a batch), every order fanned out to both workers, a
//! handler publishing onward to a topic both workers take, rings small enough to fill and wrap
//! around, and a shutdown that delivers everything accepted. Under Miri the bus runs on its
//! documented fallbacks: `SeqCst` fences instead of `membarrier`, a plain clock instead of the
//! TSC, rings from `alloc_zeroed` instead of memory mappings. In ordinary test runs it is one
//! more runtime test.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;

use tracebus::{Bus, Pinning, WaitStrategy};

/// Orders from each publisher (Miri interprets every instruction, so it gets a handful).
const ORDERS: u64 = if cfg!(miri) { 6 } else { 2_000 };

#[test]
fn two_workers_fan_out_publish_onward_and_shut_down() {
    let bus = Bus::builder()
        .workers(2)
        .capacity(4)
        .pinning(Pinning::Off)
        .wait_strategy(WaitStrategy::SpinThenPark)
        .record_publish_time(true)
        .build()
        .expect("valid settings");
    let orders = bus.topic::<u64>("orders").unwrap();
    let fills = bus.topic::<u64>("fills").unwrap();

    // Worker 0 publishes a fill per order, onward; a full ring refuses it (a handler never
    // waits), and the refusals are counted.
    let (taken, onward, refused) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let (t, o, r) = (taken.clone(), onward.clone(), refused.clone());
    bus.subscribe_on(0, &orders, move |msg, out| {
        assert!(msg.waited().is_some(), "the publish time is recorded");
        match out.try_publish(&fills, *msg.payload() * 10) {
            Ok(sent) => {
                assert_eq!(sent.fanout, 2);
                o.fetch_add(1, Relaxed);
            }
            Err(_) => {
                r.fetch_add(1, Relaxed);
            }
        }
        t.fetch_add(1, Relaxed);
    })
    .unwrap();
    // Worker 1 sums the orders; both workers sum the fills.
    let order_sum = Arc::new(AtomicU64::new(0));
    let s = order_sum.clone();
    bus.subscribe_on(1, &orders, move |msg, _| {
        s.fetch_add(*msg.payload(), Relaxed);
    })
    .unwrap();
    let fill_sums: Vec<Arc<AtomicU64>> = (0..2).map(|_| Arc::new(AtomicU64::new(0))).collect();
    for (w, sum) in fill_sums.iter().enumerate() {
        let sum = sum.clone();
        bus.subscribe_on(w, &fills, move |msg, _| {
            sum.fetch_add(*msg.payload(), Relaxed);
        })
        .unwrap();
    }

    // One publisher sends single messages from another thread, one a batch from this one.
    let mut singles = bus.publisher().unwrap();
    let single_thread = thread::spawn(move || {
        for id in 1..=ORDERS {
            let sent = singles.publish(&orders, id).unwrap();
            assert_eq!((sent.fanout, sent.workers), (2, 2));
        }
    });
    let mut batches = bus.publisher().unwrap();
    let batch: Vec<u64> = (ORDERS + 1..=2 * ORDERS).collect();
    assert_eq!(batches.publish_batch(&orders, &batch).unwrap().fanout, 2);
    single_thread.join().unwrap();

    // Shutdown refuses onward publishes too, so let worker 0 take every order first.
    let total = 2 * ORDERS;
    while taken.load(Relaxed) < total {
        thread::yield_now();
    }
    let report = bus.shutdown();
    let onward = onward.load(Relaxed);
    assert_eq!(onward + refused.load(Relaxed), total);
    assert!(onward >= 1, "the first fill finds empty rings");
    assert_eq!(report.published, total + onward);
    assert_eq!(report.delivered, 2 * total + 2 * onward);
    assert_eq!((report.handler_panics, report.worker_failures), (0, 0));
    assert_eq!(order_sum.load(Relaxed), total * (total + 1) / 2);
    let (a, b) = (fill_sums[0].load(Relaxed), fill_sums[1].load(Relaxed));
    assert_eq!(a, b, "every fill reached both workers");
    assert!(a >= 10 && a % 10 == 0, "{a}");
}
