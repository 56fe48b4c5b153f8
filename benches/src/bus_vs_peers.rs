//! The `bus_vs_peers` section of busbench: the bus a user embeds against the peers they would
//! embed instead, publishing `u64` messages to a handler that sums them.
//!
//! Every system ([`crate::peers`], as a [`Peer`]) runs with its publisher pinned to one core and
//! its consumer (tracebus's worker, the disruptor's processor thread, a consumer thread for
//! crossbeam-channel and rtrb) pinned to another, busy-spinning, rings of capacity [`CAPACITY`].
//! Three cases: one publish per message to one handler (`fanout1_single`), [`BATCH`] messages
//! per publish call (`fanout1_batch`, tracebus's `publish_batch` against the disruptor's
//! `batch_publish`), and [`FANOUT`] handlers on one consumer (`fanout100`: tracebus's 100
//! subscribers on one worker, the peers' consumer calling the same 100 boxed closures in a
//! loop). Every handler adds each value to a running sum that it hands to a shared counter when
//! the system drops it (at shutdown), so the work is observable at no cost per message; every
//! run checks the total. A run is timed from the first publish until the system has delivered
//! everything and stopped ([`Peer::stop`]: tracebus's `shutdown`, the disruptor's drop of its
//! producer, the join of the consumer thread).
//!
//! The peers carry each message in two forms: the `u64` as their users write it (8 bytes) and a
//! 64-byte, 64-aligned struct. tracebus carries its default one-line slot, whose 64 bytes hold the
//! trace header, the metadata and the `u64` (a 16-byte payload area): that is its 64-byte
//! message, so its rows say 64 bytes and are compared with both sets of peers.
//!
//! Each system's form: tracebus `Publisher::publish` / `publish_batch` to subscribers on one
//! worker; the disruptor (`disruptor` v4) `build_single_producer(..).pin_at_core(..)
//! .handle_events_with(handler)` with `publish` / `batch_publish` (its processor reads the cursor
//! once and handles every event available); crossbeam-channel `bounded`, `try_send` spinning
//! while full and a consumer spinning on `try_recv`; rtrb `push` spinning while full and a
//! consumer taking every available message as one `read_chunk`. For reference, "tracebus ring"
//! is tracebus's own SPSC ring with a pinned consumer thread (the bus's transport without the
//! bus): `try_push` of a one-line slot, consumer `read` chunks.
//!
//! Message counts are sized per system by calibration runs so that each timed run takes about
//! the same time; repetitions are interleaved across systems so that the machine's noise hits
//! them alike, and the median is reported.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tracebus::Report;

use crate::measure::median;
use crate::peers::{
    BatchPeer, Bus, Cores, CrossbeamChannel, Disruptor, Msg64, Named, Payload, Peer, Queued, Ring,
    Rtrb, BATCH, CAPACITY,
};

/// Handlers in `fanout100`.
pub const FANOUT: usize = 100;

/// A job the systems are measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// One publish call per message, one handler.
    Fanout1Single,
    /// [`BATCH`] messages per publish call, one handler.
    Fanout1Batch,
    /// One publish call per message, [`FANOUT`] handlers on one consumer.
    Fanout100,
}

impl Case {
    /// The case's name in the report and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Case::Fanout1Single => "fanout1_single",
            Case::Fanout1Batch => "fanout1_batch",
            Case::Fanout100 => "fanout100",
        }
    }

    /// Handlers every message reaches.
    pub fn fanout(self) -> usize {
        match self {
            Case::Fanout100 => FANOUT,
            _ => 1,
        }
    }

    /// tracebus's acceptance bound against a peer moving the same 64 bytes per message, from
    /// issue 22 (`None`: reported only; the 8-byte rows never carry a bound).
    pub fn bound(self, peer: System) -> Option<f64> {
        match (self, peer) {
            (Case::Fanout1Single, System::Disruptor | System::TracebusRing) => Some(0.8),
            (Case::Fanout1Single, System::Rtrb) => Some(1.0),
            (Case::Fanout1Batch | Case::Fanout100, System::Disruptor) => Some(1.0),
            _ => None,
        }
    }
}

/// A system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// The tracebus bus.
    Tracebus,
    /// tracebus's SPSC ring and a consumer thread (reference: the bus's transport alone).
    TracebusRing,
    /// The `disruptor` crate with a `handle_events_with` processor.
    Disruptor,
    /// crossbeam-channel `bounded` and a consumer thread.
    CrossbeamChannel,
    /// rtrb and a consumer thread.
    Rtrb,
}

