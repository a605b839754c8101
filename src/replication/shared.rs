//! State shared by the tasks of a replication session and the control
//! surface (`REPLICATE`, INFO, metrics).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use super::metrics::ReplicationMetrics;
use super::presence::PeerTable;
use super::queue::ChangeQueue;
use super::settings::Settings;
use crate::store::Store;

/// Everything the replication tasks share; lives as long as the node.
#[derive(Debug)]
pub struct Shared {
    /// Fixed settings.
    pub settings: Settings,
    /// The store changes are merged into.
    pub store: Arc<Store>,
    /// Changes waiting to be published.
    pub queue: Arc<ChangeQueue>,
    /// Counters.
    pub metrics: Arc<ReplicationMetrics>,
    /// Live nodes known from presence.
    pub peers: PeerTable,
    /// Notified after every broker (re)connect: anti-entropy runs at once.
    pub sync_trigger: Arc<Notify>,
    connected: AtomicBool,
    unacked_batches: AtomicUsize,
    acked: Notify,
}

impl Shared {
    /// Shared state for one node.
    pub fn new(
        settings: Settings,
        store: Arc<Store>,
        queue: Arc<ChangeQueue>,
        metrics: Arc<ReplicationMetrics>,
        peers: PeerTable,
        sync_trigger: Arc<Notify>,
    ) -> Self {
        Self {
            settings,
            store,
            queue,
            metrics,
            peers,
            sync_trigger,
            connected: AtomicBool::new(false),
            unacked_batches: AtomicUsize::new(0),
            acked: Notify::new(),
        }
    }

    /// Whether the MQTT connection is up.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// Records the connection state (and the `broker_connected` gauge).
    pub fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::SeqCst);
        self.metrics.broker_connected.set(i64::from(up));
    }

    /// Batches handed to the client and not yet acknowledged by the broker.
    pub fn unacked_batches(&self) -> usize {
        self.unacked_batches.load(Ordering::SeqCst)
    }

    /// The publisher handed one batch to the client.
    pub fn batch_sent(&self) {
        self.unacked_batches.fetch_add(1, Ordering::SeqCst);
    }

    /// The broker acknowledged one batch (every QoS 1 publish is a batch).
    pub fn batch_acked(&self) {
        let _ = self
            .unacked_batches
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        self.acked.notify_one();
    }

    /// A new connection: whatever was in flight is gone (or retransmitted
    /// by the client without a new hand-over).
    pub fn reset_unacked(&self) {
        self.unacked_batches.store(0, Ordering::SeqCst);
        self.acked.notify_one();
    }

    /// Resolves after the next acknowledgement (or reset).
    pub async fn wait_for_ack(&self) {
        self.acked.notified().await;
    }

    /// Asks anti-entropy for a round with every peer now: wakes the
    /// scheduler if it is waiting, or leaves a permit for its next wait.
    pub fn trigger_anti_entropy(&self) {
        self.sync_trigger.notify_waiters();
        self.sync_trigger.notify_one();
    }
}
