//! The `latency_at_rate` section of busbench: one-way publish -> handler latency at fixed
//! offered rates, the tail a latency-critical service sees at a steady load.
//!
//! For each rate in [`RATES`] and each [`System`], a publisher pinned to one core sends a
//! stream of `u64` messages and the system's consumer, pinned to the other, runs a handler
//! that records each message's latency in an HdrHistogram. The publisher paces itself by the
//! clock: message `i` is due at `start + i / rate`; it spins until then, stamps the message
//! with that intended time and publishes it, waiting for room if the ring is full. A message
//! that is late (because the publisher waited for room) is sent at once, still stamped with
//! its due time, and none is ever skipped, so time the system makes the publisher wait counts
//! in the latency of every message it delays (no coordinated omission). The handler reads the
//! clock and records `now - stamp`.
//!
//! The clock is `quanta`'s raw counter (`rdtsc` on x86-64), read on both sides and converted
//! to nanoseconds since one base tick with quanta's calibrated scale (one `quanta::Clock`,
//! cloned to both threads: same calibration). A read (`rdtsc`, a multiply and a shift) takes
//! the handler a few ns, which every system pays alike.
//!
//! Every system ([`crate::peers`], as a [`Peer`]) in its idiomatic best form, ring or queue
//! capacity [`CAPACITY`] (as in `bus_vs_peers`): tracebus's bus (one worker, one subscriber,
//! `Publisher::publish`) with [`WaitStrategy::BusySpin`], the same without the catch-up pause
//! (`catch_up_pause(Duration::ZERO)`: the worker polls again at once after every pass) and
//! with the default wait strategy ([`WaitStrategy::SpinThenPark`]: after a spell of spinning
//! and yielding the worker parks and a publish must wake it); the disruptor (`disruptor` v4,
//! `build_single_producer(..).handle_events_with(..)`, `BusySpin`, `publish`), with `u64`
//! events and with 64-byte ones ([`Msg64`], the bytes the bus's one-line slot moves, as in
//! `bus_vs_peers`: eight `u64` events share a cache line, a 64-byte one has a line to itself,
//! as a bus message does); crossbeam-channel
//! `bounded`, `try_send` spinning while full, a consumer thread spinning on `try_recv`; and
//! crossbeam-channel in its blocking form (`send`, a consumer thread blocked in `recv`), the
//! blocking peer of the default-strategy bus: the disruptor crate (4.4) has no blocking wait
//! strategy (its others are a spin with a hint and a fixed sleep). The bus's
//! message is its one-line slot (64 bytes, the `u64` in its payload area); the other peers
//! carry the `u64` as their users would write it.
//!
//! Each run starts with [`WARMUP`] messages (fewer at the lowest rate), paced like the rest but
//! not recorded (they fault in the ring's pages and warm the caches). Repetitions are
//! interleaved across rates and systems, and each percentile is the median over repetitions.
//! A system that cannot keep up with a rate delivers the last message late by a growing
//! fraction of the run; a run whose deliveries took more than 1 / [`KEPT_UP`] of the offered
//! time counts as saturated, and a row whose median run is saturated reports its achieved rate
//! instead of percentiles (they would only measure the run's length).

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tracebus::{Report, WaitStrategy};

use crate::measure::median;
use crate::peers::{
    BlockingChannel, Bus, Cores, CrossbeamChannel, Disruptor, Msg64, Named, Peer, Queued, CAPACITY,
};

/// Offered rates, messages per second. At 2 k/s messages are 0.5 ms apart: an idle worker with
/// the default wait strategy has parked by then, so that row measures the wake-up; at 100 k/s
/// (10 us apart) it is still spinning or yielding when the next message comes.
pub const RATES: [u64; 5] = [2_000, 100_000, 1_000_000, 5_000_000, 10_000_000];

/// Messages at the start of each run that are paced and delivered but not recorded: one lap of
/// the ring, or 50 ms' worth at a rate too low for a lap (see [`warmup_at`]).
pub const WARMUP: u64 = CAPACITY as u64;

