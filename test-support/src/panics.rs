//! [`quiet_injected_panics`]: silence the panics a test injects on purpose, and only those.
//!
//! Tests of panic isolation make handlers panic by the thousand. The default panic hook prints
//! each one (with a backtrace note) before the bus catches it, which buries any real failure
//! in noise. Replacing the hook with one that prints nothing would bury real failures too,
//! including those of other tests running in the same binary at the same time. So the hook
//! installed here silences a panic only when its message starts with a prefix a test
//! registered, and hands every other panic to the hook that was installed before it (the
//! default one prints it, and the test harness shows it with the failing test).

use std::panic::PanicHookInfo;
use std::sync::{Mutex, Once, PoisonError};

/// The registered prefixes.
static PREFIXES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// Silences, for the rest of the process and on every thread, panics whose message starts with
/// `prefix`; every other panic still reaches the previous hook. Calling it again (from several
/// tests, or with the same prefix) is fine: the hook is installed once and the prefixes add up.
///
/// ```
/// tracebus_test_support::quiet_injected_panics("test: injected");
/// let caught = std::panic::catch_unwind(|| panic!("test: injected panic {}", 7));
/// assert!(caught.is_err()); // and nothing was printed
/// ```
pub fn quiet_injected_panics(prefix: &'static str) {
    {
        let mut prefixes = PREFIXES.lock().unwrap_or_else(PoisonError::into_inner);
        if !prefixes.contains(&prefix) {
            prefixes.push(prefix);
        }
    }
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !is_injected(info) {
                previous(info);
            }
        }));
    });
}

/// Whether the panic's message starts with a registered prefix.
fn is_injected(info: &PanicHookInfo<'_>) -> bool {
    let payload = info.payload();
    let Some(message) = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
    else {
        return false;
    };
    let prefixes = PREFIXES.lock().unwrap_or_else(PoisonError::into_inner);
    prefixes.iter().any(|p| message.starts_with(p))
}
