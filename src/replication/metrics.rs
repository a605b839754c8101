//! Replication counters, exported on `/metrics` with the `merklekv_`
//! prefix (e.g. `merklekv_replication_changes_dropped_total{reason="queue_full"}`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of the dropped-changes counter.
type ReasonLabels = Vec<(&'static str, &'static str)>;

/// Every replication counter. Cloned handles share their values.
#[derive(Debug, Default)]
pub struct ReplicationMetrics {
    /// MQTT messages (batches) handed to the client for publishing.
    pub batches_published: Counter,
    /// Changes inside those batches.
    pub changes_published: Counter,
    /// Changes dropped because the queue was full (broker down or slow).
    pub dropped_queue_full: Counter,
    /// Changes dropped because one change alone exceeds `max_packet_bytes`.
    pub dropped_oversized: Counter,
    /// Changes not published because replication was disabled or stopping.
    pub dropped_disabled: Counter,
    /// Change batches received on the updates topic (own echoes included).
    pub batches_received: Counter,
    /// Received batches that were this node's own and skipped.
    pub own_batches_skipped: Counter,
    /// Received changes that were newer and applied.
    pub changes_applied: Counter,
    /// Received changes that were not newer than the local entry.
    pub changes_stale: Counter,
    /// Received changes the store refused (e.g. memory limit).
    pub merge_errors: Counter,
    /// Payloads on the replication topics that could not be decoded.
    pub messages_undecodable: Counter,
    /// 1 while connected to the broker.
    pub broker_connected: Gauge,
    /// Successful connections after the first one.
    pub reconnects: Counter,
    /// Failed connection attempts and lost connections.
    pub connection_errors: Counter,
    /// Changes waiting in the publish queue.
    pub queue_depth: Gauge,
    /// Live nodes known from presence messages (this one included).
    pub known_nodes: Gauge,
    /// Presence messages showing another process with this node's id.
    pub duplicate_node_id: Counter,
}

impl ReplicationMetrics {
    /// Registers every metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("replication");
        sub.register(
            "batches_published",
            "MQTT messages (change batches) published",
            self.batches_published.clone(),
        );
        sub.register(
            "changes_published",
            "Changes published inside batches",
            self.changes_published.clone(),
        );
        sub.register_collector(Box::new(DroppedCollector {
            queue_full: self.dropped_queue_full.clone(),
            oversized: self.dropped_oversized.clone(),
            disabled: self.dropped_disabled.clone(),
        }));
        sub.register(
            "batches_received",
            "Change batches received (own echoes included)",
            self.batches_received.clone(),
        );
        sub.register(
            "own_batches_skipped",
            "Received batches published by this node, skipped",
            self.own_batches_skipped.clone(),
        );
        sub.register(
            "changes_applied",
            "Received changes that were newer and applied",
            self.changes_applied.clone(),
        );
        sub.register(
            "changes_stale",
            "Received changes not newer than the local entry",
            self.changes_stale.clone(),
        );
        sub.register(
            "merge_errors",
            "Received changes the store refused",
            self.merge_errors.clone(),
        );
        sub.register(
            "messages_undecodable",
            "Payloads on replication topics that could not be decoded",
            self.messages_undecodable.clone(),
        );
        sub.register(
            "broker_connected",
            "1 while connected to the MQTT broker",
            self.broker_connected.clone(),
        );
        sub.register(
            "reconnects",
            "Successful broker connections after the first",
            self.reconnects.clone(),
        );
        sub.register(
            "connection_errors",
            "Failed connection attempts and lost connections",
            self.connection_errors.clone(),
        );
        sub.register(
            "queue_depth",
            "Changes waiting to be published",
            self.queue_depth.clone(),
        );
        sub.register(
            "known_nodes",
            "Live nodes known from presence (this one included)",
            self.known_nodes.clone(),
        );
        sub.register(
            "duplicate_node_id",
            "Presence messages from another process with this node's id",
            self.duplicate_node_id.clone(),
        );
    }

    /// Every dropped change, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_queue_full.get() + self.dropped_oversized.get() + self.dropped_disabled.get()
    }
}

/// Encodes the three drop counters as one labelled counter family.
#[derive(Debug)]
struct DroppedCollector {
    queue_full: Counter,
    oversized: Counter,
    disabled: Counter,
}

impl prometheus_client::collector::Collector for DroppedCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        let family = Family::<ReasonLabels, Counter>::default();
        for (reason, counter) in [
            ("queue_full", &self.queue_full),
            ("oversized", &self.oversized),
            ("disabled", &self.disabled),
        ] {
            family
                .get_or_create(&vec![("reason", reason)])
                .inc_by(counter.get());
        }
        let metric = encoder.encode_descriptor(
            "changes_dropped",
            "Changes not published: queue full, oversized, or replication disabled",
            None,
            family.metric_type(),
        )?;
        family.encode(metric)
    }
}
