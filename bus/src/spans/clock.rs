//! The span clock: raw TSC ticks on the hot path, wall-clock times on the exporter thread.
//!
//! The hot path reads `quanta`'s raw counter (`rdtsc` on x86-64, `cntvct_el0` on aarch64,
//! about 7 ns; the monotonic clock where the CPU has no usable invariant TSC) and stores the
//! number as is. Turning ticks into time happens off the hot path, in [`WallClock`]: at
//! pipeline start it reads the raw counter on both sides of one `SystemTime::now()` and keeps
//! the pair (midpoint tick, wall time); a tick `t` is then `wall + scale(t - tick)`, with
//! quanta's calibrated tick-to-nanosecond scale (a multiply and a shift). Calibration is done
//! once, as fastrace and minstant do: the wall clock may later be stepped (NTP) and the spans
//! keep the time base they started with, which keeps every span of a run consistent with the
//! others.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// Raw clock ticks, as [`now`] returns them. Only differences, converted by [`WallClock`],
/// mean anything.
pub(crate) type Ticks = u64;

/// The process's clock. `quanta::Clock::new` calibrates TSC against the monotonic clock once
/// per process (a few milliseconds); every clone shares that calibration, so ticks from any
/// thread are comparable.
static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

/// The process's clock, made (and calibrated) on first use.
#[inline]
fn clock() -> &'static quanta::Clock {
    CLOCK.get_or_init(quanta::Clock::new)
}

/// The current time in raw ticks: one counter read, no scaling, no syscall where the CPU has
/// an invariant TSC. Call [`WallClock::calibrate`] (the pipeline does, at start) before the
/// first hot-path call so that the one-time calibration does not land on a publish.
#[inline]
pub(crate) fn now() -> Ticks {
    clock().raw()
}

/// Converts ticks to nanoseconds and wall-clock times: one calibration, made at pipeline start.
#[derive(Debug, Clone)]
pub(crate) struct WallClock {
    /// The process's clock (a copy: no `OnceLock` check per conversion).
    clock: quanta::Clock,
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

#[cfg(all(test, not(loom)))]
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
}
