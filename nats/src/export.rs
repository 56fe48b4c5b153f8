//! Export: bus messages out to a NATS subject.
//!
//! Two halves. The bus side is a [`Handoff`]: a bus handler calls [`Handoff::offer`] on its
//! worker, which copies the payload's bytes into a bounded queue (`crate::handoff`: one
//! uncontended lock, a wake-up only when the task waits) and returns; it never waits, and when
//! the queue is full the message is dropped and counted (`export_dropped_full`). The NATS side
//! is [`run`], one task per export on the bridge's runtime, which takes everything queued at
//! once and publishes it: with a `traceparent` when sampled (and a `send` span when the bridge
//! has a tracer), with none when not; in JetStream mode with a `Nats-Msg-Id` and until the
//! stream acknowledges it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::{Client, HeaderMap, Subject};
use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use opentelemetry_sdk::trace::SdkTracer;
use tokio::sync::watch;
use tracebus_context::TraceContext;

use crate::handoff::{self, Refused};
use crate::headers;
use crate::span::SendSpan;
use crate::stats::Stats;

/// Payloads up to this many bytes cross the hand-off inline, without an allocation on the
/// bus worker (the `Bytes` the client needs is made on the bridge's thread, which also frees
/// it: no allocator traffic between threads).
const INLINE: usize = 32;

/// A payload's bytes on their way from a bus worker to NATS.
#[derive(Debug)]
enum Payload {
    /// Up to [`INLINE`] bytes, in place: `len` of `bytes` are the payload.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// A larger payload, copied to the heap by the bus worker.
    Heap(Bytes),
}

impl Payload {
    /// A copy of `payload`.
    #[inline]
    fn copy(payload: &[u8]) -> Payload {
        match u8::try_from(payload.len()) {
            Ok(len) if payload.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..payload.len()].copy_from_slice(payload);
                Payload::Inline { len, bytes }
            }
            _ => Payload::Heap(Bytes::copy_from_slice(payload)),
        }
    }

    /// The bytes, as the client takes them.
    #[inline]
    fn into_bytes(self) -> Bytes {
        match self {
            Payload::Inline { len, bytes } => Bytes::copy_from_slice(&bytes[..usize::from(len)]),
            Payload::Heap(b) => b,
        }
    }
}

/// One message on its way from a bus worker to NATS.
#[derive(Debug)]
pub(crate) struct Outgoing {
    payload: Payload,
    cx: Option<TraceContext>,
}

/// The bus side of an export: cheap to clone, `Send`, never blocks. A bus handler calls
/// [`Handoff::offer`] for each message; [`crate::Bridge::export_bytes`] hands one out for
/// callers that are not a bus handler.
#[derive(Debug, Clone)]
pub struct Handoff {
    tx: handoff::Sender<Outgoing>,
    stats: Arc<Stats>,
}

impl Handoff {
    /// Queues `payload` (copied) with its context for publishing; sampled contexts only travel.
    /// Returns whether it was queued; a full or closed queue drops it and counts why.
    pub fn offer(&self, payload: &[u8], cx: Option<TraceContext>) -> bool {
        let out = Outgoing {
            payload: Payload::copy(payload),
            cx: cx.filter(|cx| cx.is_sampled()),
        };
        match self.tx.offer(out) {
            Ok(()) => true,
            Err(Refused::Full) => {
                Stats::bump(&self.stats.export_dropped_full);
                false
            }
            Err(Refused::Closed) => {
                Stats::bump(&self.stats.export_dropped_closed);
                false
            }
        }
    }
}

/// JetStream settings of an export task.
pub(crate) struct JsExport {
    pub(crate) context: async_nats::jetstream::Context,
    pub(crate) max_in_flight: usize,
    /// Prefix of every `Nats-Msg-Id` of this export (unique per bridge and export).
    pub(crate) msg_id_prefix: String,
}

/// Everything an export task needs.
pub(crate) struct ExportTask {
    pub(crate) subject: Subject,
    pub(crate) rx: handoff::Receiver<Outgoing>,
    pub(crate) client: Client,
    pub(crate) jetstream: Option<JsExport>,
    pub(crate) tracer: Option<SdkTracer>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) unfinished: Arc<AtomicU64>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// A new export queue of `capacity` and its bus-side handle, and the count of messages it
/// accepted that are not yet published or given up.
pub(crate) fn queue(
    capacity: usize,
    stats: Arc<Stats>,
) -> (Handoff, handoff::Receiver<Outgoing>, Arc<AtomicU64>) {
    let unfinished = Arc::new(AtomicU64::new(0));
    let (tx, rx) = handoff::channel(capacity, unfinished.clone());
    (Handoff { tx, stats }, rx, unfinished)
}

