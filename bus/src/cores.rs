//! Which cores workers may be pinned to.
//!
//! `core_affinity::get_core_ids` lists the *calling thread's* affinity mask, so a thread that
//! already pinned itself to core 0 would see a one-core machine and could not build a bus
//! pinned to core 1, although the new worker threads may run anywhere the process may. The
//! machine's online cores (`/sys/devices/system/cpu/online` on Linux) are the list to check a
//! pinning request against; the calling thread's mask is the fallback where that file cannot be
//! read, and is always included.

/// The cores a worker may be pinned to, ascending: the online cores, with the calling thread's
/// affinity mask added (and used alone where the online list cannot be read).
pub(crate) fn usable() -> Vec<usize> {
    let mut cores = calling_thread();
    cores.extend(online().unwrap_or_default());
    cores.sort_unstable();
    cores.dedup();
    cores
}

/// The machine's online cores, or `None` where they cannot be read. Under Miri it is always
/// `None`: Miri's isolation refuses file access (and its CPUs are the ones it simulates, which
/// the calling thread's mask already lists).
fn online() -> Option<Vec<usize>> {
    if cfg!(miri) {
        return None;
    }
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_list(&s))
}

/// The calling thread's affinity mask (empty where it cannot be read).
pub(crate) fn calling_thread() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// Parses a kernel CPU list such as `0-3,8,10-11` (`None` if malformed).
fn parse_list(s: &str) -> Option<Vec<usize>> {
    let mut cores = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b - a > 1 << 16 {
                    return None;
                }
                cores.extend(a..=b);
            }
            None => cores.push(part.parse().ok()?),
        }
    }
    Some(cores)
}

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    use super::{parse_list, usable};

    #[test]
    fn parses_kernel_cpu_lists() {
        assert_eq!(parse_list("0-1\n"), Some(vec![0, 1]));
        assert_eq!(parse_list("0-2,8,10-11"), Some(vec![0, 1, 2, 8, 10, 11]));
        assert_eq!(parse_list("5"), Some(vec![5]));
        assert_eq!(parse_list("3-1"), None);
        assert_eq!(parse_list("x"), None);
    }

    #[test]
    fn a_pinned_caller_still_sees_every_online_core() {
        let before = usable();
        let Some(&first) = before.first() else {
            return; // no affinity support here
        };
        // Pin a fresh thread (not the test harness's) to one core and ask from there.
        let seen = std::thread::spawn(move || {
            core_affinity::set_for_current(core_affinity::CoreId { id: first });
            usable()
        })
        .join()
        .expect("thread");
        assert_eq!(seen, before, "pinning the caller does not shrink the list");
    }

    #[test]
    fn a_pinned_caller_can_build_a_bus_pinned_elsewhere() {
        let cores = usable();
        let (Some(&first), Some(&last)) = (cores.first(), cores.last()) else {
            return;
        };
        if first == last {
            return; // one core: nothing to show
        }
        let built = std::thread::spawn(move || {
            core_affinity::set_for_current(core_affinity::CoreId { id: first });
            crate::Bus::builder()
                .workers(1)
                .pinning(crate::Pinning::Cores(vec![last]))
                .build()
                .map(|bus| bus.shutdown().workers[0].pinned)
        })
        .join()
        .expect("thread");
        assert_eq!(
            built,
            Ok(true),
            "built, and the worker pinned to core {last}"
        );
    }
}
