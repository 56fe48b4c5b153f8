//! [`Bridge`]: one connection to a NATS server, its own small runtime, the exports and imports
//! running on it, and their stats.
//!
//! The API is blocking, like the bus's: the bridge runs its tasks on a runtime it owns
//! ([`BridgeConfig::io_threads`] threads), so call it from ordinary threads, not from inside
//! an async runtime. Set-up calls wait until the server has the subscription or the consumer,
//! so a message published right after [`Bridge::import`] returns is imported.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream::StorageType};
use async_nats::{Client, Subject};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{BridgeConfig, ImportOptions, Mode};
use crate::connection::{connect, round_trip};
use crate::error::BridgeError;
use crate::export::{self, ExportTask, Handoff, JsExport};
use crate::import;
use crate::sink::ImportSink;
use crate::stats::{Stats, StatsSnapshot};

/// A bridge between one or more buses and a NATS server (see the crate docs).
pub struct Bridge {
    runtime: Option<Runtime>,
    client: Client,
    jetstream: Option<jetstream::Context>,
    config: BridgeConfig,
    stats: Arc<Stats>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Per export: messages accepted and not yet published or given up.
    unfinished: Mutex<Vec<Arc<AtomicU64>>>,
    exports: AtomicUsize,
    /// Random per bridge: the first part of every `Nats-Msg-Id` it sends.
    instance: String,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("url", &self.config.url)
            .field("mode", &self.config.mode)
            .field("stats", &self.stats.snapshot())
            .finish_non_exhaustive()
    }
}

