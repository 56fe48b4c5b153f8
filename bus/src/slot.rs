//! `Slot<A>`: the fixed-layout message slot, with the trace header inline and a payload area
//! `A` of fixed size per bus (see [`crate::layout`]).
//!
//! `#[repr(C)]`, with no padding before the payload. In a ring, each slot sits in a
//! cache-line-aligned cell followed by the cell's 8-byte stamp (see [`crate::ring`]), so a slot
//! with its stamp is a whole number of 64-byte cache lines and no two messages share a line:
//!
//! ```text
//! offset 0   TraceHeader (26 bytes: version | trace-id | span-id | flags)  byte 25 = flags
//! offset 26  kind: u8        flags of the slot itself (has publish time; publish span
//!                             recorded)
//! offset 27  reserved: u8    zero
//! offset 28  topic: u32      (native endian, alignment 1) the topic's index on its bus
//! offset 32  publish: u64   (native endian, alignment 1) publish time in ticks of the bus's
//!                             TSC clock, or 0
//! offset 40  payload area: A ([u64; N], 8-aligned): the message's `T` at offset 0, then zeros
//!            then, in the ring: the cell's stamp (8 bytes), padding to a line boundary
//! ```
//!
//! With the default one-line slots the area is 16 bytes: the consumer learns of the message,
//! and reads all of it, from a single line. Every constructor writes the whole slot: a message
//! without a context carries [`TraceHeader::NONE`], so a context from an earlier message in the
//! same ring cell can never be read back, and the area's bytes past the message are zeroed.
//!
//! A message of type `T` is written into and read from the area in place; that `T` fits the
//! area in size and alignment is checked when the program is compiled (`layout::Fits`).

use core::mem::{offset_of, size_of};

use bytemuck::Pod;
use tracebus_context::{header_context, is_sampled, TraceContext, TraceHeader};
use zerocopy::byteorder::native_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::layout::{Fits, Lines, SlotSize};

/// Size of a cache line, the unit a slot's size is a multiple of.
pub const CACHE_LINE: usize = 64;

/// Slot flag: `publish` holds the publish time.
const HAS_PUBLISH_TIME: u8 = 0x01;
/// Slot flag: the publish recorded a span for the header's context, so receivers record
/// `process` spans under it. A sampled header without it was carried through a publish that
/// recorded nothing (the bus records no spans): receivers carry it on unchanged.
const RECORDED: u8 = 0x02;

/// The metadata block after the header: 14 bytes, alignment 1, so header and metadata are 40
/// bytes with no padding.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct SlotMeta {
    /// Slot flags (`HAS_PUBLISH_TIME`, `RECORDED`).
    kind: u8,
    /// Zero; room for later use without changing offsets.
    reserved: u8,
    /// The index of the topic the message was published to.
    topic: U32,
    /// Publish time in raw ticks of the bus's TSC clock; meaningful only with the flag set.
    publish: U64,
}

/// A message slot: trace header, metadata, payload area (see the module docs for the layout).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Slot<A> {
    header: TraceHeader,
    meta: SlotMeta,
    area: A,
}

/// The slot of a default bus (one cache line with the ring's stamp).
pub type LineSlot = Slot<<Lines<1> as SlotSize>::Area>;

/// Offset of the payload area.
pub const PAYLOAD_OFFSET: usize = 40;

const _: () = {
    assert!(size_of::<SlotMeta>() == 14);
    assert!(offset_of!(LineSlot, header) == 0);
    assert!(offset_of!(LineSlot, meta) == 26);
    assert!(offset_of!(LineSlot, area) == PAYLOAD_OFFSET);
    assert!(size_of::<LineSlot>() == CACHE_LINE - 8);
};

impl<A: Pod> Slot<A> {
    /// Compile-time layout check for this area type (evaluated when a slot is built).
    const LAYOUT: () = {
        assert!(offset_of!(Self, header) == 0);
        assert!(offset_of!(Self, meta) == 26);
        assert!(offset_of!(Self, area) == PAYLOAD_OFFSET);
    };

    /// A slot for `payload` on topic index `topic`, carrying `ctx` (or "no context") and
    /// optionally the publish time (in ticks of the bus's clock). `T` must fit `A` (checked at
    /// compile time).
    #[inline(always)]
    pub fn new<T: Pod>(
        topic: u32,
        ctx: Option<&TraceContext>,
        publish_tick: Option<u64>,
        payload: &T,
    ) -> Self {
        let () = Self::LAYOUT;
        let () = Fits::<T, A>::OK;
        let mut area = A::zeroed();
        bytemuck::bytes_of_mut(&mut area)[..size_of::<T>()]
            .copy_from_slice(bytemuck::bytes_of(payload));
        Slot {
            header: TraceHeader::from_context(ctx),
            meta: SlotMeta {
                kind: if publish_tick.is_some() {
                    HAS_PUBLISH_TIME
                } else {
                    0
                },
                reserved: 0,
                topic: U32::new(topic),
                publish: U64::new(publish_tick.unwrap_or(0)),
            },
            area,
        }
    }

