//! Typed, named topics: several message types on one bus each read in place, the largest
//! types that fit one- and two-line slots, a name reused with another type refused, 100,000
//! topics on one bus, and a topic handle from another bus refused.

mod common;

use std::any::type_name;
use std::mem::{align_of, size_of};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytemuck::{Pod, Zeroable};
use tracebus::slot::PAYLOAD_OFFSET;
use tracebus::{Bus, Lines, Message, Pinning, SlotSize, Topic, TopicError};

use common::{bus, topic};

/// 12 bytes, 4-aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
struct Quote {
    bid: u32,
    ask: u32,
    size: u32,
}

/// 16 bytes, 8-aligned: the whole payload area of a one-line slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
struct Order {
    id: u64,
    price: u64,
}

const _: () = {
    assert!(size_of::<[u8; 3]>() == 3 && align_of::<[u8; 3]>() == 1);
    assert!(size_of::<Quote>() == 12 && align_of::<Quote>() == 4);
    assert!(size_of::<Order>() == 16 && align_of::<Order>() == 8);
};

/// What a handler saw of one message: the payload's bytes, where the payload lay relative to
/// the slot's header, and the topic name.
struct Seen {
    bytes: Vec<u8>,
    /// Address of the payload minus address of the slot's trace header.
    offset: isize,
    /// Payload address modulo the type's alignment.
    misalignment: usize,
    topic: String,
}

fn seen<T: Pod>(m: &Message<'_, T>) -> Seen {
    let payload = m.payload() as *const T as usize;
    let header = m.header() as *const _ as usize;
    Seen {
        bytes: bytemuck::bytes_of(m.payload()).to_vec(),
        offset: payload as isize - header as isize,
        misalignment: payload % align_of::<T>(),
        topic: m.topic().to_owned(),
    }
}

/// Subscribes a handler to `topic` on `worker` that records what it sees.
fn record<S: SlotSize, T: Pod>(
    bus: &Bus<S>,
    worker: usize,
    topic: &Topic<T>,
) -> Arc<Mutex<Vec<Seen>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    bus.subscribe_on(worker, topic, move |m, _| l.lock().unwrap().push(seen(m)))
        .unwrap();
    log
}

/// Every message in `log` was read in place (in its slot, right after the header and
/// metadata, aligned for `T`) on topic `name`, and the payloads are exactly `sent`, in order.
fn assert_in_place<T: Pod>(log: &Mutex<Vec<Seen>>, name: &str, sent: &[T]) {
    let log = log.lock().unwrap();
    assert_eq!(log.len(), sent.len(), "{name}: every message, once");
    for (i, (s, v)) in log.iter().zip(sent).enumerate() {
        assert_eq!(s.topic, name, "{name} #{i}: topic name");
        assert_eq!(
            s.offset, PAYLOAD_OFFSET as isize,
            "{name} #{i}: payload read in place in the slot"
        );
        assert_eq!(s.misalignment, 0, "{name} #{i}: payload aligned");
        assert_eq!(s.bytes, bytemuck::bytes_of(v), "{name} #{i}: exact bytes");
    }
}

#[test]
fn three_message_types_on_one_bus_each_read_in_place_by_its_own_handlers() {
    const N: u32 = 500;
    let bus = bus(2, 16);
    let tags = bus.topic::<[u8; 3]>("tags").unwrap();
    let quotes = bus.topic::<Quote>("quotes").unwrap();
    let orders = bus.topic::<Order>("orders").unwrap();
    // Two handlers per type, one on each worker: all three types share every ring.
    let tag_logs = [record(&bus, 0, &tags), record(&bus, 1, &tags)];
    let quote_logs = [record(&bus, 0, &quotes), record(&bus, 1, &quotes)];
    let order_logs = [record(&bus, 1, &orders), record(&bus, 0, &orders)];
    let sent_tags: Vec<[u8; 3]> = (0..N)
        .map(|i| [i as u8, (i >> 8) as u8, 0xa5 ^ i as u8])
        .collect();
    let sent_quotes: Vec<Quote> = (0..N)
        .map(|i| Quote {
            bid: i,
            ask: !i,
            size: i.wrapping_mul(0x9e37_79b9),
        })
        .collect();
    let sent_orders: Vec<Order> = (0..u64::from(N))
        .map(|i| Order {
            id: u64::MAX - i,
            price: i << 40 | 0xdead_beef,
        })
        .collect();
    let mut p = bus.publisher().unwrap();
    // Interleaved, so each ring carries the three types mixed.
    for i in 0..N as usize {
        assert_eq!(p.publish(&tags, sent_tags[i]).unwrap().fanout, 2);
        assert_eq!(p.publish(&quotes, sent_quotes[i]).unwrap().fanout, 2);
        assert_eq!(p.publish(&orders, sent_orders[i]).unwrap().fanout, 2);
    }
    let report = bus.shutdown();
    assert_eq!(report.published, 3 * u64::from(N));
    assert_eq!(report.delivered, 3 * 2 * u64::from(N));
    assert_eq!(report.handler_panics, 0);
    for log in &tag_logs {
        assert_in_place(log, "tags", &sent_tags);
    }
    for log in &quote_logs {
        assert_in_place(log, "quotes", &sent_quotes);
    }
    for log in &order_logs {
        assert_in_place(log, "orders", &sent_orders);
    }
}

