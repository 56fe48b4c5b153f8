//! `SpanRecord`: one finished span as the hot path writes it, fixed-size, `Copy`, no heap.
//!
//! A record holds only what the hot path knows cheaply: ids copied from the slot header, a
//! dense topic index (the exporter looks the name up), raw TSC ticks (the exporter turns them
//! into wall-clock times), and a few integers. Everything that costs (names, attributes,
//! `SystemTime`, `SpanData`) is made from it on the exporter thread. It is 80 bytes, so with
//! the ring's 8-byte stamp one record takes two 64-byte cache lines (asserted below).

use tracebus_context::TraceContext;

use super::clock::Ticks;

/// What a span stands for: the two span kinds the bus makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    /// `publish <topic>`: one publish (or one batch publish) by an endpoint; OpenTelemetry span
    /// kind PRODUCER, `messaging.operation.type = "send"`.
    Publish,
    /// `process <topic>`: one subscriber's handler run on a message; span kind CONSUMER,
    /// `messaging.operation.type = "process"`.
    Process,
}

/// How the span ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing went wrong (exported as status `Unset`, as instrumentation libraries do).
    Ok,
    /// The handler panicked (exported as status `Error`, "handler panicked").
    HandlerPanicked,
}

/// One finished span, as the hot path records it.
///
/// Build it with [`SpanRecord::publish`] or [`SpanRecord::process`] and the `with_*` methods,
/// which are `const fn`s on a `Copy` value: after inlining they are plain stores.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanRecord {
    /// The trace this span belongs to; never all zero (it comes from a valid `TraceContext`).
    pub(crate) trace_id: [u8; 16],
    /// This span's id; never all zero.
    pub(crate) span_id: [u8; 8],
    /// The parent span's id; all zero means "no parent" (a root publish).
    pub(crate) parent_span_id: [u8; 8],
    /// When the span started, in raw ticks of [`super::now`].
    pub(crate) start: Ticks,
    /// When the span ended, in raw ticks of [`super::now`]; normally `>= start` (the exporter
    /// clamps an end before the start, as can happen across cores with unsynchronised TSCs).
    pub(crate) end: Ticks,
    /// When the message entered the ring (the publish tick carried in the slot), in raw
    /// ticks; [`SpanRecord::NO_TICK`] when unknown. The exporter reports
    /// `start - enqueued` as `tracebus.ring.wait_ns`.
    pub(crate) enqueued: Ticks,
    /// The sampling rate the publish was decided at, in `[0, 1]`; NaN when the recorder does
    /// not know it (then no `tracebus.sampling.rate` attribute is exported).
    pub(crate) sampling_rate: f64,
    /// The topic's dense per-bus index; the exporter gets its name from the bus's lookup.
    pub(crate) topic: u32,
    /// Subscribers the publish reached (0 when not known or not meaningful).
    pub(crate) fanout: u32,
    /// Messages in a batch publish; 0 for a single publish (then no
    /// `messaging.batch.message_count` attribute is exported).
    pub(crate) batch_count: u32,
    /// Publish or process.
    pub(crate) operation: Operation,
    /// Ok, or the handler panicked.
    pub(crate) outcome: Outcome,
    /// W3C trace flags of this span's context (bit 0: sampled, bit 1: random trace-id).
    pub(crate) flags: u8,
    /// Whether the parent came from outside this span's thread of control, through a header
    /// (a `process` span's parent is the publish span in the slot header: remote).
    pub(crate) parent_is_remote: bool,
}

impl SpanRecord {
    /// The `enqueued` value that means "unknown": raw TSC ticks are never 0 on a running
    /// machine, and the monotonic fallback counts from boot.
    pub(crate) const NO_TICK: Ticks = 0;

    /// The span of a publish whose own context (the one written into the slot header) is
    /// `ctx`. `parent` is the span it continues, if any: a handler's `process` span for an
    /// onward publish (`remote: false`), an imported context (`remote: true`), or `None` for a
    /// publish that starts a trace.
    #[inline]
    pub(crate) const fn publish(
        ctx: &TraceContext,
        parent: Option<Parent>,
        topic: u32,
        start: Ticks,
        end: Ticks,
    ) -> SpanRecord {
        let (parent_span_id, parent_is_remote) = match parent {
            Some(p) => (p.span_id, p.remote),
            None => ([0; 8], false),
        };
        SpanRecord {
            trace_id: ctx.trace_id(),
            span_id: ctx.span_id(),
            parent_span_id,
            start,
            end,
            enqueued: Self::NO_TICK,
            sampling_rate: f64::NAN,
            topic,
            fanout: 0,
            batch_count: 0,
            operation: Operation::Publish,
            outcome: Outcome::Ok,
            flags: ctx.flags(),
            parent_is_remote,
        }
    }

