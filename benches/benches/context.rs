//! Criterion: the fast sampled-flag filter against a full header decode, against building an
//! OpenTelemetry `SpanContext`, and against the SDK propagator's extract of a `traceparent`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tracebus_benches::filter_cases::{Cases, HEADERS};

fn filter(c: &mut Criterion) {
    let cases = Cases::new();
    let mut g = c.benchmark_group("sampled_flag");
    g.bench_function("fast_filter", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(1);
            cases.fast_filter(black_box(&cases.headers[i % HEADERS]))
        })
    });
    g.bench_function("full_decode", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(1);
            cases.full_decode(black_box(&cases.headers[i % HEADERS]))
        })
    });
    g.bench_function("span_context", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(1);
            cases.span_context(black_box(&cases.headers[i % HEADERS]))
        })
    });
    g.bench_function("sdk_extract", |b| {
        b.iter(|| cases.sdk_extract(black_box(&cases.carrier)))
    });
    g.bench_function("strict_extract", |b| {
        b.iter(|| cases.strict_extract(black_box(&cases.carrier)))
    });
    g.finish();
}

criterion_group!(benches, filter);
criterion_main!(benches);
