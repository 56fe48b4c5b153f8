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
//! and reads all of it, from a single line. Every constructor makes the whole slot: a message
//! without a context carries [`TraceHeader::NONE`], so a context from an earlier message in the
//! same ring cell can never be read back, and the area's bytes past the message are zeroed. A
//! publish updates the ring cell in place (`Slot::rewrite`): it stores the header and the
//! metadata only where the cell's differ from the new message's, and the area always, so the
//! cell ends up holding exactly the slot a constructor would have made.
//!
//! A message of type `T` is written into and read from the area in place; that `T` fits the
//! area in size and alignment is checked when the program is compiled (`layout::Fits`).

use core::mem::{offset_of, size_of};

use bytemuck::Pod;
use tracebus_context::{header_context, is_sampled, TraceContext, TraceHeader};
use zerocopy::byteorder::native_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

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
/// All zeros is a valid slot (no context, topic 0, an area of zeros): a ring's cells start so.
#[derive(Clone, Copy, Debug, FromZeros)]
#[repr(C)]
pub struct Slot<A> {
    head: SlotHead,
    area: A,
}

/// The header and the metadata: the slot's first 40 bytes, alike for all the messages of a
/// batch and for a stream of untraced messages on one topic (see [`Slot::rewrite`]).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
struct SlotHead {
    header: TraceHeader,
    meta: SlotMeta,
}

impl SlotHead {
    /// The 40 bytes as five words (by value: a head built from constants stays constants).
    #[inline(always)]
    fn words(self) -> [u64; 5] {
        zerocopy::transmute!(self)
    }
}

/// The slot of a default bus (one cache line with the ring's stamp).
pub type LineSlot = Slot<<Lines<1> as SlotSize>::Area>;

/// Offset of the payload area.
pub const PAYLOAD_OFFSET: usize = 40;

const _: () = {
    assert!(size_of::<SlotMeta>() == 14);
    assert!(size_of::<SlotHead>() == PAYLOAD_OFFSET);
    assert!(offset_of!(SlotHead, meta) == 26);
    assert!(offset_of!(LineSlot, head) == 0);
    assert!(offset_of!(LineSlot, area) == PAYLOAD_OFFSET);
    assert!(size_of::<LineSlot>() == CACHE_LINE - 8);
};

impl<A: Pod> Slot<A> {
    /// Compile-time layout check for this area type (evaluated when a slot is built).
    const LAYOUT: () = {
        assert!(offset_of!(Self, head) == 0);
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
        let area = Self::area_of(payload);
        Slot {
            head: SlotHead {
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
            },
            area,
        }
    }

    /// This slot with `payload` in its area instead (header and metadata copied; a publish
    /// writes the same message into a ring cell in place with `Slot::rewrite`).
    #[inline(always)]
    pub fn with_payload<T: Pod>(&self, payload: &T) -> Self {
        Slot {
            head: self.head,
            area: Self::area_of(payload),
        }
    }

    /// The area holding `payload` at its start, zeros after it. `T` must fit `A` (checked at
    /// compile time).
    #[inline(always)]
    fn area_of<T: Pod>(payload: &T) -> A {
        let () = Fits::<T, A>::OK;
        let mut area = A::zeroed();
        bytemuck::bytes_of_mut(&mut area)[..size_of::<T>()]
            .copy_from_slice(bytemuck::bytes_of(payload));
        area
    }

    /// Makes this slot, a ring cell's (the message written there a lap before, or zeros), the
    /// message `template.with_payload(payload)`, storing the header and the metadata only where
    /// they differ from the template's: messages on one topic without a context find them
    /// right, and a publish then stores the area alone (a store to a line the consumer holds
    /// waits in the store buffer until the line comes back, and every later store waits behind
    /// it). The loads come from the publisher's own cache: it wrote this line a lap before and
    /// the consumer only read it.
    #[inline(always)]
    pub(crate) fn rewrite<T: Pod>(&mut self, template: &Self, payload: &T) {
        // Compared word by word in registers: a template built from constants (the common
        // publish's) is compared with constants, not spilled to the stack to be compared there.
        let (old, new) = (self.head.words(), template.head.words());
        let differ = old.iter().zip(new).fold(0, |d, (o, n)| d | (o ^ n));
        if differ != 0 {
            self.head = template.head;
        }
        self.area = Self::area_of(payload);
    }

    /// This slot, marked as published with a recorded span (see `RECORDED`).
    #[inline(always)]
    pub(crate) fn recorded(mut self) -> Self {
        self.head.meta.kind |= RECORDED;
        self
    }

    /// Whether the publish recorded a span for the header's context (receivers then record
    /// their `process` spans under it; otherwise they carry the context on unchanged).
    #[inline(always)]
    pub fn is_recorded(&self) -> bool {
        self.head.meta.kind & RECORDED != 0
    }

    /// The trace header, in place.
    #[inline(always)]
    pub fn header(&self) -> &TraceHeader {
        &self.head.header
    }

    /// The fast filter on this slot's header bytes: byte 25, masked.
    #[inline(always)]
    pub fn is_sampled(&self) -> bool {
        is_sampled(self.head.header.as_bytes())
    }

    /// The normalization point: the context this slot carries, read through `zerocopy` from the
    /// slot's header bytes, or `None`.
    #[inline]
    pub fn context(&self) -> Option<TraceContext> {
        header_context(self.head.header.as_bytes())
    }

    /// The index of the topic the message was published to.
    #[inline(always)]
    pub fn topic(&self) -> u32 {
        self.head.meta.topic.get()
    }

    /// The publish time in ticks of the bus's clock, if it was recorded.
    #[inline(always)]
    pub fn publish_tick(&self) -> Option<u64> {
        (self.head.meta.kind & HAS_PUBLISH_TIME != 0).then(|| self.head.meta.publish.get())
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
    fn a_rewritten_slot_is_the_new_message_whatever_it_held() {
        let ctx = TraceContext::new([5; 16], [6; 8], 1).unwrap();
        let other = TraceContext::new([7; 16], [8; 8], 0).unwrap();
        // What a ring cell may hold: zeros (a first lap), the same topic's last message, another
        // topic's, a traced one, one with a publish time, a recorded one, a bigger payload.
        let before = [
            LineSlot::new(0, None, None, &0u64),
            LineSlot::new(3, None, None, &1u64),
            LineSlot::new(4, None, None, &[0xffu8; 16]),
            LineSlot::new(3, Some(&ctx), None, &2u64),
            LineSlot::new(3, None, Some(99), &3u64),
            LineSlot::new(3, Some(&ctx), Some(5), &4u64).recorded(),
        ];
        let templates = [
            LineSlot::new(3, None, None, &0u64),
            LineSlot::new(3, Some(&other), None, &0u64),
            LineSlot::new(5, Some(&ctx), Some(7), &0u64).recorded(),
        ];
        for old in before {
            for template in templates {
                let mut cell = old;
                cell.rewrite(&template, &0xabcd_u32);
                let want = template.with_payload(&0xabcd_u32);
                assert_eq!(cell.head, want.head, "{old:?} as {template:?}");
                assert_eq!(
                    cell.area(),
                    &[0xabcd, 0],
                    "the area past the payload is zeroed"
                );
                assert_eq!(cell.context(), template.context(), "no stale context");
                assert_eq!(cell.is_recorded(), template.is_recorded());
                assert_eq!(cell.publish_tick(), template.publish_tick());
            }
        }
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
