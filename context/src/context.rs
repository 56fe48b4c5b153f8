//! `TraceContext`: a trace-id, a span-id and the trace-flags, always valid.
//!
//! The value type every other form converts to and from. Its constructor refuses all-zero ids,
//! so holding a `TraceContext` means holding a usable parent for a span; "no context" is
//! `Option::None`, never a half-valid value. Flags are kept to the bits this crate knows
//! (sampled `0x01`, random trace-id `0x02`): unknown bits from a newer peer are dropped on the way
//! in, as the W3C specification asks of a version-00 implementation.

use core::fmt;

/// The `sampled` trace flag (W3C Trace Context, bit 0).
pub const FLAG_SAMPLED: u8 = 0x01;
/// The `random trace-id` trace flag (W3C Trace Context Level 2, bit 1): the rightmost 7 bytes of
/// the trace-id are random, which consistent probability sampling relies on.
pub const FLAG_RANDOM: u8 = 0x02;
/// Every flag bit this crate knows; others are zeroed.
pub const KNOWN_FLAGS: u8 = FLAG_SAMPLED | FLAG_RANDOM;

/// A valid trace context: non-zero trace-id, non-zero span-id, known flags.
///
/// `Copy`, 25 bytes of data, no allocation. Build one with [`TraceContext::new`] or parse one
/// with [`TraceContext::from_traceparent`] / [`TraceContext::from_w3c_binary`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// Invariant: not all zero.
    trace_id: [u8; 16],
    /// Invariant: not all zero.
    span_id: [u8; 8],
    /// Invariant: `flags & !KNOWN_FLAGS == 0`.
    flags: u8,
}

impl TraceContext {
    /// A context from its parts; `None` if the trace-id or the span-id is all zeros.
    /// Flag bits other than [`FLAG_SAMPLED`] and [`FLAG_RANDOM`] are dropped.
    #[inline]
    pub const fn new(trace_id: [u8; 16], span_id: [u8; 8], flags: u8) -> Option<TraceContext> {
        if u128::from_ne_bytes(trace_id) == 0 || u64::from_ne_bytes(span_id) == 0 {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            flags: flags & KNOWN_FLAGS,
        })
    }

    /// The 16-byte trace-id (never all zeros).
    #[inline]
    pub const fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The 8-byte span-id of the span this context points at (never all zeros).
    #[inline]
    pub const fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    /// The trace-flags, restricted to [`KNOWN_FLAGS`].
    #[inline]
    pub const fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the sampled flag is set.
    #[inline]
    pub const fn is_sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }

    /// The same context pointing at another span of the same trace (a child's context).
    /// `None` if `span_id` is all zeros.
    #[inline]
    pub const fn with_span_id(&self, span_id: [u8; 8]) -> Option<TraceContext> {
        TraceContext::new(self.trace_id, span_id, self.flags)
    }

    /// The same context with other flags (unknown bits dropped).
    #[inline]
    pub const fn with_flags(&self, flags: u8) -> TraceContext {
        TraceContext {
            flags: flags & KNOWN_FLAGS,
            ..*self
        }
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceContext({self})")
    }
}

/// Formats as a W3C `traceparent` value (`00-<trace-id>-<span-id>-<flags>`), without allocating.
impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buf = crate::traceparent::encode(self);
        // The encoder writes ASCII hex digits and dashes only.
        f.write_str(core::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_ids_are_refused() {
        assert!(TraceContext::new([0; 16], [1; 8], 1).is_none());
        assert!(TraceContext::new([1; 16], [0; 8], 1).is_none());
        assert!(TraceContext::new([1; 16], [1; 8], 1).is_some());
        // One non-zero byte anywhere is enough.
        let mut t = [0; 16];
        t[15] = 1;
        let mut s = [0; 8];
        s[0] = 1;
        assert!(TraceContext::new(t, s, 0).is_some());
    }

    #[test]
    fn unknown_flags_are_dropped() {
        let c = TraceContext::new([1; 16], [2; 8], 0xff).unwrap();
        assert_eq!(c.flags(), KNOWN_FLAGS);
        assert!(c.is_sampled());
        let c = TraceContext::new([1; 16], [2; 8], 0xfe).unwrap();
        assert_eq!(c.flags(), FLAG_RANDOM);
        assert!(!c.is_sampled());
        assert_eq!(c.with_flags(0x81).flags(), FLAG_SAMPLED);
        assert!(c.with_span_id([0; 8]).is_none());
        assert_eq!(c.with_span_id([9; 8]).unwrap().span_id(), [9; 8]);
    }
}
