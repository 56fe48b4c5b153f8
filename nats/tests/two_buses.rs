//! Two buses in one process joined through a NATS server (core mode): every exported message
//! arrives once with the same bytes; sampled ones carry `traceparent` and continue the same
//! trace on the other bus, under the remote `send` span; unsampled ones carry no header.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::trace::SpanKind;
use opentelemetry::Value;
use tracebus::context::TraceContext;
use tracebus_nats::BridgeConfig;

use common::{observe, receiver, sender, wait_until, Traced};

const N: u64 = 400;

#[test]
fn two_buses_through_the_server() {
    let Some(server) = common::server() else {
        return;
    };
    // Sender: fanout 1 at k = 0.5 samples about half the messages.
    let traced_a = Traced::new();
    let config_a = BridgeConfig::new(server.url()).tracer(traced_a.tracer("bridge-a"));
    let a = sender(config_a, &traced_a, 0.5);
    assert_eq!(a.subject, "tracebus.orders");

    // Receiver.
    let traced_b = Traced::new();
    let b = receiver(BridgeConfig::new(server.url()), &traced_b, 10.0);
    let wire = observe(&server.url(), "tracebus.orders");

    let mut p = a.bus.publisher().unwrap();
    for v in 0..N {
        assert_eq!(p.publish(&a.orders, v * 1_000_003).unwrap().fanout, 1);
    }
    wait_until(Duration::from_secs(20), "every message on bus B", || {
        b.got.lock().unwrap().len() as u64 >= N
    });
    assert!(a.bridge.flush(Duration::from_secs(5)));
    wait_until(Duration::from_secs(5), "the observer", || {
        wire.lock().unwrap().len() as u64 >= N
    });
    let (sa, sb) = (a.bridge.stats(), b.bridge.stats());
    assert_eq!(sa.exported, N);
    assert_eq!(sa.export_dropped_full + sa.export_failed, 0);
    assert_eq!(sb.imported, N, "{sb:?}");

    // Once each, same bytes.
    let got = b.got.lock().unwrap().clone();
    let mut values: Vec<u64> = got.iter().map(|(v, _)| *v).collect();
    values.sort_unstable();
    assert_eq!(values, (0..N).map(|v| v * 1_000_003).collect::<Vec<_>>());
    let wire = wire.lock().unwrap().clone();
    assert_eq!(wire.len() as u64, N);

    // On the wire: a strict traceparent exactly for the sampled ones, no headers otherwise.
    let mut sent: HashMap<u64, TraceContext> = HashMap::new();
    for (payload, headers) in &wire {
        let v = u64::from_le_bytes(payload.as_slice().try_into().expect("8 bytes"));
        match headers {
            None => {}
            Some(h) => {
                assert_eq!(h.len(), 1, "only traceparent: {h:?}");
                let tp = h.get("traceparent").expect("traceparent").as_str();
                let cx = TraceContext::from_traceparent(tp).expect("strict W3C");
                assert!(cx.is_sampled());
                sent.insert(v, cx);
            }
        }
    }
    let sampled = sent.len() as u64;
    assert!(
        sampled > N / 5 && sampled < N * 4 / 5,
        "about half sampled: {sampled}"
    );
    assert_eq!(sa.exported_sampled, sampled);
    assert_eq!(sb.imported_with_context, sampled);
    assert_eq!(sb.header_absent, N - sampled);

    // The header names A's `send` span (PRODUCER, messaging.system = nats).
    traced_a.provider.force_flush().unwrap();
    let spans_a = traced_a.spans();
    for cx in sent.values() {
        let send = spans_a
            .iter()
            .find(|s| s.span_context.span_id().to_bytes() == cx.span_id())
            .expect("the traceparent names a span of A");
        assert_eq!(send.name, "send tracebus.orders");
        assert_eq!(send.span_kind, SpanKind::Producer);
        assert_eq!(send.span_context.trace_id().to_bytes(), cx.trace_id());
        assert!(send
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "messaging.system" && kv.value == Value::from("nats")));
    }

    // On B: sampled ones continue the same trace, their publish span under the remote span;
    // unsampled ones have no context.
    drop(p);
    b.bus.shutdown();
    traced_b.provider.force_flush().unwrap();
    let spans_b = traced_b.spans();
    for (v, cx) in &got {
        match (sent.get(v), cx) {
            (Some(remote), Some(local)) => {
                assert_eq!(local.trace_id(), remote.trace_id(), "trace kept for {v}");
                let publish = spans_b
                    .iter()
                    .find(|s| s.span_context.span_id().to_bytes() == local.span_id())
                    .expect("B's publish span");
                assert_eq!(publish.name, "publish orders");
                assert_eq!(publish.parent_span_id.to_bytes(), remote.span_id());
            }
            (None, None) => {}
            other => panic!("message {v}: sent/received contexts disagree: {other:?}"),
        }
    }
    drop(b.bridge);
    drop(a.bridge);
    a.bus.shutdown();
}
