//! busbench's `bridge` section: the NATS bridge on loopback against a plain `async-nats`
//! publish/subscribe loop of the same bytes in the same run, with tracing off and at the default
//! sampler; and the import side's cost per message of the fast sampled-flag filter against the
//! full strict parse of `traceparent`. Skipped, with a note, when no `nats-server` can start.
//!
//! Both throughput loops move `u64` payloads (8 bytes) from one connection to another through
//! one local server and time from the first publish to the last arrival. The plain loop is a
//! publisher task and a subscriber task, each on its own one-thread runtime (as the bridge has
//! one I/O thread on each side). The bridge loop: a bus publisher, the export handler on bus
//! A's worker, bridge A, the server, bridge B, bus B's worker and a counting handler. Both
//! publishers keep at most [`WINDOW`] messages in flight (sent, not yet arrived), so core NATS
//! does not drop for a slow subscriber and the figure is sustained throughput; a run still
//! reports anything lost and stops waiting after two seconds without progress. A publisher at
//! its window sleeps (20 us asked; tokio's timer makes it a millisecond for the async one,
//! still short against the 8,192 messages in flight): a waiter that spun or yielded would take
//! CPU from the loop it measures on a small machine (here a yielding bus publisher had cost
//! the bridge 15-25% of its throughput, the plain loop's `yield_now` task 10-15% of its own).
//!
//! A second plain loop sends a sampled `traceparent` with every message (and its subscriber
//! parses it): the sampled bridge is also reported against that loop, the same trace header
//! work done without the bridge.
//!
//! Each loop also reports the client's CPU per message: the process's user and system time
//! (every thread; the server is another process) from the first publish to the last arrival.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use futures_util::StreamExt;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{json, Value};
use tracebus::context::{FanoutSampler, TraceContext};
use tracebus::{Bus, Pinning, SpanExport, TryPublishError};
use tracebus_nats::filter::sampled_flag;
use tracebus_nats::headers::classify;
use tracebus_nats::{Bridge, BridgeConfig, ExportOptions, ImportOptions};
use tracebus_test_support::NatsServer;

use crate::fanout::CountingExporter;
use crate::measure;

/// Messages in flight at most in a throughput loop (well under the client's subscription
/// buffer of 65,536).
pub const WINDOW: u64 = 8192;

/// One throughput run.
struct Run {
    sent: u64,
    arrived: u64,
    secs: f64,
    /// CPU time the process (the client side: the server is another process) used from the
    /// first publish until the last arrival; `None` without `/proc`.
    cpu: Option<Duration>,
}

impl Run {
    fn msgs_per_sec(&self) -> f64 {
        self.arrived as f64 / self.secs
    }

    /// Microseconds of client CPU per message arrived.
    fn cpu_us_per_msg(&self) -> Option<f64> {
        self.cpu
            .map(|c| c.as_secs_f64() * 1e6 / self.arrived.max(1) as f64)
    }
}

