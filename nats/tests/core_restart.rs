//! Core NATS across a server that is killed (SIGKILL) and restarted: both bridges reconnect by
//! themselves, the import's subscription comes back, and every message published on bus A
//! after both are connected again arrives on bus B. (What was in flight during the outage may
//! be lost: core NATS is at most once; JetStream mode is tested in `jetstream_restart`.)

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracebus_nats::{Bridge, BridgeConfig, ExportOptions, ImportOptions};

use common::{bus, wait_until, Traced};

/// Messages before and after the restart.
const N: u64 = 200;

#[test]
fn core_mode_reconnects_after_a_server_restart() {
    let Some(mut server) = common::server() else {
        return;
    };
    let config = || BridgeConfig::new(server.url()).reconnect_delay_max(Duration::from_millis(100));

    let traced = Traced::new();
    let bus_a = bus(&traced, 10.0);
    let orders_a = bus_a.topic::<u64>("orders").unwrap();
    let bridge_a = Bridge::connect(config()).unwrap();
    bridge_a
        .export(&bus_a, &orders_a, ExportOptions::default())
        .unwrap();

    let bus_b = bus(&traced, 10.0);
    let orders_b = bus_b.topic::<u64>("orders").unwrap();
    let got: Arc<Mutex<Vec<u64>>> = Arc::default();
    let count = Arc::new(AtomicU64::new(0));
    let (g, c) = (got.clone(), count.clone());
    bus_b
        .subscribe(&orders_b, move |msg, _| {
            g.lock().unwrap().push(*msg.payload());
            c.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let bridge_b = Bridge::connect(config()).unwrap();
    bridge_b
        .import(&bus_b, &orders_b, ImportOptions::subject("tracebus.orders"))
        .unwrap();

    let mut p = bus_a.publisher().unwrap();
    for v in 0..N {
        p.publish(&orders_a, v).unwrap();
    }
    wait_until(Duration::from_secs(10), "the first messages on B", || {
        count.load(Ordering::Relaxed) >= N
    });

    server.restart().unwrap();
    wait_until(Duration::from_secs(10), "both bridges reconnected", || {
        bridge_a.stats().connects >= 2 && bridge_b.stats().connects >= 2
    });
    // A ping round trip after the reconnection: the server has B's subscription again.
    assert!(bridge_b.flush(Duration::from_secs(5)), "B flushed");
    let before = count.load(Ordering::Relaxed);

    for v in N..2 * N {
        p.publish(&orders_a, v).unwrap();
    }
    wait_until(
        Duration::from_secs(10),
        "the messages after the restart",
        || got.lock().unwrap().iter().filter(|v| **v >= N).count() as u64 >= N,
    );
    let a = bridge_a.stats();
    let b = bridge_b.stats();
    let mut after: Vec<u64> = got
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|v| *v >= N)
        .collect();
    after.sort_unstable();
    assert_eq!(
        after,
        (N..2 * N).collect::<Vec<_>>(),
        "each once; A {a:?}; B {b:?}"
    );
    assert!(before >= N, "{b:?}");
    assert!(
        a.disconnects >= 1 && b.disconnects >= 1,
        "both saw it: {a:?} {b:?}"
    );
    drop(p);
    drop(bridge_a);
    drop(bridge_b);
    bus_a.shutdown();
    bus_b.shutdown();
}
