//! Turning [`SpanRecord`]s into OpenTelemetry `SpanData`, on the exporter thread.
//!
//! Per record: ticks become wall-clock times through the converter's [`WallClock`] anchor
//! (renewed every second by the exporter thread); the topic index becomes the span name and `messaging.destination.name`
//! through the bus's name lookup, cached per topic on this thread (the lookup is called once
//! per topic, not per span); the attributes of the current messaging semantic conventions are
//! built into one exact-size `Vec`. Span names are `Cow<'static, str>` in `SpanData`, so each
//! distinct name is leaked once per process (up to [`MAX_INTERNED_NAMES`], a few hundred KiB)
//! and borrowed by every span after; past the cap a span's name is an owned copy (an
//! allocation per span, still correct); so is each topic name, for
//! `messaging.destination.name` (past the cap it shares the registry's `Arc<str>`).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use super::clock::WallClock;
use super::record::{Operation, Outcome, SpanRecord};

/// The bus's topic registry as the exporter sees it: a topic's dense index to its name, or
/// `None` for an index it does not know.
pub(crate) type TopicNames = Arc<dyn Fn(u32) -> Option<Arc<str>> + Send + Sync>;

/// `messaging.system` of every span.
pub const MESSAGING_SYSTEM: &str = "tracebus";

/// Distinct span names leaked for the life of the process (each a few dozen bytes).
pub(crate) const MAX_INTERNED_NAMES: usize = 8192;

/// Topic indices below this are cached in a `Vec`; others in a `HashMap`.
const DENSE_TOPICS: u32 = 1 << 16;

/// Every interned span name of the process.
static INTERNED: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);

/// `name` as a `'static` string, leaked once per process; owned past [`MAX_INTERNED_NAMES`].
fn intern(name: String) -> Cow<'static, str> {
    let mut set = INTERNED.lock().unwrap_or_else(PoisonError::into_inner);
    let set = set.get_or_insert_with(HashSet::new);
    if let Some(&s) = set.get(name.as_str()) {
        return Cow::Borrowed(s);
    }
    if set.len() >= MAX_INTERNED_NAMES {
        return Cow::Owned(name);
    }
    let s: &'static str = Box::leak(name.into_boxed_str());
    set.insert(s);
    Cow::Borrowed(s)
}

/// The names of one topic's spans.
#[derive(Debug, Clone)]
struct TopicStrings {
    /// `publish <topic>`.
    publish: Cow<'static, str>,
    /// `process <topic>`.
    process: Cow<'static, str>,
    /// The topic name, for `messaging.destination.name`.
    destination: StringValue,
}

impl TopicStrings {
    /// The names of the topic called `name`; `shared` is the registry's copy of it.
    fn new(name: &str, shared: Arc<str>) -> TopicStrings {
        // A `'static` destination costs no reference count per span; past the cap, the
        // registry's `Arc` is shared instead.
        let destination = match intern(name.to_string()) {
            Cow::Borrowed(s) => StringValue::from(s),
            Cow::Owned(_) => StringValue::from(shared),
        };
        TopicStrings {
            publish: intern(format!("publish {name}")),
            process: intern(format!("process {name}")),
            destination,
        }
    }
}

/// Makes `SpanData` from records; owned by the exporter thread.
pub(crate) struct Converter {
    /// Ticks to wall-clock times (its anchor renewed every second by the exporter thread).
    clock: WallClock,
    /// The bus's topic registry.
    names: TopicNames,
    /// The instrumentation scope of every span.
    scope: InstrumentationScope,
    /// Names of topics below [`DENSE_TOPICS`] seen so far, by index; `None` for not yet looked
    /// up (or not known by the registry at the last look).
    dense: Vec<Option<TopicStrings>>,
    /// Names of the other topics seen so far.
    sparse: HashMap<u32, TopicStrings>,
}

