//! Core NATS across a server that is killed (SIGKILL) and restarted: both bridges reconnect by
//! themselves, the import's subscription comes back, and every message published on bus A
//! after both are connected again arrives on bus B. (What was in flight during the outage may
//! be lost: core NATS is at most once; JetStream mode is tested in `jetstream_restart`.)

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use tracebus_nats::BridgeConfig;

use common::{receiver, sender, wait_until, Traced};

/// Messages before and after the restart.
const N: u64 = 200;

#[test]
fn core_mode_reconnects_after_a_server_restart() {
    let Some(mut server) = common::server() else {
        return;
    };
    let config = || BridgeConfig::new(server.url()).reconnect_delay_max(Duration::from_millis(100));
    let traced = Traced::new();
    let a = sender(config(), &traced, 10.0);
    let b = receiver(config(), &traced, 10.0);

    let mut p = a.bus.publisher().unwrap();
    for v in 0..N {
        p.publish(&a.orders, v).unwrap();
    }
    wait_until(Duration::from_secs(10), "the first messages on B", || {
        b.count.load(Ordering::Relaxed) >= N
    });

    server.restart().unwrap();
    wait_until(Duration::from_secs(10), "both bridges reconnected", || {
        a.bridge.stats().connects >= 2 && b.bridge.stats().connects >= 2
    });
    // `connects` may be counted before the client has sent its subscriptions again. B's flush
    // is a round trip queued behind them on the new connection: once it returns, the server
    // has B's subscription again.
    assert!(b.bridge.flush(Duration::from_secs(5)), "B flushed");
    let before = b.count.load(Ordering::Relaxed);

    for v in N..2 * N {
        p.publish(&a.orders, v).unwrap();
    }
    let after = || -> Vec<u64> {
        let mut after: Vec<u64> = b
            .got
            .lock()
            .unwrap()
            .iter()
            .map(|(v, _)| *v)
            .filter(|v| *v >= N)
            .collect();
        after.sort_unstable();
        after
    };
    wait_until(
        Duration::from_secs(10),
        "the messages after the restart",
        || after().len() as u64 >= N,
    );
    let (sa, sb) = (a.bridge.stats(), b.bridge.stats());
    assert_eq!(
        after(),
        (N..2 * N).collect::<Vec<_>>(),
        "each once; A {sa:?}; B {sb:?}"
    );
    assert!(before >= N, "{sb:?}");
    assert!(
        sa.disconnects >= 1 && sb.disconnects >= 1,
        "both saw it: {sa:?} {sb:?}"
    );
    drop(p);
    common::shut_down(a, b);
}
