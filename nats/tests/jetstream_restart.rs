//! JetStream mode across a server that is killed (SIGKILL) and restarted in the middle of a
//! stream: every message published on bus A arrives on bus B exactly once.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracebus_nats::{BridgeConfig, JetStreamConfig};

use common::{receiver, sender, wait_until, Traced};

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

    let (traced_a, traced_b) = (Traced::new(), Traced::new());
    let a = sender(config(), &traced_a, 1.0);
    let b = receiver(config(), &traced_b, 10.0);

    // A steady stream (about 1,000 messages a second), on its own thread.
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let mut p = a.bus.publisher().unwrap();
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
                p.publish(&a.orders, v).unwrap();
            }
        })
    };

    wait_until(
        Duration::from_secs(20),
        "a third of the stream on B",
        || b.count.load(Ordering::Relaxed) >= N / 3,
    );
    server.kill().unwrap();
    let killed_at = b.count.load(Ordering::Relaxed);
    server.restart().unwrap();

    let waited = wait_until_or(Duration::from_secs(40), || {
        b.count.load(Ordering::Relaxed) >= N
    });
    stop.store(true, Ordering::Relaxed);
    publisher.join().unwrap();
    assert!(
        waited,
        "all {N} messages on B (got {}); A: {:?}; B: {:?}",
        b.count.load(Ordering::Relaxed),
        a.bridge.stats(),
        b.bridge.stats()
    );
    assert!(
        a.bridge.flush(Duration::from_secs(10)),
        "A's publishes acknowledged"
    );
    // Anything late (a redelivery the de-duplication missed) would show up by now.
    std::thread::sleep(Duration::from_millis(300));

    let (sa, sb) = (a.bridge.stats(), b.bridge.stats());
    let mut values: Vec<u64> = b.got.lock().unwrap().iter().map(|(v, _)| *v).collect();
    values.sort_unstable();
    let dupes = values.windows(2).filter(|w| w[0] == w[1]).count();
    assert_eq!(dupes, 0, "duplicates on B; A: {sa:?}; B: {sb:?}");
    assert_eq!(values, (0..N).collect::<Vec<_>>(), "every message, once");
    assert!(killed_at < N, "the server died mid-stream");
    assert!(
        sa.disconnects >= 1 && sb.disconnects >= 1,
        "both saw the restart: {sa:?} {sb:?}"
    );
    assert_eq!(sa.exported, N, "{sa:?}");
    assert_eq!(sa.export_dropped_full + sa.export_failed, 0, "{sa:?}");
    assert_eq!(sb.imported, N, "{sb:?}");
    eprintln!("after the restart: A {sa:?}\nB {sb:?}");
    common::shut_down(a, b);
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