impl System {
    /// The system's name in the report and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            System::Tracebus => Bus::NAME,
            System::TracebusRing => Ring::NAME,
            System::Disruptor => Disruptor::<u64>::NAME,
            System::CrossbeamChannel => CrossbeamChannel::<u64>::NAME,
            System::Rtrb => Rtrb::<u64>::NAME,
        }
    }
}

/// One measured combination: a case, a system, and the bytes per message it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The job.
    pub case: Case,
    /// The system.
    pub system: System,
    /// Bytes per message: 8 or 64 for the peers, 64 (one slot) for tracebus.
    pub msg_bytes: usize,
}

/// Every combination the section measures, in the order of its table.
pub fn entries() -> Vec<Entry> {
    let e = |case, system, msg_bytes| Entry {
        case,
        system,
        msg_bytes,
    };
    let mut v = Vec::new();
    for case in [Case::Fanout1Single, Case::Fanout1Batch, Case::Fanout100] {
        v.push(e(case, System::Tracebus, 64));
        let peers: &[System] = match case {
            Case::Fanout1Batch => &[System::Disruptor],
            _ => &[System::Disruptor, System::CrossbeamChannel, System::Rtrb],
        };
        for bytes in [8, 64] {
            for &p in peers {
                v.push(e(case, p, bytes));
            }
        }
        if case != Case::Fanout1Batch {
            v.push(e(case, System::TracebusRing, 64));
        }
    }
    v
}

/// A handler's running sum, added to `sink` when the handler is dropped.
struct Sum {
    sum: u64,
    sink: Arc<AtomicU64>,
}

impl Sum {
    fn new(sink: &Arc<AtomicU64>) -> Sum {
        Sum {
            sum: 0,
            sink: sink.clone(),
        }
    }

    #[inline(always)]
    fn add(&mut self, v: u64) {
        self.sum = self.sum.wrapping_add(v);
    }
}

impl Drop for Sum {
    fn drop(&mut self) {
        self.sink.fetch_add(self.sum, Ordering::Relaxed);
    }
}

/// A summing handler.
fn sum(sink: &Arc<AtomicU64>) -> impl FnMut(u64) + Send + 'static {
    let mut s = Sum::new(sink);
    move |v| s.add(v)
}

/// A handler calling `n` boxed summing closures in turn (a peer's `fanout100` consumer).
fn fan(n: usize, sink: &Arc<AtomicU64>) -> impl FnMut(u64) + Send + 'static {
    let mut handlers: Vec<Box<dyn FnMut(u64) + Send>> = (0..n)
        .map(|_| Box::new(sum(sink)) as Box<dyn FnMut(u64) + Send>)
        .collect();
    move |v| {
        for h in &mut handlers {
            h(v);
        }
    }
}

/// The sum every run must observe: `fanout` handlers each summing `0..messages`.
fn expected(messages: u64, fanout: usize) -> u64 {
    let once = (u128::from(messages) * u128::from(messages.saturating_sub(1)) / 2) as u64;
    once.wrapping_mul(fanout as u64)
}

/// Rounds `messages` up to whole batches (every case publishes whole batches).
fn whole_batches(messages: u64) -> u64 {
    messages.max(1).div_ceil(BATCH as u64) * BATCH as u64
}

/// Messages per second for one run of `e` with `messages` messages (rounded up to whole
/// batches). The publisher runs on a thread of its own pinned to the first core, the consumer
/// on the second; panics if the handlers' sum is wrong.
pub fn run_once(e: Entry, messages: u64) -> Measured {
    let messages = whole_batches(messages);
    let cores = Cores::two();
    thread::spawn(move || {
        let sink = Arc::new(AtomicU64::new(0));
        let fanout = e.case.fanout();
        let (secs, report) = match (e.system, e.msg_bytes) {
            (System::Tracebus, _) => {
                // The bus's fanout is its subscribers, each a summing handler.
                let p = Bus::busy_spin().start_subscribers(
                    CAPACITY,
                    cores,
                    (0..fanout).map(|_| sum(&sink)),
                );
                publish_case::<Bus>(e.case, p, messages, cores)
            }
            (System::TracebusRing, _) => {
                let p = start(&Queued::<Ring>::new(), e.case, messages, cores, &sink);
                publish_each::<Queued<Ring>>(p, messages, cores)
            }
            (peer, 8) => peer_run::<u64>(peer, e.case, messages, cores, &sink),
            (peer, 64) => peer_run::<Msg64>(peer, e.case, messages, cores, &sink),
            (_, other) => panic!("no {other}-byte message"),
        };
        if let Some(r) = &report {
            assert_eq!(r.delivered, messages * fanout as u64, "every delivery made");
        }
        assert_eq!(
            sink.load(Ordering::Relaxed),
            expected(messages, fanout),
            "{} {} {}: wrong sum",
            e.case.name(),
            e.system.name(),
            e.msg_bytes
        );
        Measured {
            msgs_per_sec: messages as f64 / secs.as_secs_f64(),
            per_pass: report.map(|r| r.workers[0].messages_per_pass()),
        }
    })
    .join()
    .expect("publisher thread")
}

