//! Embedding tracebus in a service with a real OpenTelemetry pipeline.
//!
//! The bus records its spans on the hot path and its exporter thread hands them, in batches, to
//! the stdout exporter (run with `cargo run -p tracebus --example embed`), or over OTLP/HTTP
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (for example `http://localhost:4318`).
//!
//! The pipeline: order ids arrive on topic `orders` (a `u64`), a pricing handler prices each and
//! forwards a `Priced` to `priced`, where two more subscribers (audit, shipping) receive it.
//! Every publish decides once whether it is traced; traced orders show up as one trace spanning
//! all three hops (`publish orders`, `process orders`, `publish priced`, `process priced`).
//! The service shuts down right after its last publish: shutdown lets the pricing handler's
//! onward publishes through until the pipeline has drained.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_sdk::Resource;
use tracebus::{Bus, SpanExport, WaitStrategy};

/// A priced order, as the pricing handler forwards it.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Priced {
    id: u64,
    cents: u64,
}

/// Where the bus's spans go: an OpenTelemetry exporter, fed in batches by the bus's own
/// exporter thread, with this service's resource. OTLP/HTTP when an endpoint is configured
/// (the exporter reads `OTEL_EXPORTER_OTLP_ENDPOINT` itself), else stdout.
fn export() -> Result<SpanExport, Box<dyn std::error::Error>> {
    let export = if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        SpanExport::exporter(
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()?,
        )
    } else {
        SpanExport::exporter(opentelemetry_stdout::SpanExporter::default())
    };
    Ok(export.batch_size(512).resource(
        Resource::builder()
            .with_service_name("orders-service")
            .build(),
    ))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bus = Bus::builder()
        .workers(2)
        .wait_strategy(WaitStrategy::SpinThenPark)
        .tracing(export()?)
        .build()?;
    let orders = bus.topic::<u64>("orders")?; // order ids
    let priced = bus.topic::<Priced>("priced")?;

    bus.subscribe_on(0, &orders, move |order, out| {
        let id = *order.payload();
        let cents = 1_000 + id % 7 * 100;
        // Continues the order's trace when it is traced; waits up to 10 ms for room (a
        // refusal is counted in the report as well).
        if let Err(e) =
            out.publish_timeout(&priced, Priced { id, cents }, Duration::from_millis(10))
        {
            eprintln!("pricing: could not forward order {id}: {e}");
        }
    })?;
    let audited = Arc::new(AtomicU64::new(0));
    let a = audited.clone();
    bus.subscribe_on(1, &priced, move |_, _| {
        a.fetch_add(1, Ordering::Relaxed);
    })?;
    bus.subscribe_on(1, &priced, |msg, _| {
        let Priced { id, cents } = *msg.payload();
        if id % 25 == 0 {
            println!(
                "shipping order {id} at {}.{:02} ({})",
                cents / 100,
                cents % 100,
                msg.topic()
            );
        }
    })?;

    let mut publisher = bus.publisher()?;
    for id in 0..100 {
        publisher.publish(&orders, id)?;
    }
    drop(publisher);
    let report = bus.shutdown();
    // Shutdown drained the pipeline and exported every span recorded.
    println!(
        "published {}, delivered {}, audited {}, lost {}, refused {}, handler panics {}, \
         spans exported {}",
        report.published,
        report.delivered,
        audited.load(Ordering::Relaxed),
        report.lost,
        report.refused_full + report.refused_closed,
        report.handler_panics,
        report.spans.exported
    );
    Ok(())
}