/// A name JetStream accepts for a consumer: letters, digits, `-` and `_` only.
pub(crate) fn consumer_name(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Bridge {
    /// Starts the runtime, connects, and in JetStream mode makes sure the stream exists.
    pub fn connect(config: BridgeConfig) -> Result<Bridge, BridgeError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.io_threads)
            .thread_name("tracebus-nats")
            .enable_all()
            .build()
            .map_err(BridgeError::Runtime)?;
        let stats = Arc::new(Stats::default());
        let client = runtime.block_on(connect(&config, stats.clone()))?;
        let jetstream = match &config.mode {
            Mode::Core => None,
            Mode::JetStream(js) => {
                // The context spawns its acknowledgement task on the current runtime.
                let _in_runtime = runtime.enter();
                let context = jetstream::ContextBuilder::new()
                    .timeout(js.ack_timeout)
                    .ack_timeout(js.ack_timeout)
                    .max_ack_inflight(js.max_in_flight.max(1))
                    .build(client.clone());
                let stream = jetstream::stream::Config {
                    name: js.stream.clone(),
                    subjects: js.subjects.clone(),
                    storage: StorageType::File,
                    duplicate_window: js.duplicate_window,
                    ..Default::default()
                };
                runtime
                    .block_on(context.get_or_create_stream(stream))
                    .map_err(|e| BridgeError::nats(format!("JetStream stream {}", js.stream), e))?;
                Some(context)
            }
        };
        let (shutdown, _) = watch::channel(false);
        let instance = hex(&tracebus_context::random_span_id());
        Ok(Bridge {
            runtime: Some(runtime),
            client,
            jetstream,
            config,
            stats,
            shutdown,
            tasks: Mutex::new(Vec::new()),
            unfinished: Mutex::new(Vec::new()),
            exports: AtomicUsize::new(0),
            instance,
        })
    }

    /// The bridge's counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The underlying `async-nats` client (for the caller's own subjects; the bridge keeps
    /// using it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The settings this bridge was made with.
    pub fn config(&self) -> &BridgeConfig {
        &self.config
    }

    fn runtime(&self) -> Result<&Runtime, BridgeError> {
        self.runtime.as_ref().ok_or(BridgeError::Closed)
    }

    fn spawn(
        &self,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), BridgeError> {
        if *self.shutdown.borrow() {
            return Err(BridgeError::Closed);
        }
        let handle = self.runtime()?.spawn(task);
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(handle);
        Ok(())
    }

    /// Starts an export of raw payloads to `subject` and returns the hand-off to offer them
    /// to (what a bus export's handler does; see [`Handoff::offer`]).
    pub fn export_bytes(&self, subject: impl Into<String>) -> Result<Handoff, BridgeError> {
        let subject = Subject::from(subject.into());
        let n = self.exports.fetch_add(1, Ordering::Relaxed);
        let (handoff, rx, unfinished) =
            export::queue(self.config.queue_capacity, self.stats.clone());
        let jetstream = match (&self.config.mode, &self.jetstream) {
            (Mode::JetStream(js), Some(context)) => Some(JsExport {
                context: context.clone(),
                max_in_flight: js.max_in_flight.max(1),
                msg_id_prefix: format!("{}-{n}", self.instance),
            }),
            _ => None,
        };
        let task = ExportTask {
            subject,
            rx,
            client: self.client.clone(),
            jetstream,
            tracer: self.config.tracer.clone(),
            stats: self.stats.clone(),
            unfinished: unfinished.clone(),
            shutdown: self.shutdown.subscribe(),
        };
        self.spawn(export::run(task))?;
        self.unfinished
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(unfinished);
        Ok(handoff)
    }

    /// Starts an import of `options.subject` into `sink`; returns once the server has the
    /// subscription (core) or the durable consumer (JetStream). `name` names the default
    /// durable consumer (`<stream>-<name>`).
    pub fn import_into(
        &self,
        options: &ImportOptions,
        name: &str,
        sink: Box<dyn ImportSink>,
    ) -> Result<(), BridgeError> {
        let runtime = self.runtime()?;
        let roots = options.roots;
        let stats = self.stats.clone();
        let shutdown = self.shutdown.subscribe();
        match (&self.config.mode, &self.jetstream) {
            (Mode::JetStream(js), Some(context)) => {
                let durable = options
                    .durable
                    .clone()
                    .unwrap_or_else(|| consumer_name(&format!("{}-{name}", js.stream)));
                let config = pull::Config {
                    durable_name: Some(durable.clone()),
                    filter_subject: options.subject.clone(),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: js.ack_wait,
                    max_ack_pending: 4096,
                    ..Default::default()
                };
                let what = format!("JetStream consumer {durable} on {}", js.stream);
                let consumer = runtime
                    .block_on(async {
                        let stream = context.get_stream(&js.stream).await?;
                        stream
                            .get_or_create_consumer(&durable, config)
                            .await
                            .map_err(Into::into)
                    })
                    .map_err(|e: Box<dyn std::error::Error + Send + Sync>| {
                        BridgeError::nats(what, e)
                    })?;
                let window = js.dedup_window;
                self.spawn(import::run_jetstream(
                    consumer, sink, roots, window, stats, shutdown,
                ))
            }
            _ => {
                let what = format!("subscribe to {}", options.subject);
                let sub = runtime
                    .block_on(async {
                        let sub = self.client.subscribe(options.subject.clone()).await?;
                        round_trip(&self.client).await?;
                        Ok(sub)
                    })
                    .map_err(|e: Box<dyn std::error::Error + Send + Sync>| {
                        BridgeError::nats(what, e)
                    })?;
                self.spawn(import::run_core(sub, sink, roots, stats, shutdown))
            }
        }
    }

    /// Waits until everything exported so far has been published (core: processed by the
    /// server, so routed to the subscriptions it had; JetStream: acknowledged), and until the
    /// server has every subscription of this bridge's imports, or `timeout` passes. Returns
    /// whether it got there.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.unfinished() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let Ok(runtime) = self.runtime() else {
            return false;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        runtime
            .block_on(async { tokio::time::timeout(left, round_trip(&self.client)).await })
            .is_ok_and(|r| r.is_ok())
    }

    /// Messages accepted by exports and not yet published or given up.
    fn unfinished(&self) -> u64 {
        self.unfinished
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|u| u.load(Ordering::Relaxed))
            .sum()
    }

    /// Stops: exports refuse new messages (counted as `export_dropped_closed`) and publish
    /// what they hold, imports stop; waits at most `timeout` for that, then counts what is
    /// still unpublished as `export_failed`. Returns the final stats.
    pub fn shutdown(mut self, timeout: Duration) -> StatsSnapshot {
        self.stop(timeout);
        self.stats.snapshot()
    }

    fn stop(&mut self, timeout: Duration) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        self.shutdown.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        let deadline = Instant::now() + timeout;
        runtime.block_on(async {
            for t in tasks {
                let left = deadline.saturating_duration_since(Instant::now());
                let abort = t.abort_handle();
                if tokio::time::timeout(left, t).await.is_err() {
                    abort.abort();
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(left, self.client.flush()).await;
        });
        let lost = self.unfinished();
        if lost > 0 {
            log::warn!("tracebus-nats: {lost} exported messages unpublished at shutdown");
            self.stats.export_failed.fetch_add(lost, Ordering::Relaxed);
            for u in self
                .unfinished
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
            {
                u.store(0, Ordering::Relaxed);
            }
        }
        runtime.shutdown_timeout(Duration::from_millis(100));
    }
}

impl Drop for Bridge {
    /// Shuts down with a one-second grace.
    fn drop(&mut self) {
        self.stop(Duration::from_secs(1));
    }
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_are_safe() {
        assert_eq!(
            consumer_name("TRACEBUS-orders.eu>x"),
            "TRACEBUS-orders_eu_x"
        );
        assert_eq!(hex(&[0, 0xab]), "00ab");
    }
}
