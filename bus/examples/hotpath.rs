//! The common publish and the worker's delivery, in a shape callgrind can count
//! (`scripts/callgrind.sh` runs it): one publisher, one worker, fanout 1, untraced, default
//! one-line slots, rings of 4,096.
//!
//! Each round holds the worker inside a handler (blocked on a channel, so it takes no CPU and
//! touches no line the publisher writes), publishes [`ROUND`] messages from `publish_round`
//! (kept out of line, so callgrind can collect it alone: instructions per publish), then lets
//! the worker deliver them (the worker thread's instructions over all rounds, divided by the
//! messages, are an upper bound of instructions per delivery: they include the polls of an
//! idle worker between rounds, which the wait strategy keeps to a few hundred per round).
//!
//! Instruction counts, not time: callgrind's counts are the same on a busy machine.
//!
//! `cargo run --release -p tracebus --example hotpath -- ROUNDS` (default 20).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use tracebus::{Bus, Pinning, Publisher, Topic, WaitStrategy};

/// Messages per round (fits an empty ring of 4,096 with the round's holding message).
const ROUND: u64 = 4_000;

/// One round of publishes: what callgrind counts per publish.
#[inline(never)]
fn publish_round(p: &mut Publisher, t: &Topic<u64>) {
    for i in 0..ROUND {
        p.try_publish(t, i).expect("room for a round");
    }
}

fn main() {
    let rounds: u64 = std::env::args()
        .nth(1)
        .map_or(20, |s| s.parse().expect("ROUNDS is a number"));
    let bus = Bus::builder()
        .workers(1)
        .capacity(4096)
        .pinning(Pinning::Off)
        .wait_strategy(WaitStrategy::SpinThenPark)
        .build()
        .expect("valid settings");
    let t = bus.topic::<u64>("t").expect("a new topic");
    let hold = bus.topic::<u64>("hold").expect("a new topic");
    let delivered = Arc::new(AtomicU64::new(0));
    let d = delivered.clone();
    bus.subscribe(&t, move |m, _| {
        black_box(m.payload());
        d.fetch_add(1, Ordering::Relaxed);
    })
    .expect("subscribed");
    let (release, wait) = mpsc::channel::<()>();
    let wait = Mutex::new(wait);
    let (entered_tx, entered) = mpsc::channel::<()>();
    bus.subscribe(&hold, move |_, _| {
        entered_tx.send(()).expect("main waits");
        wait.lock()
            .expect("one holder")
            .recv()
            .expect("main releases");
    })
    .expect("subscribed");
    let mut p = bus.publisher().expect("a publisher");
    for round in 1..=rounds {
        p.try_publish(&hold, 0).expect("room");
        entered.recv().expect("the worker holds");
        publish_round(&mut p, &t);
        release.send(()).expect("the worker waits");
        while delivered.load(Ordering::Relaxed) < round * ROUND {
            std::thread::yield_now();
        }
    }
    drop(p);
    let report = bus.shutdown();
    assert_eq!(report.delivered, rounds * (ROUND + 1));
    println!(
        "{} rounds of {ROUND}: {} messages delivered",
        rounds, report.delivered
    );
}
