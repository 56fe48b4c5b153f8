//! What an import's set-up and a flush wait for, against a server stopped with SIGSTOP: it
//! takes bytes into its socket buffers and processes none of them, so only a call that waits
//! for the server's answer can tell it from a running one.
//!
//! - `Bridge::import` returns once the server has the subscription: a message published on
//!   another connection right after it returns is imported.
//! - `Bridge::flush` returns `true` once the server has processed what the bridge sent, and
//!   still does when the server it was waiting for is killed and a new one takes its place.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracebus_nats::{Bridge, BridgeConfig, ImportOptions};
use tracebus_test_support::NatsServer;

use common::{sender, wait_until, Traced};

/// How long a call that waits for a stopped server must still be waiting.
const HELD: Duration = Duration::from_millis(300);

/// Sends `signal` (`STOP`, `CONT`) to the server's process.
fn signal(server: &NatsServer, signal: &str) {
    let pid = server.pid().expect("the server runs");
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Whether every thread of process `pid` is stopped (Linux's `/proc`).
fn all_threads_stopped(pid: u32) -> bool {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc");
    tasks.flatten().all(|task| {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ...`: the state follows the last parenthesis.
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].trim_start().chars().next());
        state == Some('T')
    })
}

/// Stops the server (SIGSTOP) and waits until none of its threads runs: the signal stops
/// the threads one by one, and on a busy machine some go on for a while after `kill` returns.
fn stop(server: &NatsServer) {
    signal(server, "STOP");
    let pid = server.pid().expect("the server runs");
    wait_until(Duration::from_secs(10), "the server stopped", || {
        all_threads_stopped(pid)
    });
}

/// Lets a stopped server run again.
fn resume(server: &NatsServer) {
    signal(server, "CONT");
}

#[test]
fn import_returns_once_the_server_has_the_subscription() {
    let Some(server) = common::server() else {
        return;
    };
    let traced = Traced::new();
    let a = sender(BridgeConfig::new(server.url()), &traced, 10.0);
    let bus = common::bus(&traced, 10.0);
    let orders = bus.topic::<u64>("orders").unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    bus.subscribe(&orders, move |msg, _| {
        g.lock().unwrap().push(*msg.payload())
    })
    .unwrap();
    let b = Bridge::connect(BridgeConfig::new(server.url())).unwrap();

    stop(&server);
    let returned = AtomicBool::new(false);
    std::thread::scope(|s| {
        let import = s.spawn(|| {
            let r = b.import(&bus, &orders, ImportOptions::subject("tracebus.orders"));
            returned.store(true, Ordering::Relaxed);
            r
        });
        std::thread::sleep(HELD);
        let early = returned.load(Ordering::Relaxed);
        // Resumed before any assertion, so a failure does not leave the import waiting.
        resume(&server);
        assert!(!early, "the import returned while the server was stopped");
        import.join().unwrap().unwrap();
    });

    // Published right after the import returned, on A's connection.
    let mut p = a.bus.publisher().unwrap();
    p.publish(&a.orders, 7).unwrap();
    wait_until(Duration::from_secs(10), "the message on B", || {
        !got.lock().unwrap().is_empty()
    });
    assert_eq!(*got.lock().unwrap(), vec![7]);
    drop(p);
    drop(a.bridge);
    drop(b);
    a.bus.shutdown();
    bus.shutdown();
}

#[test]
fn flush_waits_for_the_server() {
    let Some(server) = common::server() else {
        return;
    };
    let traced = Traced::new();
    let a = sender(BridgeConfig::new(server.url()), &traced, 10.0);
    let mut p = a.bus.publisher().unwrap();

    stop(&server);
    p.publish(&a.orders, 7).unwrap();
    let stopped = a.bridge.flush(HELD);
    resume(&server);
    assert!(!stopped, "flushed while the server was stopped");
    assert!(
        a.bridge.flush(Duration::from_secs(10)),
        "flushed once it runs"
    );
    assert_eq!(a.bridge.stats().exported, 1);
    drop(p);
    drop(a.bridge);
    a.bus.shutdown();
}

#[test]
fn flush_waiting_on_a_killed_server_completes_after_the_reconnection() {
    let Some(mut server) = common::server() else {
        return;
    };
    let config = BridgeConfig::new(server.url()).reconnect_delay_max(Duration::from_millis(100));
    let traced = Traced::new();
    let a = sender(config, &traced, 10.0);

    stop(&server);
    let returned = AtomicBool::new(false);
    std::thread::scope(|s| {
        let flush = s.spawn(|| {
            let flushed = a.bridge.flush(Duration::from_secs(20));
            returned.store(true, Ordering::Relaxed);
            flushed
        });
        std::thread::sleep(HELD);
        let early = returned.load(Ordering::Relaxed);
        // What the stopped server holds unread is lost with it.
        server.restart().unwrap();
        assert!(!early, "flushed while the server was stopped");
        assert!(flush.join().unwrap(), "flushed on the new server");
    });
    assert!(a.bridge.stats().connects >= 2, "{:?}", a.bridge.stats());
    drop(a.bridge);
    a.bus.shutdown();
}
