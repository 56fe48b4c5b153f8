//! How big a bus's slots are: [`SlotSize`], chosen once per bus as a type, and [`Lines`], its
//! implementations.
//!
//! A slot is the trace header (26 bytes), the metadata block (14 bytes) and a payload area of
//! fixed size and alignment; in a ring it is followed by the cell's 8-byte stamp and padded to
//! whole cache lines. The payload area is a `[u64; N]`, so it is 8-aligned and holds any
//! [`bytemuck::Pod`] type of at most its size and alignment 8, written and read in place.
//!
//! | slot size | cache lines per message | payload area |
//! |---|---:|---:|
//! | [`Lines<1>`] (the default) | 1 | 16 bytes |
//! | [`Lines<2>`] | 2 | 80 bytes |
//! | [`Lines<4>`] | 4 | 208 bytes |
//! | [`Lines<8>`] | 8 | 464 bytes |
//!
//! The size is a type so that a message type that does not fit is refused when the program is
//! compiled (see [`crate::Bus::topic`]), never truncated at run time.

use core::fmt::Debug;

use bytemuck::Pod;

/// The size of a bus's slots (see the module docs). Implemented by [`Lines`] only.
pub trait SlotSize: sealed::Sealed + Send + Sync + 'static {
    /// The payload area: 8-byte words, so 8-aligned.
    type Area: Pod + Send + Sync + Debug;
    /// Cache lines each message takes in a ring (slot and stamp).
    const LINES: usize;
    /// Bytes of payload a message may have.
    const PAYLOAD_BYTES: usize = core::mem::size_of::<Self::Area>();
}

/// The largest alignment a payload type may need (the payload area's).
pub const MAX_PAYLOAD_ALIGN: usize = 8;

/// Slots of `N` cache lines (with the ring's stamp); `N` is 1, 2, 4 or 8. See the module docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Lines<const N: usize>;

mod sealed {
    /// Only tracebus implements [`super::SlotSize`]: the ring's layout assertions cover these.
    pub trait Sealed {}
}

macro_rules! lines {
    ($($n:literal => $words:literal),*) => {$(
        impl sealed::Sealed for Lines<$n> {}
        impl SlotSize for Lines<$n> {
            type Area = [u64; $words];
            const LINES: usize = $n;
        }
    )*};
}

// 40 bytes of header and metadata, 8 of stamp: 64 * n - 48 bytes of payload.
lines!(1 => 2, 2 => 10, 4 => 26, 8 => 58);

/// Compile-time proof that `T` fits the payload area `A` in size and alignment.
pub(crate) struct Fits<T, A>(core::marker::PhantomData<(T, A)>);

impl<T, A> Fits<T, A> {
    /// Evaluated (at compile time) wherever a `T` is put into or read from an `A`.
    pub(crate) const OK: () = assert!(
        core::mem::size_of::<T>() <= core::mem::size_of::<A>()
            && core::mem::align_of::<T>() <= core::mem::align_of::<A>(),
        "tracebus: this message type does not fit the bus's payload area (too big, or aligned \
         to more than 8 bytes); build the bus with more lines per slot (BusBuilder::slot_size)"
    );
}
