//! `BusBuilder::resident_rings`: the first lap through a ring takes no page faults on the
//! publishing thread (Linux: the thread's minor-fault count from `/proc/thread-self/stat`).
#![cfg(target_os = "linux")]

use tracebus::{Bus, Pinning, WaitStrategy};

/// Minor page faults this thread has taken.
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("a Linux /proc");
    // After the command name in parentheses (which may hold spaces): state, ppid, pgrp,
    // session, tty_nr, tpgid, flags, minflt.
    let rest = &stat[stat.rfind(')').expect("the command name") + 1..];
    rest.split_whitespace()
        .nth(7)
        .and_then(|f| f.parse().ok())
        .expect("minflt")
}

/// Minor faults the publishing thread takes over a ring's first lap (4,096 one-line slots:
/// 64 pages of 4 KiB), the rings made resident or not.
fn faults_on_first_lap(resident: bool) -> u64 {
    let bus = Bus::builder()
        .workers(1)
        .capacity(4096)
        .pinning(Pinning::Off)
        .wait_strategy(WaitStrategy::SpinThenYield)
        .resident_rings(resident)
        .build()
        .expect("valid settings");
    let t = bus.topic::<u64>("t").expect("a topic");
    bus.subscribe(&t, |_, _| {}).expect("subscribed");
    // Makes this publisher's ring to the worker (resident: every page written here, now).
    let mut p = bus.publisher().expect("a publisher");
    p.publish(&t, 0).expect("published"); // whatever a first publish sets up, not counted
    let before = minor_faults();
    for i in 1..4096u64 {
        p.publish(&t, i).expect("published");
    }
    let faults = minor_faults() - before;
    drop(p);
    let report = bus.shutdown();
    assert_eq!(report.delivered, 4096);
    faults
}

#[test]
fn resident_rings_take_no_page_fault_on_the_first_lap() {
    let lazy = faults_on_first_lap(false);
    let resident = faults_on_first_lap(true);
    eprintln!("minor faults over the first lap: lazy {lazy}, resident {resident}");
    // Lazily mapped, the publisher's first write into each of the 63 pages after the first
    // faults (once, or twice when its read of the cell mapped the zero page first).
    assert!(
        lazy >= 32,
        "{lazy} faults on a lazily mapped ring's first lap"
    );
    assert!(
        resident <= 4,
        "{resident} faults on a resident ring's first lap"
    );
}