/// A peer carrying `P`.
fn peer_run<P: Payload>(
    peer: System,
    case: Case,
    messages: u64,
    cores: Cores,
    sink: &Arc<AtomicU64>,
) -> (Duration, Option<Report>) {
    match peer {
        System::Disruptor => {
            let p = start(&Disruptor::<P>::new(), case, messages, cores, sink);
            publish_case::<Disruptor<P>>(case, p, messages, cores)
        }
        System::CrossbeamChannel => {
            let p = start(
                &Queued::<CrossbeamChannel<P>>::new(),
                case,
                messages,
                cores,
                sink,
            );
            publish_each::<Queued<CrossbeamChannel<P>>>(p, messages, cores)
        }
        System::Rtrb => {
            let p = start(&Queued::<Rtrb<P>>::new(), case, messages, cores, sink);
            publish_each::<Queued<Rtrb<P>>>(p, messages, cores)
        }
        other => unreachable!("{} is not a peer", other.name()),
    }
}

/// Starts `peer` with the case's handler: one summing handler, or at fanout 100 one that calls
/// [`FANOUT`] boxed summing closures in turn.
fn start<S: Peer>(
    peer: &S,
    case: Case,
    messages: u64,
    cores: Cores,
    sink: &Arc<AtomicU64>,
) -> S::Publisher {
    match case {
        Case::Fanout100 => peer.start(CAPACITY, cores, messages, fan(FANOUT, sink)),
        _ => peer.start(CAPACITY, cores, messages, sum(sink)),
    }
}

/// Publishes `0..messages` as the case does: [`BATCH`] per call in `fanout1_batch`, else one
/// per call.
fn publish_case<S: BatchPeer>(
    case: Case,
    p: S::Publisher,
    messages: u64,
    cores: Cores,
) -> (Duration, Option<Report>) {
    if case == Case::Fanout1Batch {
        publish_batches::<S>(p, messages, cores)
    } else {
        publish_each::<S>(p, messages, cores)
    }
}

/// Pins the publishing thread, publishes `0..messages` one per call and stops the peer; returns
/// the time from the first publish until the peer had delivered everything and stopped, and the
/// bus's report.
fn publish_each<S: Peer>(
    mut p: S::Publisher,
    messages: u64,
    cores: Cores,
) -> (Duration, Option<Report>) {
    cores.pin_publisher();
    let t0 = Instant::now();
    for i in 0..messages {
        S::publish(&mut p, i);
    }
    S::stop(p, || t0.elapsed())
}

/// As [`publish_each`], [`BATCH`] messages per publish call (`messages` is whole batches).
fn publish_batches<S: BatchPeer>(
    mut p: S::Publisher,
    messages: u64,
    cores: Cores,
) -> (Duration, Option<Report>) {
    cores.pin_publisher();
    let t0 = Instant::now();
    for base in (0..messages).step_by(BATCH) {
        S::publish_batch(&mut p, base, BATCH);
    }
    S::stop(p, || t0.elapsed())
}

/// The fewest messages a timed run publishes at fanout 1 (a hundredth of it at fanout 100).
const MIN_MESSAGES: u64 = 100_000;

/// One row of the section's table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub entry: Entry,
    /// Messages per timed run.
    pub messages: u64,
    /// Median messages per second over the repetitions.
    pub msgs_per_sec: f64,
    /// For the bus: the median of the worker's messages per pass over its ring (see
    /// `WorkerReport::messages_per_pass`); `None` for the others.
    pub per_pass: Option<f64>,
}

