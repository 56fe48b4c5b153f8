//! The fast filter at the door: is an incoming `traceparent` value sampled?
//!
//! It reads only the last field (the trace-flags) of the value: its position, its two
//! lowercase hex digits and what follows them. No field is decoded, nothing is built, the ids
//! are not looked at. Only a value it calls [`SampledFlag::Sampled`] goes on to the strict
//! parser ([`tracebus_context::TraceContext::from_traceparent`]); an unsampled one costs these
//! few byte checks and nothing more, which is the point: most messages are not sampled, and
//! unpacking context was most of the cost of a hop in the field reports this design follows.
//!
//! The filter is not a validator. A value whose flags look fine but whose ids are garbage is
//! called sampled here and refused by the strict parser; a malformed value whose last two
//! characters read `00` is called unsampled and never parsed (it gives no context either way).

use tracebus_context::traceparent::TRACEPARENT_LEN;

/// Longest `traceparent` value the bridge looks at; longer ones are refused before the filter
/// (a version-00 value is 55 characters; later versions may append fields, this leaves room).
pub const MAX_TRACEPARENT_LEN: usize = 512;

/// What the fast filter read from a `traceparent` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampledFlag {
    /// The sampled bit is set: worth a strict parse.
    Sampled,
    /// The flags field is well placed and the sampled bit is clear.
    Unsampled,
    /// No readable flags field where a `traceparent` has one.
    Malformed,
}

/// Value of a lowercase hex digit (the W3C text allows no uppercase).
#[inline]
const fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// The sampled flag of a `traceparent` value, from its last field alone.
///
/// Spaces and tabs around the value are skipped (as the strict parser does). The flags are
/// the two characters at offset 53, after a `-` at 52; version 00 ends there, a later version
/// continues with `-`.
///
/// ```
/// use tracebus_nats::filter::{sampled_flag, SampledFlag};
/// let v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// assert_eq!(sampled_flag(v), SampledFlag::Sampled);
/// assert_eq!(sampled_flag(&v.replace("-01", "-00")), SampledFlag::Unsampled);
/// assert_eq!(sampled_flag(&v.replace("-01", "-0A")), SampledFlag::Malformed);
/// assert_eq!(sampled_flag("sampled please"), SampledFlag::Malformed);
/// ```
#[inline]
pub fn sampled_flag(value: &str) -> SampledFlag {
    let mut b = value.as_bytes();
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    if b.len() < TRACEPARENT_LEN
        || b[TRACEPARENT_LEN - 3] != b'-'
        || (b.len() > TRACEPARENT_LEN && b[TRACEPARENT_LEN] != b'-')
    {
        return SampledFlag::Malformed;
    }
    match (hex(b[TRACEPARENT_LEN - 2]), hex(b[TRACEPARENT_LEN - 1])) {
        (Some(_), Some(low)) if low & 1 == 1 => SampledFlag::Sampled,
        (Some(_), Some(_)) => SampledFlag::Unsampled,
        _ => SampledFlag::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn reads_only_the_flags() {
        assert_eq!(sampled_flag(V), SampledFlag::Sampled);
        assert_eq!(sampled_flag(&V.replace("-01", "-03")), SampledFlag::Sampled);
        assert_eq!(
            sampled_flag(&V.replace("-01", "-02")),
            SampledFlag::Unsampled
        );
        assert_eq!(sampled_flag(&V.replace("-01", "-ff")), SampledFlag::Sampled);
        // The ids are not looked at: the strict parser refuses this one later.
        let upper_ids = V.to_uppercase();
        assert_eq!(sampled_flag(&upper_ids), SampledFlag::Sampled);
    }

    #[test]
    fn whitespace_and_future_versions() {
        assert_eq!(sampled_flag(&format!(" \t{V}\t ")), SampledFlag::Sampled);
        assert_eq!(sampled_flag(&format!("{V}-future")), SampledFlag::Sampled);
        assert_eq!(sampled_flag(&format!("{V}x")), SampledFlag::Malformed);
    }

    #[test]
    fn malformed_flags() {
        for bad in [
            "",
            "00",
            &V[..54],
            &V.replace("-01", "-0A"),
            &V.replace("-01", "-1g"),
            &V.replace("b7-01", "b7_01"),
            &"é".repeat(40),
        ] {
            assert_eq!(sampled_flag(bad), SampledFlag::Malformed, "{bad:?}");
        }
    }
}
