//! `ParseError`: why a `traceparent` string or a W3C binary context was rejected.
//!
//! Every rejection names the field that was wrong and what was wrong with it, so a log line is
//! enough to find the bad peer. Parsing never panics; it returns one of these.

use core::fmt;

/// A field of a trace context, as named in the W3C Trace Context specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The version byte (`00` today).
    Version,
    /// The 16-byte trace-id.
    TraceId,
    /// The 8-byte parent-id (span-id).
    SpanId,
    /// The trace-flags byte.
    Flags,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Version => "version",
            Field::TraceId => "trace-id",
            Field::SpanId => "parent-id",
            Field::Flags => "trace-flags",
        })
    }
}

/// Why a trace context could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input is shorter than the shortest valid encoding.
    #[error("trace context too short: {len} bytes, at least {min} required")]
    TooShort {
        /// Length of the input after trimming surrounding spaces and tabs.
        len: usize,
        /// Minimum length of a valid encoding.
        min: usize,
    },
    /// A field has the wrong number of hex digits (text form).
    #[error("{field} must be {expected} lowercase hex digits, found {found}")]
    FieldLength {
        /// The field that was wrong.
        field: Field,
        /// Number of hex digits the specification requires.
        expected: usize,
        /// Number of characters found before the next `-` or the end.
        found: usize,
    },
    /// A field contains a character that is not a lowercase hex digit (text form).
    #[error(
        "{field} contains {found:?} at offset {offset}: only lowercase hex digits are allowed"
    )]
    NotLowercaseHex {
        /// The field that was wrong.
        field: Field,
        /// The offending character.
        found: char,
        /// Its byte offset in the trimmed input.
        offset: usize,
    },
    /// The field separator after `after` is missing or not a `-`.
    #[error("expected '-' after {after}")]
    MissingDelimiter {
        /// The field the separator should follow.
        after: Field,
    },
    /// Version `ff` is forbidden by the specification.
    #[error("version ff is invalid")]
    ForbiddenVersion,
    /// Version `00` has exactly four fields; something followed the trace-flags.
    #[error("version 00 allows nothing after trace-flags, found {extra} more bytes")]
    TrailingData {
        /// Number of bytes after the trace-flags.
        extra: usize,
    },
    /// The trace-id or the span-id is all zeros, which the specification forbids.
    #[error("{field} is all zeros")]
    ZeroId {
        /// The field that was zero.
        field: Field,
    },
    /// The binary form carries a field id where another was expected.
    #[error("binary trace context: expected field id {expected} for {field} at offset {offset}, found {found}")]
    UnknownFieldId {
        /// The field expected at this position.
        field: Field,
        /// Its field id in the binary draft (0, 1 or 2).
        expected: u8,
        /// The byte found instead.
        found: u8,
        /// Byte offset of the field id.
        offset: usize,
    },
}
