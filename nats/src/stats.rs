//! The bridge's counters: what it exported, imported, dropped and refused, readable at any
//! time with [`crate::Bridge::stats`] while every task keeps counting.
//!
//! Each counter is a relaxed atomic bumped by the task that saw the event; a [`StatsSnapshot`]
//! reads them one by one, so counters read together may be a few events apart while messages
//! are moving. [`StatsSnapshot::fields`] lists them by name (the `nats_relay` example prints
//! them as one JSON line).

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident, )+) => {
        /// The live counters (shared by the bridge's tasks and the bus handlers of its exports).
        #[derive(Debug, Default)]
        pub(crate) struct Stats {
            $( pub(crate) $name: AtomicU64, )+
        }

        /// The bridge's counters at one moment.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct StatsSnapshot {
            $( $(#[$doc])* pub $name: u64, )+
        }

        impl Stats {
            /// Reads every counter.
            pub(crate) fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $( $name: self.$name.load(Ordering::Relaxed), )+ }
            }
        }

        impl StatsSnapshot {
            /// Every counter with its name, in declaration order.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![ $( (stringify!($name), self.$name), )+ ]
            }
        }
    };
}

counters! {
    /// Messages published to NATS: handed to the client in core mode, acknowledged by the
    /// stream in JetStream mode.
    exported,
    /// Exported messages that carried a `traceparent` (the sampled ones).
    exported_sampled,
    /// Messages a bus handler could not hand to the bridge because its queue was full: dropped
    /// on the bus side, never published (the worker does not wait).
    export_dropped_full,
    /// Messages a bus handler offered after the bridge had shut down: dropped.
    export_dropped_closed,
    /// Publishes NATS refused (core: the client is closed or the message too large; JetStream:
    /// still unacknowledged when the bridge shut down, or refused by the stream).
    export_failed,
    /// JetStream: publishes sent again after a failed or missing acknowledgement.
    export_retries,
    /// JetStream: acknowledgements that said "duplicate": the stream removed a repeat (same
    /// `Nats-Msg-Id` within its window).
    export_duplicates,
    /// Messages published into the bus.
    imported,
    /// Imported messages that continued a remote trace (a sampled, strictly valid context).
    imported_with_context,
    /// Incoming messages whose payload was not the size of the topic's type: not delivered.
    import_bad_payload,
    /// Incoming messages published into the bus with nobody subscribed (fanout 0).
    import_no_subscribers,
    /// Incoming messages that found the bus closed: not delivered.
    import_bus_closed,
    /// JetStream: redeliveries of messages already published into the bus: removed.
    import_duplicates,
    /// JetStream: acknowledgements that could not be sent (the message will be redelivered,
    /// and removed as a duplicate).
    import_ack_failed,
    /// Incoming messages without a `traceparent` header.
    header_absent,
    /// Incoming `traceparent` headers whose sampled flag was clear (not parsed).
    header_unsampled,
    /// Incoming `traceparent` headers the fast filter or the strict parser refused.
    header_malformed,
    /// Incoming messages with more than one `traceparent` value.
    header_duplicated,
    /// Incoming `traceparent` values longer than the limit (not looked at).
    header_oversized,
    /// Times the connection to the server was lost.
    disconnects,
    /// Times the client (re)connected to the server.
    connects,
    /// Times the client's subscription buffer overflowed and NATS messages were dropped before
    /// the bridge saw them (core mode only: JetStream redelivers).
    slow_consumer,
}

impl Stats {
    /// Adds one to a counter.
    #[inline]
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reads_every_counter() {
        let s = Stats::default();
        Stats::bump(&s.exported);
        Stats::bump(&s.header_oversized);
        Stats::bump(&s.header_oversized);
        let snap = s.snapshot();
        assert_eq!(snap.exported, 1);
        assert_eq!(snap.header_oversized, 2);
        let fields = snap.fields();
        assert_eq!(fields[0], ("exported", 1));
        assert!(fields.contains(&("header_oversized", 2)));
        assert_eq!(fields.iter().map(|f| f.1).sum::<u64>(), 3);
    }
}