    /// This slot with `payload` in its area instead (header and metadata copied): a batch
    /// builds its slot once and then writes one copy per message, whole 8- and 16-byte words
    /// rather than the header's odd-sized fields one by one.
    #[inline(always)]
    pub fn with_payload<T: Pod>(&self, payload: &T) -> Self {
        let () = Fits::<T, A>::OK;
        let mut area = A::zeroed();
        bytemuck::bytes_of_mut(&mut area)[..size_of::<T>()]
            .copy_from_slice(bytemuck::bytes_of(payload));
        Slot {
            header: self.header,
            meta: self.meta,
            area,
        }
    }

    /// This slot, marked as published with a recorded span (see `RECORDED`).
    #[inline(always)]
    pub(crate) fn recorded(mut self) -> Self {
        self.meta.kind |= RECORDED;
        self
    }

    /// Whether the publish recorded a span for the header's context (receivers then record
    /// their `process` spans under it; otherwise they carry the context on unchanged).
    #[inline(always)]
    pub fn is_recorded(&self) -> bool {
        self.meta.kind & RECORDED != 0
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

    /// The index of the topic the message was published to.
    #[inline(always)]
    pub fn topic(&self) -> u32 {
        self.meta.topic.get()
    }

    /// The publish time in ticks of the bus's clock, if it was recorded.
    #[inline(always)]
    pub fn publish_tick(&self) -> Option<u64> {
        (self.meta.kind & HAS_PUBLISH_TIME != 0).then(|| self.meta.publish.get())
    }

    /// The payload area's first `size_of::<T>()` bytes as a `T`, in place (no copy). `T` must
    /// fit `A` (checked at compile time). Any `T` read this way is valid, since `T` is `Pod`
    /// and every byte of the area is initialised; it is the message that was published when
    /// `T` is the type its topic carries.
    #[inline(always)]
    pub fn payload<T: Pod>(&self) -> &T {
        let () = Fits::<T, A>::OK;
        let area: *const A = &self.area;
        // `Fits` proved at compile time that `T` is no bigger than `A` and needs no more
        // alignment; every byte of `A` (`Pod`) is initialised and any bytes are a valid `T`.
        // SAFETY: aligned and in bounds for a `T`, initialised, and borrowed from `self`.
        unsafe { &*area.cast::<T>() }
    }

    /// The whole payload area.
    #[inline(always)]
    pub fn area(&self) -> &A {
        &self.area
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let ctx = TraceContext::new([5; 16], [6; 8], 1).unwrap();
        let s = LineSlot::new(7, Some(&ctx), Some(123), &0xdead_beef_u64);
        assert_eq!(s.topic(), 7);
        assert_eq!(s.publish_tick(), Some(123));
        assert_eq!(*s.payload::<u64>(), 0xdead_beef);
        assert_eq!(s.context(), Some(ctx));
        assert!(s.is_sampled());
        let s = LineSlot::new(8, None, None, &[1u8; 16]);
        assert_eq!(s.context(), None);
        assert!(!s.is_sampled());
        assert_eq!(s.publish_tick(), None);
        assert_eq!(s.header(), &TraceHeader::NONE);
    }

    #[test]
    fn with_payload_keeps_header_and_metadata() {
        let ctx = TraceContext::new([5; 16], [6; 8], 1).unwrap();
        let template = LineSlot::new(7, Some(&ctx), Some(123), &[0xffu8; 16]);
        let s = template.with_payload(&9u32);
        assert_eq!(
            (s.topic(), s.publish_tick(), s.context()),
            (7, Some(123), Some(ctx))
        );
        assert_eq!(*s.payload::<u32>(), 9);
        assert_eq!(
            s.area(),
            &[9, 0],
            "the template's payload bytes are not kept"
        );
    }

    #[test]
    fn rest_of_the_area_is_zeroed() {
        let s = LineSlot::new(1, None, None, &0xffff_u16);
        assert_eq!(*s.payload::<u16>(), 0xffff);
        assert_eq!(s.area(), &[0xffff, 0]);
        assert_eq!(
            *s.payload::<u64>(),
            0xffff,
            "the bytes past the message are zero"
        );
    }

    #[test]
    fn big_areas_work() {
        let s = Slot::<<Lines<8> as SlotSize>::Area>::new(1, None, None, &[7u64; 58]);
        assert_eq!(size_of_val(&s), PAYLOAD_OFFSET + 464);
        assert_eq!(s.payload::<[u64; 58]>()[57], 7);
    }
}
