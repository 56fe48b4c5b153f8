//! Import: NATS messages from a subject (wildcards allowed) into a bus topic.
//!
//! For each message, in this order: a payload of the wrong size is refused (counted, never
//! decoded); the trace header is classified ([`crate::headers::classify`]: the fast filter on
//! the sampled flag, the strict parse for sampled values only) and counted; the payload is
//! published into the bus, continuing the remote trace when there is a context. When the bus
//! is full the task waits (asynchronously, with a growing pause) and offers again: the bridge
//! does not drop what the bus would take later. Core NATS then buffers in the client (and
//! drops past its capacity, counted as `slow_consumer`); JetStream stops pulling.
//!
//! JetStream mode reads a durable pull consumer and acknowledges each message once the bus
//! has it (or once it is refused for good: a bad payload is not redelivered). A redelivery of
//! a stream sequence already published is acknowledged and dropped (`import_duplicates`).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::{HeaderMap, Subscriber};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::watch;
use tracebus_context::RootPolicy;

use crate::dedup::Recent;
use crate::headers::{classify, Incoming};
use crate::sink::{ImportSink, Offer};
use crate::stats::Stats;

/// What became of one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The bus took it (or had no subscriber for it).
    Done,
    /// Refused for good (bad payload).
    Refused,
    /// The bus is closed: stop importing.
    BusClosed,
}

/// Counts what the trace header gave.
fn count_header(stats: &Stats, incoming: &Incoming) {
    let counter = match incoming {
        Incoming::Absent => &stats.header_absent,
        Incoming::Duplicated => &stats.header_duplicated,
        Incoming::Oversized => &stats.header_oversized,
        Incoming::Unsampled => &stats.header_unsampled,
        Incoming::Malformed => &stats.header_malformed,
        Incoming::Sampled(_) => return,
    };
    Stats::bump(counter);
}

/// Pause before offering again to a full bus: a few yields, then 50 µs doubling to 2 ms.
fn full_pause(tries: u32) -> Option<Duration> {
    if tries < 4 {
        return None;
    }
    Some(Duration::from_micros(50u64 << (tries - 4).min(6)).min(Duration::from_millis(2)))
}

/// Delivers one incoming message into the bus (see the module docs). A shut-down bus is
/// logged once here, for the caller to stop its import.
pub(crate) async fn deliver(
    sink: &mut dyn ImportSink,
    payload: &[u8],
    headers: Option<&HeaderMap>,
    roots: RootPolicy,
    stats: &Stats,
) -> Outcome {
    if payload.len() != sink.payload_size() {
        Stats::bump(&stats.import_bad_payload);
        return Outcome::Refused;
    }
    let incoming = classify(headers);
    count_header(stats, &incoming);
    let parent = incoming.context();
    let mut tries = 0u32;
    loop {
        match sink.offer(payload, parent, roots) {
            Offer::Published { fanout: 0 } => {
                Stats::bump(&stats.import_no_subscribers);
                return Outcome::Done;
            }
            Offer::Published { .. } => {
                Stats::bump(&stats.imported);
                if parent.is_some() {
                    Stats::bump(&stats.imported_with_context);
                }
                return Outcome::Done;
            }
            Offer::BadPayload => {
                Stats::bump(&stats.import_bad_payload);
                return Outcome::Refused;
            }
            Offer::Closed => {
                Stats::bump(&stats.import_bus_closed);
                log::warn!("tracebus-nats: the bus is shut down; import stopped");
                return Outcome::BusClosed;
            }
            Offer::Full => {
                match full_pause(tries) {
                    None => tokio::task::yield_now().await,
                    Some(d) => tokio::time::sleep(d).await,
                }
                tries = tries.saturating_add(1);
            }
        }
    }
}

/// [`deliver`] for a message as the client hands it over (core, or a JetStream message's).
async fn deliver_message(
    sink: &mut dyn ImportSink,
    msg: &async_nats::Message,
    roots: RootPolicy,
    stats: &Stats,
) -> Outcome {
    deliver(sink, &msg.payload, msg.headers.as_ref(), roots, stats).await
}

/// Messages a core import delivers in a row once one has arrived, taking only those already
/// buffered, before it looks at the shutdown signal again.
const DRAIN: usize = 256;

/// Core NATS import: one subscription, until shutdown or a closed bus.
pub(crate) async fn run_core(
    mut sub: Subscriber,
    mut sink: Box<dyn ImportSink>,
    roots: RootPolicy,
    stats: Arc<Stats>,
    mut shutdown: watch::Receiver<bool>,
) {
    'outer: loop {
        let msg = tokio::select! {
            msg = sub.next() => msg,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let Some(msg) = msg else { break };
        // Then up to DRAIN in all that are already buffered, without arming the shutdown wait
        // for each (that select costs more than delivering a small message).
        let mut next = Some(msg);
        let mut delivered = 0;
        while let Some(msg) = next.take() {
            if deliver_message(sink.as_mut(), &msg, roots, &stats).await == Outcome::BusClosed {
                break 'outer;
            }
            delivered += 1;
            if delivered == DRAIN {
                break;
            }
            match sub.next().now_or_never() {
                Some(Some(m)) => next = Some(m),
                Some(None) => break 'outer,
                None => {}
            }
        }
    }
    let _ = sub.unsubscribe().await;
}

