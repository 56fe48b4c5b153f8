//! The invariants every fuzz target checks, one function per parser.
//!
//! Each function takes arbitrary bytes and panics (which libFuzzer reports as a crash, with the
//! input saved) if tracebus-context breaks a promise on them:
//!
//! - no parser panics on any input;
//! - accepted input round-trips: re-encoding what was parsed and parsing it again gives the
//!   same context, and the encoding is the input's own (up to what the format lets a reader
//!   drop: unknown flag bits, a future version's extra fields, padding);
//! - rejected input gets a typed [`ParseError`] whose details are true of the input;
//! - the fast filter ([`is_sampled`]) agrees with the full decode ([`header_context`]).

use tracebus_context::binary::W3C_BINARY_LEN;
use tracebus_context::header::{FLAGS_OFFSET, HEADER_LEN, INVALID_VERSION};
use tracebus_context::traceparent::TRACEPARENT_LEN;
use tracebus_context::{
    header_context, is_sampled, ParseError, TraceContext, TraceHeader, KNOWN_FLAGS,
};
use zerocopy::IntoBytes;

/// A rejection must be displayable and name something true about the input.
fn check_error(err: &ParseError, input_len: usize) {
    assert!(!err.to_string().is_empty());
    match *err {
        ParseError::TooShort { len, min } => assert!(len < min && len <= input_len),
        ParseError::TrailingData { extra } => assert!(extra > 0 && extra < input_len),
        ParseError::NotLowercaseHex { offset, .. } => assert!(offset < input_len),
        ParseError::UnknownFieldId {
            offset,
            expected,
            found,
            ..
        } => assert!(offset < input_len && expected != found),
        _ => {}
    }
}

/// `traceparent` text: [`TraceContext::from_traceparent`] on any UTF-8 string.
pub fn check_traceparent(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    match TraceContext::from_traceparent(text) {
        Ok(ctx) => {
            let encoded = ctx.to_traceparent();
            assert_eq!(encoded.len(), TRACEPARENT_LEN);
            assert_eq!(TraceContext::from_traceparent(&encoded), Ok(ctx));
            // The input, less surrounding spaces/tabs, is the encoding but for the version, the
            // flag bits a version-00 reader drops and a future version's trailing fields.
            let trimmed = text.trim_matches([' ', '\t']).as_bytes();
            assert!(trimmed.len() >= TRACEPARENT_LEN);
            assert_eq!(&trimmed[2..53], &encoded.as_bytes()[2..53]);
            let flags = u8::from_str_radix(&text.trim_matches([' ', '\t'])[53..55], 16).unwrap();
            assert_eq!(ctx.flags(), flags & KNOWN_FLAGS);
            if &trimmed[..2] == b"00" {
                assert_eq!(trimmed.len(), TRACEPARENT_LEN);
            }
        }
        Err(err) => check_error(&err, text.len()),
    }
}

/// The 29-byte W3C binary form: [`TraceContext::from_w3c_binary`] on any bytes.
pub fn check_binary(data: &[u8]) {
    match TraceContext::from_w3c_binary(data) {
        Ok(ctx) => {
            let encoded = ctx.to_w3c_binary();
            assert_eq!(TraceContext::from_w3c_binary(&encoded), Ok(ctx));
            // Field ids and ids are the input's; version and padding are not kept.
            assert_eq!(&data[1..28], &encoded[1..28]);
            assert_eq!(ctx.flags(), data[28] & KNOWN_FLAGS);
            assert_ne!(data[0], 0xff);
        }
        Err(err) => check_error(&err, data.len()),
    }
    assert!(data.len() >= W3C_BINARY_LEN || TraceContext::from_w3c_binary(data).is_err());
}

/// Raw header bytes: the normalization point ([`header_context`]) on any bytes.
pub fn check_header(data: &[u8]) {
    let decoded = header_context(data);
    let Some(ctx) = decoded else {
        // "No context" has a reason in the bytes: too short, version 0xff or a zero id.
        if data.len() >= HEADER_LEN {
            let h = TraceHeader::ref_from_prefix(data).unwrap();
            assert!(h.version == INVALID_VERSION || h.trace_id == [0; 16] || h.span_id == [0; 8]);
        }
        return;
    };
    // A header is a view: it keeps the ids, and what the writer writes back decodes the same.
    let header = TraceHeader::ref_from_prefix(data).unwrap();
    assert_eq!(header.trace_id, ctx.trace_id());
    assert_eq!(header.span_id, ctx.span_id());
    assert_eq!(ctx.flags(), header.flags & KNOWN_FLAGS);
    let rewritten = TraceHeader::from_context(Some(&ctx));
    assert_eq!(header_context(rewritten.as_bytes()), Some(ctx));
    // And so does every other form of the same context.
    assert_eq!(TraceContext::from_w3c_binary(&ctx.to_w3c_binary()), Ok(ctx));
    assert_eq!(
        TraceContext::from_traceparent(&ctx.to_traceparent()),
        Ok(ctx)
    );
}

/// The fast filter: [`is_sampled`] against the full decode, on raw bytes and on what the
/// writer writes for whatever they decode to.
pub fn check_filter(data: &[u8]) {
    let fast = is_sampled(data);
    // It reads byte 25 and nothing else.
    assert_eq!(
        fast,
        data.len() >= HEADER_LEN && data[FLAGS_OFFSET] & 1 == 1
    );
    let decoded = header_context(data);
    if let Some(ctx) = decoded {
        // Where the full decode finds a context, the filter agrees with it.
        assert_eq!(fast, ctx.is_sampled());
    }
    // Every header the writer produces decodes to exactly what the filter says.
    let written = TraceHeader::from_context(decoded.as_ref());
    assert_eq!(
        is_sampled(written.as_bytes()),
        header_context(written.as_bytes()).is_some_and(|c| c.is_sampled())
    );
    assert_eq!(written.is_sampled(), is_sampled(written.as_bytes()));
}
