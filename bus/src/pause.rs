//! The catch-up pause: how long a worker that keeps up with a stream waits before it polls
//! again (FastForward's "temporal slipping"), in spin-loop hints calibrated once per process;
//! its length is a setting ([`crate::BusBuilder::catch_up_pause`], default
//! [`CATCH_UP_NANOS`]; zero: no pause).
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

/// The default length of a catch-up pause ([`crate::DEFAULT_CATCH_UP_PAUSE`]), in ns.
/// Measured on the project's machine at fanout 1: 1.2-1.6
/// messages per pass and 20 M msgs/s without a pause; 25-28 M msgs/s with 0.4 us after passes
/// under 8 messages, 28-31 after passes under 32 (0.8 us: 28-31 as well, at twice the pause;
/// checking the rings' length every 8 hints to stop early: no better, the checks pull `tail`
/// away again). Long enough for a publisher to write a batch's worth of slots, short against
/// a busy worker's time slice, and the most a message arriving during a pause waits.
pub(crate) const CATCH_UP_NANOS: f64 = crate::config::DEFAULT_CATCH_UP_PAUSE.as_nanos() as f64;

/// The most hints in a pause of the default length (a CPU whose hint the probe measures as
/// free); in proportion for other lengths.
const MAX_HINTS: u32 = 1024;

/// Hints the first probe runs; it doubles until a run takes [`MIN_PROBE_TIME`].
const FIRST_PROBE: u32 = 256;

/// The most hints a probe runs (a hint that compiled to nothing never takes any time).
const MAX_PROBE: u32 = 1 << 20;

/// How long a probe must run to be measured: long against a clock read and against a clock
/// that counts in microseconds (about 800 hints at 25 ns each).
const MIN_PROBE_TIME: Duration = Duration::from_micros(20);

/// Spin-loop hints in a catch-up pause of `pause_len` on this machine; 0 for a zero pause,
/// under loom (a pause there is only more interleavings to explore) and under Miri (the probe
/// would interpret up to a million hints against its virtual clock). A hint's cost is measured
/// on first use, then the same for the process.
pub(crate) fn catch_up_hints(pause_len: Duration) -> u32 {
    if cfg!(any(tracebus_loom, miri)) || pause_len.is_zero() {
        return 0;
    }
    static NS_PER_HINT: OnceLock<f64> = OnceLock::new();
    let ns = *NS_PER_HINT.get_or_init(|| {
        ns_per_hint(|hints| {
            let t = Instant::now();
            pause(hints);
            t.elapsed()
        })
    });
    hints_for(pause_len.as_nanos() as f64, ns)
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

/// Hints in a pause of `pause_ns` at `ns_per_hint` each: at least 1, and at most
/// [`MAX_HINTS`] for a pause of the default length, in proportion for others.
fn hints_for(pause_ns: f64, ns_per_hint: f64) -> u32 {
    let cap = (f64::from(MAX_HINTS) * pause_ns / CATCH_UP_NANOS).clamp(1.0, f64::from(u32::MAX));
    let hints = pause_ns / ns_per_hint;
    if hints.is_nan() || hints >= cap {
        return cap as u32;
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
        let default = CATCH_UP_NANOS;
        assert_eq!(hints_for(default, 25.0), 16, "the project's machine");
        assert_eq!(hints_for(default, 40.0), 10);
        assert_eq!(hints_for(default, 3.0), 133);
        assert_eq!(hints_for(default, 1e6), 1, "at least one hint");
        assert_eq!(hints_for(default, 0.0), MAX_HINTS, "a free hint is capped");
        assert_eq!(hints_for(default, f64::NAN), MAX_HINTS);
        // Other lengths: in proportion, the cap too.
        assert_eq!(hints_for(100.0, 25.0), 4);
        assert_eq!(hints_for(2_000.0, 25.0), 80);
        assert_eq!(hints_for(100.0, 0.0), MAX_HINTS / 4);
        assert_eq!(hints_for(1.0, 0.0), 2);
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
        assert_eq!(hints_for(CATCH_UP_NANOS, ns), 16);
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
        assert_eq!(hints_for(CATCH_UP_NANOS, ns), MAX_HINTS);
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
        let default = Duration::from_nanos(CATCH_UP_NANOS as u64);
        let hints = catch_up_hints(default);
        assert!((1..=MAX_HINTS).contains(&hints), "{hints} hints");
        assert_eq!(catch_up_hints(default), hints, "measured once");
        assert_eq!(catch_up_hints(Duration::ZERO), 0, "no pause");
    }
}
