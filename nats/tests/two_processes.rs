//! Two processes joined through the server: the `nats_relay` example exports `orders` and
//! imports `replies`; this test process imports `tracebus.orders`, answers each order on its
//! own bus (a handler that publishes onward, continuing the trace) and exports the answers to
//! `tracebus.replies`. Every order comes back once with the same value; sampled ones keep
//! their trace-id across both hops with the remote span as parent, unsampled ones carry no
//! header either way.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tracebus::context::TraceContext;
use tracebus_nats::{Bridge, BridgeConfig, ExportOptions, ImportOptions};

use common::{bus, hex, observe, Seen, Traced};

const N: u64 = 200;

/// The `nats_relay` binary that `cargo test` built (or builds it).
fn relay() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let bin = dir.join("examples").join("nats_relay");
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "tracebus-nats", "--example", "nats_relay"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building nats_relay");
    }
    assert!(bin.is_file(), "no {}", bin.display());
    bin
}

/// Value and `traceparent` (if any) of each message an observer saw; each value once.
fn by_value(seen: &Seen) -> HashMap<u64, Option<TraceContext>> {
    let mut out = HashMap::new();
    for (payload, headers) in seen.lock().unwrap().iter() {
        let v = u64::from_le_bytes(payload.as_slice().try_into().expect("8 bytes"));
        let cx = headers.as_ref().map(|h| {
            assert_eq!(h.len(), 1, "only traceparent: {h:?}");
            let tp = h.get("traceparent").expect("traceparent").as_str();
            TraceContext::from_traceparent(tp).expect("strict W3C")
        });
        assert!(out.insert(v, cx).is_none(), "{v} seen twice on the wire");
    }
    out
}

#[test]
fn relay_and_echo_in_two_processes() {
    let Some(server) = common::server() else {
        return;
    };
    let relay = relay();
    let url = server.url();

    // The echo service, in this process.
    let traced = Traced::new();
    let bus = bus(&traced, 10.0);
    let orders = bus.topic::<u64>("orders").unwrap();
    let replies = bus.topic::<u64>("replies").unwrap();
    bus.subscribe(&orders, move |msg, out| {
        out.try_publish(&replies, *msg.payload())
            .expect("room for the answer");
    })
    .unwrap();
    let bridge = Bridge::connect(BridgeConfig::new(&url)).unwrap();
    bridge
        .export(&bus, &replies, ExportOptions::default())
        .unwrap();
    bridge
        .import(&bus, &orders, ImportOptions::subject("tracebus.orders"))
        .unwrap();
    let orders_wire = observe(&url, "tracebus.orders");
    let replies_wire = observe(&url, "tracebus.replies");

    // The relay, in another.
    let mut child = Command::new(relay)
        .args([
            "--url",
            &url,
            "--export",
            &N.to_string(),
            "--k",
            "0.5",
            "--import-secs",
            "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("relay starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "relay did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "relay exit status {:?}", out.status);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let (stats, replies_seen) = lines.split_last().expect("a stats line");
    assert_eq!(stats["exported"], N, "{stats}");
    assert_eq!(stats["imported"], N, "{stats}");

    let orders_wire = by_value(&orders_wire);
    let replies_wire = by_value(&replies_wire);
    assert_eq!(orders_wire.len() as u64, N);
    assert_eq!(replies_wire.len() as u64, N);
    let sampled = orders_wire.values().filter(|c| c.is_some()).count() as u64;
    assert!(
        sampled > N / 5 && sampled < N * 4 / 5,
        "about half sampled: {sampled}"
    );

    let mut values: Vec<u64> = Vec::new();
    for line in replies_seen {
        assert_eq!(line["topic"], "replies");
        let v = line["value"].as_u64().expect("value");
        values.push(v);
        let order = orders_wire[&v];
        let reply = replies_wire[&v];
        match (order, reply) {
            (Some(order), Some(reply)) => {
                assert_eq!(
                    reply.trace_id(),
                    order.trace_id(),
                    "echo kept the trace of {v}"
                );
                assert_eq!(line["sampled"], true);
                assert_eq!(
                    line["trace_id"],
                    hex(&order.trace_id()),
                    "relay kept the trace"
                );
                assert_eq!(
                    line["parent_span_id"],
                    hex(&reply.span_id()),
                    "remote parent"
                );
            }
            (None, None) => {
                assert_eq!(line["sampled"], false);
                assert_eq!(line["trace_id"], Value::Null);
                assert_eq!(line["parent_span_id"], Value::Null);
            }
            other => panic!("{v}: order and reply disagree on sampling: {other:?}"),
        }
    }
    values.sort_unstable();
    assert_eq!(
        values,
        (0..N).collect::<Vec<_>>(),
        "every order answered once"
    );
    let s = bridge.shutdown(Duration::from_secs(2));
    assert_eq!((s.imported, s.exported), (N, N), "{s:?}");
    bus.shutdown();
}
