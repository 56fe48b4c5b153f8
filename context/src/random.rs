//! Fast, non-allocating random ids for new traces (wyrand, one state per thread).
//!
//! The W3C "random trace-id" flag promises that the rightmost 7 bytes of a trace-id are random;
//! consistent sampling depends on it. wyrand passes BigCrush and costs a multiply; each thread
//! seeds its own state once from std's `RandomState` (OS randomness, no allocation), so threads
//! never share or contend on a generator.

use core::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

thread_local! {
    /// The thread's wyrand state; 0 means "not seeded yet".
    static STATE: Cell<u64> = const { Cell::new(0) };
}

fn seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_usize(&STATE as *const _ as usize);
    h.finish() | 1
}

/// The next 64 random bits of this thread's generator.
#[inline]
pub fn next_u64() -> u64 {
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            x = seed();
        }
        x = x.wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let t = u128::from(x) * u128::from(x ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    })
}

/// A random, non-zero 16-byte trace-id.
#[inline]
pub fn random_trace_id() -> [u8; 16] {
    loop {
        let id = (u128::from(next_u64()) << 64) | u128::from(next_u64());
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

/// A random, non-zero 8-byte span-id.
#[inline]
pub fn random_span_id() -> [u8; 8] {
    loop {
        let id = next_u64();
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_non_zero_and_differ() {
        let a = random_trace_id();
        let b = random_trace_id();
        assert_ne!(a, b);
        assert_ne!(a, [0; 16]);
        assert_ne!(random_span_id(), random_span_id());
    }

    #[test]
    fn threads_get_different_streams() {
        let here = next_u64();
        let there = std::thread::spawn(next_u64).join().unwrap();
        assert_ne!(here, there);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "statistics over 1.3 million interpreted steps; the other tests run the generator"
    )]
    fn bits_are_balanced() {
        // Each of the 64 bit positions is set about half the time.
        let n = 20_000;
        let mut ones = [0u32; 64];
        for _ in 0..n {
            let x = next_u64();
            for (i, o) in ones.iter_mut().enumerate() {
                *o += ((x >> i) & 1) as u32;
            }
        }
        for o in ones {
            // 6 sigma of a binomial(20000, 0.5) is about 424.
            assert!((f64::from(o) - 10_000.0).abs() < 450.0, "{o}");
        }
    }
}
