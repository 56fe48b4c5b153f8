//! Embedding tracebus in a service with a real OpenTelemetry pipeline.
//!
//! Spans go through the SDK's batch processor to the stdout exporter (run with
//! `cargo run -p tracebus --example embed`); build with `--features otlp` to export over
//! OTLP/HTTP instead (to `OTEL_EXPORTER_OTLP_ENDPOINT`, default `http://localhost:4318`).
//!
//! The pipeline: orders arrive on topic `ORDERS`, a pricing handler prices each and forwards it
//! to `PRICED`, where two more subscribers (audit, shipping) receive it. Every publish decides
//! once whether it is traced; traced orders show up as one trace spanning all three hops.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracebus::{Bus, WaitStrategy};

const ORDERS: u32 = 1;
const PRICED: u32 = 2;

fn provider() -> Result<SdkTracerProvider, Box<dyn std::error::Error>> {
    let builder = tracebus::telemetry::provider_builder();
    #[cfg(feature = "otlp")]
    let builder = builder.with_batch_exporter(
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()?,
    );
    #[cfg(not(feature = "otlp"))]
    let builder = builder.with_batch_exporter(opentelemetry_stdout::SpanExporter::default());
    Ok(builder.build())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let provider = provider()?;
    let bus = Bus::builder()
        .workers(2)
        .wait_strategy(WaitStrategy::SpinThenPark)
        .tracer(provider.tracer("orders-service"))
        .build::<[u64; 2]>()?; // [order id, price in cents]

    bus.subscribe(ORDERS, Some(0), |order, ctx| {
        let [id, _] = *order.payload();
        let priced = [id, 1_000 + id % 7 * 100];
        // Continues the order's trace when it is traced; never waits.
        if let Err(e) = ctx.try_publish(PRICED, priced) {
            eprintln!("pricing: could not forward order {id}: {e}");
        }
    })?;
    let audited = Arc::new(AtomicU64::new(0));
    let a = audited.clone();
    bus.subscribe(PRICED, Some(1), move |_, _| {
        a.fetch_add(1, Ordering::Relaxed);
    })?;
    bus.subscribe(PRICED, Some(1), |priced, _| {
        let [id, cents] = *priced.payload();
        if id % 25 == 0 {
            println!("shipping order {id} at {}.{:02}", cents / 100, cents % 100);
        }
    })?;

    let mut publisher = bus.publisher()?;
    for id in 0..100 {
        publisher.publish(ORDERS, [id, 0])?;
    }
    while audited.load(Ordering::Relaxed) < 100 {
        std::thread::yield_now();
    }
    let report = bus.shutdown();
    println!(
        "published {}, delivered {}, handler panics {}",
        report.published, report.delivered, report.handler_panics
    );
    provider.shutdown()?; // flushes the batch processor
    Ok(())
}
