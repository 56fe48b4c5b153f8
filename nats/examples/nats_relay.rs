//! `nats_relay`: a smoke test of the NATS bridge that anyone can run against a server.
//!
//! ```sh
//! eval "$(scripts/nats-server.sh start)"
//! cargo run -p tracebus-nats --example nats_relay -- --url "$NATS_URL" --export 10 --k 0.5 --import-secs 2
//! scripts/nats-server.sh stop "$NATS_PID"
//! ```
//!
//! Builds a bus whose sampler has `k = K`, exports topic `orders` (`u64`) to subject
//! `tracebus.orders`, publishes the values `0..N`, imports subject `tracebus.replies` into topic
//! `replies` for `S` seconds, and prints one JSON line per message its `replies` handler sees:
//! `{"topic":"replies","value":V,"trace_id":HEX|null,"parent_span_id":HEX|null,"sampled":BOOL}`
//! (`parent_span_id`: the parent of the bus span that carried the reply, i.e. the remote span
//! named by the reply's `traceparent`), then one JSON line of the bridge's stats, and exits 0.
//! Something else must answer on `tracebus.replies` (the two-process test does).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::{Span as _, TraceContextExt as _, TracerProvider as _};
use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use serde_json::{json, Map, Value};
use tracebus::context::FanoutSampler;
use tracebus::{Bus, Pinning};
use tracebus_nats::{Bridge, BridgeConfig, ExportOptions, ImportOptions};

/// Span id to parent span id, for every span started (before the message it names is written).
#[derive(Debug, Clone, Default)]
struct Parents(Arc<Mutex<HashMap<[u8; 8], [u8; 8]>>>);

impl SpanProcessor for Parents {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        let parent = cx.span().span_context().span_id().to_bytes();
        let own = span.span_context().span_id().to_bytes();
        if let Ok(mut map) = self.0.lock() {
            map.insert(own, parent);
        }
    }
    fn on_end(&self, _span: SpanData) {}
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

struct Args {
    url: String,
    export: u64,
    k: f64,
    import_secs: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let (mut export, mut k, mut import_secs) = (10, 10.0, 2.0);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--export" => export = value()?.parse().map_err(|e| format!("--export: {e}"))?,
            "--k" => k = value()?.parse().map_err(|e| format!("--k: {e}"))?,
            "--import-secs" => {
                import_secs = value()?
                    .parse()
                    .map_err(|e| format!("--import-secs: {e}"))?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        url: url.ok_or("--url nats://HOST:PORT is required")?,
        export,
        k,
        import_secs,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let parents = Parents::default();
    let provider = tracebus::telemetry::provider_builder()
        .with_span_processor(parents.clone())
        .build();
    let sampler = FanoutSampler::try_new(args.k)?;
    let bus: Bus = Bus::builder()
        .workers(1)
        .pinning(Pinning::Off)
        .tracer(provider.tracer("nats_relay"))
        .sampler(sampler)
        .build()?;
    let orders = bus.topic::<u64>("orders")?;
    let replies = bus.topic::<u64>("replies")?;
    bus.subscribe(&replies, move |msg, _| {
        let cx = msg.trace_context();
        let parent = cx.and_then(|cx| {
            let map = parents.0.lock().ok()?;
            map.get(&cx.span_id()).map(|p| hex(p))
        });
        let line = json!({
            "topic": msg.topic(),
            "value": *msg.payload(),
            "trace_id": cx.map(|cx| hex(&cx.trace_id())),
            "parent_span_id": parent,
            "sampled": msg.is_sampled(),
        });
        println!("{line}");
    })?;

    let bridge = Bridge::connect(BridgeConfig::new(&args.url).name("nats_relay"))?;
    bridge.import(&bus, &replies, ImportOptions::subject("tracebus.replies"))?;
    bridge.export(&bus, &orders, ExportOptions::default())?;

    let mut publisher = bus.publisher()?;
    for v in 0..args.export {
        publisher.publish(&orders, v)?;
    }
    std::thread::sleep(Duration::from_secs_f64(args.import_secs.max(0.0)));
    if !bridge.flush(Duration::from_secs(5)) {
        eprintln!("nats_relay: some exports were not published in time");
    }
    let stats = bridge.shutdown(Duration::from_secs(2));
    drop(publisher);
    bus.shutdown(); // every reply accepted is handled (and printed) before this returns
    let fields: Map<String, Value> = stats
        .fields()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::from(v)))
        .collect();
    println!("{}", Value::Object(fields));
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("nats_relay: {e}\nusage: nats_relay --url nats://HOST:PORT --export N --k K --import-secs S");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nats_relay: {e}");
            ExitCode::FAILURE
        }
    }
}