/// The warm-up at `rate`: [`WARMUP`] messages, or as many as 50 ms holds if fewer.
pub fn warmup_at(rate: u64) -> u64 {
    WARMUP.min(rate / 20).max(1)
}

/// A run kept up with its rate when its deliveries took at most 1 / `KEPT_UP` of the offered
/// time (a backlog that grows through the run stretches them; a stall the system recovers
/// from, such as a preemption, stretches them by its length only).
pub const KEPT_UP: f64 = 0.95;

/// The largest latency a histogram holds (larger ones are recorded as this): 60 s.
const MAX_NS: u64 = 60_000_000_000;

/// A system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// The bus, its worker busy-spinning.
    TracebusSpin,
    /// The bus, its worker busy-spinning, without the catch-up pause
    /// (`BusBuilder::catch_up_pause(Duration::ZERO)`).
    TracebusSpinNoPause,
    /// The bus with the default wait strategy (spin, yield, then park).
    TracebusDefault,
    /// The `disruptor` crate, `handle_events_with`, busy-spinning, `u64` events.
    Disruptor,
    /// The same with 64-byte events ([`Msg64`]): the bytes the bus's one-line slot moves.
    Disruptor64,
    /// crossbeam-channel `bounded` and a consumer thread spinning on `try_recv`.
    CrossbeamChannel,
    /// crossbeam-channel `bounded` and a consumer thread blocked in `recv` (the blocking peer
    /// of the default wait strategy: [`BlockingChannel`]).
    CrossbeamBlocking,
}

/// Every system, in the order of the table.
pub const SYSTEMS: [System; 7] = [
    System::TracebusSpin,
    System::TracebusSpinNoPause,
    System::TracebusDefault,
    System::Disruptor,
    System::Disruptor64,
    System::CrossbeamChannel,
    System::CrossbeamBlocking,
];

impl System {
    /// The system's name in the report and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            System::TracebusSpin => "tracebus busy-spin",
            System::TracebusSpinNoPause => "tracebus no pause",
            System::TracebusDefault => "tracebus default",
            System::Disruptor => "disruptor busy-spin",
            System::Disruptor64 => "disruptor-64 busy-spin",
            System::CrossbeamChannel => CrossbeamChannel::<u64>::NAME,
            System::CrossbeamBlocking => BlockingChannel::NAME,
        }
    }
}

/// Nanoseconds from the first message's due time to message `i`'s at `rate` messages per
/// second (exact for any `i` a run sends; rounded down to the nanosecond).
pub fn due_offset(i: u64, rate: u64) -> u64 {
    (u128::from(i) * 1_000_000_000 / u128::from(rate.max(1))) as u64
}

/// The due times of a run, one after another: `start + due_offset(i, rate)` for `i` = 0, 1,
/// ..., stepped by whole and fractional nanoseconds (no division per message: a 128-bit one
/// costs the publisher tens of ns, a good part of its budget at 10 M msgs/s).
#[derive(Debug, Clone)]
pub struct Schedule {
    next: u64,
    /// Whole nanoseconds between two messages.
    step: u64,
    /// The fractional part of the step, in units of 1 / `rate` ns.
    rem: u64,
    /// The fraction accumulated so far, in the same units (below `rate`).
    acc: u64,
    rate: u64,
}

impl Schedule {
    /// Due times at `rate` messages per second from `start` (ns).
    pub fn new(start: u64, rate: u64) -> Schedule {
        let rate = rate.max(1);
        Schedule {
            next: start,
            step: 1_000_000_000 / rate,
            rem: 1_000_000_000 % rate,
            acc: 0,
            rate,
        }
    }

    /// The next message's due time.
    #[inline(always)]
    pub fn next_due(&mut self) -> u64 {
        let due = self.next;
        self.next += self.step;
        self.acc += self.rem;
        if self.acc >= self.rate {
            self.acc -= self.rate;
            self.next += 1;
        }
        due
    }
}

/// The clock both ends read: nanoseconds since a base tick, from quanta's raw counter.
#[derive(Clone)]
struct StampClock {
    clock: quanta::Clock,
    base: u64,
}