impl Converter {
    /// A converter with a clock anchor, the bus's name lookup and the scope.
    pub(crate) fn new(clock: WallClock, names: TopicNames, scope: InstrumentationScope) -> Self {
        Converter {
            clock,
            names,
            scope,
            dense: Vec::new(),
            sparse: HashMap::new(),
        }
    }

    /// Renews the tick-to-wall-clock anchor if it is due (see `clock.rs`).
    pub(crate) fn reanchor_if_due(&mut self) {
        self.clock.reanchor_if_due();
    }

    /// The names of `topic`'s spans, looked up once and then cached. A topic the registry does
    /// not know is named `#<index>` and looked up again next time.
    fn topic(&mut self, topic: u32) -> Cow<'_, TopicStrings> {
        let dense = topic < DENSE_TOPICS;
        let known = if dense {
            self.dense.get(topic as usize).is_some_and(Option::is_some)
        } else {
            self.sparse.contains_key(&topic)
        };
        if !known {
            let Some(name) = (self.names)(topic) else {
                let name = format!("#{topic}");
                return Cow::Owned(TopicStrings {
                    publish: Cow::Owned(format!("publish {name}")),
                    process: Cow::Owned(format!("process {name}")),
                    destination: StringValue::from(name),
                });
            };
            let strings = TopicStrings::new(&name, Arc::clone(&name));
            if dense {
                let i = topic as usize;
                if self.dense.len() <= i {
                    self.dense.resize(i + 1, None);
                }
                self.dense[i] = Some(strings);
            } else {
                self.sparse.insert(topic, strings);
            }
        }
        Cow::Borrowed(if dense {
            self.dense[topic as usize].as_ref().expect("cached above")
        } else {
            &self.sparse[&topic]
        })
    }

    /// The `SpanData` of one record.
    #[inline]
    pub(crate) fn convert(&mut self, r: &SpanRecord) -> SpanData {
        let start_time = self.clock.system_time(r.start);
        // The same tick always gives the same time (the end of one handler is the start of
        // the next); an end before the start (two cores' TSCs a little apart) is clamped.
        let end_time = self.clock.system_time(r.end.max(r.start));
        let ring_wait = (r.enqueued != SpanRecord::NO_TICK)
            .then(|| self.clock.nanos_between(r.enqueued, r.start));
        let scope = self.scope.clone();
        let topic = self.topic(r.topic);
        let (name, kind, operation_type, operation_name) = match r.operation {
            Operation::Publish => (topic.publish.clone(), SpanKind::Producer, "send", "publish"),
            Operation::Process => (
                topic.process.clone(),
                SpanKind::Consumer,
                "process",
                "process",
            ),
        };
        let with_fanout = r.operation == Operation::Publish || r.fanout > 0;
        let with_rate = !r.sampling_rate.is_nan();
        let destination = &topic.destination;
        let rate = || KeyValue::new("tracebus.sampling.rate", r.sampling_rate);
        let fanout = || KeyValue::new("tracebus.fanout", i64::from(r.fanout));
        let batch = || KeyValue::new("messaging.batch.message_count", i64::from(r.batch_count));
        let wait = |ns: u64| {
            KeyValue::new(
                "tracebus.ring.wait_ns",
                i64::try_from(ns).unwrap_or(i64::MAX),
            )
        };
        // The attributes every span has, then `extra`, in one `vec!`: its elements are written
        // straight into the allocation, where a `push` builds each on the stack and copies it
        // (the copies were a fifth of the exporter's time per span).
        macro_rules! attributes {
            ($($extra:expr),*) => {
                vec![
                    KeyValue::new("messaging.system", MESSAGING_SYSTEM),
                    KeyValue::new("messaging.destination.name", Value::String(destination.clone())),
                    KeyValue::new("messaging.operation.type", operation_type),
                    KeyValue::new("messaging.operation.name", operation_name),
                    $($extra),*
                ]
            };
        }
        let attributes = match (with_rate, with_fanout, r.batch_count > 0, ring_wait) {
            // The shapes the bus records: a publish, a batch publish, a process span.
            (true, true, false, None) => attributes![rate(), fanout()],
            (true, true, true, None) => attributes![rate(), fanout(), batch()],
            (false, false, false, Some(ns)) => attributes![wait(ns)],
            (true, false, false, Some(ns)) => attributes![rate(), wait(ns)],
            // Any other: the same attributes, pushed one by one.
            (with_rate, with_fanout, with_batch, ring_wait) => {
                let mut a = attributes![];
                a.reserve_exact(
                    usize::from(with_rate)
                        + usize::from(with_fanout)
                        + usize::from(with_batch)
                        + usize::from(ring_wait.is_some()),
                );
                if with_rate {
                    a.push(rate());
                }
                if with_fanout {
                    a.push(fanout());
                }
                if with_batch {
                    a.push(batch());
                }
                if let Some(ns) = ring_wait {
                    a.push(wait(ns));
                }
                a
            }
        };
        let status = match r.outcome {
            Outcome::Ok => Status::Unset,
            Outcome::HandlerPanicked => Status::error("handler panicked"),
        };
        SpanData {
            span_context: SpanContext::new(
                TraceId::from_bytes(r.trace_id),
                SpanId::from_bytes(r.span_id),
                TraceFlags::new(r.flags),
                false,
                TraceState::NONE,
            ),
            parent_span_id: SpanId::from_bytes(r.parent_span_id),
            parent_span_is_remote: r.parent_is_remote,
            span_kind: kind,
            name,
            start_time,
            end_time,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: scope,
        }
    }
}

