//! Property tests: every form round-trips, no input panics, and the fast filter agrees with the
//! full decode.

use proptest::prelude::*;
use tracebus_context::{header_context, is_sampled, ParseError, TraceContext, TraceHeader};
use zerocopy::{FromBytes, IntoBytes};

fn any_context() -> impl Strategy<Value = TraceContext> {
    (any::<[u8; 16]>(), any::<[u8; 8]>(), any::<u8>())
        .prop_filter_map("zero id", |(t, s, f)| TraceContext::new(t, s, f))
}

/// Strings close to valid `traceparent` values, so mutations reach the deep branches.
fn near_traceparent() -> impl Strategy<Value = String> {
    (
        any_context(),
        any::<u8>(),
        0usize..60,
        any::<char>(),
        prop::bool::ANY,
    )
        .prop_map(|(c, version, pos, ch, insert)| {
            let mut s = c.to_traceparent();
            s.replace_range(0..2, &format!("{version:02x}"));
            let pos = pos.min(s.len());
            if s.is_char_boundary(pos) {
                if insert {
                    s.insert(pos, ch);
                } else if pos < s.len() {
                    s.remove(pos);
                }
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn text_round_trips(c in any_context()) {
        let text = c.to_traceparent();
        prop_assert_eq!(text.len(), 55);
        prop_assert!(text.bytes().all(|b| b == b'-' || b.is_ascii_digit() || b.is_ascii_lowercase()));
        prop_assert_eq!(TraceContext::from_traceparent(&text), Ok(c));
    }

    #[test]
    fn binary_round_trips(c in any_context(), padding in prop::collection::vec(any::<u8>(), 0..8)) {
        let mut bytes = c.to_w3c_binary().to_vec();
        bytes.extend_from_slice(&padding);
        prop_assert_eq!(TraceContext::from_w3c_binary(&bytes), Ok(c));
    }

    #[test]
    fn header_round_trips(c in prop::option::of(any_context())) {
        let h = TraceHeader::from_context(c.as_ref());
        let bytes = h.as_bytes();
        prop_assert_eq!(header_context(bytes), c);
        // Every header this crate writes decodes to exactly what the filter says.
        prop_assert_eq!(is_sampled(bytes), c.is_some_and(|c| c.is_sampled()));
        let back = TraceHeader::read_from_bytes(bytes).unwrap();
        prop_assert_eq!(back, h);
    }

    #[test]
    fn filter_agrees_with_decode(bytes in any::<[u8; 26]>()) {
        let decoded = header_context(&bytes);
        if let Some(c) = decoded {
            prop_assert_eq!(c.is_sampled(), is_sampled(&bytes));
        }
        // The filter may say yes without a context, never "no" to a sampled context.
        if !is_sampled(&bytes) {
            prop_assert!(decoded.is_none_or(|c| !c.is_sampled()));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = is_sampled(&bytes);
        let _ = header_context(&bytes);
        if let Ok(c) = TraceContext::from_w3c_binary(&bytes) {
            prop_assert_eq!(&c.to_w3c_binary()[1..], &bytes[1..29]);
        }
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = TraceContext::from_traceparent(s);
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,80}") {
        check_text(&s)?;
    }

    #[test]
    fn mutated_traceparents_are_judged_consistently(s in near_traceparent()) {
        check_text(&s)?;
    }
}

/// Accepted text re-encodes to a canonical value that parses to the same context; rejected text
/// gets an error whose message names a field or the problem.
fn check_text(s: &str) -> Result<(), TestCaseError> {
    match TraceContext::from_traceparent(s) {
        Ok(c) => {
            let trimmed = s.trim_matches([' ', '\t']);
            prop_assert!(trimmed.len() >= 55);
            prop_assert_eq!(&trimmed[3..52], &c.to_traceparent()[3..52]);
            prop_assert_eq!(TraceContext::from_traceparent(&c.to_traceparent()), Ok(c));
        }
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
            if let ParseError::NotLowercaseHex { offset, .. } = e {
                prop_assert!(offset < s.len());
            }
        }
    }
    Ok(())
}
