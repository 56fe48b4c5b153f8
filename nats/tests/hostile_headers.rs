//! Hostile input on import: malformed, uppercase, wrong-version, duplicated, 10 KB long and
//! unsampled-but-valid `traceparent` headers, and payloads of the wrong size. No panic, no
//! context, every case counted under its own name; a valid sampled header is continued.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use tracebus::context::RootPolicy;
use tracebus_nats::{Bridge, BridgeConfig, ImportOptions, StatsSnapshot};

use common::{bus, wait_until, Received, Traced};

const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The messages, each with its value (its index) and its headers.
fn cases() -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    vec![
        ("absent", vec![]),
        (
            "malformed",
            vec![("traceparent", "not a traceparent".into())],
        ),
        (
            "malformed flags",
            vec![("traceparent", VALID.replace("-01", "-0z"))],
        ),
        ("uppercase", vec![("traceparent", VALID.to_uppercase())]),
        (
            "version ff",
            vec![("traceparent", VALID.replacen("00", "ff", 1))],
        ),
        (
            "version 00 with more",
            vec![("traceparent", format!("{VALID}-extra"))],
        ),
        (
            "zero trace-id",
            vec![(
                "traceparent",
                VALID.replace("4bf92f3577b34da6a3ce929d0e0e4736", &"0".repeat(32)),
            )],
        ),
        (
            "duplicated",
            vec![("traceparent", VALID.into()), ("traceparent", VALID.into())],
        ),
        (
            "duplicated, other case",
            vec![("traceparent", VALID.into()), ("Traceparent", VALID.into())],
        ),
        (
            "10 KB",
            vec![("traceparent", format!("{VALID}-{}", "a".repeat(10 * 1024)))],
        ),
        (
            "unsampled, valid ids",
            vec![("traceparent", VALID.replace("-01", "-00"))],
        ),
        (
            "unsampled, flags 02",
            vec![("traceparent", VALID.replace("-01", "-02"))],
        ),
        ("other headers only", vec![("x-trace", VALID.into())]),
        ("valid", vec![("traceparent", VALID.into())]),
        ("valid, Go spelling", vec![("Traceparent", VALID.into())]),
    ]
}

/// Publishes every case, then three payloads of the wrong size, through a plain client.
fn send_all(url: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        for (i, (_, headers)) in cases().into_iter().enumerate() {
            let payload = (i as u64).to_le_bytes().to_vec().into();
            if headers.is_empty() {
                client.publish("in.hostile", payload).await.unwrap();
                continue;
            }
            let mut h = HeaderMap::new();
            for (k, v) in headers {
                h.append(k, v);
            }
            client
                .publish_with_headers("in.hostile", h, payload)
                .await
                .unwrap();
        }
        for bad in [vec![], vec![1u8; 7], vec![1u8; 9]] {
            let mut h = HeaderMap::new();
            h.insert("traceparent", VALID);
            client
                .publish_with_headers("in.hostile", h, bad.into())
                .await
                .unwrap();
        }
        client.flush().await.unwrap();
    });
}

/// Imports the cases into a fresh bus with `roots`; returns what the handler saw, the stats.
fn run(
    url: &str,
    roots: RootPolicy,
) -> (
    Vec<(u64, Option<tracebus::context::TraceContext>)>,
    StatsSnapshot,
) {
    let traced = Traced::new();
    let bus = bus(&traced, 10.0);
    let topic = bus.topic::<u64>("hostile").unwrap();
    let got: Received = Arc::default();
    let g = got.clone();
    bus.subscribe(&topic, move |msg, _| {
        g.lock()
            .unwrap()
            .push((*msg.payload(), msg.trace_context()));
    })
    .unwrap();
    let bridge = Bridge::connect(BridgeConfig::new(url)).unwrap();
    bridge
        .import(&bus, &topic, ImportOptions::subject("in.>").roots(roots))
        .unwrap();
    send_all(url);
    let n = cases().len();
    wait_until(Duration::from_secs(10), "every message counted", || {
        let s = bridge.stats();
        s.imported + s.import_bad_payload == n as u64 + 3
    });
    let stats = bridge.shutdown(Duration::from_secs(2));
    bus.shutdown();
    let got = got.lock().unwrap().clone();
    (got, stats)
}

#[test]
fn hostile_headers_give_no_context_and_are_counted() {
    let Some(server) = common::server() else {
        return;
    };
    let cases = cases();
    let (got, s) = run(&server.url(), RootPolicy::ContinueOnly);
    assert_eq!(got.len(), cases.len(), "every well-sized payload delivered");
    for (v, cx) in &got {
        let name = cases[*v as usize].0;
        if name.starts_with("valid") {
            let cx = cx.unwrap_or_else(|| panic!("{name}: context continued"));
            assert_eq!(
                cx.trace_id(),
                tracebus::context::TraceContext::from_traceparent(VALID)
                    .unwrap()
                    .trace_id()
            );
        } else {
            assert_eq!(*cx, None, "{name}: no context, and no trace started");
        }
    }
    assert_eq!(s.import_bad_payload, 3);
    assert_eq!(s.imported, cases.len() as u64);
    assert_eq!(s.imported_with_context, 2);
    assert_eq!(s.header_absent, 2, "absent, other headers only");
    assert_eq!(s.header_duplicated, 2);
    assert_eq!(s.header_oversized, 1);
    assert_eq!(s.header_unsampled, 2);
    assert_eq!(s.header_malformed, 6, "{s:?}");
    assert_eq!(s.import_no_subscribers + s.import_bus_closed, 0);
}

#[test]
fn roots_allowed_start_new_traces_for_hostile_headers() {
    let Some(server) = common::server() else {
        return;
    };
    let cases = cases();
    let (got, s) = run(&server.url(), RootPolicy::Start);
    assert_eq!(got.len(), cases.len());
    let valid = tracebus::context::TraceContext::from_traceparent(VALID).unwrap();
    for (v, cx) in &got {
        let name = cases[*v as usize].0;
        // k = 10 at fanout 1: every root publish starts a trace.
        let cx = cx.unwrap_or_else(|| panic!("{name}: traced"));
        assert_eq!(
            cx.trace_id() == valid.trace_id(),
            name.starts_with("valid"),
            "{name}: only valid headers continue the remote trace"
        );
    }
    assert_eq!(s.imported_with_context, 2);
}