/// Publishes `values` to a new topic of `bus` with one subscriber per worker and checks that
/// each arrives whole, in place.
fn round_trip<S: SlotSize, T: Pod>(bus: Bus<S>, name: &str, values: &[T]) {
    let topic = bus.topic::<T>(name).unwrap();
    let logs: Vec<_> = (0..bus.workers())
        .map(|w| record(&bus, w, &topic))
        .collect();
    let mut p = bus.publisher().unwrap();
    for &v in values {
        assert_eq!(p.publish(&topic, v).unwrap().fanout, bus.workers());
    }
    let report = bus.shutdown();
    assert_eq!(report.handler_panics, 0);
    for log in &logs {
        assert_in_place(log, name, values);
    }
}

#[test]
fn the_largest_type_that_fits_works_on_one_and_two_line_slots() {
    // One more byte (or more than 8-byte alignment) does not compile: see the compile_fail
    // doc test on `Bus::topic`.
    assert_eq!(<Lines<1> as SlotSize>::PAYLOAD_BYTES, 16);
    assert_eq!(<Lines<2> as SlotSize>::PAYLOAD_BYTES, 80);
    let one = || bus(2, 8);
    let two = || {
        Bus::builder()
            .workers(2)
            .capacity(8)
            .pinning(Pinning::Off)
            .slot_size::<Lines<2>>()
            .build()
            .unwrap()
    };
    // Distinct bytes everywhere, so a truncated or shifted message shows.
    let bytes16: Vec<[u8; 16]> = (0..50u8)
        .map(|i| core::array::from_fn(|j| i.wrapping_mul(31) ^ j as u8 ^ 0x80))
        .collect();
    let words2: Vec<[u64; 2]> = (0..50u64).map(|i| [!i, i << 32 | 0x1234]).collect();
    let bytes80: Vec<[u8; 80]> = (0..50u8)
        .map(|i| core::array::from_fn(|j| i.wrapping_mul(17) ^ j as u8 ^ 0x55))
        .collect();
    let words10: Vec<[u64; 10]> = (0..50u64)
        .map(|i| core::array::from_fn(|j| i << 32 | j as u64 | 0xff00_0000_0000_0000))
        .collect();
    round_trip(one(), "16 bytes", &bytes16);
    round_trip(one(), "two words", &words2);
    round_trip(two(), "80 bytes", &bytes80);
    round_trip(two(), "ten words", &words10);
    // Small types on a big-slot bus too.
    round_trip(two(), "tags", &[[1u8, 2, 3], [4, 5, 6]]);
}

