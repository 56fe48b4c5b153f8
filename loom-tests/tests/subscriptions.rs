//! loom model of how subscription changes reach publishers and workers while messages flow,
//! on the real bus (one worker, a 2-slot ring, park waits): a subscriber that stays gets every
//! message, and nothing reaches a subscriber after its `unsubscribe` returned.

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;
use tracebus::{Bus, Pinning, TryPublishError, WaitStrategy};
use tracebus_loom_tests::model;

#[test]
fn unsubscribe_while_publishing() {
    model(|| {
        let bus = Bus::builder()
            .workers(1)
            .capacity(2)
            .pinning(Pinning::Off)
            .wait_strategy(WaitStrategy::SpinThenPark)
            .build()
            .unwrap();
        let topic = bus.topic::<u64>("t").unwrap();
        let stayed = Arc::new(AtomicUsize::new(0));
        let s = stayed.clone();
        bus.subscribe_on(0, &topic, move |_, _| {
            s.fetch_add(1, SeqCst);
        })
        .unwrap();
        let gone = Arc::new(AtomicBool::new(false));
        let late = Arc::new(AtomicUsize::new(0));
        let (g, l) = (gone.clone(), late.clone());
        let id = bus
            .subscribe_on(0, &topic, move |_, _| {
                if g.load(SeqCst) {
                    l.fetch_add(1, SeqCst);
                }
            })
            .unwrap();
        let mut p = bus.publisher().unwrap();
        let publisher = thread::spawn(move || {
            for i in 0..2 {
                let mut v = i;
                loop {
                    match p.try_publish(&topic, v) {
                        Ok(sent) => {
                            assert!(sent.fanout >= 1);
                            break;
                        }
                        Err(TryPublishError::Full { payload, .. }) => {
                            v = payload;
                            thread::yield_now();
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        });
        bus.unsubscribe(id).unwrap();
        gone.store(true, SeqCst);
        publisher.join().unwrap();
        let report = bus.shutdown();
        assert_eq!(
            stayed.load(SeqCst),
            2,
            "the subscriber that stayed got every message"
        );
        assert_eq!(late.load(SeqCst), 0, "delivered after unsubscribe returned");
        assert_eq!(report.published, 2);
    });
}