impl StampClock {
    /// A clock whose zero is now (quanta calibrates on its first use in the process).
    fn new() -> StampClock {
        let clock = quanta::Clock::new();
        let base = clock.raw();
        StampClock { clock, base }
    }

    /// Nanoseconds since the base tick.
    #[inline(always)]
    fn now_ns(&self) -> u64 {
        self.clock.delta_as_nanos(self.base, self.clock.raw())
    }
}

/// What a run's handler saw, handed over when the handler is dropped.
struct Recorded {
    hist: Histogram<u64>,
    /// Messages handled (the warm-up included).
    handled: u64,
    /// When the last message was handled (ns since the clock's base).
    last_ns: u64,
}

/// The handler's state: the histogram (allocated and touched before the run; recording never
/// allocates) and the counts, handed to `out` on drop (the systems drop their handlers on the
/// consumer thread when they stop).
struct Recorder {
    clock: StampClock,
    warmup: u64,
    hist: Histogram<u64>,
    handled: u64,
    last_ns: u64,
    out: Arc<Mutex<Option<Recorded>>>,
}

impl Recorder {
    fn new(clock: &StampClock, warmup: u64, out: &Arc<Mutex<Option<Recorded>>>) -> Recorder {
        let mut hist = Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid bounds");
        // Writes every count: the pages are in before the first message.
        hist.reset();
        Recorder {
            clock: clock.clone(),
            warmup,
            hist,
            handled: 0,
            last_ns: 0,
            out: out.clone(),
        }
    }

    /// Handles one message stamped with its due time `stamp`.
    #[inline(always)]
    fn record(&mut self, stamp: u64) {
        let now = self.clock.now_ns();
        if self.handled >= self.warmup {
            self.hist
                .saturating_record(now.saturating_sub(stamp).max(1));
        }
        self.handled += 1;
        self.last_ns = now;
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let hist = std::mem::replace(&mut self.hist, Histogram::new(1).expect("valid sigfig"));
        *self.out.lock().expect("not poisoned") = Some(Recorded {
            hist,
            handled: self.handled,
            last_ns: self.last_ns,
        });
    }
}

/// One run's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Latency percentiles of the recorded messages, ns.
    pub p50: u64,
    /// 99th percentile, ns.
    pub p99: u64,
    /// 99.9th percentile, ns.
    pub p999: u64,
    /// The largest latency, ns.
    pub max: u64,
    /// Messages delivered per second, from the first message's due time to the last delivery.
    pub achieved_rate: f64,
    /// For the bus: messages its worker took per pass over its ring.
    pub per_pass: Option<f64>,
}

/// Publishes `messages` stamps at `rate` with `send` (which returns once the message is
/// accepted): message `i` is due `due_offset(i, rate)` after the start (see [`Schedule`]); the
/// loop spins on the
/// clock until then (no spin hint: on some CPUs one lasts tens of ns, and the send would be
/// that late), sends the due time, and never skips one. Returns the start (the first due time).
#[inline(always)]
fn paced(clock: &StampClock, rate: u64, messages: u64, mut send: impl FnMut(u64)) -> u64 {
    let start = clock.now_ns();
    let mut schedule = Schedule::new(start, rate);
    for _ in 0..messages {
        let due = schedule.next_due();
        while clock.now_ns() < due {}
        send(due);
    }
    start
}

