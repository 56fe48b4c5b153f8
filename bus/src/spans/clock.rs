//! The span clock: raw TSC ticks on the hot path, wall-clock times on the exporter thread.
//!
//! The hot path reads `quanta`'s raw counter (`rdtsc` on x86-64, `cntvct_el0` on aarch64,
//! 7-10 ns; the monotonic clock where the CPU has no usable invariant TSC) and stores the
//! number as is. Turning ticks into time happens off the hot path, in [`WallClock`]: it reads
//! the raw counter on both sides of one `SystemTime::now()` and keeps the pair (midpoint tick,
//! wall time) as its anchor; a tick `t` is then `wall + scale(t - tick)`, with quanta's
//! tick-to-nanosecond scale (calibrated once per process against the monotonic clock; a
//! multiply and a shift). That scale is off by about 1 ppm on the project's VM (1 us per
//! second, 86 ms a day), so the exporter thread re-anchors every [`REANCHOR_NS`] (a wall-clock
//! read per second): spans stay within about a microsecond of the wall clock and follow its
//! steps, and two spans converted across a re-anchoring can be out of order by at most that.
//!
//! Under Miri, which cannot execute `rdtsc` or `cpuid`, the counter is a plain clock instead:
//! nanoseconds since the clock was made, from `std::time::Instant` (see [`Clock`]).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// The raw counter: `quanta`'s TSC clock.
#[cfg(not(miri))]
type Clock = quanta::Clock;

/// The raw counter under Miri, which cannot execute the TSC instructions `quanta` uses: ticks
/// are nanoseconds since the clock was made, read from `Instant`, with the part of `quanta`'s
/// API this module uses. Clones share the start, so ticks from any thread are comparable.
#[cfg(miri)]
#[derive(Debug, Clone)]
struct Clock {
    start: std::time::Instant,
}

#[cfg(miri)]
impl Clock {
    fn new() -> Clock {
        Clock {
            start: std::time::Instant::now(),
        }
    }

    /// Nanoseconds since the clock was made.
    fn raw(&self) -> Ticks {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Nanoseconds from `start` to `end`; 0 when `end` is not after `start` (as `quanta`).
    fn delta_as_nanos(&self, start: Ticks, end: Ticks) -> u64 {
        end.saturating_sub(start)
    }
}

/// Raw clock ticks, as [`now`] returns them. Only differences, converted by [`WallClock`],
/// mean anything.
pub(crate) type Ticks = u64;

/// The process's clock. `quanta::Clock::new` calibrates TSC against the monotonic clock once
/// per process (a few milliseconds); every clone shares that calibration, so ticks from any
/// thread are comparable.
static CLOCK: OnceLock<Clock> = OnceLock::new();

/// The process's clock, made (and calibrated) on first use.
#[inline]
fn clock() -> &'static Clock {
    CLOCK.get_or_init(Clock::new)
}

/// The current time in raw ticks: one counter read, no scaling, no syscall where the CPU has
/// an invariant TSC. Call [`WallClock::calibrate`] (the pipeline does, at start) before the
/// first hot-path call so that the one-time calibration does not land on a publish.
#[inline]
pub(crate) fn now() -> Ticks {
    clock().raw()
}

/// Nanoseconds from tick `since` to now (0 if `since` is not in the past).
#[inline]
pub(crate) fn nanos_since(since: Ticks) -> u64 {
    let c = clock();
    c.delta_as_nanos(since, c.raw())
}

/// How often the exporter thread re-anchors ticks to the wall clock: 1 s.
pub(crate) const REANCHOR_NS: u64 = 1_000_000_000;

/// Converts ticks to nanoseconds and wall-clock times from an anchor (a tick and the wall time
/// at it) taken at pipeline start and renewed by [`WallClock::reanchor_if_due`].
#[derive(Debug, Clone)]
pub(crate) struct WallClock {
    /// The process's clock (a copy: no `OnceLock` check per conversion).
    clock: Clock,
    /// The tick read halfway through reading `wall`.
    tick: Ticks,
    /// The wall-clock time at `tick`.
    wall: SystemTime,
}

impl WallClock {
    /// Reads the wall clock between two counter reads and keeps the midpoint pair.
    pub(crate) fn calibrate() -> WallClock {
        let c = clock();
        let before = c.raw();
        let wall = SystemTime::now();
        let after = c.raw();
        let tick = before.wrapping_add(after.wrapping_sub(before) / 2);
        WallClock {
            clock: c.clone(),
            tick,
            wall,
        }
    }

    /// Takes a new anchor if the current one is [`REANCHOR_NS`] old or more.
    pub(crate) fn reanchor_if_due(&mut self) {
        if self.nanos_between(self.tick, self.clock.raw()) >= REANCHOR_NS {
            *self = WallClock::calibrate();
        }
    }

    /// Nanoseconds from `from` to `to`; 0 when `to` is not after `from`.
    #[inline]
    pub(crate) fn nanos_between(&self, from: Ticks, to: Ticks) -> u64 {
        self.clock.delta_as_nanos(from, to)
    }

    /// The wall-clock time of tick `t` (before the calibration point too).
    #[inline]
    pub(crate) fn system_time(&self, t: Ticks) -> SystemTime {
        let c = &self.clock;
        if t >= self.tick {
            self.wall + Duration::from_nanos(c.delta_as_nanos(self.tick, t))
        } else {
            self.wall
                .checked_sub(Duration::from_nanos(c.delta_as_nanos(t, self.tick)))
                .unwrap_or(SystemTime::UNIX_EPOCH)
        }
    }
}

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    use super::*;

    #[test]
    fn ticks_move_forward_and_convert_to_now() {
        let wall = WallClock::calibrate();
        let a = now();
        std::thread::sleep(Duration::from_millis(5));
        let b = now();
        assert!(b > a);
        let ns = wall.nanos_between(a, b);
        assert!(
            (4_000_000..1_000_000_000).contains(&ns),
            "5 ms sleep measured as {ns} ns"
        );
        let t = wall.system_time(b);
        let off = SystemTime::now()
            .duration_since(t)
            .unwrap_or_else(|e| e.duration());
        assert!(off < Duration::from_millis(100), "{off:?} from now");
        assert_eq!(wall.nanos_between(b, a), 0);
        // Before the calibration point: earlier wall-clock time, not a panic.
        assert!(wall.system_time(a.saturating_sub(1_000_000)) <= wall.system_time(a));
    }

    #[test]
    fn the_anchor_is_renewed_when_due() {
        let mut wall = WallClock::calibrate();
        let first = wall.tick;
        wall.reanchor_if_due();
        assert_eq!(wall.tick, first, "not due yet");
        // An anchor a second and more old is renewed.
        wall.tick = wall
            .tick
            .saturating_sub(wall.clock.raw().saturating_sub(wall.tick) + 4_000_000_000);
        let old = wall.tick;
        wall.reanchor_if_due();
        assert!(wall.tick > old);
        let off = SystemTime::now()
            .duration_since(wall.system_time(now()))
            .unwrap_or_else(|e| e.duration());
        assert!(off < Duration::from_millis(100), "{off:?} from now");
    }
}
