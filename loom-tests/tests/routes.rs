//! loom model of the publish path's fast entries (`routing.rs`): a tracing switch flipped
//! while a publisher re-syncs its route cache is never missed by a publish that comes after
//! the flip. The switch and the epoch are the bus's own (`TracingControl::set_enabled`,
//! `RouteCache::refresh`), reached through `tracebus::loom_support`.
//!
//! Built only with `--cfg tracebus_loom` (see `runtime.rs`).
#![cfg(tracebus_loom)]

use loom::thread;
use tracebus::loom_support::{tracing_control, Routes};
use tracebus_loom_tests::model;

/// Topic 0 has one subscriber, on worker 0: with tracing off, its publishes take the fast
/// entry. A second thread switches tracing on while the publisher re-syncs; once the switch
/// happened before a publish (here: the join), that publish must not take the fast entry, or
/// it would skip tracing until some later route change. Fails if the switch's epoch bump is
/// `Relaxed` or the re-sync's epoch load is: the re-sync could then record the new epoch with
/// the old switch, and no later check would look again.
#[test]
fn tracing_switch_reaches_the_fast_path() {
    model(|| {
        let routes = Routes::default();
        let control = tracing_control(&routes);
        routes.update(0, 0, true);
        let untraced = || !control.is_enabled();
        let mut cache = routes.cache(untraced);
        assert_eq!(cache.fast(0), Some((0, 1)), "tracing off: the fast entry");
        let switch = control.clone();
        let flip = thread::spawn(move || switch.set_enabled(true));
        cache.refresh(&routes, untraced); // a publish racing the switch: either is fine
        flip.join().unwrap();
        cache.refresh(&routes, untraced); // a publish after it
        assert_eq!(
            cache.fast(0),
            None,
            "a publish after the switch took the fast entry"
        );
    });
}
