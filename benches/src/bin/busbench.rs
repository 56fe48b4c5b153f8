//! `busbench`: tracebus against its peers, in one run, on one machine.
//!
//! Prints a readable report on stdout and, with `--json PATH`, writes the same figures as one
//! JSON document. `--quick` runs fewer repetitions. Every ratio is computed between figures taken
//! in the same run.
//!
//! Sections so far: the machine, and the fast sampled-flag filter against a full decode, an
//! OpenTelemetry `SpanContext`, and the SDK propagator's extract.

use std::process::ExitCode;

use serde_json::{json, Value};
use tracebus_benches::filter_cases::Cases;
use tracebus_benches::{machine, measure};

struct Args {
    quick: bool,
    json: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--full" => args.quick = false,
            "--json" => args.json = Some(it.next().ok_or("--json needs a path")?),
            "-h" | "--help" => {
                println!("usage: busbench [--quick|--full] [--json PATH]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

fn fast_filter(quick: bool) -> Value {
    let cases = Cases::new();
    let (reps, iters) = if quick {
        (5, 2_000_000)
    } else {
        (15, 5_000_000)
    };
    let hs = &cases.headers;
    let h = |i: u64| &hs[i as usize % hs.len()][..];
    let c = &cases.carrier;
    let rows: Vec<(&str, f64)> = vec![
        (
            "fast_filter",
            measure::median_ns_per_op(reps, iters, |i| cases.fast_filter(h(i))),
        ),
        (
            "full_decode",
            measure::median_ns_per_op(reps, iters, |i| cases.full_decode(h(i))),
        ),
        (
            "span_context",
            measure::median_ns_per_op(reps, iters, |i| cases.span_context(h(i))),
        ),
        (
            "strict_extract",
            measure::median_ns_per_op(reps, iters / 10, |_| cases.strict_extract(c)),
        ),
        (
            "sdk_extract",
            measure::median_ns_per_op(reps, iters / 10, |_| cases.sdk_extract(c)),
        ),
    ];
    let base = rows[0].1.max(1e-3);
    println!("\n## Is this message sampled? (median ns per message, {reps} reps)");
    println!("{:<16} {:>10} {:>14}", "method", "ns/msg", "x fast filter");
    for (name, ns) in &rows {
        println!("{name:<16} {ns:>10.2} {:>14.1}", ns / base);
    }
    Value::Array(
        rows.iter()
            .map(|(name, ns)| json!({"method": name, "ns_per_msg": ns, "ratio_to_fast_filter": ns / base}))
            .collect(),
    )
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("busbench: {e}");
            return ExitCode::from(2);
        }
    };
    let m = machine::describe();
    println!(
        "# busbench ({} mode)",
        if args.quick { "quick" } else { "full" }
    );
    println!(
        "machine: {} ({} cores)",
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"]
    );
    let doc = json!({
        "machine": m,
        "mode": if args.quick { "quick" } else { "full" },
        "fast_filter": fast_filter(args.quick),
    });
    if let Some(path) = args.json {
        let text = serde_json::to_string_pretty(&doc).expect("JSON values serialise");
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("busbench: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
        eprintln!("wrote {path}");
    }
    ExitCode::SUCCESS
}
