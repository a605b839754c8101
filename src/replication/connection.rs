//! The connection task: drives the rumqttc event loop, reconnects with
//! capped exponential backoff, and after every (re)connect subscribes
//! again (a clean session, or a restarted broker, has forgotten the
//! subscriptions), re-announces this node's presence and triggers an
//! anti-entropy round so whatever was missed while away is repaired at once.
//!
//! Incoming change batches go to the subscriber task through a bounded
//! channel (back-pressure reaches the broker through TCP); presence
//! messages are handled inline.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{
    ConnectionError, Event, EventLoop, Incoming, Outgoing, Publish, QoS, Request, Subscribe,
    SubscribeFilter, SubscribeReasonCode,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::backoff::Backoff;
use super::codec::encode_presence;
use super::log_limit::LogLimit;
use super::presence::PresenceAction;
use super::probe::check_for_duplicate_node_id;
use super::shared::Shared;

/// First reconnect delay.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(3);
/// A connection that lasted this long resets the backoff; shorter ones
/// (e.g. two processes with one client id taking the session from each
/// other) keep it growing.
const STABLE_CONNECTION: Duration = Duration::from_secs(5);
/// After a (re)connect, peers have this long to re-announce themselves
/// before they are forgotten.
const PRESENCE_CONFIRM_WINDOW: Duration = Duration::from_secs(15);
/// While the broker stays unreachable, one warning per this many ms.
const UNREACHABLE_WARNING_INTERVAL_MS: u64 = 60_000;
/// Longest time a graceful stop waits for the disconnect to go out.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Owns the MQTT event loop of one replication session.
pub struct Connection {
    shared: Arc<Shared>,
    eventloop: EventLoop,
    inbound: mpsc::Sender<Bytes>,
    backoff: Backoff,
    connected_since: Option<Instant>,
    down_since: Option<Instant>,
    ever_connected: bool,
    sweep: Option<JoinHandle<()>>,
    unreachable_warning: LogLimit,
}

impl Connection {
    /// A connection task around `eventloop`, forwarding change batches to
    /// `inbound`.
    pub fn new(shared: Arc<Shared>, eventloop: EventLoop, inbound: mpsc::Sender<Bytes>) -> Self {
        Self {
            shared,
            eventloop,
            inbound,
            backoff: Backoff::new(BACKOFF_MIN, BACKOFF_MAX),
            connected_since: None,
            down_since: None,
            ever_connected: false,
            sweep: None,
            unreachable_warning: LogLimit::new(UNREACHABLE_WARNING_INTERVAL_MS),
        }
    }

