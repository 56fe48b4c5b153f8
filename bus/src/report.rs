//! What a bus tells about itself: [`Stats`] while it runs ([`crate::Bus::stats`]) and
//! [`Report`] when it shuts down ([`crate::Bus::shutdown`]).

use crate::spans::SpanCounts;
use crate::worker::WorkerReport;

/// Counts from a running bus ([`crate::Bus::stats`]): loads of counters each endpoint and
/// worker keeps anyway, so reading them costs the data path nothing. The counts are read one
/// after the other while messages flow, so they need not add up exactly at any instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Messages accepted with at least one subscriber (external and onward publishes; each
    /// once, whatever its fanout).
    pub published: u64,
    /// Handler calls that returned (counted after each worker's pass over its rings).
    pub delivered: u64,
    /// Handler calls that panicked and were caught.
    pub handler_panics: u64,
    /// Onward publishes (from handlers) refused because a ring was full, or a batch was larger
    /// than a ring.
    pub refused_full: u64,
    /// Onward publishes refused because the bus was shutting down.
    pub refused_closed: u64,
    /// Message copies accepted and not handled yet: in a ring, or in a pass that has not ended.
    pub queued: u64,
    /// What the span pipeline did so far (all zero for a bus that never traced).
    pub spans: SpanCounts,
}

/// Counts from a [`crate::Bus::shutdown`].
///
/// How the counts add up. Each accepted message is written once to every worker that has a
/// subscriber of its topic (a *copy*); a worker hands each copy to all its local subscribers.
/// After shutdown:
///
/// - copies accepted = the workers' [`WorkerReport::messages`] (copies handled) + [`Report::lost`];
/// - every handler call on a handled copy is in [`Report::delivered`] or
///   [`Report::handler_panics`];
/// - every onward publish a handler made through its `Outbox` was accepted (it is in
///   [`Report::published`]) or refused and counted ([`Report::refused_full`],
///   [`Report::refused_closed`]).
///
/// In a pipeline where every topic has one subscriber, a copy is a message: `published =
/// delivered + handler_panics + lost`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Messages accepted with at least one subscriber (external and onward publishes; each
    /// once, whatever its fanout; a batch counts its messages).
    pub published: u64,
    /// Handler calls that returned, over all workers.
    pub delivered: u64,
    /// Handler calls that panicked and were caught.
    pub handler_panics: u64,
    /// Onward publishes refused because a ring was full (or a batch was larger than a ring).
    pub refused_full: u64,
    /// Onward publishes refused because the bus was shutting down (made after the drain
    /// deadline passed).
    pub refused_closed: u64,
    /// Message copies accepted but never handled: still queued when the drain deadline passed
    /// (or on a worker that stopped early). 0 whenever the bus drained.
    pub lost: u64,
    /// Whether the drain deadline passed before the bus was quiescent (a cycle, or a slow
    /// stage): then `lost` may be more than 0.
    pub drain_timed_out: bool,
    /// Per worker, in order.
    pub workers: Vec<WorkerReport>,
    /// Worker threads that died (not a handler panic: a bug in tracebus); 0 expected.
    pub worker_failures: u64,
    /// Worker threads still running a handler when shutdown's bound passed, left behind
    /// (detached) so that shutdown returns; their counts are those of their last pass.
    pub workers_abandoned: u64,
    /// What the span pipeline did: spans exported, dropped (a full record ring), failed, or
    /// abandoned at its shutdown deadline (all zero for a bus that never traced).
    pub spans: SpanCounts,
}