/// What one timed run measured.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Messages per second.
    pub msgs_per_sec: f64,
    /// For the bus: the worker's messages per pass over its ring.
    pub per_pass: Option<f64>,
}

/// Runs every entry: calibration runs size its message count so that a timed run takes about
/// `run_secs`, then `reps` timed runs, interleaved across entries. `progress` gets a line per
/// step.
pub fn run(
    entries: &[Entry],
    reps: usize,
    run_secs: f64,
    progress: &mut dyn FnMut(&str),
) -> Vec<Row> {
    let counts: Vec<u64> = entries
        .iter()
        .map(|&e| {
            progress(&format!(
                "bus vs peers: calibrating {} {} {}B",
                e.case.name(),
                e.system.name(),
                e.msg_bytes
            ));
            // Runs growing from a short one (a warm-up too) until two take at least an eighth
            // of the target; the faster of those two sizes the timed runs (noise only ever slows
            // a run down, and a very short run can overstate the rate).
            let mut n = whole_batches(10_000 * 100 / e.case.fanout() as u64);
            let (mut best, mut long_runs) = (0.0f64, 0);
            while long_runs < 2 {
                let rate = run_once(e, n).msgs_per_sec;
                let next = whole_batches((rate * run_secs / 4.0) as u64);
                if n as f64 / rate >= run_secs / 8.0 {
                    best = best.max(rate);
                    long_runs += 1;
                    n = next;
                } else {
                    n = next.clamp(2 * n, 8 * n);
                }
            }
            whole_batches(((best * run_secs) as u64).max(MIN_MESSAGES / e.case.fanout() as u64))
        })
        .collect();
    let mut runs: Vec<Vec<Measured>> = vec![Vec::new(); entries.len()];
    for rep in 0..reps {
        progress(&format!("bus vs peers: repetition {}/{reps}", rep + 1));
        for ((&e, &n), r) in entries.iter().zip(&counts).zip(&mut runs) {
            r.push(run_once(e, n));
        }
    }
    entries
        .iter()
        .zip(counts)
        .zip(runs)
        .map(|((&entry, messages), r)| {
            let mut rates: Vec<f64> = r.iter().map(|m| m.msgs_per_sec).collect();
            let mut passes: Vec<f64> = r.iter().filter_map(|m| m.per_pass).collect();
            Row {
                entry,
                messages,
                msgs_per_sec: median(&mut rates),
                per_pass: (!passes.is_empty()).then(|| median(&mut passes)),
            }
        })
        .collect()
}

/// One acceptance ratio: tracebus's throughput over a peer's in one case.
#[derive(Debug, Clone)]
pub struct Ratio {
    /// The case.
    pub case: Case,
    /// The peer.
    pub peer: System,
    /// The peer's bytes per message.
    pub peer_msg_bytes: usize,
    /// tracebus / peer, messages per second.
    pub ratio: f64,
    /// The bound for it (64-byte peers only), if any.
    pub bound: Option<f64>,
}

/// tracebus over every peer, per case and message size.
pub fn ratios(rows: &[Row]) -> Vec<Ratio> {
    let mut out = Vec::new();
    for tb in rows.iter().filter(|r| r.entry.system == System::Tracebus) {
        for peer in rows
            .iter()
            .filter(|r| r.entry.case == tb.entry.case && r.entry.system != System::Tracebus)
        {
            let case = tb.entry.case;
            out.push(Ratio {
                case,
                peer: peer.entry.system,
                peer_msg_bytes: peer.entry.msg_bytes,
                ratio: tb.msgs_per_sec / peer.msgs_per_sec,
                bound: (peer.entry.msg_bytes == 64)
                    .then(|| case.bound(peer.entry.system))
                    .flatten(),
            });
        }
    }
    out
}

