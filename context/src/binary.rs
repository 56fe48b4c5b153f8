//! The W3C trace-context binary form (the `trace-context-binary` draft).
//!
//! 29 bytes: `version | 0 | trace-id(16) | 1 | span-id(8) | 2 | flags`, where `0`, `1` and `2`
//! are field ids. Bytes after the 29th are padding and ignored. A missing or unknown field id,
//! version `0xff` or a zero id is an error; other versions are read with the same layout (the
//! draft's forward-compatibility rule), and the output is always version 0.

use crate::error::{Field, ParseError};
use crate::TraceContext;

/// Length of the binary form.
pub const W3C_BINARY_LEN: usize = 29;

const TRACE_ID_FIELD: u8 = 0;
const SPAN_ID_FIELD: u8 = 1;
const FLAGS_FIELD: u8 = 2;

fn field_id(b: &[u8], offset: usize, field: Field, expected: u8) -> Result<(), ParseError> {
    match b[offset] {
        id if id == expected => Ok(()),
        found => Err(ParseError::UnknownFieldId {
            field,
            expected,
            found,
            offset,
        }),
    }
}

impl TraceContext {
    /// Parses the W3C binary form (see [`crate::binary`]).
    ///
    /// ```
    /// use tracebus_context::TraceContext;
    /// let c = TraceContext::new([1; 16], [2; 8], 1).unwrap();
    /// let bytes = c.to_w3c_binary();
    /// assert_eq!(bytes[1], 0); // field id of the trace-id
    /// assert_eq!(TraceContext::from_w3c_binary(&bytes), Ok(c));
    /// ```
    pub fn from_w3c_binary(bytes: &[u8]) -> Result<TraceContext, ParseError> {
        if bytes.len() < W3C_BINARY_LEN {
            return Err(ParseError::TooShort {
                len: bytes.len(),
                min: W3C_BINARY_LEN,
            });
        }
        if bytes[0] == 0xff {
            return Err(ParseError::ForbiddenVersion);
        }
        field_id(bytes, 1, Field::TraceId, TRACE_ID_FIELD)?;
        field_id(bytes, 18, Field::SpanId, SPAN_ID_FIELD)?;
        field_id(bytes, 27, Field::Flags, FLAGS_FIELD)?;
        let mut trace_id = [0u8; 16];
        trace_id.copy_from_slice(&bytes[2..18]);
        let mut span_id = [0u8; 8];
        span_id.copy_from_slice(&bytes[19..27]);
        if u128::from_ne_bytes(trace_id) == 0 {
            return Err(ParseError::ZeroId {
                field: Field::TraceId,
            });
        }
        TraceContext::new(trace_id, span_id, bytes[28]).ok_or(ParseError::ZeroId {
            field: Field::SpanId,
        })
    }

    /// This context in the W3C binary form, version 0.
    pub fn to_w3c_binary(&self) -> [u8; W3C_BINARY_LEN] {
        let mut out = [0u8; W3C_BINARY_LEN];
        out[1] = TRACE_ID_FIELD;
        out[2..18].copy_from_slice(&self.trace_id());
        out[18] = SPAN_ID_FIELD;
        out[19..27].copy_from_slice(&self.span_id());
        out[27] = FLAGS_FIELD;
        out[28] = self.flags();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [u8; 29] {
        TraceContext::new([0x11; 16], [0x22; 8], 0x01)
            .unwrap()
            .to_w3c_binary()
    }

    #[test]
    fn layout_and_round_trip() {
        let b = sample();
        assert_eq!(b[0], 0);
        assert_eq!(b[1], 0);
        assert_eq!(&b[2..18], &[0x11; 16]);
        assert_eq!(b[18], 1);
        assert_eq!(&b[19..27], &[0x22; 8]);
        assert_eq!(b[27], 2);
        assert_eq!(b[28], 1);
        let c = TraceContext::from_w3c_binary(&b).unwrap();
        assert_eq!(c.to_w3c_binary(), b);
    }

    #[test]
    fn padding_is_ignored() {
        let mut v = sample().to_vec();
        v.extend_from_slice(&[0xee; 7]);
        assert_eq!(
            TraceContext::from_w3c_binary(&v).unwrap().to_w3c_binary(),
            sample()
        );
    }

    #[test]
    fn errors() {
        let b = sample();
        assert_eq!(
            TraceContext::from_w3c_binary(&b[..28]),
            Err(ParseError::TooShort { len: 28, min: 29 })
        );
        assert_eq!(
            TraceContext::from_w3c_binary(&[]),
            Err(ParseError::TooShort { len: 0, min: 29 })
        );
        let mut bad = b;
        bad[0] = 0xff;
        assert_eq!(
            TraceContext::from_w3c_binary(&bad),
            Err(ParseError::ForbiddenVersion)
        );
        let mut bad = b;
        bad[18] = 7;
        assert_eq!(
            TraceContext::from_w3c_binary(&bad),
            Err(ParseError::UnknownFieldId {
                field: Field::SpanId,
                expected: 1,
                found: 7,
                offset: 18
            })
        );
        let mut bad = b;
        bad[27] = 3;
        assert!(matches!(
            TraceContext::from_w3c_binary(&bad),
            Err(ParseError::UnknownFieldId {
                field: Field::Flags,
                ..
            })
        ));
        let mut bad = b;
        bad[2..18].fill(0);
        assert_eq!(
            TraceContext::from_w3c_binary(&bad),
            Err(ParseError::ZeroId {
                field: Field::TraceId
            })
        );
        let mut bad = b;
        bad[19..27].fill(0);
        assert_eq!(
            TraceContext::from_w3c_binary(&bad),
            Err(ParseError::ZeroId {
                field: Field::SpanId
            })
        );
        let mut future = b;
        future[0] = 3;
        assert_eq!(
            TraceContext::from_w3c_binary(&future)
                .unwrap()
                .to_w3c_binary(),
            b
        );
    }
}
