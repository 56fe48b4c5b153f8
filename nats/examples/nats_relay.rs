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

use opentelemetry_sdk::trace::InMemorySpanExporter;
use serde_json::{json, Map, Value};
use tracebus::context::FanoutSampler;
use tracebus::{Bus, Pinning, SpanExport};
use tracebus_nats::{Bridge, BridgeConfig, ExportOptions, ImportOptions};

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
    // The bus's spans, kept in memory: a reply's line names the parent of its publish span
    // (the remote span its traceparent carried), which the span knows once exported.
    let spans = InMemorySpanExporter::default();
    let sampler = FanoutSampler::try_new(args.k)?;
    let bus: Bus = Bus::builder()
        .workers(1)
        .pinning(Pinning::Off)
        .tracing(SpanExport::exporter(spans.clone()).shutdown_target(false))
        .sampler(sampler)
        .build()?;
    let orders = bus.topic::<u64>("orders")?;
    let replies = bus.topic::<u64>("replies")?;
    // What the replies handler saw, in order; printed once the spans are exported.
    type Seen = Vec<(String, u64, Option<tracebus::context::TraceContext>, bool)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let s = seen.clone();
    bus.subscribe(&replies, move |msg, _| {
        if let Ok(mut seen) = s.lock() {
            let entry = (
                msg.topic().to_owned(),
                *msg.payload(),
                msg.trace_context(),
                msg.is_sampled(),
            );
            seen.push(entry);
        }
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
    bus.shutdown(); // every reply accepted is handled, and every span exported
    let parents: HashMap<[u8; 8], [u8; 8]> = spans
        .get_finished_spans()?
        .iter()
        .map(|s| {
            (
                s.span_context.span_id().to_bytes(),
                s.parent_span_id.to_bytes(),
            )
        })
        .collect();
    for (topic, value, cx, sampled) in seen.lock().map_err(|_| "handler panicked")?.iter() {
        let parent = cx
            .and_then(|cx| parents.get(&cx.span_id()))
            .filter(|p| **p != [0; 8])
            .map(|p| hex(p));
        let line = json!({
            "topic": topic,
            "value": value,
            "trace_id": cx.map(|cx| hex(&cx.trace_id())),
            "parent_span_id": parent,
            "sampled": sampled,
        });
        println!("{line}");
    }
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