/// One run of `system` at `rate`: `warmup` unrecorded messages, then `messages` recorded ones.
/// Panics if a message went missing.
pub fn run_once(system: System, rate: u64, messages: u64, warmup: u64) -> Sample {
    let cores = Cores::two();
    thread::spawn(move || {
        let clock = StampClock::new();
        let out = Arc::new(Mutex::new(None));
        let rec = Recorder::new(&clock, warmup, &out);
        let total = warmup + messages;
        let spin = Bus::busy_spin();
        let (start, report) = match system {
            System::TracebusSpin => paced_run(&spin, rate, total, rec, cores),
            System::TracebusSpinNoPause => {
                let no_pause = Bus {
                    catch_up_pause: Duration::ZERO,
                    ..spin
                };
                paced_run(&no_pause, rate, total, rec, cores)
            }
            System::TracebusDefault => {
                let default = Bus {
                    wait: WaitStrategy::default(),
                    ..spin
                };
                paced_run(&default, rate, total, rec, cores)
            }
            System::Disruptor => paced_run(&Disruptor::<u64>::new(), rate, total, rec, cores),
            System::Disruptor64 => paced_run(&Disruptor::<Msg64>::new(), rate, total, rec, cores),
            System::CrossbeamChannel => paced_run(
                &Queued::<CrossbeamChannel<u64>>::new(),
                rate,
                total,
                rec,
                cores,
            ),
            System::CrossbeamBlocking => paced_run(&BlockingChannel, rate, total, rec, cores),
        };
        let r = out
            .lock()
            .expect("not poisoned")
            .take()
            .expect("the handler was dropped when the system stopped");
        assert_eq!(r.handled, total, "{}: every message handled", system.name());
        assert_eq!(
            r.hist.len(),
            messages,
            "{}: every message recorded",
            system.name()
        );
        let span = r.last_ns.saturating_sub(start).max(1);
        Sample {
            p50: r.hist.value_at_quantile(0.5),
            p99: r.hist.value_at_quantile(0.99),
            p999: r.hist.value_at_quantile(0.999),
            max: r.hist.max(),
            achieved_rate: total.saturating_sub(1) as f64 * 1e9 / span as f64,
            per_pass: report.map(|r| r.workers[0].messages_per_pass()),
        }
    })
    .join()
    .expect("publisher thread")
}

/// `peer` with `rec` as its handler, its publisher sending `messages` stamps at `rate`
/// ([`paced`]) once the consumer is pinned and polling (a queue's consumer thread says when it
/// is; the bus's worker and the disruptor's processor start with the system). Returns the
/// start and, for the bus, its report.
fn paced_run<S: Peer>(
    peer: &S,
    rate: u64,
    messages: u64,
    mut rec: Recorder,
    cores: Cores,
) -> (u64, Option<Report>) {
    let clock = rec.clock.clone();
    let mut p = peer.start(CAPACITY, cores, messages, move |stamp| rec.record(stamp));
    while !S::ready(&p) {
        std::hint::spin_loop();
    }
    cores.pin_publisher();
    let start = paced(&clock, rate, messages, |stamp| S::publish(&mut p, stamp));
    let ((), report) = S::stop(p, || ());
    (start, report)
}

/// One row of the section: a system at a rate, over the repetitions.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Offered rate, messages per second.
    pub rate: u64,
    /// The system.
    pub system: System,
    /// Recorded messages per run.
    pub messages: u64,
    /// Repetitions.
    pub reps: usize,
    /// Median over the repetitions of the achieved rate.
    pub achieved_rate: f64,
    /// Whether the median run fell behind the offered rate (see [`KEPT_UP`]); its percentiles
    /// are then `None`.
    pub saturated: bool,
    /// Medians over the repetitions of p50, p99, p99.9 and max (ns), when not saturated.
    pub latency: Option<[u64; 4]>,
    /// The least and the greatest of each of those four over the repetitions (ns).
    pub spread: [(u64, u64); 4],
    /// For the bus: the median of its worker's messages per pass.
    pub per_pass: Option<f64>,
}

/// The median of integer figures (the mean of the middle two for an even count, rounded).
fn median_u64(v: &[u64]) -> u64 {
    let mut f: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    median(&mut f).round() as u64
}

/// The row for `system` at `rate` from its runs' samples.
pub fn row(rate: u64, system: System, messages: u64, samples: &[Sample]) -> Row {
    let pick = |k: usize| -> Vec<u64> {
        samples
            .iter()
            .map(|s| [s.p50, s.p99, s.p999, s.max][k])
            .collect()
    };
    let mut achieved: Vec<f64> = samples.iter().map(|s| s.achieved_rate).collect();
    let achieved_rate = median(&mut achieved);
    let saturated = achieved_rate < KEPT_UP * rate as f64;
    let medians = [0, 1, 2, 3].map(|k| median_u64(&pick(k)));
    let spread = [0, 1, 2, 3].map(|k| {
        let v = pick(k);
        (
            v.iter().copied().min().unwrap_or(0),
            v.iter().copied().max().unwrap_or(0),
        )
    });
    let mut passes: Vec<f64> = samples.iter().filter_map(|s| s.per_pass).collect();
    Row {
        rate,
        system,
        messages,
        reps: samples.len(),
        achieved_rate,
        saturated,
        latency: (!saturated).then_some(medians),
        spread,
        per_pass: (!passes.is_empty()).then(|| median(&mut passes)),
    }
}

