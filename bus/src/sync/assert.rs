//! `debug_or_loom_assert!`: `assert!` in debug and loom builds, nothing in release builds. The
//! ring's invariants are checked by every test run and every loom model (nexosim's macro of
//! the same name); the condition is still type-checked in release, and `if cfg!(..)` lets the
//! optimiser remove it there.

macro_rules! debug_or_loom_assert {
    ($($arg:tt)*) => {
        if cfg!(any(debug_assertions, tracebus_loom)) {
            assert!($($arg)*);
        }
    };
}
pub(crate) use debug_or_loom_assert;
