//! `TraceHeader`: the 26-byte inline trace context of a tracebus message slot.
//!
//! `version: u8 | trace_id: [u8; 16] | span_id: [u8; 8] | flags: u8`: the fields of a W3C
//! `traceparent` in binary, alignment 1, read and written in place through `zerocopy`. The
//! offsets are part of the format (flags is byte 25) and are asserted at compile time.
//!
//! Two readers, one promise:
//!
//! - [`is_sampled`], the fast filter, reads byte 25 and masks `0x01`. Nothing else.
//! - [`header_context`] / [`TraceHeader::context`], the single normalization point, turns the
//!   bytes into `Option<TraceContext>`: short input, version `0xff`, an all-zero trace-id or
//!   span-id are all "no context".
//!
//! Whenever the normalization point finds a context, its sampled flag equals what the filter
//! says. On arbitrary bytes the filter may say `true` where there is no context (it does not look
//! at the ids), never the reverse. Every header this crate writes decodes to exactly what the
//! filter says: "no context" is written as all zeros, so its flags byte says "not sampled".

use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::context::FLAG_SAMPLED;
use crate::TraceContext;

/// The version this crate writes.
pub const VERSION: u8 = 0;
/// The version that means "invalid" in W3C Trace Context; a header carrying it has no context.
pub const INVALID_VERSION: u8 = 0xff;
/// Size of a [`TraceHeader`] in bytes.
pub const HEADER_LEN: usize = 26;
/// Offset of the flags byte, which the fast filter reads.
pub const FLAGS_OFFSET: usize = 25;

/// The 26-byte trace-context header at the start of every message slot.
///
/// Plain bytes: any 26 bytes are a `TraceHeader` (so it can be viewed in place in a slot), and
/// what they mean is decided by [`TraceHeader::context`].
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct TraceHeader {
    /// Format version; `0` is written, `0xff` means no context, others are read as `0`.
    pub version: u8,
    /// Trace-id; all zeros means no context.
    pub trace_id: [u8; 16],
    /// Span-id of the parent span (the publish span); all zeros means no context.
    pub span_id: [u8; 8],
    /// Trace-flags; bit 0 is "sampled". Read by the fast filter alone.
    pub flags: u8,
}

const _: () = {
    assert!(size_of::<TraceHeader>() == HEADER_LEN);
    assert!(core::mem::align_of::<TraceHeader>() == 1);
    assert!(offset_of!(TraceHeader, version) == 0);
    assert!(offset_of!(TraceHeader, trace_id) == 1);
    assert!(offset_of!(TraceHeader, span_id) == 17);
    assert!(offset_of!(TraceHeader, flags) == FLAGS_OFFSET);
};

impl TraceHeader {
    /// The "no context" header: all zeros (so the fast filter says "not sampled").
    pub const NONE: TraceHeader = TraceHeader {
        version: VERSION,
        trace_id: [0; 16],
        span_id: [0; 8],
        flags: 0,
    };

    /// The header for `ctx`; `None` gives [`TraceHeader::NONE`].
    #[inline]
    pub const fn from_context(ctx: Option<&TraceContext>) -> TraceHeader {
        match ctx {
            Some(c) => TraceHeader {
                version: VERSION,
                trace_id: c.trace_id(),
                span_id: c.span_id(),
                flags: c.flags(),
            },
            None => TraceHeader::NONE,
        }
    }

    /// The normalization point: the context this header carries, or `None`.
    #[inline]
    pub const fn context(&self) -> Option<TraceContext> {
        if self.version == INVALID_VERSION {
            return None;
        }
        TraceContext::new(self.trace_id, self.span_id, self.flags)
    }

    /// The fast filter on a typed header (same answer as [`is_sampled`] on its bytes).
    #[inline]
    pub const fn is_sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }

    /// Views the first 26 bytes of `bytes` as a header, in place; `None` if shorter.
    #[inline]
    pub fn ref_from_prefix(bytes: &[u8]) -> Option<&TraceHeader> {
        <TraceHeader as FromBytes>::ref_from_prefix(bytes)
            .ok()
            .map(|(h, _)| h)
    }
}

impl From<Option<TraceContext>> for TraceHeader {
    fn from(ctx: Option<TraceContext>) -> TraceHeader {
        TraceHeader::from_context(ctx.as_ref())
    }
}

/// The fast filter: is the sampled bit set in the header (or frame) starting at `bytes[0]`?
///
/// Reads byte 25 and nothing else; `false` for input shorter than 26 bytes. Constructs nothing.
#[inline]
pub fn is_sampled(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN && bytes[FLAGS_OFFSET] & FLAG_SAMPLED != 0
}

/// The normalization point on raw bytes: the context in the header at `bytes[0..26]`, or `None`
/// for short input, version `0xff` or zero ids. Never an error, never a half-valid context.
#[inline]
pub fn header_context(bytes: &[u8]) -> Option<TraceContext> {
    TraceHeader::ref_from_prefix(bytes)?.context()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(flags: u8) -> TraceContext {
        TraceContext::new([0xab; 16], [0xcd; 8], flags).unwrap()
    }

    #[test]
    fn layout_is_the_format() {
        let h = TraceHeader::from_context(Some(&ctx(1)));
        let b = h.as_bytes();
        assert_eq!(b.len(), 26);
        assert_eq!(b[0], 0);
        assert_eq!(&b[1..17], &[0xab; 16]);
        assert_eq!(&b[17..25], &[0xcd; 8]);
        assert_eq!(b[25], 1);
    }

    #[test]
    fn none_header_is_zero_and_unsampled() {
        let h = TraceHeader::from_context(None);
        assert_eq!(h.as_bytes(), &[0u8; 26]);
        assert!(!is_sampled(h.as_bytes()));
        assert_eq!(h.context(), None);
        assert_eq!(TraceHeader::from(None), TraceHeader::NONE);
    }

    #[test]
    fn normalization_rejects_what_it_must() {
        let mut b = TraceHeader::from_context(Some(&ctx(1))).as_bytes().to_vec();
        assert_eq!(header_context(&b), Some(ctx(1)));
        assert_eq!(header_context(&b[..25]), None, "short input");
        assert!(!is_sampled(&b[..25]), "short input");
        b.push(0x77); // a longer frame: the header is its prefix
        assert_eq!(header_context(&b), Some(ctx(1)));
        b[0] = 0xff;
        assert_eq!(header_context(&b), None, "version ff");
        assert!(is_sampled(&b), "the filter does not look at the version");
        b[0] = 0x42;
        assert_eq!(
            header_context(&b),
            Some(ctx(1)),
            "future version read as 00"
        );
        b[0] = 0;
        b[1..17].fill(0);
        assert_eq!(header_context(&b), None, "zero trace-id");
        b[1] = 1;
        b[17..25].fill(0);
        assert_eq!(header_context(&b), None, "zero span-id");
    }

    #[test]
    fn filter_masks_instead_of_comparing() {
        for flags in 0..=255u8 {
            let mut b = [7u8; 26];
            b[25] = flags;
            assert_eq!(is_sampled(&b), flags & 1 == 1);
            let decoded = header_context(&b).unwrap();
            assert_eq!(decoded.is_sampled(), is_sampled(&b));
        }
    }
}
