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
    type Area: Pod + zerocopy::FromZeros + Send + Sync + Debug;
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
    /// Evaluated (at compile time) wherever a `T` is put into or read from an `A`. A type that
    /// does not fit fails the build with its size and the area's in the message. (It is a
    /// post-monomorphization error: `cargo build` and `cargo test` report it, `cargo check`
    /// does not evaluate it; stable Rust has no way to compare sizes in a trait bound.)
    pub(crate) const OK: () = {
        let (size, align) = (core::mem::size_of::<T>(), core::mem::align_of::<T>());
        let (room, room_align) = (core::mem::size_of::<A>(), core::mem::align_of::<A>());
        if size > room || align > room_align {
            let msg = TooBig::new(size, align, room);
            panic!("{}", msg.as_str());
        }
    };
}

/// The message of a type that does not fit, written at compile time (a const panic takes a
/// `&str`, not format arguments).
struct TooBig {
    buf: [u8; 256],
    len: usize,
}

impl TooBig {
    const fn new(size: usize, align: usize, room: usize) -> TooBig {
        let mut m = TooBig {
            buf: [0; 256],
            len: 0,
        };
        m.push(b"tracebus: a message type of ");
        m.number(size);
        m.push(b" bytes (alignment ");
        m.number(align);
        m.push(b") does not fit this bus's payload area of ");
        m.number(room);
        m.push(b" bytes (alignment 8); build the bus with bigger slots: ");
        m.push(b"BusBuilder::slot_size::<Lines<N>>() with N = 2, 4 or 8 (80, 208, 464 bytes)");
        m
    }

    const fn push(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() && self.len < self.buf.len() {
            self.buf[self.len] = bytes[i];
            self.len += 1;
            i += 1;
        }
    }

    const fn number(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut d = 0;
        loop {
            digits[d] = b'0' + (n % 10) as u8;
            d += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        while d > 0 {
            d -= 1;
            self.push(&[digits[d]]);
        }
    }

    const fn as_str(&self) -> &str {
        let (text, _) = self.buf.split_at(self.len);
        match core::str::from_utf8(text) {
            Ok(s) => s,
            Err(_) => "tracebus: a message type does not fit this bus's payload area",
        }
    }
}

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    use super::TooBig;

    #[test]
    fn the_message_of_a_type_too_big_states_both_sizes() {
        let m = TooBig::new(17, 1, 16);
        let s = m.as_str();
        assert!(
            s.starts_with("tracebus: a message type of 17 bytes (alignment 1)"),
            "{s}"
        );
        assert!(s.contains("payload area of 16 bytes"), "{s}");
        assert!(s.ends_with("464 bytes)"), "{s}");
    }
}
