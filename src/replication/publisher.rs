//! The publisher task: packs queued changes into as few MQTT messages as
//! possible (each at most `mqtt.max_batch_bytes`, a lone larger change
//! alone) and publishes them with QoS 1 on `{topic_prefix}/updates`.
//!
//! Batches grow with the write rate, so the message rate stays within
//! what the broker and the subscribers sustain (they pay per message, not
//! per change):
//! * at most [`MAX_UNACKED_BATCHES`] batches wait for the broker's
//!   acknowledgement at a time; changes written meanwhile leave together
//!   in the next batch;
//! * a batch that is not full leaves at least [`MIN_BATCH_INTERVAL`] after
//!   the previous one, so at most about 1,000 partial batches per second
//!   leave a node, whatever the write rate.
//!
//! At a low write rate every change therefore goes out on its own the
//! moment it is written; at 10,000 writes/s a message carries about ten
//! changes, which wait 1–2 ms (tokio's timer has millisecond resolution).
//! `docs/benchmarks.md` shows what this buys: without the interval, the
//! subscribers fell behind at 10,000 writes/s on the 2-core test machine.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, QoS};
use tokio::sync::watch;
use tokio::time::Instant;

use super::codec::{batch_header_len, encode_batch};
use super::shared::Shared;

/// Batches in flight (handed to the client, not yet acknowledged by the
/// broker) before the publisher waits and lets the next batch grow.
pub const MAX_UNACKED_BATCHES: usize = 2;

/// Shortest time between two batches that are not full.
pub const MIN_BATCH_INTERVAL: Duration = Duration::from_millis(1);

/// Longest time a graceful stop spends publishing what is still queued.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Bytes of an MQTT PUBLISH packet besides topic and payload: fixed
/// header (up to 5), topic length (2), packet id (2).
const PUBLISH_OVERHEAD_BYTES: usize = 9;

/// Publishes queued changes until stopped.
pub struct Publisher {
    shared: Arc<Shared>,
    client: AsyncClient,
    topic: String,
    batch_budget: usize,
    max_payload: usize,
}

impl Publisher {
    /// A publisher sending through `client`.
    pub fn new(shared: Arc<Shared>, client: AsyncClient) -> Self {
        let s = &shared.settings;
        let header = batch_header_len(&s.node_id, s.node_num);
        let topic = s.updates_topic.clone();
        let max_payload = s
            .max_packet_bytes
            .saturating_sub(topic.len() + PUBLISH_OVERHEAD_BYTES);
        Self {
            batch_budget: s.max_batch_bytes.saturating_sub(header).max(1),
            max_payload,
            topic,
            client,
            shared,
        }
    }

    /// Runs until `stop` turns true, then drains what is queued (when the
    /// broker is reachable, within [`DRAIN_TIMEOUT`]), clears this node's
    /// presence and disconnects.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut last_sent: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            if self.shared.queue.is_empty() {
                tokio::select! {
                    _ = self.shared.queue.wait_for_changes() => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
                continue;
            }
            if self.shared.unacked_batches() >= MAX_UNACKED_BATCHES {
                tokio::select! {
                    _ = self.shared.wait_for_ack() => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
                continue;
            }
            if let Some(last) = last_sent {
                let earliest = last + MIN_BATCH_INTERVAL;
                if Instant::now() < earliest && self.shared.queue.queued_bytes() < self.batch_budget
                {
                    tokio::select! {
                        _ = tokio::time::sleep_until(earliest) => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                    continue;
                }
            }
            let Some((payload, count)) = self.next_payload() else {
                continue;
            };
            last_sent = Some(Instant::now());
            // Never cancelled half-way: a hand-over only waits while the
            // client's request channel is full, and ends (with `false`)
            // as soon as the connection task is gone.
            if !self.send(payload, count).await {
                return;
            }
        }
        self.finish().await;
    }

    /// The next batch, encoded; `None` when the queue was empty or its
    /// head was a change too large for one MQTT packet (dropped, counted).
    fn next_payload(&self) -> Option<(Bytes, u64)> {
        let changes = self.shared.queue.pop_batch(self.batch_budget);
        if changes.is_empty() {
            return None;
        }
        let count = changes.len() as u64;
        let s = &self.shared.settings;
        let payload = encode_batch(&s.node_id, s.node_num, changes);
        if payload.len() > self.max_payload {
            self.shared.metrics.dropped_oversized.inc_by(count);
            tracing::warn!(
                bytes = payload.len(),
                max_packet_bytes = s.max_packet_bytes,
                "a change is larger than mqtt.max_packet_bytes and is not replicated over MQTT; \
                 anti-entropy will carry it"
            );
            return None;
        }
        Some((payload, count))
    }

    /// Hands one batch to the MQTT client; `false` when the client is closed.
    async fn send(&self, payload: Bytes, count: u64) -> bool {
        // Counted before the hand-over so that its PUBACK cannot come first.
        self.shared.batch_sent();
        match self
            .client
            .publish_bytes(self.topic.clone(), QoS::AtLeastOnce, false, payload)
            .await
        {
            Ok(()) => {
                self.shared.metrics.batches_published.inc();
                self.shared.metrics.changes_published.inc_by(count);
                true
            }
            Err(_) => {
                self.shared.metrics.dropped_disabled.inc_by(count);
                false
            }
        }
    }

    /// Graceful end: publish what is queued while connected, clear the
    /// retained presence (a clean disconnect suppresses the last will),
    /// disconnect.
    async fn finish(self) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        if self.shared.is_connected() {
            while !self.shared.queue.is_empty() && Instant::now() < deadline {
                if let Some((payload, count)) = self.next_payload() {
                    match tokio::time::timeout_at(deadline, self.send(payload, count)).await {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(_) => {
                            self.shared.metrics.dropped_disabled.inc_by(count);
                            break;
                        }
                    }
                }
            }
        }
        self.shared.queue.clear();
        if self.shared.is_connected() {
            let topic = self.shared.settings.own_presence_topic();
            let _ = tokio::time::timeout_at(
                deadline,
                self.client
                    .publish(topic, QoS::AtMostOnce, true, Vec::<u8>::new()),
            )
            .await;
            let _ = tokio::time::timeout_at(deadline, self.client.disconnect()).await;
        }
    }
}
