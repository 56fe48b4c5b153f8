//! The catch-up pause: how long a worker that keeps up with a stream waits before it polls
//! again (FastForward's "temporal slipping"), in spin-loop hints calibrated once per process.
//!
//! A worker that finds only a few messages right after a pass that found some is on its
//! producers' heels: each poll pulls the ring's `tail` line and the slot being written away
//! from the producer between its stores, so both sides pay a cache-line transfer per message.
//! Waiting [`CATCH_UP_NANOS`] lets the producers write a batch's worth of slots undisturbed
//! (see `wait::Idle::found`). The wait is a run of `core::hint::spin_loop` calls, not clock reads
//! (a read is a few nanoseconds and would be taken many times per pause); what one hint costs
//! differs by CPU (about 25 ns on the project's AMD EPYC, 5-50 ns on other x86 cores, a few
//! on some ARM cores), so the number of hints is measured once, the first time a worker is
//! built, and the pause lasts about the same time everywhere. Where `spin_loop` is no
//! instruction at all (targets without a spin hint), the loop compiles to nothing and there
//! is no pause.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The length of a catch-up pause. Measured on the project's machine at fanout 1: 1.2-1.6
/// messages per pass and 20 M msgs/s without a pause; 25-28 M msgs/s with 0.4 us after passes
/// under 8 messages, 28-31 after passes under 32 (0.8 us: 28-31 as well, at twice the pause;
/// checking the rings' length every 8 hints to stop early: no better, the checks pull `tail`
/// away again). Long enough for a publisher to write a batch's worth of slots, short against
/// a busy worker's time slice, and the most a message arriving during a pause waits.
pub(crate) const CATCH_UP_NANOS: f64 = 400.0;

/// The most hints in a pause (a CPU whose hint the probe measures as free).
const MAX_HINTS: u32 = 1024;

/// Hints the first probe runs; it doubles until a run takes [`MIN_PROBE_TIME`].
const FIRST_PROBE: u32 = 256;

/// The most hints a probe runs (a hint that compiled to nothing never takes any time).
const MAX_PROBE: u32 = 1 << 20;

/// How long a probe must run to be measured: long against a clock read and against a clock
/// that counts in microseconds (about 800 hints at 25 ns each).
const MIN_PROBE_TIME: Duration = Duration::from_micros(20);

/// Spin-loop hints in a catch-up pause on this machine; 0 under loom (a pause there is only
/// more interleavings to explore) and under Miri (the probe would interpret up to a million
/// hints against its virtual clock). Measured on first use, then the same for the process.
pub(crate) fn catch_up_hints() -> u32 {
    if cfg!(any(tracebus_loom, miri)) {
        return 0;
    }
    static HINTS: OnceLock<u32> = OnceLock::new();
    *HINTS.get_or_init(|| {
        hints_for(ns_per_hint(|hints| {
            let t = Instant::now();
            pause(hints);
            t.elapsed()
        }))
    })
}

/// What one spin-loop hint takes, in ns, from `run` (runs that many hints, says how long it
/// took): the probe doubles from [`FIRST_PROBE`] hints until a run takes [`MIN_PROBE_TIME`]
/// (or reaches [`MAX_PROBE`]), then the fastest of three runs of that size counts (a run that
/// was preempted or interrupted only reads longer).
fn ns_per_hint(mut run: impl FnMut(u32) -> Duration) -> f64 {
    let mut hints = FIRST_PROBE;
    while hints < MAX_PROBE && run(hints) < MIN_PROBE_TIME {
        hints *= 2;
    }
    let fastest = (0..3).map(|_| run(hints)).min().unwrap_or_default();
    fastest.as_nanos() as f64 / f64::from(hints)
}

/// Hints in [`CATCH_UP_NANOS`] at `ns_per_hint` each, at least 1 and at most [`MAX_HINTS`].
fn hints_for(ns_per_hint: f64) -> u32 {
    let hints = CATCH_UP_NANOS / ns_per_hint;
    if hints.is_nan() || hints >= f64::from(MAX_HINTS) {
        return MAX_HINTS;
    }
    (hints.round() as u32).max(1)
}

/// Spins `hints` spin-loop hints.
#[inline]
pub(crate) fn pause(hints: u32) {
    for _ in 0..hints {
        core::hint::spin_loop();
    }
}

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    use super::*;

    #[test]
    fn hints_cover_the_pause_at_any_hint_cost() {
        assert_eq!(hints_for(25.0), 16, "the project's machine");
        assert_eq!(hints_for(40.0), 10);
        assert_eq!(hints_for(3.0), 133);
        assert_eq!(hints_for(1e6), 1, "at least one hint");
        assert_eq!(hints_for(0.0), MAX_HINTS, "a free hint is capped");
        assert_eq!(hints_for(f64::NAN), MAX_HINTS);
    }

    /// A clock that reads `hint_ns` per hint, in steps of `step`.
    fn clock(hint_ns: u64, step: Duration) -> impl FnMut(u32) -> Duration {
        move |hints| {
            let t = Duration::from_nanos(hint_ns * u64::from(hints));
            let steps = t.as_nanos() / step.as_nanos();
            step * u32::try_from(steps).unwrap()
        }
    }

    #[test]
    fn the_probe_measures_a_hint_with_any_clock() {
        // A nanosecond clock: the first probe that takes 20 us (1,024 hints at 25 ns).
        assert_eq!(ns_per_hint(clock(25, Duration::from_nanos(1))), 25.0);
        // A clock in microseconds: a probe long enough to read within 4%.
        let ns = ns_per_hint(clock(25, Duration::from_micros(1)));
        assert!((24.0..=25.0).contains(&ns), "{ns}");
        assert_eq!(hints_for(ns), 16);
        // Cheap hints: a longer probe.
        assert_eq!(ns_per_hint(clock(1, Duration::from_nanos(1))), 1.0);
        // A hint that costs nothing (compiled away): the probe stops at its cap.
        let mut runs = Vec::new();
        let ns = ns_per_hint(|hints| {
            runs.push(hints);
            Duration::ZERO
        });
        assert_eq!(ns, 0.0);
        assert_eq!(runs.iter().max(), Some(&MAX_PROBE));
        assert_eq!(hints_for(ns), MAX_HINTS);
    }

    #[test]
    fn the_fastest_run_counts() {
        // Every other run is interrupted for 1 ms.
        let mut n = 0;
        let ns = ns_per_hint(|hints| {
            n += 1;
            let slow = if n % 2 == 0 {
                Duration::from_millis(1)
            } else {
                Duration::ZERO
            };
            Duration::from_nanos(25 * u64::from(hints)) + slow
        });
        assert_eq!(ns, 25.0);
    }

    #[test]
    fn this_machine_gets_a_pause_in_range() {
        let hints = catch_up_hints();
        assert!((1..=MAX_HINTS).contains(&hints), "{hints} hints");
        assert_eq!(catch_up_hints(), hints, "measured once");
    }
}
