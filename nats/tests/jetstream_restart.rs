//! JetStream mode across a server that is killed (SIGKILL) and restarted in the middle of a
//! stream: every message published on bus A arrives on bus B exactly once.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracebus_nats::{Bridge, BridgeConfig, ExportOptions, ImportOptions, JetStreamConfig};

use common::{bus, wait_until, Received, Traced};

const N: u64 = 3000;

#[test]
fn jetstream_survives_a_server_restart() {
    let Some(mut server) = common::server() else {
        return;
    };
    let js = JetStreamConfig {
        ack_timeout: Duration::from_millis(500),
        ack_wait: Duration::from_secs(2),
        ..JetStreamConfig::default()
    };
    let config = || {
        BridgeConfig::new(server.url())
            .jetstream(js.clone())
            .reconnect_delay_max(Duration::from_millis(100))
            .queue_capacity(N as usize)
    };

    let traced_a = Traced::new();
    let bus_a = bus(&traced_a, 1.0);
    let orders_a = bus_a.topic::<u64>("orders").unwrap();
    let bridge_a = Bridge::connect(config()).unwrap();
    bridge_a
        .export(&bus_a, &orders_a, ExportOptions::default())
        .unwrap();

    let traced_b = Traced::new();
    let bus_b = bus(&traced_b, 10.0);
    let orders_b = bus_b.topic::<u64>("orders").unwrap();
    let got: Received = Arc::default();
    let count = Arc::new(AtomicU64::new(0));
    let (g, c) = (got.clone(), count.clone());
    bus_b
        .subscribe(&orders_b, move |msg, _| {
            g.lock()
                .unwrap()
                .push((*msg.payload(), msg.trace_context()));
            c.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let bridge_b = Bridge::connect(config()).unwrap();
    bridge_b
        .import(&bus_b, &orders_b, ImportOptions::subject("tracebus.orders"))
        .unwrap();

    // A steady stream (about 1,000 messages a second), on its own thread.
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let mut p = bus_a.publisher().unwrap();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            for v in 0..N {
                // Pacing, not synchronisation.
                while start.elapsed() < Duration::from_micros(v * 1000) {
                    std::thread::sleep(Duration::from_micros(200));
                }
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                p.publish(&orders_a, v).unwrap();
            }
        })
    };

    wait_until(
        Duration::from_secs(20),
        "a third of the stream on B",
        || count.load(Ordering::Relaxed) >= N / 3,
    );
    server.kill().unwrap();
    let killed_at = count.load(Ordering::Relaxed);
    server.restart().unwrap();

    let waited = wait_until_or(Duration::from_secs(40), || {
        count.load(Ordering::Relaxed) >= N
    });
    stop.store(true, Ordering::Relaxed);
    publisher.join().unwrap();
    assert!(
        waited,
        "all {N} messages on B (got {}); A: {:?}; B: {:?}",
        count.load(Ordering::Relaxed),
        bridge_a.stats(),
        bridge_b.stats()
    );
    assert!(
        bridge_a.flush(Duration::from_secs(10)),
        "A's publishes acknowledged"
    );
    // Anything late (a redelivery the de-duplication missed) would show up by now.
    std::thread::sleep(Duration::from_millis(300));

    let a = bridge_a.stats();
    let b = bridge_b.stats();
    let mut values: Vec<u64> = got.lock().unwrap().iter().map(|(v, _)| *v).collect();
    values.sort_unstable();
    let dupes = values.windows(2).filter(|w| w[0] == w[1]).count();
    assert_eq!(dupes, 0, "duplicates on B; A: {a:?}; B: {b:?}");
    assert_eq!(values, (0..N).collect::<Vec<_>>(), "every message, once");
    assert!(killed_at < N, "the server died mid-stream");
    assert!(
        a.disconnects >= 1 && b.disconnects >= 1,
        "both saw the restart: {a:?} {b:?}"
    );
    assert_eq!(a.exported, N, "{a:?}");
    assert_eq!(a.export_dropped_full + a.export_failed, 0, "{a:?}");
    assert_eq!(b.imported, N, "{b:?}");
    eprintln!("after the restart: A {a:?}\nB {b:?}");
    drop(bridge_a);
    drop(bridge_b);
    bus_a.shutdown();
    bus_b.shutdown();
}

/// Like `wait_until`, but says whether it got there instead of panicking.
fn wait_until_or(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}
