//! `Slot<T>`: the fixed-layout message slot, with the trace header inline.
//!
//! `#[repr(C)]`, with no padding before the payload. In a ring, each slot sits in a
//! cache-line-aligned cell followed by the cell's 8-byte stamp (see [`crate::ring`]), so a slot
//! with its stamp is a whole number of 64-byte cache lines and no two messages share a line:
//!
//! ```text
//! offset 0   TraceHeader (26 bytes: version | trace-id | span-id | flags)  byte 25 = flags
//! offset 26  kind: u8        flags of the slot itself (has publish time)
//! offset 27  reserved: u8    zero
//! offset 28  topic: u32      (native endian, alignment 1)
//! offset 32  publish_ns: u64 (native endian, alignment 1) nanoseconds on the bus clock, or 0
//! offset 40  payload: T      (T: bytemuck::Pod, at its alignment)
//!            then, in the ring: the cell's stamp (8 bytes), padding to a line boundary
//! ```
//!
//! With a payload of up to 16 bytes, slot and stamp are exactly one cache line: the consumer
//! learns of the message, and reads all of it, from a single line. Every constructor writes
//! the whole header: a message without a context carries [`TraceHeader::NONE`], so a context
//! from an earlier message in the same ring slot can never be read back.

use core::mem::{offset_of, size_of};

use bytemuck::Pod;
use tracebus_context::{header_context, is_sampled, TraceContext, TraceHeader};
use zerocopy::byteorder::native_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Size of a cache line, the unit a slot's size is a multiple of.
pub const CACHE_LINE: usize = 64;

/// Slot flag: `publish_ns` holds the publish time.
const HAS_PUBLISH_TIME: u8 = 0x01;

/// The metadata block after the header: 14 bytes, alignment 1, so header and metadata are 40
/// bytes with no padding.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct SlotMeta {
    /// Slot flags (`HAS_PUBLISH_TIME`).
    kind: u8,
    /// Zero; room for later use without changing offsets.
    reserved: u8,
    /// The topic the message was published to.
    topic: U32,
    /// Publish time in nanoseconds since the bus's epoch; meaningful only with the flag set.
    publish_ns: U64,
}

/// A message slot: trace header, metadata, payload (see the module docs for the layout).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Slot<T> {
    header: TraceHeader,
    meta: SlotMeta,
    payload: T,
}

/// Offset of the payload for payloads of alignment up to 8.
pub const PAYLOAD_OFFSET: usize = 40;

/// Largest payload for which a slot and its ring stamp fit one cache line.
pub const MAX_ONE_LINE_PAYLOAD: usize = CACHE_LINE - PAYLOAD_OFFSET - 8;

const _: () = {
    assert!(size_of::<SlotMeta>() == 14);
    assert!(offset_of!(Slot<u64>, header) == 0);
    assert!(offset_of!(Slot<u64>, meta) == 26);
    assert!(offset_of!(Slot<u64>, payload) == PAYLOAD_OFFSET);
    assert!(size_of::<Slot<u64>>() == 48);
    assert!(size_of::<Slot<[u8; MAX_ONE_LINE_PAYLOAD]>>() == CACHE_LINE - 8);
};

impl<T: Pod> Slot<T> {
    /// Compile-time layout check for this payload type (evaluated when a slot is built).
    const LAYOUT: () = {
        assert!(offset_of!(Self, header) == 0);
        assert!(offset_of!(Self, meta) == 26);
        assert!(offset_of!(Self, payload) >= PAYLOAD_OFFSET);
    };

    /// A slot for `payload` on `topic`, carrying `ctx` (or "no context") and optionally the
    /// publish time.
    #[inline(always)]
    pub fn new(
        topic: u32,
        ctx: Option<&TraceContext>,
        publish_ns: Option<u64>,
        payload: T,
    ) -> Self {
        let () = Self::LAYOUT;
        Slot {
            header: TraceHeader::from_context(ctx),
            meta: SlotMeta {
                kind: if publish_ns.is_some() {
                    HAS_PUBLISH_TIME
                } else {
                    0
                },
                reserved: 0,
                topic: U32::new(topic),
                publish_ns: U64::new(publish_ns.unwrap_or(0)),
            },
            payload,
        }
    }

    /// The trace header, in place.
    #[inline(always)]
    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// The fast filter on this slot's header bytes: byte 25, masked.
    #[inline(always)]
    pub fn is_sampled(&self) -> bool {
        is_sampled(self.header.as_bytes())
    }

    /// The normalization point: the context this slot carries, read through `zerocopy` from the
    /// slot's header bytes, or `None`.
    #[inline]
    pub fn context(&self) -> Option<TraceContext> {
        header_context(self.header.as_bytes())
    }

    /// The topic the message was published to.
    #[inline(always)]
    pub fn topic(&self) -> u32 {
        self.meta.topic.get()
    }

    /// The publish time, if it was recorded.
    #[inline(always)]
    pub fn publish_ns(&self) -> Option<u64> {
        (self.meta.kind & HAS_PUBLISH_TIME != 0).then(|| self.meta.publish_ns.get())
    }

    /// The payload, by reference.
    #[inline(always)]
    pub fn payload(&self) -> &T {
        &self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let ctx = TraceContext::new([5; 16], [6; 8], 1).unwrap();
        let s = Slot::new(7, Some(&ctx), Some(123), 0xdead_beef_u64);
        assert_eq!(s.topic(), 7);
        assert_eq!(s.publish_ns(), Some(123));
        assert_eq!(*s.payload(), 0xdead_beef);
        assert_eq!(s.context(), Some(ctx));
        assert!(s.is_sampled());
        let s = Slot::new(8, None, None, [1u8; 24]);
        assert_eq!(s.context(), None);
        assert!(!s.is_sampled());
        assert_eq!(s.publish_ns(), None);
        assert_eq!(s.header(), &TraceHeader::NONE);
    }

    #[test]
    fn big_payloads_work() {
        let s = Slot::new(1, None, None, [7u64; 16]);
        assert_eq!(size_of_val(&s), PAYLOAD_OFFSET + 128);
        assert_eq!(s.payload()[15], 7);
    }
}