impl ExportTask {
    /// Starts the `send` span of a sampled message (when there is a tracer) and returns the
    /// context its `traceparent` carries.
    fn trace(&self, cx: Option<TraceContext>) -> (Option<SendSpan>, Option<TraceContext>) {
        match (cx, &self.tracer) {
            (Some(cx), Some(tracer)) => {
                let (span, sent) = SendSpan::start(tracer, self.subject.as_str(), &cx);
                (Some(span), Some(sent))
            }
            (cx, _) => (None, cx),
        }
    }

    /// One message is done (published or given up).
    fn finish(&self) {
        self.unfinished.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs an export until the bridge shuts down and its queue is drained.
pub(crate) async fn run(task: ExportTask) {
    if task.jetstream.is_some() {
        run_jetstream(task).await;
    } else {
        run_core(task).await;
    }
}

/// Waits for the shutdown signal (or for the bridge to be dropped).
async fn shutdown_signal(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Core NATS: publish each message as it comes; at most once.
async fn run_core(mut task: ExportTask) {
    let mut shutdown = task.shutdown.clone();
    let mut stopping = false;
    let mut batch = VecDeque::new();
    loop {
        // Everything queued at once (the queue's capacity bounds it): one lock and at most one
        // wake-up per batch.
        let n = tokio::select! {
            n = task.rx.recv_many(&mut batch, usize::MAX) => n,
            () = shutdown_signal(&mut shutdown), if !stopping => {
                // Refuse new messages, then publish what is queued.
                task.rx.close();
                stopping = true;
                continue;
            }
        };
        if n == 0 {
            break;
        }
        let mut exported = 0u64;
        for out in batch.drain(..) {
            exported += u64::from(publish_core(&task, out).await);
        }
        // Once per batch: the counters' cache lines are shared with the bus worker's offers
        // and the imports' counts.
        if exported > 0 {
            task.stats.exported.fetch_add(exported, Ordering::Relaxed);
        }
        task.unfinished.fetch_sub(n as u64, Ordering::Relaxed);
    }
    if let Err(e) = task.client.flush().await {
        log::warn!(
            "tracebus-nats: flush after export to {} failed: {e}",
            task.subject
        );
    }
}

/// Publishes one message on core NATS; returns whether it was published (the caller counts
/// `exported` and the message finished, once per batch). An untraced message is the client's
/// `publish` alone: no span, no headers, no shared counter.
async fn publish_core(task: &ExportTask, out: Outgoing) -> bool {
    let (span, cx) = task.trace(out.cx);
    let result = match headers::outgoing(cx.as_ref(), None) {
        Some(h) => {
            task.client
                .publish_with_headers(task.subject.clone(), h, out.payload.into_bytes())
                .await
        }
        None => {
            task.client
                .publish(task.subject.clone(), out.payload.into_bytes())
                .await
        }
    };
    match result {
        Ok(()) => {
            if cx.is_some() {
                Stats::bump(&task.stats.exported_sampled);
            }
            if let Some(span) = span {
                span.end(None);
            }
            true
        }
        Err(e) => {
            Stats::bump(&task.stats.export_failed);
            log::warn!("tracebus-nats: publish to {} failed: {e}", task.subject);
            if let Some(span) = span {
                span.end(Some(e.to_string()));
            }
            false
        }
    }
}

/// A JetStream publish awaiting its acknowledgement.
struct Pending {
    payload: Bytes,
    headers: HeaderMap,
    sampled: bool,
    span: Option<SendSpan>,
    attempts: u32,
}

type AckResult = Result<async_nats::jetstream::publish::PublishAck, String>;
type InFlight = Pin<Box<dyn Future<Output = (Pending, AckResult)> + Send>>;

/// Sends `p` (after `delay`) and waits for its acknowledgement.
fn send(
    js: async_nats::jetstream::Context,
    subject: Subject,
    p: Pending,
    delay: Duration,
) -> InFlight {
    Box::pin(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let msg = PublishMessage::build()
            .payload(p.payload.clone())
            .headers(p.headers.clone());
        let ack: Result<PublishAckFuture, _> = js.send_publish(subject, msg).await;
        let result = match ack {
            Ok(ack) => ack.await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        (p, result)
    })
}

/// Delay before attempt `attempts + 1` of a publish that failed: 10 ms doubling to 1 s.
fn retry_delay(attempts: u32) -> Duration {
    Duration::from_millis(10u64 << attempts.min(7)).min(Duration::from_secs(1))
}

/// JetStream: publish with `Nats-Msg-Id`, keep each message until the stream acknowledges it.
async fn run_jetstream(mut task: ExportTask) {
    let Some(js) = task.jetstream.take() else {
        return;
    };
    let mut shutdown = task.shutdown.clone();
    let mut stopping = false;
    let mut open = true;
    let mut seq: u64 = 0;
    let mut in_flight: FuturesUnordered<InFlight> = FuturesUnordered::new();
    loop {
        tokio::select! {
            Some((mut p, result)) = in_flight.next(), if !in_flight.is_empty() => match result {
                Ok(ack) => {
                    if ack.duplicate {
                        Stats::bump(&task.stats.export_duplicates);
                    }
                    Stats::bump(&task.stats.exported);
                    if p.sampled {
                        Stats::bump(&task.stats.exported_sampled);
                    }
                    if let Some(span) = p.span.take() {
                        span.end(None);
                    }
                    task.finish();
                }
                Err(e) => {
                    if p.attempts == 1 || p.attempts.is_multiple_of(50) {
                        log::warn!(
                            "tracebus-nats: JetStream publish to {} not acknowledged \
                             (attempt {}): {e}; sending it again",
                            task.subject, p.attempts
                        );
                    }
                    Stats::bump(&task.stats.export_retries);
                    let delay = retry_delay(p.attempts);
                    p.attempts += 1;
                    in_flight.push(send(js.context.clone(), task.subject.clone(), p, delay));
                }
            },
            out = task.rx.recv(), if open && in_flight.len() < js.max_in_flight => match out {
                Some(out) => {
                    seq += 1;
                    let (span, cx) = task.trace(out.cx);
                    let id = format!("{}-{seq}", js.msg_id_prefix);
                    let headers = headers::outgoing(cx.as_ref(), Some(&id)).unwrap_or_default();
                    let p = Pending {
                        payload: out.payload.into_bytes(),
                        headers,
                        sampled: cx.is_some(),
                        span,
                        attempts: 1,
                    };
                    in_flight.push(send(js.context.clone(), task.subject.clone(), p, Duration::ZERO));
                }
                None => open = false,
            },
            () = shutdown_signal(&mut shutdown), if !stopping => {
                task.rx.close();
                stopping = true;
            }
            else => break,
        }
        if !open && in_flight.is_empty() && stopping {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_never_waits_and_counts_drops() {
        let stats = Arc::new(Stats::default());
        let (handoff, mut rx, unfinished) = queue(2, stats.clone());
        let cx = TraceContext::new([1; 16], [2; 8], 0).unwrap();
        assert!(handoff.offer(&7u64.to_le_bytes(), Some(cx)));
        assert!(handoff.offer(&8u64.to_le_bytes(), None));
        assert!(!handoff.offer(&9u64.to_le_bytes(), None), "full: dropped");
        assert_eq!(stats.snapshot().export_dropped_full, 1);
        assert_eq!(unfinished.load(Ordering::Relaxed), 2);
        let mut batch = VecDeque::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(rx.recv_many(&mut batch, 1)), 1);
        let first = batch.pop_front().unwrap();
        assert_eq!(&first.payload.into_bytes()[..], &7u64.to_le_bytes());
        assert_eq!(first.cx, None, "an unsampled context does not travel");
        rx.close();
        assert_eq!(rt.block_on(rx.recv_many(&mut batch, usize::MAX)), 1);
        assert_eq!(rt.block_on(rx.recv_many(&mut batch, usize::MAX)), 0);
        assert!(!handoff.offer(&10u64.to_le_bytes(), None));
        assert_eq!(stats.snapshot().export_dropped_closed, 1);
    }

    #[test]
    fn payloads_cross_whole_inline_or_not() {
        for len in [0, 1, 8, INLINE, INLINE + 1, 4096] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let p = Payload::copy(&bytes);
            assert_eq!(matches!(p, Payload::Inline { .. }), len <= INLINE);
            assert_eq!(&p.into_bytes()[..], &bytes[..]);
        }
    }

    #[test]
    fn retry_delay_is_bounded() {
        assert_eq!(retry_delay(0), Duration::from_millis(10));
        assert_eq!(retry_delay(3), Duration::from_millis(80));
        assert_eq!(retry_delay(u32::MAX), Duration::from_secs(1));
    }
}
