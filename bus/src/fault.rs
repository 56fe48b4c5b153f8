//! Fault injection for tests (with the `test-util` feature, in debug builds): make the next
//! publish on this thread panic after its messages are committed, counted and its span
//! recorded (the worst place: accepted, yet the caller sees a panic). No user code runs inside
//! a publish (spans are exported on a background thread), so the tests that check the bus
//! survives a panic there (the drop watchdog, the soak test) need this to cause one. Release
//! builds, and builds without the feature, have no check at all.

use std::cell::Cell;

thread_local! {
    static PANIC_NEXT_PUBLISH: Cell<bool> = const { Cell::new(false) };
}

/// Makes the next publish on this thread that commits messages (one with subscribers) panic
/// after committing them (debug builds only).
#[doc(hidden)]
pub fn panic_inside_next_publish() {
    PANIC_NEXT_PUBLISH.with(|p| p.set(true));
}

/// Disarms [`panic_inside_next_publish`] if no publish has hit it yet.
#[doc(hidden)]
pub fn disarm() {
    PANIC_NEXT_PUBLISH.with(|p| p.set(false));
}

/// Called by a publish after its commit: panics once if armed (debug builds only: release
/// builds do not call it).
#[cfg(debug_assertions)]
#[inline]
pub(crate) fn hit() {
    if PANIC_NEXT_PUBLISH.with(|p| p.replace(false)) {
        panic!("tracebus fault injection: a panic inside a publish");
    }
}