    /// Runs until `stop` turns true, then lets the publisher's final
    /// messages and disconnect go out.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let stopped = tokio::select! {
            _ = stop.wait_for(|s| *s) => true,
            _ = check_for_duplicate_node_id(&self.shared) => false,
        };
        if stopped {
            return self.finish().await;
        }
        loop {
            // Only `stop` may interrupt a poll: a poll dropped half-way can
            // lose the request it just took from the client's channel.
            let event = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                event = self.eventloop.poll() => event,
            };
            match event {
                Ok(event) => self.on_event(event).await,
                Err(e) => {
                    let delay = self.on_error(&e);
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        self.finish().await;
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Incoming(Incoming::ConnAck(_)) => self.on_connected(),
            Event::Incoming(Incoming::Publish(publish)) => self.on_publish(publish).await,
            Event::Incoming(Incoming::PubAck(_)) => self.shared.batch_acked(),
            Event::Incoming(Incoming::SubAck(ack))
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure)) =>
            {
                tracing::error!(
                    "the MQTT broker refused a replication subscription (check its ACLs); \
                     this node will not receive changes"
                );
            }
            _ => {}
        }
    }

    fn on_connected(&mut self) {
        let now = Instant::now();
        self.shared.set_connected(true);
        self.shared.reset_unacked();
        self.connected_since = Some(now);
        let s = &self.shared.settings;
        let broker = format!("{}:{}", s.broker.host, s.broker.port);
        if self.ever_connected {
            self.shared.metrics.reconnects.inc();
            let down_ms = self
                .down_since
                .map_or(0, |t| now.saturating_duration_since(t).as_millis());
            tracing::info!(%broker, down_ms, "replication reconnected to the MQTT broker; running anti-entropy");
        } else {
            tracing::info!(%broker, topic = %s.updates_topic, "replication connected to the MQTT broker");
        }
        self.ever_connected = true;
        self.down_since = None;
        let generation = self.shared.peers.on_connected();
        let shared = self.shared.clone();
        if let Some(previous) = self.sweep.replace(tokio::spawn(async move {
            tokio::time::sleep(PRESENCE_CONFIRM_WINDOW).await;
            shared.peers.sweep_unconfirmed(generation);
        })) {
            previous.abort();
        }
        // Queued ahead of any publish waiting in the client channel.
        let subscribe = Subscribe::new_many([
            SubscribeFilter::new(s.updates_topic.clone(), QoS::AtLeastOnce),
            SubscribeFilter::new(s.presence_filter(), QoS::AtLeastOnce),
        ]);
        self.eventloop
            .pending
            .push_front(Request::Subscribe(subscribe));
        self.eventloop
            .pending
            .insert(1, Request::Publish(self.own_presence()));
        self.shared.trigger_anti_entropy();
    }

    fn own_presence(&self) -> Publish {
        let s = &self.shared.settings;
        // QoS 0: the broker keeps a retained message whatever its QoS, a
        // lost one is sent again after the reconnect, and every PUBACK
        // then belongs to a change batch.
        let mut publish = Publish::from_bytes(
            s.own_presence_topic(),
            QoS::AtMostOnce,
            encode_presence(&s.presence),
        );
        publish.retain = true;
        publish
    }

    async fn on_publish(&mut self, publish: Publish) {
        let s = &self.shared.settings;
        if publish.topic == s.updates_topic {
            // Waits when the subscriber is behind: back-pressure to the broker.
            let _ = self.inbound.send(publish.payload).await;
        } else if let Some(node_id) = publish.topic.strip_prefix(s.presence_prefix.as_str()) {
            match self.shared.peers.on_message(node_id, &publish.payload) {
                PresenceAction::None => {}
                PresenceAction::PeerJoined => self.shared.trigger_anti_entropy(),
                PresenceAction::RepublishOwn => {
                    tracing::warn!(
                        "this node's presence was cleared while it is alive; announcing it again"
                    );
                    let own = self.own_presence();
                    self.eventloop.pending.push_back(Request::Publish(own));
                }
            }
        }
    }

    /// Records a failed attempt or a lost connection; returns the delay
    /// before the next attempt.
    fn on_error(&mut self, error: &ConnectionError) -> Duration {
        self.shared.metrics.connection_errors.inc();
        let s = &self.shared.settings;
        let broker = format!("{}:{}", s.broker.host, s.broker.port);
        if let Some(since) = self.connected_since.take() {
            self.shared.set_connected(false);
            self.down_since = Some(Instant::now());
            if since.elapsed() >= STABLE_CONNECTION {
                self.backoff.reset();
            }
            tracing::warn!(
                %broker,
                %error,
                "lost the connection to the MQTT broker; writes continue locally, reconnecting"
            );
        } else if matches!(error, ConnectionError::ConnectionRefused(_)) {
            if self.unreachable_warning.allow() {
                tracing::error!(
                    %broker,
                    %error,
                    "the MQTT broker refused the connection (check mqtt.username/password \
                     and client_id); retrying"
                );
            }
        } else if self.unreachable_warning.allow() {
            tracing::warn!(
                %broker,
                %error,
                "cannot reach the MQTT broker; writes continue locally, retrying"
            );
        } else {
            tracing::debug!(%broker, %error, "MQTT connect attempt failed");
        }
        self.backoff.next_delay()
    }

    /// After stop: while connected, keep the event loop turning until the
    /// publisher's disconnect has gone out (or a timeout passes).
    async fn finish(mut self) {
        if let Some(sweep) = self.sweep.take() {
            sweep.abort();
        }
        if self.shared.is_connected() {
            let deadline = Instant::now() + DISCONNECT_TIMEOUT;
            loop {
                match tokio::time::timeout_at(deadline, self.eventloop.poll()).await {
                    Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) => break,
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) | Err(_) => break,
                }
            }
        }
        self.shared.set_connected(false);
    }
}