impl std::fmt::Debug for Converter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Converter")
            .field("clock", &self.clock)
            .field("scope", &self.scope.name())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    use super::*;
    use crate::spans::clock::now;
    use crate::spans::record::Parent;
    use std::time::{Duration, SystemTime};
    use tracebus_context::TraceContext;

    fn names() -> TopicNames {
        Arc::new(|t| (t == 3).then(|| Arc::from("orders")))
    }

    fn attr<'a>(s: &'a SpanData, key: &str) -> Option<&'a Value> {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn a_publish_record_becomes_a_producer_span() {
        let mut c = Converter::new(
            WallClock::calibrate(),
            names(),
            InstrumentationScope::builder("t").build(),
        );
        let ctx = TraceContext::new([1; 16], [2; 8], 0x03).unwrap();
        let t0 = now();
        let r = SpanRecord::publish(&ctx, None, 3, t0, t0 + 1000)
            .with_fanout(100)
            .with_sampling_rate(0.1);
        let s = c.convert(&r);
        assert_eq!(s.name, "publish orders");
        assert!(matches!(s.name, Cow::Borrowed(_)), "interned");
        assert_eq!(s.span_kind, SpanKind::Producer);
        assert_eq!(s.span_context.trace_id(), TraceId::from_bytes([1; 16]));
        assert_eq!(s.span_context.span_id(), SpanId::from_bytes([2; 8]));
        assert!(s.span_context.is_sampled());
        assert_eq!(s.parent_span_id, SpanId::INVALID);
        assert_eq!(s.status, Status::Unset);
        assert_eq!(s.instrumentation_scope.name(), "t");
        assert!(s.start_time <= s.end_time);
        let off = SystemTime::now()
            .duration_since(s.start_time)
            .unwrap_or_else(|e| e.duration());
        assert!(off < Duration::from_secs(1), "{off:?} from now");
        assert_eq!(attr(&s, "messaging.system"), Some(&Value::from("tracebus")));
        assert_eq!(
            attr(&s, "messaging.destination.name"),
            Some(&Value::from("orders"))
        );
        assert_eq!(
            attr(&s, "messaging.operation.type"),
            Some(&Value::from("send"))
        );
        assert_eq!(
            attr(&s, "messaging.operation.name"),
            Some(&Value::from("publish"))
        );
        assert_eq!(attr(&s, "tracebus.fanout"), Some(&Value::I64(100)));
        assert_eq!(attr(&s, "tracebus.sampling.rate"), Some(&Value::F64(0.1)));
        assert_eq!(attr(&s, "messaging.batch.message_count"), None);
        assert_eq!(attr(&s, "tracebus.ring.wait_ns"), None);
        assert_eq!(s.attributes.len(), 6);

        let b = c.convert(&r.with_batch(8));
        assert_eq!(
            attr(&b, "messaging.batch.message_count"),
            Some(&Value::I64(8))
        );
        let onward = SpanRecord::publish(&ctx, Some(Parent::local([9; 8])), 3, t0, t0);
        let o = c.convert(&onward);
        assert_eq!(o.parent_span_id, SpanId::from_bytes([9; 8]));
        assert!(!o.parent_span_is_remote);
    }

    #[test]
    fn a_process_record_becomes_a_consumer_span() {
        let mut c = Converter::new(
            WallClock::calibrate(),
            names(),
            InstrumentationScope::builder("t").build(),
        );
        let header = TraceContext::new([1; 16], [2; 8], 0x01).unwrap();
        let t0 = now();
        let r = SpanRecord::process(&header, [5; 8], 3, t0 + 3000, t0 + 2000)
            .with_enqueued(t0)
            .with_handler_panicked();
        let s = c.convert(&r);
        assert_eq!(s.name, "process orders");
        assert_eq!(s.span_kind, SpanKind::Consumer);
        assert_eq!(s.parent_span_id, SpanId::from_bytes([2; 8]));
        assert!(s.parent_span_is_remote);
        assert_eq!(
            s.start_time, s.end_time,
            "an end before the start is clamped"
        );
        assert_eq!(s.status, Status::error("handler panicked"));
        assert_eq!(
            attr(&s, "messaging.operation.type"),
            Some(&Value::from("process"))
        );
        assert_eq!(attr(&s, "tracebus.fanout"), None);
        assert_eq!(attr(&s, "tracebus.sampling.rate"), None);
        match attr(&s, "tracebus.ring.wait_ns") {
            Some(Value::I64(ns)) => assert!(*ns > 0 && *ns < 1_000_000, "{ns}"),
            other => panic!("ring wait {other:?}"),
        }
    }

    #[test]
    fn unknown_topics_get_a_placeholder_and_are_looked_up_again() {
        let known = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let k = known.clone();
        let lookups = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let l = lookups.clone();
        let names: TopicNames = Arc::new(move |t| {
            l.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            k.load(std::sync::atomic::Ordering::Relaxed)
                .then(|| Arc::from(format!("t{t}")))
        });
        let mut c = Converter::new(
            WallClock::calibrate(),
            names,
            InstrumentationScope::builder("t").build(),
        );
        let ctx = TraceContext::new([1; 16], [2; 8], 1).unwrap();
        let big = DENSE_TOPICS + 5;
        let r = SpanRecord::publish(&ctx, None, big, 1, 2);
        assert_eq!(c.convert(&r).name, format!("publish #{big}"));
        known.store(true, std::sync::atomic::Ordering::Relaxed);
        for _ in 0..3 {
            assert_eq!(c.convert(&r).name, format!("publish t{big}"));
            let small = SpanRecord::process(&ctx, [3; 8], 1, 1, 2);
            assert_eq!(c.convert(&small).name, "process t1");
        }
        // Once before the name was known, then once per topic.
        assert_eq!(lookups.load(std::sync::atomic::Ordering::Relaxed), 3);
    }

    #[test]
    fn names_are_interned_once() {
        let first = intern("cap test name".to_string());
        assert!(matches!(first, Cow::Borrowed(_)));
        let again = intern("cap test name".to_string());
        assert_eq!(first.as_ptr(), again.as_ptr(), "interned once");
    }
}
