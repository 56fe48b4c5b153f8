//! Asymmetric fences: a nearly free [`light`] fence on the hot path, paid for by an expensive
//! [`heavy`] fence on the rare side.
//!
//! Two of the bus's protocols are Dekker-style handshakes: a publish stores its count and
//! then loads "closed" while shutdown stores "closed" and then loads the counts (`gate.rs`); a
//! publisher commits and then loads "sleeping" while an idle worker stores "sleeping" and then
//! re-checks its rings (`wait.rs`). Each needs a store-load fence on both sides, and a `SeqCst`
//! fence costs tens of nanoseconds: more than the rest of a publish. Both handshakes have one side
//! that runs on every message and one that runs rarely (shutdown; a worker going to sleep).
//!
//! On Linux, the rare side calls `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which makes
//! every running thread of the process execute a full memory barrier before it returns
//! (threads not running pass one when they are switched out), and the hot side needs only a
//! compiler fence: the barrier the kernel forces on its CPU orders its store before its load
//! at whatever point it lands, so the two sides cannot both miss each other's store. This is
//! the scheme of Linux's RCU, folly's `asymmetricHeavyBarrier` and the `membarrier` crate.
//!
//! The process registers for expedited membarriers once ([`init`], when a bus is built). If
//! that fails (another OS, an old kernel, a seccomp filter), both sides use `SeqCst` fences:
//! correct, and as slow as before. The mode never goes back from "membarrier" to "fences", so a
//! light fence executed as a compiler fence is always answered by a real membarrier.
//!
//! Under loom both are `SeqCst` fences, the textbook pair the asymmetric one stands in for: the
//! models check the protocols, and weakening either fence makes them fail.
//!
//! Under Miri, which cannot make the `membarrier` syscall, [`init`] returns `false` without
//! trying, so Miri runs the bus on the `SeqCst` fence fallback: the pair its data-race detector
//! can check.

#[cfg(not(tracebus_loom))]
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether expedited membarriers are registered (set once, never cleared).
#[cfg(not(tracebus_loom))]
static MEMBARRIER: AtomicBool = AtomicBool::new(false);

/// Registers the process for expedited membarriers, once; returns whether the light fence is a
/// compiler fence from now on (`false`: both sides use `SeqCst` fences).
pub(crate) fn init() -> bool {
    // Not under Miri: it has no `membarrier` syscall (see the module docs).
    #[cfg(all(not(tracebus_loom), not(miri), target_os = "linux"))]
    {
        static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *DONE.get_or_init(|| {
            use rustix::thread::{membarrier, MembarrierCommand};
            let ok = membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok()
                && membarrier(MembarrierCommand::PrivateExpedited).is_ok();
            // Relaxed: the flag orders nothing; what matters is that it is set only after the
            // registration succeeded, and `heavy` then always issues a membarrier.
            MEMBARRIER.store(ok, Ordering::Relaxed);
            ok
        })
    }
    #[cfg(not(all(not(tracebus_loom), not(miri), target_os = "linux")))]
    {
        false
    }
}

/// The hot side's fence: orders this thread's earlier stores before its later loads against
/// a [`heavy`] fence on another thread.
#[inline(always)]
pub(crate) fn light() {
    #[cfg(tracebus_loom)]
    loom::sync::atomic::fence(loom::sync::atomic::Ordering::SeqCst); // loom: light
    #[cfg(not(tracebus_loom))]
    {
        if MEMBARRIER.load(Ordering::Relaxed) {
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
        } else {
            std::sync::atomic::fence(Ordering::SeqCst);
        }
    }
}

/// The rare side's fence: after it, every [`light`] fence of another thread has either
/// happened before (its earlier stores are visible here) or will happen after (its later
/// loads see this thread's earlier stores).
pub(crate) fn heavy() {
    #[cfg(tracebus_loom)]
    loom::sync::atomic::fence(loom::sync::atomic::Ordering::SeqCst); // loom: heavy
    #[cfg(not(tracebus_loom))]
    {
        std::sync::atomic::fence(Ordering::SeqCst);
        #[cfg(target_os = "linux")]
        if MEMBARRIER.load(Ordering::Relaxed) {
            use rustix::thread::{membarrier, MembarrierCommand};
            if membarrier(MembarrierCommand::PrivateExpedited).is_err() {
                // Registered, so the kernel supports it; MEMBARRIER_CMD_GLOBAL needs no
                // registration and gives the same guarantee, more slowly.
                membarrier(MembarrierCommand::Global)
                    .expect("tracebus: membarrier failed after registration succeeded");
            }
        }
    }
}

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    #[test]
    fn init_is_stable_and_fences_run() {
        let first = super::init();
        assert_eq!(super::init(), first, "the mode never changes");
        super::light();
        super::heavy();
        #[cfg(target_os = "linux")]
        eprintln!("membarrier available: {first}");
    }
}