#[test]
fn the_same_name_with_another_type_is_refused_naming_both() {
    let bus = bus(1, 8);
    let orders = bus.topic::<Order>("orders").unwrap();
    let again = bus.topic::<Order>("orders").unwrap();
    assert_eq!(orders, again, "same name, same type: the same topic");
    for refused in [
        bus.topic::<u64>("orders").unwrap_err(),
        // Same size as an `Order`, still another type.
        bus.topic::<[u8; 16]>("orders").map(|_| ()).unwrap_err(),
    ] {
        let TopicError::TypeMismatch {
            name,
            existing,
            requested,
        } = &refused
        else {
            panic!("expected TypeMismatch, got {refused:?}");
        };
        assert_eq!(name, "orders");
        assert_eq!(*existing, type_name::<Order>());
        assert_ne!(requested, existing);
        let text = refused.to_string();
        assert!(
            text.contains(existing) && text.contains(requested) && text.contains("orders"),
            "the message names the topic and both types: {text}"
        );
    }
    assert_eq!(
        bus.topic::<u64>("orders"),
        Err(TopicError::TypeMismatch {
            name: "orders".into(),
            existing: type_name::<Order>(),
            requested: "u64",
        })
    );
    assert_eq!(bus.topic::<u64>(""), Err(TopicError::EmptyName));
    // The refusals changed nothing: the topic works through either handle.
    let log = record(&bus, 0, &again);
    let order = Order { id: 7, price: 99 };
    assert_eq!(
        bus.publisher()
            .unwrap()
            .publish(&orders, order)
            .unwrap()
            .fanout,
        1
    );
    bus.shutdown();
    assert_in_place(&log, "orders", &[order]);
}

#[test]
fn a_hundred_thousand_topics_on_one_bus() {
    const TOPICS: usize = 100_000;
    let bus = bus(1, 1024);
    let started = Instant::now();
    let topics: Vec<Topic<u64>> = (0..TOPICS).map(|i| topic(&bus, &format!("t{i}"))).collect();
    for (i, t) in topics.iter().enumerate() {
        assert_eq!(t.index() as usize, i, "dense indices in creation order");
    }
    assert_eq!(topic(&bus, "t99999"), topics[99_999], "found again by name");
    assert_eq!(&*bus.topic_name(&topics[12_345]), "t12345");
    let registered = started.elapsed();
    // One subscriber per topic; the handlers share their counters.
    let delivered = Arc::new(AtomicU64::new(0));
    let wrong = Arc::new(AtomicU64::new(0));
    for (i, t) in topics.iter().enumerate() {
        let (d, w) = (delivered.clone(), wrong.clone());
        bus.subscribe(t, move |m, _| {
            let named = m.topic().strip_prefix('t').and_then(|n| n.parse().ok());
            if *m.payload() != i as u64 || named != Some(i) {
                w.fetch_add(1, Relaxed);
            }
            d.fetch_add(1, Relaxed);
        })
        .unwrap();
    }
    let subscribed = started.elapsed();
    let mut p = bus.publisher().unwrap();
    for (i, t) in topics.iter().enumerate() {
        let sent = p.publish(t, i as u64).unwrap();
        assert_eq!((sent.fanout, sent.workers), (1, 1), "topic t{i}");
    }
    // A topic nobody subscribes: fanout 0, nothing written.
    let nobody = topic(&bus, "nobody");
    assert_eq!(nobody.index() as usize, TOPICS);
    let sent = p.publish(&nobody, 1).unwrap();
    assert_eq!((sent.fanout, sent.workers), (0, 0));
    assert_eq!(p.try_publish(&nobody, 2).unwrap().fanout, 0);
    let report = bus.shutdown();
    eprintln!(
        "{TOPICS} topics: registered after {registered:?}, subscribed after {subscribed:?}, \
         published and delivered after {:?}",
        started.elapsed()
    );
    assert_eq!(
        report.published, TOPICS as u64,
        "the unsubscribed topic counts nothing"
    );
    assert_eq!(report.delivered, TOPICS as u64);
    assert_eq!(delivered.load(Relaxed), TOPICS as u64);
    assert_eq!(
        wrong.load(Relaxed),
        0,
        "each message on its topic, with its name"
    );
}

#[test]
#[should_panic(expected = "topics belong to the bus that made them")]
fn a_topic_from_another_bus_panics_on_publish() {
    let (ours, theirs) = (bus(1, 8), bus(1, 8));
    // The same name and index on both buses, and still not the same topic.
    let foreign = topic(&theirs, "orders");
    let own = topic(&ours, "orders");
    assert_eq!(foreign.index(), own.index());
    ours.subscribe(&own, |_, _| {}).unwrap();
    let mut p = ours.publisher().unwrap();
    let _ = p.publish(&foreign, 1);
}

#[test]
#[should_panic(expected = "topics belong to the bus that made them")]
fn a_topic_from_another_bus_panics_on_subscribe() {
    let (ours, theirs) = (bus(1, 8), bus(1, 8));
    let foreign = topic(&theirs, "orders");
    let _ = ours.subscribe(&foreign, |_, _| {});
}