impl Row {
    /// The row as the JSON document carries it: `{rate, system, p50_ns, p99_ns, p999_ns,
    /// max_ns}` (percentiles `null` when saturated) with the achieved rate, the saturation
    /// flag, the spread over repetitions (`[least, greatest]` per percentile) and the counts.
    pub fn to_json(&self) -> Value {
        let at = |k: usize| self.latency.map(|l| l[k]);
        let range = |k: usize| json!([self.spread[k].0, self.spread[k].1]);
        json!({
            "rate": self.rate,
            "system": self.system.name(),
            "p50_ns": at(0),
            "p99_ns": at(1),
            "p999_ns": at(2),
            "max_ns": at(3),
            "achieved_rate": self.achieved_rate,
            "saturated": self.saturated,
            "spread_ns": {"p50": range(0), "p99": range(1), "p999": range(2), "max": range(3)},
            "messages": self.messages,
            "reps": self.reps,
            "messages_per_pass": self.per_pass,
        })
    }
}

/// How much a run of the section measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effort {
    /// Repetitions of every system at every rate.
    pub reps: usize,
    /// Seconds of offered load per run.
    pub secs: f64,
    /// The fewest recorded messages per run (the lowest rate sends these, taking longer).
    pub min_messages: u64,
}

impl Effort {
    /// `--quick`: a few seconds in all.
    pub const QUICK: Effort = Effort {
        reps: 3,
        secs: 0.05,
        min_messages: 200,
    };
    /// Full: 2 s per run, the issue's 2 M messages at 1 M msgs/s.
    pub const FULL: Effort = Effort {
        reps: 5,
        secs: 2.0,
        min_messages: 4_000,
    };

    /// Recorded messages per run at `rate`: `secs` of offered load, at least `min_messages`.
    pub fn messages_at(&self, rate: u64) -> u64 {
        ((rate as f64 * self.secs) as u64).max(self.min_messages)
    }
}

/// Runs every system at every rate, `effort.reps` interleaved repetitions; `progress` gets a
/// line per step.
pub fn run(effort: Effort, progress: &mut dyn FnMut(&str)) -> Vec<Row> {
    let reps = effort.reps;
    let cells: Vec<(u64, System)> = RATES
        .iter()
        .flat_map(|&rate| SYSTEMS.map(|s| (rate, s)))
        .collect();
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); cells.len()];
    for rep in 0..reps {
        for (&(rate, system), s) in cells.iter().zip(&mut samples) {
            progress(&format!(
                "latency at rate: {} at {}, {}/{reps}",
                system.name(),
                rate_name(rate),
                rep + 1
            ));
            let messages = effort.messages_at(rate);
            s.push(run_once(system, rate, messages, warmup_at(rate)));
        }
    }
    cells
        .iter()
        .zip(&samples)
        .map(|(&(rate, system), s)| row(rate, system, effort.messages_at(rate), s))
        .collect()
}

/// `100k`, `1M`, `2.5M`: a rate as the table prints it.
pub fn rate_name(rate: u64) -> String {
    if rate >= 1_000_000 {
        format!("{}M", rate as f64 / 1e6)
    } else if rate >= 1_000 {
        format!("{}k", rate as f64 / 1e3)
    } else {
        rate.to_string()
    }
}

