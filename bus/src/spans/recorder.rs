//! `Recorder`: the hot-path end of the span pipeline, one per endpoint or worker.
//!
//! A recorder is the single producer of one tracebus SPSC ring of [`SpanRecord`]s, whose
//! consumer the exporter thread drains. `record` is one `try_push`: a cached-index check, an
//! 80-byte copy into the ring's cell, a `Release` store of the cell's stamp and one of `tail`;
//! no lock, no allocation, no syscall, no wait. A full ring (the exporter is behind or
//! blocked) drops the record and counts it: the count lives in the recorder and is published
//! to the pipeline through an `Arc`'d atomic that only this recorder writes, with a plain
//! `Relaxed` store (no read-modify-write, and no load: the recorder keeps its own copy).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::record::SpanRecord;
use crate::ring::Producer;

/// Records finished spans into its ring; owned by one endpoint or worker (`Send`, not `Sync`).
#[derive(Debug)]
pub(crate) struct Recorder {
    /// The producer side of this recorder's ring; the exporter thread holds the consumer.
    ring: Producer<SpanRecord>,
    /// Records dropped because the ring was full, as this recorder counts them; `published`
    /// always holds this value after `record` returns.
    dropped: u64,
    /// `dropped`, for the pipeline to read at any time (with `Relaxed`: it is a count and
    /// publishes nothing else). Written only by this recorder.
    published: Arc<AtomicU64>,
}

impl Recorder {
    /// A recorder pushing into `ring`, publishing its drop count in `published` (which must
    /// start at 0 and have no other writer).
    pub(crate) fn new(ring: Producer<SpanRecord>, published: Arc<AtomicU64>) -> Recorder {
        Recorder {
            ring,
            dropped: 0,
            published,
        }
    }

    /// Records one finished span, or drops and counts it if the ring is full. Never waits,
    /// never allocates.
    #[inline]
    pub(crate) fn record(&mut self, span: SpanRecord) {
        if self.ring.try_push(span).is_err() {
            self.count_drop();
        }
    }

    #[cold]
    #[inline(never)]
    fn count_drop(&mut self) {
        self.dropped += 1;
        // Relaxed: a count only; the pipeline sums it and nothing is published through it.
        // A store, not a fetch_add: this recorder is the only writer.
        self.published.store(self.dropped, Ordering::Relaxed);
    }

    /// Records this recorder has dropped so far (for tests and benchmarks).
    #[cfg(any(test, feature = "test-util"))]
    #[inline]
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    #[cfg(test)]
    /// Whether the exporter has gone away (the pipeline was shut down): records pushed from
    /// now on are never exported.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.ring.is_closed()
    }
}

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    use super::*;
    use tracebus_context::TraceContext;

    fn record(i: u64) -> SpanRecord {
        let ctx = TraceContext::new([1; 16], [2; 8], 1).unwrap();
        SpanRecord::publish(&ctx, None, 0, i, i + 1)
    }

    #[test]
    fn a_full_ring_drops_and_counts() {
        let (tx, mut rx) = crate::ring::spsc(4).unwrap();
        let count = Arc::new(AtomicU64::new(0));
        let mut r = Recorder::new(tx, count.clone());
        for i in 0..10 {
            r.record(record(i));
        }
        assert_eq!(r.dropped(), 6);
        assert_eq!(count.load(Ordering::Relaxed), 6);
        // The first four were kept, in order.
        let kept: Vec<u64> = std::iter::from_fn(|| rx.try_pop())
            .map(|s| s.start)
            .collect();
        assert_eq!(kept, [0, 1, 2, 3]);
        r.record(record(10));
        assert_eq!(rx.try_pop().map(|s| s.start), Some(10));
        assert!(!r.is_closed());
        drop(rx);
        assert!(r.is_closed());
    }
}