/// CPU time this process has used so far, every thread's (exited ones included), from
/// `/proc/self/stat` (user and system time, in Linux's fixed 100 ticks a second: 10 ms steps,
/// about 1% of a run here); `None` where there is no `/proc`.
fn process_cpu() -> Option<Duration> {
    cpu_in_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// User plus system time in a `/proc/<pid>/stat` line.
fn cpu_in_stat(stat: &str) -> Option<Duration> {
    // After the command name, which is in parentheses and may hold spaces and parentheses:
    // field 3 (state) on; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 2..)?
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// The CPU used since `start` (see [`process_cpu`]).
fn cpu_since(start: Option<Duration>) -> Option<Duration> {
    Some(process_cpu()?.saturating_sub(start?))
}

/// Waits until `count` reaches `n` or stops moving for two seconds; returns the time of the
/// last arrival seen, from `start`.
fn wait_arrivals(count: &AtomicU64, n: u64, start: Instant) -> (u64, f64) {
    let mut last = (0, start.elapsed());
    let mut still_since = Instant::now();
    loop {
        let c = count.load(Ordering::Acquire);
        if c != last.0 {
            last = (c, start.elapsed());
            still_since = Instant::now();
        }
        if c >= n || still_since.elapsed() > Duration::from_secs(2) {
            return (c, last.1.as_secs_f64());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The `traceparent` of message `v` of the plain loop with trace headers: sampled, one trace,
/// the span id from `v` (what a traced plain publisher would make per message).
fn plain_traceparent(v: u64) -> HeaderMap {
    let cx = TraceContext::new([0x4b; 16], (v + 1).to_be_bytes(), 0x01).expect("ids");
    let text = tracebus_context::traceparent::encode(&cx);
    let mut headers = HeaderMap::new();
    headers.insert(
        "traceparent",
        std::str::from_utf8(&text).expect("traceparent is ASCII"),
    );
    headers
}

/// The plain loop: `n` publishes of 8 bytes to a subscriber on another connection. With
/// `traceparent`, every message carries a sampled `traceparent` made for it (see
/// [`plain_traceparent`]) and the subscriber looks it up and parses it strictly: the work of
/// the sampled bridge's headers in a plain program, to set the sampled bridge beside.
fn plain(url: &str, n: u64, traceparent: bool) -> Run {
    let (sub_rt, pub_rt) = (runtime(), runtime());
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let url_owned = url.to_owned();
    let mut sub = sub_rt.block_on(async move {
        let client = async_nats::connect(url_owned).await.expect("connect");
        let sub = client.subscribe("bench.plain").await.expect("subscribe");
        client.flush().await.expect("flush");
        (client, sub)
    });
    sub_rt.spawn(async move {
        let _client = &sub.0;
        while let Some(m) = sub.1.next().await {
            std::hint::black_box(&m.payload);
            if let Some(v) = m.headers.as_ref().and_then(|h| h.get("traceparent")) {
                std::hint::black_box(TraceContext::from_traceparent(v.as_str()).ok());
            }
            c.fetch_add(1, Ordering::Release);
        }
    });
    let client = pub_rt.block_on(async_nats::connect(url)).expect("connect");
    let (start, cpu0) = (Instant::now(), process_cpu());
    let pc = count.clone();
    pub_rt.spawn(async move {
        for v in 0..n {
            while v - pc.load(Ordering::Acquire).min(v) > WINDOW {
                tokio::time::sleep(Duration::from_micros(20)).await;
            }
            let bytes = bytes::Bytes::copy_from_slice(&v.to_le_bytes());
            let sent = if traceparent {
                client
                    .publish_with_headers("bench.plain", plain_traceparent(v), bytes)
                    .await
            } else {
                client.publish("bench.plain", bytes).await
            };
            if sent.is_err() {
                break;
            }
        }
        let _ = client.flush().await;
    });
    let (arrived, secs) = wait_arrivals(&count, n, start);
    Run {
        sent: n,
        arrived,
        secs,
        cpu: cpu_since(cpu0),
    }
}

/// A one-worker bus, traced at the default sampler (`k = 10`) when `provider` is given (the
/// bridge's own `send` spans use it; the bus exports its spans itself).
fn bus(provider: Option<&SdkTracerProvider>) -> Bus {
    let mut b = Bus::builder().workers(1).pinning(Pinning::Off);
    if provider.is_some() {
        b = b
            .tracing(SpanExport::exporter(CountingExporter::default()))
            .sampler(FanoutSampler::default());
    }
    b.build().expect("a bus")
}

/// The bridge loop: `n` bus publishes to a handler on another bus, through two bridges.
fn bridged(url: &str, n: u64, traced: bool) -> (Run, u64) {
    let provider = traced.then(|| {
        SdkTracerProvider::builder()
            .with_simple_exporter(CountingExporter::default())
            .build()
    });
    let (bus_a, bus_b) = (bus(provider.as_ref()), bus(provider.as_ref()));
    let topic_a = bus_a.topic::<u64>("bench").expect("topic");
    let topic_b = bus_b.topic::<u64>("bench").expect("topic");
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    bus_b
        .subscribe(&topic_b, move |msg, _| {
            std::hint::black_box(msg.payload());
            c.fetch_add(1, Ordering::Release);
        })
        .expect("subscribe");
    let mut config = BridgeConfig::new(url).queue_capacity(n as usize);
    if let Some(p) = &provider {
        config = config.tracer(p.tracer("busbench-bridge"));
    }
    let bridge_b = Bridge::connect(config.clone()).expect("bridge B");
    bridge_b
        .import(&bus_b, &topic_b, ImportOptions::subject("tracebus.bench"))
        .expect("import");
    let bridge_a = Bridge::connect(config).expect("bridge A");
    bridge_a
        .export(&bus_a, &topic_a, ExportOptions::default())
        .expect("export");
    let mut p = bus_a.publisher().expect("publisher");
    let (start, cpu0) = (Instant::now(), process_cpu());
    for v in 0..n {
        while v - count.load(Ordering::Acquire).min(v) > WINDOW {
            std::thread::sleep(Duration::from_micros(20));
        }
        // A full ring is waited out asleep too (`publish` would spin and yield).
        let mut value = v;
        loop {
            match p.try_publish(&topic_a, value) {
                Ok(_) => break,
                Err(TryPublishError::Full { payload, .. }) => {
                    value = payload;
                    std::thread::sleep(Duration::from_micros(20));
                }
                Err(e) => panic!("publish: {e}"),
            }
        }
    }
    let (arrived, secs) = wait_arrivals(&count, n, start);
    let cpu = cpu_since(cpu0);
    let with_context = bridge_b.stats().imported_with_context;
    drop(p);
    drop(bridge_a);
    drop(bridge_b);
    bus_a.shutdown();
    bus_b.shutdown();
    (
        Run {
            sent: n,
            arrived,
            secs,
            cpu,
        },
        with_context,
    )
}

/// Messages per second and client CPU microseconds per message (`None` without `/proc`) of
/// one run of one loop of `n` messages: `"plain"`, `"plain-tp"` (the plain loop with a
/// `traceparent` per message), `"off"` (the bridge, tracing off) or `"traced"` (the bridge at
/// the default sampler); `None` for another name.
pub fn one_loop(url: &str, which: &str, n: u64) -> Option<(f64, Option<f64>)> {
    let run = match which {
        "plain" => plain(url, n, false),
        "plain-tp" => plain(url, n, true),
        "off" => bridged(url, n, false).0,
        "traced" => bridged(url, n, true).0,
        _ => return None,
    };
    Some((run.msgs_per_sec(), run.cpu_us_per_msg()))
}

/// The import-side cost of learning whether a message is sampled.
fn filter_costs(quick: bool) -> Value {
    let (reps, iters) = if quick { (5, 200_000) } else { (9, 1_000_000) };
    let cx = TraceContext::new([0x4b; 16], [0xf0; 8], 0x03).expect("ids");
    let sampled = cx.to_traceparent();
    let unsampled = sampled.replace("-03", "-02");
    let values = [sampled.as_str(), unsampled.as_str()];
    let pick = |i: u64| values[(i & 1) as usize];
    let fast = measure::median_ns_per_op(reps, iters, |i| sampled_flag(pick(i)));
    let strict = measure::median_ns_per_op(reps, iters, |i| {
        TraceContext::from_traceparent(pick(i)).ok()
    });
    let mut h_sampled = HeaderMap::new();
    h_sampled.insert("traceparent", sampled.as_str());
    let mut h_unsampled = HeaderMap::new();
    h_unsampled.insert("traceparent", unsampled.as_str());
    let classify_unsampled =
        measure::median_ns_per_op(reps, iters, |_| classify(Some(&h_unsampled)));
    let classify_sampled = measure::median_ns_per_op(reps, iters, |_| classify(Some(&h_sampled)));
    println!("\n## Bridge import: is this message sampled? (median ns per message, {reps} reps)");
    println!("{:<44} {:>8}", "method", "ns/msg");
    for (name, ns) in [
        ("fast filter (flags field of the value)", fast),
        ("strict parse of the value", strict),
        (
            "header map, unsampled (lookup + filter)",
            classify_unsampled,
        ),
        (
            "header map, sampled (lookup + filter + parse)",
            classify_sampled,
        ),
    ] {
        println!("{name:<44} {ns:>8.1}");
    }
    println!("strict parse / fast filter: {:.1}x", strict / fast);
    json!({
        "fast_filter_ns": fast,
        "strict_parse_ns": strict,
        "strict_over_fast": strict / fast,
        "classify_unsampled_ns": classify_unsampled,
        "classify_sampled_ns": classify_sampled,
    })
}

/// The whole section (see the module docs).
pub fn section(quick: bool) -> Value {
    let server = match NatsServer::start() {
        Ok(s) => s,
        Err(e) => {
            println!(
                "\n## NATS bridge: skipped, no nats-server ({e}); scripts/nats-server.sh install"
            );
            return json!({ "skipped": e.to_string(), "filter": filter_costs(quick) });
        }
    };
    let mut doc = throughput(&server.url(), quick);
    doc["filter"] = filter_costs(quick);
    doc
}

/// The throughput part of the section against the server at `url`: the plain loop and the
/// bridge loops, interleaved, with their table printed; returns the figures.
pub fn throughput(url: &str, quick: bool) -> Value {
    let (reps, n) = if quick { (1, 100_000) } else { (3, 300_000) };
    let mut rows = Vec::new();
    let mut add = |name: &str, runs: Vec<Run>, with_context: u64| {
        let mut rates: Vec<f64> = runs.iter().map(Run::msgs_per_sec).collect();
        let rate = measure::median(&mut rates);
        let mut cpu: Vec<f64> = runs.iter().filter_map(Run::cpu_us_per_msg).collect();
        let cpu = (!cpu.is_empty()).then(|| measure::median(&mut cpu));
        let lost: u64 = runs.iter().map(|r| r.sent - r.arrived).sum();
        rows.push((name.to_owned(), rate, cpu, lost, with_context));
    };
    // Interleaved repetitions, so drift hits every loop alike.
    let mut plain_runs = Vec::new();
    let mut plain_tp_runs = Vec::new();
    let mut off_runs = Vec::new();
    let mut on_runs = Vec::new();
    let mut ctx = 0;
    for _ in 0..reps {
        plain_runs.push(plain(url, n, false));
        plain_tp_runs.push(plain(url, n, true));
        off_runs.push(bridged(url, n, false).0);
        let (run, c) = bridged(url, n, true);
        ctx += c;
        on_runs.push(run);
    }
    add("plain async-nats", plain_runs, 0);
    add("plain async-nats + traceparent", plain_tp_runs, 0);
    add("bridge, tracing off", off_runs, 0);
    add("bridge, default sampler (k = 10)", on_runs, ctx);
    let (plain_rate, plain_cpu) = (rows[0].1, rows[0].2);
    let cpu_ratio = |cpu: Option<f64>| Some(cpu? / plain_cpu?);
    // The sampled bridge beside the plain loop that sends a `traceparent` too.
    let (tp_rate, tp_cpu) = (rows[1].1, rows[1].2);
    let (sampled_rate, sampled_cpu) = (rows[3].1, rows[3].2);
    let sampled_vs_tp = (
        sampled_rate / tp_rate,
        sampled_cpu.zip(tp_cpu).map(|(s, t)| s / t),
    );
    println!("\n## NATS bridge on loopback: {n} u64 messages, median of {reps} (core NATS)");
    println!(
        "{:<34} {:>12} {:>10} {:>12} {:>10} {:>8} {:>14}",
        "loop", "msgs/s", "x plain", "CPU us/msg", "x plain", "lost", "with context"
    );
    let show =
        |x: Option<f64>, digits: usize| x.map_or("-".to_owned(), |x| format!("{x:.digits$}"));
    for (name, rate, cpu, lost, ctx) in &rows {
        println!(
            "{name:<34} {rate:>12.0} {:>10.2} {:>12} {:>10} {lost:>8} {ctx:>14}",
            rate / plain_rate,
            show(*cpu, 2),
            show(cpu_ratio(*cpu), 2),
        );
    }
    println!(
        "sampled bridge against the plain loop with traceparent: {:.2}x msgs/s, {}x CPU per message",
        sampled_vs_tp.0,
        show(sampled_vs_tp.1, 2),
    );
    println!(
        "(CPU: the client process's, every thread, from the first publish to the last arrival; \
         the server's is not counted)"
    );
    json!({
        "messages": n,
        "reps": reps,
        "server": "nats-server (loopback, core NATS)",
        "loops": rows.iter().map(|(name, rate, cpu, lost, ctx)| json!({
            "loop": name,
            "msgs_per_sec": rate,
            "ratio_to_plain": rate / plain_rate,
            "client_cpu_us_per_msg": cpu,
            "client_cpu_ratio_to_plain": cpu_ratio(*cpu),
            "lost": lost,
            "imported_with_context": ctx,
        })).collect::<Vec<_>>(),
        "sampled_vs_plain_traceparent": {
            "msgs_per_sec_ratio": sampled_vs_tp.0,
            "client_cpu_ratio": sampled_vs_tp.1,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_from_the_stat_line() {
        // utime 250 and stime 31 ticks, after a command name with a space and a parenthesis.
        let line = "4242 (bus (worker) 1) S 1 4242 4242 0 -1 4194560 1500 0 0 0 250 31 0 0 20 0 \
                    7 0 123456 1000000 500 18446744073709551615";
        assert_eq!(cpu_in_stat(line), Some(Duration::from_millis(2810)));
        assert_eq!(cpu_in_stat("4242 (x) S 1 2"), None, "too short");
        assert_eq!(cpu_in_stat("garbage"), None);
    }

    #[test]
    fn this_process_cpu_time_grows_with_work() {
        let Some(before) = process_cpu() else {
            return; // no /proc here
        };
        // Spin until the count has moved by 30 ms (three ticks); a few seconds at most even
        // on a busy machine.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut x = 1u64;
        while cpu_since(Some(before)).unwrap() < Duration::from_millis(30) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            assert!(Instant::now() < deadline, "the CPU count never moved");
        }
    }
}
