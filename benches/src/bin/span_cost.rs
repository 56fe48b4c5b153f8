//! `span_cost`: busbench's `span_cost` section on its own, repeated, for quick measurements of
//! the span pipeline (`cargo run --release -p tracebus-benches --bin span_cost -- [--quick]
//! [--runs N] [--only FIGURE]`). Prints each run's figures as JSON, then the medians
//! over runs; `--only` measures one figure (for a profiler).

use tracebus_benches::measure::median;
use tracebus_benches::span_cost::{self, Effort, SpanCost};

#[global_allocator]
static GLOBAL: tracebus_test_support::CountingAllocator = tracebus_test_support::CountingAllocator;

fn main() {
    let mut effort = Effort::FULL;
    let mut runs = 3;
    let mut only = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => effort = Effort::QUICK,
            "--runs" => {
                runs = args.next().and_then(|n| n.parse().ok()).expect("--runs N");
            }
            "--only" => only = args.next(),
            other => panic!("unknown argument {other}; use --quick, --runs N, --only FIGURE"),
        }
    }
    if let Some(figure) = only {
        let f: fn(Effort) -> f64 = match figure.as_str() {
            "publish" => |e| span_cost::hot_ns(e).0,
            "process" => |e| span_cost::hot_ns(e).1,
            "burst-publish" => |e| span_cost::hot_burst_ns(e).0,
            "burst-process" => |e| span_cost::hot_burst_ns(e).1,
            "clock" => span_cost::clock_ns,
            "export" => span_cost::export_ns,
            "sdk" => span_cost::sdk_ns,
            other => panic!("unknown figure {other}; use publish, process, burst-publish, burst-process, clock, export or sdk"),
        };
        let mut all: Vec<f64> = (0..runs).map(|_| f(effort)).collect();
        println!(
            "{figure}: {all:.1?} ns per span, median {:.1}",
            median(&mut all)
        );
        return;
    }
    let allocations = tracebus_test_support::allocations;
    let all: Vec<SpanCost> = (0..runs)
        .map(|_| {
            let c = span_cost::measure(effort, &allocations);
            println!("{}", c.to_json());
            c
        })
        .collect();
    let med = |f: fn(&SpanCost) -> f64| median(&mut all.iter().map(f).collect::<Vec<_>>());
    let m = SpanCost {
        hot_ns_per_span: med(|c| c.hot_ns_per_span),
        hot_ns_per_publish_span: med(|c| c.hot_ns_per_publish_span),
        hot_ns_per_process_span: med(|c| c.hot_ns_per_process_span),
        burst_ns_per_publish_span: med(|c| c.burst_ns_per_publish_span),
        burst_ns_per_process_span: med(|c| c.burst_ns_per_process_span),
        export_ns_per_span: med(|c| c.export_ns_per_span),
        sdk_ns_per_span: med(|c| c.sdk_ns_per_span),
        allocs_per_sampled_msg: med(|c| c.allocs_per_sampled_msg),
        clock_ns: med(|c| c.clock_ns),
    };
    println!("median of {runs} runs: {}", m.to_json());
    println!(
        "hot {:.1} ns/span (publish {:.1}, process {:.1}; clock read {:.1}), {:.3}x the SDK's \
         {:.1} ns (publish alone {:.3}x; goal <= 25 ns, <= 0.1x); export {:.1} ns/span, \
         {:.3}x the SDK (goal <= 0.5x); {} allocations per sampled message; in a burst across \
         cores {:.1} / {:.1} ns per publish / process span",
        m.hot_ns_per_span,
        m.hot_ns_per_publish_span,
        m.hot_ns_per_process_span,
        m.clock_ns,
        m.hot_vs_sdk(),
        m.sdk_ns_per_span,
        m.publish_vs_sdk(),
        m.export_ns_per_span,
        m.export_vs_sdk(),
        m.allocs_per_sampled_msg,
        m.burst_ns_per_publish_span,
        m.burst_ns_per_process_span,
    );
}
