//! The NATS headers the bridge writes and reads: `traceparent` out, and the classification of
//! an incoming message's trace header into one outcome that the stats count.
//!
//! Export writes a strict version-00 `traceparent` for sampled messages only; unsampled
//! messages get no trace header at all (in JetStream mode they still carry `Nats-Msg-Id`).
//!
//! Import looks the header up by name ignoring ASCII case (the Go client, for one, writes
//! `Traceparent`) and refuses, before the fast filter: more than one value under any spelling
//! (duplicated: which one would be the parent?) and values longer than
//! [`MAX_TRACEPARENT_LEN`]. Then the fast filter reads the sampled flag and only sampled values
//! are parsed strictly.

use async_nats::HeaderMap;
use tracebus_context::TraceContext;

use crate::filter::{sampled_flag, SampledFlag, MAX_TRACEPARENT_LEN};

/// Name of the W3C trace-context header.
pub const TRACEPARENT: &str = "traceparent";

/// Name of the JetStream de-duplication header (set by the bridge in JetStream mode).
pub const NATS_MSG_ID: &str = "Nats-Msg-Id";

/// What an incoming message's trace header gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// No `traceparent` header.
    Absent,
    /// More than one `traceparent` value: no context.
    Duplicated,
    /// A value longer than [`MAX_TRACEPARENT_LEN`]: no context, not looked at.
    Oversized,
    /// The fast filter found the sampled flag clear: no context, not parsed.
    Unsampled,
    /// No readable flags, or a sampled value that the strict parser refused: no context.
    Malformed,
    /// A sampled value that parsed strictly: the parent of the bus publish.
    Sampled(TraceContext),
}

impl Incoming {
    /// The context to continue, if any.
    #[inline]
    pub fn context(&self) -> Option<TraceContext> {
        match self {
            Incoming::Sampled(cx) => Some(*cx),
            _ => None,
        }
    }
}

/// The single `traceparent` value of `headers`, or why there is none.
#[inline]
fn traceparent_value(headers: &HeaderMap) -> Result<&str, Incoming> {
    let mut found = None;
    let mut count = 0usize;
    for (name, values) in headers.iter() {
        let name: &str = name.as_ref();
        if name.eq_ignore_ascii_case(TRACEPARENT) {
            count += values.len();
            found = values.first();
        }
    }
    match (count, found) {
        (1, Some(v)) => Ok(v.as_str()),
        (0, _) | (_, None) => Err(Incoming::Absent),
        _ => Err(Incoming::Duplicated),
    }
}

/// Classifies the trace header of an incoming message: the fast filter first, the strict
/// parse only for sampled values.
///
/// ```
/// use async_nats::HeaderMap;
/// use tracebus_nats::headers::{classify, Incoming};
/// let mut h = HeaderMap::new();
/// h.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
/// assert_eq!(classify(Some(&h)), Incoming::Unsampled);
/// h.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// assert!(matches!(classify(Some(&h)), Incoming::Sampled(_)));
/// assert_eq!(classify(None), Incoming::Absent);
/// ```
pub fn classify(headers: Option<&HeaderMap>) -> Incoming {
    let Some(headers) = headers else {
        return Incoming::Absent;
    };
    let value = match traceparent_value(headers) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    if value.len() > MAX_TRACEPARENT_LEN {
        return Incoming::Oversized;
    }
    match sampled_flag(value) {
        SampledFlag::Unsampled => Incoming::Unsampled,
        SampledFlag::Malformed => Incoming::Malformed,
        SampledFlag::Sampled => match TraceContext::from_traceparent(value) {
            // The flag was read from the same bytes the parser read, so this holds; a parser
            // that disagreed would only cost a dropped context.
            Ok(cx) if cx.is_sampled() => Incoming::Sampled(cx),
            _ => Incoming::Malformed,
        },
    }
}

/// The headers of an exported message: `traceparent` for a sampled context, `Nats-Msg-Id`
/// when given; `None` when there is nothing to carry (the message goes without headers).
pub fn outgoing(cx: Option<&TraceContext>, msg_id: Option<&str>) -> Option<HeaderMap> {
    if cx.is_none() && msg_id.is_none() {
        return None;
    }
    let mut headers = HeaderMap::new();
    if let Some(cx) = cx.filter(|cx| cx.is_sampled()) {
        let text = tracebus_context::traceparent::encode(cx);
        // `encode` writes ASCII hex and dashes only.
        let text = core::str::from_utf8(&text).unwrap_or_default();
        headers.insert(TRACEPARENT, text);
    }
    if let Some(id) = msg_id {
        headers.insert(NATS_MSG_ID, id);
    }
    (!headers.is_empty()).then_some(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn with(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, *v);
        }
        h
    }

    #[test]
    fn sampled_round_trip() {
        let cx = TraceContext::from_traceparent(V).unwrap();
        let h = outgoing(Some(&cx), None).unwrap();
        assert_eq!(h.get(TRACEPARENT).unwrap().as_str(), V);
        assert_eq!(classify(Some(&h)), Incoming::Sampled(cx));
        // Any spelling of the name.
        assert_eq!(
            classify(Some(&with(&[("Traceparent", V)]))),
            Incoming::Sampled(cx)
        );
    }

    #[test]
    fn unsampled_context_writes_no_header() {
        let cx = TraceContext::from_traceparent(&V.replace("-01", "-00")).unwrap();
        assert!(outgoing(Some(&cx), None).is_none());
        assert!(outgoing(None, None).is_none());
        let h = outgoing(Some(&cx), Some("id-1")).unwrap();
        assert!(h.get(TRACEPARENT).is_none());
        assert_eq!(h.get(NATS_MSG_ID).unwrap().as_str(), "id-1");
    }

    #[test]
    fn hostile_values() {
        assert_eq!(classify(Some(&HeaderMap::new())), Incoming::Absent);
        assert_eq!(
            classify(Some(&with(&[("traceparent", V), ("traceparent", V)]))),
            Incoming::Duplicated
        );
        assert_eq!(
            classify(Some(&with(&[("traceparent", V), ("TRACEPARENT", V)]))),
            Incoming::Duplicated
        );
        let long = format!("{V}-{}", "a".repeat(10 * 1024));
        assert_eq!(
            classify(Some(&with(&[("traceparent", &long)]))),
            Incoming::Oversized
        );
        for bad in [
            V.to_uppercase(),
            V.replacen("00", "ff", 1),
            V.replace("4bf92f3577b34da6a3ce929d0e0e4736", &"0".repeat(32)),
            format!("{V}-"),
            "garbage".to_owned(),
        ] {
            assert_eq!(
                classify(Some(&with(&[("traceparent", &bad)]))),
                Incoming::Malformed,
                "{bad}"
            );
        }
        assert_eq!(
            classify(Some(&with(&[("traceparent", &V.replace("-01", "-00"))]))),
            Incoming::Unsampled
        );
    }
}