    /// The span of one subscriber processing a message whose slot header carries `header`:
    /// same trace, a new `span_id`, the header's span as the (remote) parent, the header's
    /// flags.
    #[inline]
    pub(crate) const fn process(
        header: &TraceContext,
        span_id: [u8; 8],
        topic: u32,
        start: Ticks,
        end: Ticks,
    ) -> SpanRecord {
        SpanRecord {
            trace_id: header.trace_id(),
            span_id,
            parent_span_id: header.span_id(),
            start,
            end,
            enqueued: Self::NO_TICK,
            sampling_rate: f64::NAN,
            topic,
            fanout: 0,
            batch_count: 0,
            operation: Operation::Process,
            outcome: Outcome::Ok,
            flags: header.flags(),
            parent_is_remote: true,
        }
    }

    /// Sets the sampling rate the publish was decided at.
    #[inline]
    pub(crate) const fn with_sampling_rate(mut self, rate: f64) -> SpanRecord {
        self.sampling_rate = rate;
        self
    }

    /// Sets the fanout (subscribers reached), saturating at `u32::MAX`.
    #[inline]
    pub(crate) const fn with_fanout(mut self, fanout: usize) -> SpanRecord {
        self.fanout = if fanout > u32::MAX as usize {
            u32::MAX
        } else {
            fanout as u32
        };
        self
    }

    /// Marks a batch publish of `messages` messages (saturating at `u32::MAX`).
    #[inline]
    pub(crate) const fn with_batch(mut self, messages: usize) -> SpanRecord {
        self.batch_count = if messages > u32::MAX as usize {
            u32::MAX
        } else {
            messages as u32
        };
        self
    }

    /// Sets the tick at which the message entered the ring (the slot's publish stamp, read with
    /// [`super::now`]), so the exporter can report the ring wait.
    #[inline]
    pub(crate) const fn with_enqueued(mut self, enqueued: Ticks) -> SpanRecord {
        self.enqueued = enqueued;
        self
    }

    /// Marks the span as ended by a handler panic.
    #[inline]
    pub(crate) const fn with_handler_panicked(mut self) -> SpanRecord {
        self.outcome = Outcome::HandlerPanicked;
        self
    }

    #[cfg(test)]
    /// The parent, if any.
    #[inline]
    pub(crate) fn parent(&self) -> Option<Parent> {
        (self.parent_span_id != [0; 8]).then_some(Parent {
            span_id: self.parent_span_id,
            remote: self.parent_is_remote,
        })
    }
}

/// A span's parent: its span id and whether it came from elsewhere (through a header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parent {
    /// The parent span's id; not all zero.
    pub(crate) span_id: [u8; 8],
    /// Whether the parent context was propagated to this span (read from a header or imported)
    /// rather than being the span that was current where this one started.
    pub(crate) remote: bool,
}

impl Parent {
    /// The parent for an onward publish from a handler: that handler's `process` span, local.
    #[inline]
    pub(crate) const fn local(span_id: [u8; 8]) -> Parent {
        Parent {
            span_id,
            remote: false,
        }
    }

    /// A parent read from a header or imported from another process.
    #[inline]
    pub(crate) const fn remote(span_id: [u8; 8]) -> Parent {
        Parent {
            span_id,
            remote: true,
        }
    }
}

// The record and its ring cell stay small: 80 bytes, two cache lines with the stamp.
const _: () = assert!(core::mem::size_of::<SpanRecord>() == 80);
#[cfg(not(tracebus_loom))]
const _: () = assert!(core::mem::size_of::<crate::ring::Cell<SpanRecord>>() == 128);

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    use super::*;

    fn ctx(span: u8) -> TraceContext {
        TraceContext::new([7; 16], [span; 8], 0x03).unwrap()
    }

    #[test]
    fn publish_and_process_fill_ids_and_parents() {
        let p = SpanRecord::publish(&ctx(1), None, 4, 10, 20)
            .with_fanout(3)
            .with_sampling_rate(0.5);
        assert_eq!(p.operation, Operation::Publish);
        assert_eq!(p.parent(), None);
        assert_eq!((p.trace_id, p.span_id, p.flags), ([7; 16], [1; 8], 0x03));
        assert_eq!((p.fanout, p.batch_count, p.sampling_rate), (3, 0, 0.5));

        let onward = SpanRecord::publish(&ctx(2), Some(Parent::local([9; 8])), 4, 30, 40);
        assert_eq!(onward.parent(), Some(Parent::local([9; 8])));

        let c = SpanRecord::process(&ctx(1), [5; 8], 4, 21, 25)
            .with_enqueued(15)
            .with_handler_panicked();
        assert_eq!(c.operation, Operation::Process);
        assert_eq!(c.parent(), Some(Parent::remote([1; 8])));
        assert_eq!(
            (c.span_id, c.enqueued, c.outcome),
            ([5; 8], 15, Outcome::HandlerPanicked)
        );
        assert!(c.sampling_rate.is_nan(), "unknown unless set");
    }

    #[test]
    fn counts_saturate() {
        let r = SpanRecord::publish(&ctx(1), None, 0, 0, 0)
            .with_fanout(usize::MAX)
            .with_batch(usize::MAX);
        assert_eq!((r.fanout, r.batch_count), (u32::MAX, u32::MAX));
    }
}