/// The section as busbench prints it; returns the JSON rows (`"bus_vs_peers"`) and ratios
/// (`"bus_vs_peers_ratios"`).
pub fn section(quick: bool, progress: &mut dyn FnMut(&str)) -> (Value, Value) {
    let (reps, run_secs) = if quick { (5, 0.08) } else { (9, 0.25) };
    let rows = run(&entries(), reps, run_secs, progress);
    println!(
        "\n## The bus against its peers: u64 messages to a summing handler, capacity {CAPACITY}, \
         publisher and consumer on two pinned cores, busy-spin (median of {reps} interleaved runs)"
    );
    println!(
        "forms: tracebus publish / publish_batch({BATCH}), subscribers on one worker; disruptor \
         handle_events_with + publish / batch_publish({BATCH}); crossbeam-channel bounded \
         try_send / try_recv; rtrb push / read_chunk(all available); tracebus ring try_push / \
         read(all available). fanout100: tracebus has {FANOUT} subscribers, the others' consumer \
         calls {FANOUT} boxed closures. tracebus's 64 bytes are its one-line slot (trace header, \
         metadata, u64)."
    );
    println!(
        "{:<16} {:<18} {:>6} {:>10} {:>12} {:>9}",
        "case", "system", "bytes", "M msgs/s", "msgs/run", "per pass"
    );
    for r in &rows {
        println!(
            "{:<16} {:<18} {:>6} {:>10.2} {:>12} {:>9}",
            r.entry.case.name(),
            r.entry.system.name(),
            r.entry.msg_bytes,
            r.msgs_per_sec / 1e6,
            r.messages,
            r.per_pass.map_or("-".to_owned(), |p| format!("{p:.1}"))
        );
    }
    println!(
        "per pass: messages the bus's worker took per pass over its ring (temporal slipping keeps \
         it well above 1 when the worker keeps up)"
    );
    let ratios = ratios(&rows);
    println!(
        "tracebus / peer (same run; bounds from issue 22, against peers moving the same 64 bytes):"
    );
    println!(
        "{:<16} {:<18} {:>6} {:>8} {:>8} {:>6}",
        "case", "peer", "bytes", "ratio", "bound", "met"
    );
    for q in &ratios {
        println!(
            "{:<16} {:<18} {:>6} {:>8.3} {:>8} {:>6}",
            q.case.name(),
            q.peer.name(),
            q.peer_msg_bytes,
            q.ratio,
            q.bound.map_or("-".to_owned(), |b| format!(">= {b}")),
            q.bound
                .map_or("-", |b| if q.ratio >= b { "yes" } else { "no" })
        );
    }
    let rows_json = rows
        .iter()
        .map(|r| {
            json!({
                "case": r.entry.case.name(),
                "system": r.entry.system.name(),
                "msg_bytes": r.entry.msg_bytes,
                "msgs_per_sec": r.msgs_per_sec,
                "messages_per_run": r.messages,
                "messages_per_pass": r.per_pass,
            })
        })
        .collect();
    let ratios_json = ratios
        .iter()
        .map(|q| {
            json!({
                "case": q.case.name(),
                "peer": q.peer.name(),
                "peer_msg_bytes": q.peer_msg_bytes,
                "ratio": q.ratio,
                "bound": q.bound,
                "met": q.bound.map(|b| q.ratio >= b),
            })
        })
        .collect();
    (Value::Array(rows_json), Value::Array(ratios_json))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tiny runs of every entry: each system delivers every message to every handler and the
    // sum checks out (run_once asserts it). No timing is asserted.
    #[test]
    fn every_entry_delivers_and_sums() {
        for e in entries() {
            let m = run_once(e, 1_000);
            assert!(m.msgs_per_sec > 0.0, "{e:?}");
            assert_eq!(
                m.per_pass.is_some(),
                e.system == System::Tracebus,
                "the bus reports its passes: {e:?}"
            );
            if let Some(p) = m.per_pass {
                assert!(p >= 1.0, "a pass that counts found a message: {e:?} {p}");
            }
        }
    }

    #[test]
    fn every_tracebus_row_has_its_ratios() {
        let rows: Vec<Row> = entries()
            .into_iter()
            .map(|entry| Row {
                entry,
                messages: 1,
                msgs_per_sec: 1.0,
                per_pass: None,
            })
            .collect();
        let r = ratios(&rows);
        // 7 + 2 + 7 peer rows (the bus's own ring in the single and fanout cases); bounds on
        // five: three in fanout1_single, one in each other case.
        assert_eq!(r.len(), 16);
        assert_eq!(r.iter().filter(|q| q.bound.is_some()).count(), 5);
        assert!(r
            .iter()
            .all(|q| q.bound.is_none() || q.peer_msg_bytes == 64));
        assert!(r.iter().all(|q| q.ratio == 1.0));
    }

    #[test]
    fn expected_sum() {
        assert_eq!(expected(4, 1), 6);
        assert_eq!(expected(4, 100), 600);
        assert_eq!(whole_batches(1), BATCH as u64);
        assert_eq!(whole_batches(BATCH as u64 * 3), BATCH as u64 * 3);
    }
}
