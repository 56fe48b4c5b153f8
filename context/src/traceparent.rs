//! The W3C `traceparent` text form, parsed strictly to the specification.
//!
//! `version "-" trace-id "-" parent-id "-" trace-flags`, 55 characters for version `00`. The
//! OpenTelemetry SDK's parser is lenient (it accepts a trailing `-` after version 00, for
//! instance); this one follows the W3C text exactly:
//!
//! - only lowercase hex digits, exact field lengths (2, 32, 16, 2);
//! - version `ff` is invalid; version `00` has exactly four fields;
//! - a higher version is parsed by its first four fields, its flags must be followed by `-` or
//!   the end, and anything shorter than 55 characters is invalid;
//! - leading and trailing spaces and tabs (HTTP optional whitespace) are ignored;
//! - all-zero trace-id or parent-id is invalid; unknown flag bits are accepted and dropped.
//!
//! Output is always version `00`, lowercase, with the known flags only. Neither direction
//! allocates except [`TraceContext::to_traceparent`], which returns a `String`.

use crate::error::{Field, ParseError};
use crate::TraceContext;

/// Length of a version-00 `traceparent` value.
pub const TRACEPARENT_LEN: usize = 55;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Value of a lowercase hex digit, or `None` (uppercase is not a hex digit here).
#[inline]
const fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Decodes the `N`-byte field that starts at `start`: `2 * N` lowercase hex digits followed by
/// a `-` or the end of input (whichever `last` allows is checked by the caller).
fn field<const N: usize>(b: &[u8], start: usize, which: Field) -> Result<[u8; N], ParseError> {
    let mut out = [0u8; N];
    let digits = 2 * N;
    for i in 0..digits {
        let pos = start + i;
        let Some(&c) = b.get(pos) else {
            return Err(ParseError::FieldLength {
                field: which,
                expected: digits,
                found: i,
            });
        };
        let Some(v) = hex_value(c) else {
            if c == b'-' {
                return Err(ParseError::FieldLength {
                    field: which,
                    expected: digits,
                    found: i,
                });
            }
            return Err(ParseError::NotLowercaseHex {
                field: which,
                found: char_at(b, pos),
                offset: pos,
            });
        };
        out[i / 2] = (out[i / 2] << 4) | v;
    }
    // A field that runs on with more hex digits is too long, not a missing delimiter.
    let extra = b[start + digits..]
        .iter()
        .take_while(|&&c| hex_value(c).is_some())
        .count();
    if extra > 0 {
        return Err(ParseError::FieldLength {
            field: which,
            expected: digits,
            found: digits + extra,
        });
    }
    Ok(out)
}

/// The character that starts at byte `pos` (which may be inside a multi-byte UTF-8 sequence of
/// a `&str`; then the replacement character is reported).
fn char_at(b: &[u8], pos: usize) -> char {
    core::str::from_utf8(&b[pos..])
        .ok()
        .and_then(|s| s.chars().next())
        .or_else(|| (b[pos] < 0x80).then_some(b[pos] as char))
        .unwrap_or(char::REPLACEMENT_CHARACTER)
}

fn dash(b: &[u8], pos: usize, after: Field) -> Result<(), ParseError> {
    match b.get(pos) {
        Some(b'-') => Ok(()),
        _ => Err(ParseError::MissingDelimiter { after }),
    }
}

/// Parses a `traceparent` value strictly (see the module docs).
pub fn parse(s: &str) -> Result<TraceContext, ParseError> {
    let b = s.trim_matches([' ', '\t']).as_bytes();
    let [version] = field::<1>(b, 0, Field::Version)?;
    if version == 0xff {
        return Err(ParseError::ForbiddenVersion);
    }
    dash(b, 2, Field::Version)?;
    let trace_id = field::<16>(b, 3, Field::TraceId)?;
    dash(b, 35, Field::TraceId)?;
    let span_id = field::<8>(b, 36, Field::SpanId)?;
    dash(b, 52, Field::SpanId)?;
    let [flags] = field::<1>(b, 53, Field::Flags)?;
    if b.len() > TRACEPARENT_LEN {
        if version == 0 {
            return Err(ParseError::TrailingData {
                extra: b.len() - TRACEPARENT_LEN,
            });
        }
        // A future version may append fields, each introduced by a dash.
        dash(b, TRACEPARENT_LEN, Field::Flags)?;
    }
    if u128::from_ne_bytes(trace_id) == 0 {
        return Err(ParseError::ZeroId {
            field: Field::TraceId,
        });
    }
    TraceContext::new(trace_id, span_id, flags).ok_or(ParseError::ZeroId {
        field: Field::SpanId,
    })
}

