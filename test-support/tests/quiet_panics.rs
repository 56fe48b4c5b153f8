//! `quiet_injected_panics` silences the registered prefixes and passes every other panic on.

use std::panic::catch_unwind;
use std::sync::{Arc, Mutex};

use tracebus_test_support::quiet_injected_panics;

// One test function: it replaces the process's panic hook.
#[test]
fn only_injected_panics_are_silenced() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s = seen.clone();
    // The "previous" hook: records instead of printing.
    std::panic::set_hook(Box::new(move |info| {
        let p = info.payload();
        let m = p
            .downcast_ref::<&str>()
            .map(|m| m.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        s.lock().unwrap().push(m);
    }));
    quiet_injected_panics("test: injected");
    quiet_injected_panics("second: injected");
    quiet_injected_panics("test: injected"); // again: harmless
    let panics: [fn(); 5] = [
        || panic!("test: injected literal"),
        || panic!("test: injected {}", 1),
        || panic!("second: injected {}", 2),
        || panic!("a real failure {}", 3),
        || panic!("real: test: injected is not a prefix here"),
    ];
    for f in panics {
        assert!(catch_unwind(f).is_err());
    }
    // The same from another thread.
    assert!(std::thread::spawn(|| panic!("test: injected on a thread"))
        .join()
        .is_err());
    let _ = std::panic::take_hook();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "a real failure 3",
            "real: test: injected is not a prefix here"
        ]
    );
}
