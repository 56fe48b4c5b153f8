//! The bridge's one connection to the server: reconnects by itself, forever, with a delay that
//! grows to [`crate::BridgeConfig::reconnect_delay_max`]; connection events are counted in the
//! stats and disconnections and dropped messages are warned about through `log`.
//!
//! [`round_trip`] waits until the server has processed what the client sent: the confirmation
//! behind [`crate::Bridge::import_into`] and [`crate::Bridge::flush`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event, Subject};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::config::BridgeConfig;
use crate::error::BridgeError;
use crate::stats::Stats;

/// The client's own buffer of commands (publishes) waiting for the connection.
const CLIENT_CAPACITY: usize = 8192;

/// Delay before reconnection attempt `attempts`: none for the first, then doubling from 10 ms
/// up to `max`.
fn reconnect_delay(attempts: usize, max: Duration) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let exp = u32::try_from(attempts - 2).unwrap_or(u32::MAX).min(16);
    Duration::from_millis(10u64 << exp).min(max)
}

/// Connects to the configured server (a first connection that fails is an error; later losses
/// reconnect automatically).
pub(crate) async fn connect(
    config: &BridgeConfig,
    stats: Arc<Stats>,
) -> Result<Client, BridgeError> {
    let max = config.reconnect_delay_max;
    let url = config.url.clone();
    let events_url = url.clone();
    ConnectOptions::new()
        .name(&config.name)
        .client_capacity(CLIENT_CAPACITY)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .reconnect_delay_callback(move |attempts| reconnect_delay(attempts, max))
        .event_callback(move |event| {
            let stats = stats.clone();
            let url = events_url.clone();
            async move {
                match event {
                    Event::Connected => {
                        Stats::bump(&stats.connects);
                        log::info!("tracebus-nats: connected to {url}");
                    }
                    Event::Disconnected => {
                        Stats::bump(&stats.disconnects);
                        log::warn!("tracebus-nats: disconnected from {url}, reconnecting");
                    }
                    Event::SlowConsumer(sid) => {
                        Stats::bump(&stats.slow_consumer);
                        log::warn!(
                            "tracebus-nats: subscription {sid} overflowed, NATS messages dropped"
                        );
                    }
                    other => log::warn!("tracebus-nats: {other}"),
                }
            }
        })
        .connect(url.as_str())
        .await
        .map_err(|source| BridgeError::Connect { url, source })
}

/// How often [`round_trip`] looks whether the client reconnected while it waits for its probe.
const PROBE_CHECK: Duration = Duration::from_millis(50);

/// Returns once the server has processed every command this client sent before the call: its
/// subscriptions are in place and its publishes have been routed.
///
/// `Client::flush` only writes the client's buffer to the socket, and the server reads each
/// connection on its own, so a subscription just written may not be in place yet when another
/// connection's publish is routed (that publish then reaches nobody). The server handles one
/// connection's commands in order, so this subscribes to a fresh inbox, publishes an empty
/// probe to it on the same connection and waits for the probe to come back. A reconnection
/// sends the subscriptions again before anything queued after it, but a probe in flight when
/// the connection dropped is lost: when the client has reconnected since the probe was sent,
/// it is sent again. Waits for as long as no server answers: [`crate::Bridge::flush`] bounds
/// the wait, [`crate::Bridge::import_into`] waits until a server answers.
pub(crate) async fn round_trip(client: &Client) -> Result<(), async_nats::Error> {
    let inbox = Subject::from(client.new_inbox());
    let mut probe = client.subscribe(inbox.clone()).await?;
    let stats = client.statistics();
    'send: loop {
        let connects = stats.connects.load(Ordering::Relaxed);
        client.publish(inbox.clone(), Bytes::new()).await?;
        loop {
            match tokio::time::timeout(PROBE_CHECK, probe.next()).await {
                Ok(Some(_)) => break 'send,
                Ok(None) => return Err("the client closed before the server answered".into()),
                Err(_) if stats.connects.load(Ordering::Relaxed) != connects => continue 'send,
                Err(_) => {}
            }
        }
    }
    // A probe sent twice may come back twice: unsubscribing drops the other.
    let _ = probe.unsubscribe().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_to_the_cap() {
        let max = Duration::from_millis(500);
        assert_eq!(reconnect_delay(1, max), Duration::ZERO);
        assert_eq!(reconnect_delay(2, max), Duration::from_millis(10));
        assert_eq!(reconnect_delay(3, max), Duration::from_millis(20));
        assert_eq!(reconnect_delay(50, max), max);
        assert_eq!(reconnect_delay(usize::MAX, max), max);
    }
}