/// Encodes `ctx` as a version-00 `traceparent` value into a fixed buffer.
pub fn encode(ctx: &TraceContext) -> [u8; TRACEPARENT_LEN] {
    let mut out = [b'-'; TRACEPARENT_LEN];
    let mut put = |start: usize, bytes: &[u8]| {
        for (i, byte) in bytes.iter().enumerate() {
            out[start + 2 * i] = HEX[usize::from(byte >> 4)];
            out[start + 2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
    };
    put(0, &[0]);
    put(3, &ctx.trace_id());
    put(36, &ctx.span_id());
    put(53, &[ctx.flags()]);
    out
}

impl TraceContext {
    /// Parses a W3C `traceparent` value strictly (see [`crate::traceparent`]).
    ///
    /// ```
    /// use tracebus_context::{TraceContext, ParseError, Field};
    /// let c = TraceContext::from_traceparent(
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    /// assert!(c.is_sampled());
    /// assert_eq!(
    ///     TraceContext::from_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
    ///     Err(ParseError::NotLowercaseHex { field: Field::TraceId, found: 'B', offset: 4 }),
    /// );
    /// ```
    pub fn from_traceparent(s: &str) -> Result<TraceContext, ParseError> {
        parse(s)
    }

    /// This context as a version-00 `traceparent` value: lowercase, known flags only.
    pub fn to_traceparent(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn err(s: &str) -> ParseError {
        parse(s).expect_err(s)
    }

    #[test]
    fn spec_example_round_trips() {
        let c = parse(VALID).unwrap();
        assert_eq!(
            c.trace_id(),
            [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36
            ]
        );
        assert_eq!(
            c.span_id(),
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert!(c.is_sampled());
        assert_eq!(c.to_traceparent(), VALID);
        let unsampled = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        assert!(!unsampled.is_sampled());
    }

    #[test]
    fn whitespace_around_is_accepted() {
        assert_eq!(
            parse(&format!(" \t{VALID}\t ")).unwrap(),
            parse(VALID).unwrap()
        );
        // Inside is not.
        assert!(parse("00-4bf92f3577b34da6a3ce929d0e0e4736 -00f067aa0ba902b7-01").is_err());
    }

    #[test]
    fn unknown_flags_dropped_on_output() {
        let c = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff").unwrap();
        assert_eq!(c.flags(), 0x03);
        assert!(c.to_traceparent().ends_with("-03"));
        let c = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-08").unwrap();
        assert!(!c.is_sampled());
        assert!(c.to_traceparent().ends_with("-00"));
    }

    #[test]
    fn version_rules() {
        assert_eq!(
            err("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ParseError::ForbiddenVersion
        );
        assert_eq!(
            err("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-"),
            ParseError::TrailingData { extra: 1 }
        );
        assert_eq!(
            err("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future"),
            ParseError::TrailingData { extra: 16 }
        );
        // A future version: four fields, then `-` or the end.
        let future =
            parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-the-future")
                .unwrap();
        assert_eq!(future.to_traceparent(), VALID);
        assert_eq!(parse(&VALID.replacen("00", "cc", 1)).unwrap(), future);
        assert_eq!(
            err("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09.what"),
            ParseError::MissingDelimiter {
                after: Field::Flags
            }
        );
        assert_eq!(
            err("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"),
            ParseError::FieldLength {
                field: Field::Flags,
                expected: 2,
                found: 1
            }
        );
        assert_eq!(
            err("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-091"),
            ParseError::FieldLength {
                field: Field::Flags,
                expected: 2,
                found: 3
            }
        );
    }

    #[test]
    fn field_errors_name_the_field() {
        assert_eq!(
            err("0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ParseError::FieldLength {
                field: Field::Version,
                expected: 2,
                found: 1
            }
        );
        assert_eq!(
            err("000-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ParseError::FieldLength {
                field: Field::Version,
                expected: 2,
                found: 3
            }
        );
        assert_eq!(
            err("0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ParseError::NotLowercaseHex {
                field: Field::Version,
                found: 'g',
                offset: 1
            }
        );
        assert_eq!(
            err("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"),
            ParseError::FieldLength {
                field: Field::TraceId,
                expected: 32,
                found: 31
            }
        );
        assert_eq!(
            err("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01"),
            ParseError::FieldLength {
                field: Field::SpanId,
                expected: 16,
                found: 15
            }
        );
        assert_eq!(
            err("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067aa0ba902b7-01"),
            ParseError::NotLowercaseHex {
                field: Field::SpanId,
                found: 'F',
                offset: 38
            }
        );
        assert_eq!(
            err("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A"),
            ParseError::NotLowercaseHex {
                field: Field::Flags,
                found: 'A',
                offset: 54
            }
        );
        assert_eq!(
            err("00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01"),
            ParseError::MissingDelimiter {
                after: Field::TraceId
            }
        );
        assert_eq!(
            err("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            ParseError::ZeroId {
                field: Field::TraceId
            }
        );
        assert_eq!(
            err("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            ParseError::ZeroId {
                field: Field::SpanId
            }
        );
        assert_eq!(
            err(""),
            ParseError::FieldLength {
                field: Field::Version,
                expected: 2,
                found: 0
            }
        );
        assert_eq!(
            err("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"),
            ParseError::MissingDelimiter {
                after: Field::SpanId
            }
        );
        // Multi-byte characters are reported, not split.
        assert_eq!(
            err("00-4bf92f3577b34da6a3ce929d0e0e473é-00f067aa0ba902b7-01"),
            ParseError::NotLowercaseHex {
                field: Field::TraceId,
                found: 'é',
                offset: 34
            }
        );
    }
}