/// The section as busbench prints it; returns its JSON rows.
pub fn section(quick: bool, progress: &mut dyn FnMut(&str)) -> Value {
    let effort = if quick { Effort::QUICK } else { Effort::FULL };
    let rows = run(effort, progress);
    let Effort {
        reps,
        secs,
        min_messages,
    } = effort;
    println!(
        "\n## Latency at an offered rate: one-way publish -> handler, u64 messages stamped with \
         their due time, capacity {CAPACITY}, publisher and consumer on two pinned cores \
         (median of {reps} interleaved runs of {secs} s each, at least {min_messages} messages, \
         after up to {WARMUP} unrecorded ones)"
    );
    println!(
        "forms: tracebus publish, one subscriber on one worker (busy-spin; no pause: busy-spin \
         without the catch-up pause; default: spin, yield, park); disruptor handle_events_with \
         + publish, BusySpin, u64 events (disruptor-64: 64-byte events, the bytes of the bus's \
         one-line slot); crossbeam-channel bounded try_send / try_recv spinning; \
         crossbeam-channel blocking: send / recv, the consumer asleep while empty. Clock: \
         quanta's TSC in ns on both ends. saturated: the median run's deliveries took more than \
         1/{KEPT_UP} of the offered time"
    );
    println!(
        "{:<6} {:<26} {:>9} {:>9} {:>10} {:>10} {:>10} {:>9}  p99 range",
        "rate", "system", "p50 ns", "p99 ns", "p99.9 ns", "max ns", "M msgs/s", "per pass"
    );
    for r in &rows {
        let passes = r.per_pass.map_or("-".to_owned(), |p| format!("{p:.1}"));
        let achieved = r.achieved_rate / 1e6;
        match r.latency {
            Some([p50, p99, p999, max]) => println!(
                "{:<6} {:<26} {p50:>9} {p99:>9} {p999:>10} {max:>10} {achieved:>10.3} {passes:>9}  \
                 {}-{}",
                rate_name(r.rate),
                r.system.name(),
                r.spread[1].0,
                r.spread[1].1
            ),
            None => println!(
                "{:<6} {:<26} {:>42} {achieved:>10.3} {passes:>9}",
                rate_name(r.rate),
                r.system.name(),
                "saturated"
            ),
        }
    }
    Value::Array(rows.iter().map(Row::to_json).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(p: [u64; 4], achieved_rate: f64) -> Sample {
        Sample {
            p50: p[0],
            p99: p[1],
            p999: p[2],
            max: p[3],
            achieved_rate,
            per_pass: None,
        }
    }

    #[test]
    fn due_times_are_exact_and_never_drift() {
        assert_eq!(due_offset(0, 1_000_000), 0);
        assert_eq!(due_offset(1, 1_000_000), 1_000);
        assert_eq!(due_offset(3, 3_000_000), 1_000);
        // 1 / 3 us is not a whole number of ns: each due time is rounded down on its own, so
        // the error never accumulates.
        assert_eq!(due_offset(1, 3_000_000), 333);
        assert_eq!(due_offset(2, 3_000_000), 666);
        assert_eq!(due_offset(30_000_000, 3_000_000), 10_000_000_000);
        assert_eq!(due_offset(20_000_000, 10_000_000), 2_000_000_000);
    }

    #[test]
    fn the_schedule_steps_through_the_due_times() {
        for rate in [1, 3, 100_000, 3_000_000, 7_000_000, 10_000_000, 999_999_937] {
            let mut s = Schedule::new(1_000, rate);
            for i in 0..100_000 {
                assert_eq!(
                    s.next_due(),
                    1_000 + due_offset(i, rate),
                    "rate {rate}, i {i}"
                );
            }
        }
        let mut s = Schedule::new(0, 3_000_000);
        for _ in 0..30_000_000 {
            s.next_due();
        }
        assert_eq!(s.next_due(), 10_000_000_000, "no drift after 30 M steps");
    }

    #[test]
    fn a_row_takes_the_median_of_each_percentile() {
        let s = [
            sample([100, 1_000, 5_000, 9_000], 1e6),
            sample([300, 3_000, 4_000, 90_000], 1e6),
            sample([200, 2_000, 6_000, 10_000], 0.99e6),
        ];
        let r = row(1_000_000, System::Disruptor, 50, &s);
        assert!(!r.saturated);
        assert_eq!(r.latency, Some([200, 2_000, 5_000, 10_000]));
        assert_eq!(
            r.spread,
            [(100, 300), (1_000, 3_000), (4_000, 6_000), (9_000, 90_000)]
        );
        assert_eq!(r.achieved_rate, 1e6);
        assert_eq!(r.reps, 3);
        assert_eq!(r.per_pass, None);
        // An even count: the mean of the middle two.
        let r = row(1_000_000, System::Disruptor, 50, &s[..2]);
        assert_eq!(r.latency, Some([200, 2_000, 4_500, 49_500]));
    }

    #[test]
    fn a_row_that_fell_behind_is_saturated_and_has_no_percentiles() {
        let behind = sample([70_000_000, 90_000_000, 95_000_000, 99_000_000], 7.4e6);
        let kept = sample([500, 40_000, 90_000, 200_000], 9.99e6);
        // Two of three runs fell behind: the median run did.
        let r = row(
            10_000_000,
            System::TracebusSpin,
            50,
            &[behind, kept, behind],
        );
        assert!(r.saturated);
        assert_eq!(r.latency, None);
        assert_eq!(r.achieved_rate, 7.4e6);
        // One of three (a stall, say): the row kept up.
        let r = row(10_000_000, System::TracebusSpin, 50, &[kept, behind, kept]);
        assert!(!r.saturated);
        // At the bound exactly, kept up.
        let r = row(
            1_000_000,
            System::TracebusSpin,
            50,
            &[sample([1; 4], KEPT_UP * 1e6)],
        );
        assert!(!r.saturated);
    }

    #[test]
    fn json_rows_have_the_issue_fields() {
        let mut s = sample([100, 1_000, 5_000, 9_000], 1e6);
        s.per_pass = Some(1.5);
        let j = row(1_000_000, System::TracebusDefault, 50, &[s]).to_json();
        assert_eq!(j["rate"], 1_000_000);
        assert_eq!(j["system"], "tracebus default");
        assert_eq!(j["p50_ns"], 100);
        assert_eq!(j["p99_ns"], 1_000);
        assert_eq!(j["p999_ns"], 5_000);
        assert_eq!(j["max_ns"], 9_000);
        assert_eq!(j["saturated"], false);
        assert_eq!(j["spread_ns"]["p99"], json!([1_000, 1_000]));
        assert_eq!(j["messages_per_pass"], 1.5);
        let behind = sample([1, 2, 3, 4], 1e5);
        let j = row(1_000_000, System::Disruptor, 50, &[behind]).to_json();
        assert_eq!(j["saturated"], true);
        for k in ["p50_ns", "p99_ns", "p999_ns", "max_ns", "messages_per_pass"] {
            assert!(j[k].is_null(), "{k}");
        }
        assert_eq!(j["achieved_rate"], 1e5);
    }

    #[test]
    fn rate_names() {
        assert_eq!(rate_name(100_000), "100k");
        assert_eq!(rate_name(1_000_000), "1M");
        assert_eq!(rate_name(2_500_000), "2.5M");
        assert_eq!(rate_name(500), "500");
        assert_eq!(Effort::FULL.messages_at(10_000_000), 20_000_000);
        assert_eq!(Effort::FULL.messages_at(1_000_000), 2_000_000);
        assert_eq!(Effort::FULL.messages_at(2_000), 4_000);
        assert_eq!(Effort::QUICK.messages_at(100_000), 5_000);
        assert_eq!(Effort::QUICK.messages_at(2_000), 200);
        assert_eq!(warmup_at(10_000_000), WARMUP);
        assert_eq!(warmup_at(2_000), 100);
        assert_eq!(warmup_at(1), 1);
        assert_eq!(rate_name(2_000), "2k");
    }

    // A short run of every system: every message is delivered and recorded once (run_once
    // asserts it). No timing is asserted.
    #[test]
    fn every_system_records_every_message() {
        for system in SYSTEMS {
            let s = run_once(system, 1_000_000, 2_000, 100);
            assert!(s.p50 >= 1 && s.p50 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max);
            assert!(s.achieved_rate > 0.0);
            assert_eq!(
                s.per_pass.is_some(),
                matches!(
                    system,
                    System::TracebusSpin | System::TracebusSpinNoPause | System::TracebusDefault
                )
            );
        }
    }
}
