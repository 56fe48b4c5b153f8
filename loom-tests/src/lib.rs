//! # tracebus loom models
//!
//! Model checks of every concurrent protocol in `tracebus`, run on the real code: the crate
//! under test takes its atomics, `Arc` and `UnsafeCell` from a private `sync` module that is
//! loom's under `cfg(tracebus_loom)`. Run them with the README's test command, or alone:
//!
//! ```text
//! RUSTFLAGS="--cfg tracebus_loom" cargo test -p tracebus-loom-tests --release --target-dir target/loom
//! ```
//!
//! `LOOM_MAX_PREEMPTIONS` raises the preemption bound (default [`DEFAULT_PREEMPTIONS`]). Built
//! without `--cfg tracebus_loom` the models would check nothing, so the suite contains a test that fails
//! in that case, and the workspace's normal test run excludes this crate.
//!
//! ## The ring (`tests/ring.rs`)
//!
//! | model | proves |
//! |---|---|
//! | `fifo_over_two_laps` | exact FIFO, no loss or duplication, over two laps of a 2-slot ring |
//! | `full_and_empty_boundaries` | a full ring hands the value back; nothing is read from an empty ring |
//! | `batch_claim_and_read` | batch claim/commit and batch read/release, with wrap-around |
//! | `in_place_pushes_over_two_laps` | a push or claim that updates a cell in place (the bus's publish) reads the lap before's value only after the consumer is done with it, and the consumer sees the whole value, fields left as they were included |
//! | `close_drains_committed_tail` | a consumer that sees the producer closed still drains all |
//! | `unread_values_dropped_once` | values left in the ring are dropped exactly once |
//! | `len_promises_values` | a value `len()` counts is found by `try_pop` (the consumer reads `tail`) |
//! | `len_promises_values_when_idle` | the same from an idle consumer, which reads the stamps (this is why `len` loads `tail` with `Acquire`) |
//!
//! Under loom the consumer's idle threshold is 1: the first empty poll after a find reads
//! `tail` and later ones read the stamps, so the models reach both ways a consumer learns of a
//! message (through `tail` and through a stamp).
//!
//! Every `Acquire`/`Release` in the ring was weakened to `Relaxed` by hand, one at a time, and
//! the suite re-run; the model that failed is listed here (loom reports a causality violation on
//! a slot's `UnsafeCell`, or an assertion fails):
//!
//! | ordering weakened to `Relaxed` (or fence removed) | caught by |
//! |---|---|
//! | `Producer::commit_one` (`try_push`, `try_push_in_place`): stamp `store(Release)` | `fifo_over_two_laps`, `in_place_pushes_over_two_laps`, `close_drains_committed_tail`; also `park_has_no_lost_wakeup`, `unsubscribe_while_publishing` |
//! | `Claim::drop`: `fence(Release)` before the stamps | `batch_claim_and_read`, `in_place_pushes_over_two_laps` |
//! | `Producer::has_room`: `head.load(Acquire)` | `fifo_over_two_laps`, `full_and_empty_boundaries`, `batch_claim_and_read`, `in_place_pushes_over_two_laps` |
//! | `Producer::drop`: `producer_closed.store(Release)` | `close_drains_committed_tail` |
//! | `Producer::publish_tail`: `tail.store(Release)` | `in_place_pushes_over_two_laps` and six other ring models; also `park_has_no_lost_wakeup`, `unsubscribe_while_publishing` |
//! | `Shared::is_committed`: stamp `load(Acquire)` | `fifo_over_two_laps`, `batch_claim_and_read`, `close_drains_committed_tail`; also `park_has_no_lost_wakeup`, `unsubscribe_while_publishing` |
//! | `Consumer::committed`: `tail.load(Acquire)` | `in_place_pushes_over_two_laps` and six other ring models; also `park_has_no_lost_wakeup`, `unsubscribe_while_publishing` |
//! | `Consumer::try_pop`: `head.store(Release)` | `fifo_over_two_laps`, `full_and_empty_boundaries` |
//! | `ReadChunk::drop`: `head.store(Release)` | `batch_claim_and_read` |
//! | `Consumer::is_closed`: `producer_closed.load(Acquire)` | `close_drains_committed_tail`; also `unsubscribe_while_publishing` |
//! | `Consumer::len`: `tail.load(Acquire)` | `len_promises_values_when_idle` |
//!
//! `scripts/loom-weaken.sh` repeats the experiment (it is not part of the test command, since it
//! rebuilds the suite once per ordering) and prints this table's right-hand column.
//!
//! One ordering is `Relaxed` by design: `consumer_closed` (it publishes nothing but itself).
//! `Consumer::len` loads `tail` with `Acquire`: with `Relaxed` it keeps its promise only when
//! the consumer's next poll loads `tail` (`len_promises_values`), while an idle consumer reads
//! the stamps, and `len_promises_values_when_idle` finds a counted value not found.
//!
//! ## The runtime (`tests/runtime.rs`)
//!
//! | model | proves |
//! |---|---|
//! | `park_has_no_lost_wakeup` | a worker that parks on an empty ring is always woken by a racing publish (`wait.rs`) |
//! | `shutdown_gate_accepted_means_drained` | after shutdown's gate closes, a drain that waits for the copies counted sent finds every accepted publish, and every other one was refused (`gate.rs`: a publish enters by counting) |
//!
//! Both protocols use the asymmetric fences of `barrier.rs`: the hot side's `light()` (a
//! compiler fence where `membarrier` is available) against the rare side's `heavy()` (a
//! `membarrier` call). Under loom both are `SeqCst` fences: the pair the asymmetric one
//! stands in for (the kernel forces a full barrier on every running thread of the process
//! during `heavy()`, which is what a `SeqCst` fence on the hot side would give).
//!
//! | fence or ordering weakened | caught by |
//! |---|---|
//! | `Sleeper::prepare`: `heavy()` removed | `park_has_no_lost_wakeup` |
//! | `Wakers::after_commit`: `light()` removed | `park_has_no_lost_wakeup` |
//! | `Gate::enter`: `light()` removed | `shutdown_gate_accepted_means_drained` |
//! | `Gate::close`: `heavy()` removed | `shutdown_gate_accepted_means_drained` |
//! | `barrier::light` under loom made `AcqRel` (both call sites at once) | `shutdown_gate_accepted_means_drained`, `park_has_no_lost_wakeup` |
//! | `barrier::heavy` under loom made `AcqRel` (both call sites at once) | `shutdown_gate_accepted_means_drained`, `park_has_no_lost_wakeup` |
//!
//!
//! ## Subscriptions (`tests/subscriptions.rs`)
//!
//! `unsubscribe_while_publishing` runs the real bus (one worker, a 2-slot ring, park waits;
//! under loom the runtime's mutexes, control channels and threads are loom's through the
//! `sync` shim) while a publisher publishes and the main thread unsubscribes one of two
//! subscribers: the one that stays gets every message, and nothing reaches the other after
//! `unsubscribe` returned. Removing the worker's removal of the handler, or `unsubscribe`'s wait
//! for the worker's acknowledgement, makes it fail (the latter through loom's report of the
//! unread acknowledgement). (The change log that carries route changes to publishers is plain
//! data under the routing table's mutex; `routing.rs`'s unit tests cover both the log and the
//! full-copy path.)
//!
//! ## Fast entries and the tracing switch (`tests/routes.rs`)
//!
//! A publish takes its topic's fast entry (no tracing, no timing) while the routes' epoch is
//! the one its cache was re-synced at; the tracing switch bumps the epoch after its store, and
//! a re-sync loads the epoch before it reads the switch.
//!
//! | ordering weakened to `Relaxed` | caught by |
//! |---|---|
//! | `TracingControl::set_enabled`: the epoch's `fetch_add(Release)` | `tracing_switch_reaches_the_fast_path` |
//! | `Routes::sync`: the epoch's `load(Acquire)` | `tracing_switch_reaches_the_fast_path` |
//!
//! A route change bumps the epoch inside the critical section that installs the table, so the
//! mutex orders it for a re-sync (whose lock follows its load of the epoch); its `Release` is
//! not what the model needs, and `loom-weaken.sh` does not list it.
//!
//! ## The drain (`tests/drain.rs`)
//!
//! | model | proves |
//! |---|---|
//! | `two_stage_pipeline_quiesces_only_when_done` | shutdown's quiescence check (`drain.rs`'s `Sent`, `Done`, `quiescent`, over real rings) never says quiescent while an onward publish is unhandled |
//! | `shutdown_delivers_an_onward_publish` | the real bus (two workers, one preemption): shutdown right after a publish delivers both onward publishes its handler makes, refusing none |
//!
//! | ordering weakened (or order changed) | caught by |
//! |---|---|
//! | `Done::store`: `store(Release)` | `two_stage_pipeline_quiesces_only_when_done` |
//! | `Done::load`: `load(Acquire)` | `two_stage_pipeline_quiesces_only_when_done` |
//! | `Out::write_one` counting its message after the push instead of before (checked by hand: a reorder, not an ordering `loom-weaken.sh` can name) | `shutdown_delivers_an_onward_publish` |

/// The preemption bound used when `LOOM_MAX_PREEMPTIONS` is not set.
pub const DEFAULT_PREEMPTIONS: usize = 3;

/// Runs `f` under loom with the project's preemption bound.
pub fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    model_bounded(DEFAULT_PREEMPTIONS, f);
}

/// Runs `f` under loom with at most `max` preemptions (or `LOOM_MAX_PREEMPTIONS`, if lower):
/// for models of the whole bus with several workers, whose state space grows too fast for the
/// default bound to finish in the test command's time.
pub fn model_bounded<F: Fn() + Sync + Send + 'static>(max: usize, f: F) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.map_or(max, |b| b.min(max)));
    builder.check(f);
}
