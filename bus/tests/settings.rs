//! The settings and the errors: invalid settings fail before any thread starts, each call
//! fails with its own error naming what was wrong, and the handles are `Send` (the bus `Sync`).

mod common;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;

use tracebus::{BuildError, Bus, BusError, Lines, Pinning, Topic, TryBatchError, TryPublishError};

use common::{bus, topic, OpenOnDrop};

#[test]
fn invalid_settings_fail_before_any_thread_starts() {
    assert_eq!(
        Bus::builder().workers(0).build().err(),
        Some(BuildError::NoWorkers)
    );
    assert!(matches!(
        Bus::builder().capacity(0).build(),
        Err(BuildError::Capacity { capacity: 0, .. })
    ));
    assert!(matches!(
        Bus::builder()
            .pinning(Pinning::Cores(vec![100_000]))
            .build(),
        Err(BuildError::MissingCore { core: 100_000, .. })
    ));
    assert_eq!(
        Bus::builder()
            .workers(3)
            .pinning(Pinning::Cores(vec![0]))
            .build()
            .err(),
        Some(BuildError::TooFewCores {
            workers: 3,
            cores: 1
        })
    );
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    if let Some(c) = cores.first() {
        assert_eq!(
            Bus::builder()
                .workers(2)
                .pinning(Pinning::Cores(vec![c.id, c.id]))
                .build()
                .err(),
            Some(BuildError::DuplicateCore { core: c.id })
        );
    }
    let e = Bus::builder().workers(0).build().err().unwrap();
    assert!(e.to_string().contains("at least one worker"));
    // More workers than cores: a warning, not a failure.
    let many = Bus::builder().workers(64).build().unwrap();
    assert!(many.warnings().iter().any(|w| w.contains("unpinned")));
    let bus = bus(2, 8);
    let dbg = format!("{bus:?}");
    assert!(
        dbg.contains("workers: 2") && dbg.contains("capacity: 8"),
        "{dbg}"
    );
    let p = bus.publisher().unwrap();
    assert!(format!("{p:?}").contains("published: 0"));
    let t = topic(&bus, "placed");
    assert_eq!(
        bus.subscribe_on(2, &t, |_, _| {}).err(),
        Some(BusError::NoSuchWorker {
            worker: 2,
            workers: 2
        })
    );
}

#[test]
fn handles_are_send_and_the_bus_is_shareable() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<tracebus::Publisher>(); // one per producing thread
    send::<Bus>();
    sync::<Bus>(); // subscribe and make publishers from several threads
    send::<tracebus::Publisher<Lines<2>>>();
    sync::<Bus<Lines<2>>>();
    send::<Topic<u64>>(); // a handle to copy into handlers and producer threads
    sync::<Topic<u64>>();
    send::<tracebus::Report>();
}

#[test]
fn each_call_fails_with_its_own_error() {
    let bus = bus(1, 4);
    let t = topic(&bus, "errors");
    // The handler holds the ring full until `open`.
    let open = Arc::new(AtomicBool::new(false));
    let o = open.clone();
    let _release = OpenOnDrop(open.clone());
    bus.subscribe(&t, move |_, _| {
        while !o.load(Relaxed) {
            thread::yield_now();
        }
    })
    .unwrap();
    let mut p = bus.publisher().unwrap();
    // try_publish on a full ring: Full, with the payload and the worker.
    let mut accepted = 0u64;
    let full = loop {
        match p.try_publish(&t, 100 + accepted) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100, "a 4-slot ring never filled");
    };
    assert_eq!(
        full,
        TryPublishError::Full {
            payload: 100 + accepted,
            worker: 0
        }
    );
    assert!(full.is_full() && !full.is_closed());
    assert!(full.to_string().contains("full"), "{full}");
    assert_eq!(full.into_inner(), 100 + accepted);
    // try_publish_batch: a batch that does not fit now is Full; one larger than a ring is
    // TooLarge (it never fits).
    assert_eq!(
        p.try_publish_batch(&t, &[1]),
        Err(TryBatchError::Full { worker: 0 })
    );
    assert_eq!(
        p.try_publish_batch(&t, &[0; 5]),
        Err(TryBatchError::TooLarge {
            len: 5,
            capacity: 4
        })
    );
    open.store(true, Relaxed);
    let report = bus.shutdown();
    assert_eq!((report.published, report.delivered), (accepted, accepted));
    // After shutdown: publish hands the payload back, publish_batch published nothing, and the
    // non-waiting calls say Closed.
    let refused = p.publish(&t, 42).unwrap_err();
    assert!(refused.to_string().contains("shut down"), "{refused}");
    assert_eq!(refused.into_inner(), 42);
    let batch = p.publish_batch(&t, &[1, 2, 3]).unwrap_err();
    assert_eq!(batch.published(), 0);
    assert_eq!(p.try_publish(&t, 43), Err(TryPublishError::Closed(43)));
    assert!(p.try_publish(&t, 44).unwrap_err().is_closed());
    assert_eq!(p.try_publish_batch(&t, &[1]), Err(TryBatchError::Closed));
}