/// JetStream import: a durable pull consumer, acknowledged after delivery, redeliveries
/// removed, until shutdown or a closed bus.
pub(crate) async fn run_jetstream(
    consumer: PullConsumer,
    mut sink: Box<dyn ImportSink>,
    roots: RootPolicy,
    dedup_window: usize,
    stats: Arc<Stats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut recent = Recent::new(dedup_window);
    let mut errors = 0u64;
    'outer: loop {
        let mut messages = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => {
                log::warn!("tracebus-nats: JetStream consumer: {e}; trying again");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(200)) => continue,
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
            }
        };
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                _ = shutdown.wait_for(|stop| *stop) => break 'outer,
            };
            let msg = match next {
                Some(Ok(msg)) => msg,
                Some(Err(e)) => {
                    // Missed heartbeats and the like while the server is away; the stream
                    // goes on by itself.
                    errors += 1;
                    if errors == 1 || errors.is_multiple_of(100) {
                        log::warn!("tracebus-nats: JetStream messages: {e}");
                    }
                    continue;
                }
                None => continue 'outer,
            };
            let seq = match msg.info() {
                Ok(info) => Some(info.stream_sequence),
                Err(_) => None,
            };
            if seq.is_some_and(|s| recent.contains(s)) {
                Stats::bump(&stats.import_duplicates);
            } else {
                if deliver_message(sink.as_mut(), &msg, roots, &stats).await == Outcome::BusClosed {
                    // Not acknowledged: the stream keeps it for whoever imports next.
                    break 'outer;
                }
                if let Some(s) = seq {
                    recent.insert(s);
                }
            }
            if msg.ack().await.is_err() {
                Stats::bump(&stats.import_ack_failed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracebus_context::TraceContext;

    /// A bus stand-in that is full for the first `full` offers.
    struct Fake {
        full: u32,
        got: Vec<(Vec<u8>, Option<TraceContext>, RootPolicy)>,
        closed: bool,
    }

    impl ImportSink for Fake {
        fn payload_size(&self) -> usize {
            8
        }
        fn offer(&mut self, p: &[u8], parent: Option<TraceContext>, roots: RootPolicy) -> Offer {
            if self.closed {
                return Offer::Closed;
            }
            if self.full > 0 {
                self.full -= 1;
                return Offer::Full;
            }
            self.got.push((p.to_vec(), parent, roots));
            Offer::Published { fanout: 1 }
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn waits_out_a_full_bus_and_counts() {
        let stats = Stats::default();
        let mut sink = Fake {
            full: 10,
            got: Vec::new(),
            closed: false,
        };
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        let out = block_on(deliver(
            &mut sink,
            &5u64.to_le_bytes(),
            Some(&h),
            RootPolicy::ContinueOnly,
            &stats,
        ));
        assert_eq!(out, Outcome::Done);
        assert_eq!(sink.got.len(), 1);
        assert_eq!(
            sink.got[0].1.unwrap().span_id(),
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        let s = stats.snapshot();
        assert_eq!((s.imported, s.imported_with_context), (1, 1));
    }

    #[test]
    fn wrong_size_is_refused_and_closed_stops() {
        let stats = Stats::default();
        let mut sink = Fake {
            full: 0,
            got: Vec::new(),
            closed: false,
        };
        for len in [0, 7, 9, 4096] {
            let out = block_on(deliver(
                &mut sink,
                &vec![1; len],
                None,
                RootPolicy::Start,
                &stats,
            ));
            assert_eq!(out, Outcome::Refused);
        }
        assert!(sink.got.is_empty());
        assert_eq!(stats.snapshot().import_bad_payload, 4);
        assert_eq!(
            stats.snapshot().header_absent,
            0,
            "refused before the header is read"
        );
        sink.closed = true;
        let out = block_on(deliver(&mut sink, &[0; 8], None, RootPolicy::Start, &stats));
        assert_eq!(out, Outcome::BusClosed);
        assert_eq!(stats.snapshot().import_bus_closed, 1);
        assert_eq!(stats.snapshot().header_absent, 1);
    }

    #[test]
    fn full_pause_grows_and_is_capped() {
        assert_eq!(full_pause(0), None);
        assert_eq!(full_pause(4), Some(Duration::from_micros(50)));
        assert_eq!(full_pause(1000), Some(Duration::from_millis(2)));
    }
}
