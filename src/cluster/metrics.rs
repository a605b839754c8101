//! Prometheus metrics of the partitioned cluster (`merklekv_cluster_*`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label set `{kind="…"}` or `{reason="…"}`.
type Labels = [(&'static str, &'static str); 1];

/// Counters and gauges of membership and coordination.
#[derive(Debug, Clone)]
pub struct ClusterMetrics {
    /// Requests this node coordinated that involved another replica, by
    /// kind (`read`, `write`, `execute`).
    pub coordinated: Family<Labels, Counter>,
    /// Requests answered `unavailable`, by kind.
    pub unavailable: Family<Labels, Counter>,
    /// Batched replica RPCs sent, by kind (`apply`, `read`).
    pub replica_rpcs: Family<Labels, Counter>,
    /// Items per batched replica RPC.
    pub batch_items: Histogram,
    /// Replica calls that failed, by reason (`call`, `bad_answer`,
    /// `refused`).
    pub replica_failures: Family<Labels, Counter>,
    /// Heartbeats that got no answer.
    pub heartbeat_failures: Counter,
    /// Stale replicas a read wrote the newest entry back to.
    pub read_repairs: Counter,
    /// Range-scoped anti-entropy rounds, by outcome (`in_sync`,
    /// `repaired`, `failed`).
    pub repair_rounds: Family<[(&'static str, &'static str); 1], Counter>,
    /// Keys those rounds moved, by direction (`pulled`, `pushed`).
    pub repair_keys: Family<[(&'static str, &'static str); 1], Counter>,
    /// Reads that also checked the replicas their level did not ask
    /// (`cluster.read_repair_chance`).
    pub read_repair_checks: Counter,
    /// Extra replicas reads asked because the ones asked first had not
    /// answered within `cluster.speculative_retry_ms`.
    pub speculative_reads: Counter,
    /// Ring states from peers that were refused, by reason (`invalid`,
    /// `mismatch` = other vnodes or replication factor, `conflict` = same
    /// version, other members).
    pub ring_states_refused: Family<Labels, Counter>,
    /// Members of the ring (this node included).
    pub members: Gauge,
    /// Members seen up (this node included).
    pub members_up: Gauge,
    /// The ring version.
    pub ring_version: Gauge,
}

impl Default for ClusterMetrics {
    fn default() -> Self {
        Self {
            coordinated: Family::default(),
            unavailable: Family::default(),
            replica_rpcs: Family::default(),
            // 1 .. 4096 items
            batch_items: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            replica_failures: Family::default(),
            heartbeat_failures: Counter::default(),
            read_repairs: Counter::default(),
            speculative_reads: Counter::default(),
            read_repair_checks: Counter::default(),
            repair_rounds: Family::default(),
            repair_keys: Family::default(),
            ring_states_refused: Family::default(),
            members: Gauge::default(),
            members_up: Gauge::default(),
            ring_version: Gauge::default(),
        }
    }
}

impl ClusterMetrics {
    /// Registers every metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("cluster");
        r.register(
            "coordinated_requests",
            "Requests coordinated with other replicas, by kind",
            self.coordinated.clone(),
        );
        r.register(
            "unavailable_replies",
            "Requests answered unavailable (too few replicas in time), by kind",
            self.unavailable.clone(),
        );
        r.register(
            "replica_rpcs",
            "Batched replica RPCs sent, by kind",
            self.replica_rpcs.clone(),
        );
        r.register(
            "replica_batch_items",
            "Items carried per batched replica RPC",
            self.batch_items.clone(),
        );
        r.register(
            "replica_failures",
            "Replica calls that failed, by reason",
            self.replica_failures.clone(),
        );
        r.register(
            "heartbeat_failures",
            "Heartbeats that got no answer",
            self.heartbeat_failures.clone(),
        );
        r.register(
            "read_repairs",
            "Stale replicas a read wrote the newest entry back to",
            self.read_repairs.clone(),
        );
        r.register(
            "repair_rounds",
            "Range-scoped anti-entropy rounds, by outcome",
            self.repair_rounds.clone(),
        );
        r.register(
            "repair_keys",
            "Keys range-scoped anti-entropy rounds moved, by direction",
            self.repair_keys.clone(),
        );
        r.register(
            "read_repair_checks",
            "Reads that also checked the replicas their level did not ask (read_repair_chance)",
            self.read_repair_checks.clone(),
        );
        r.register(
            "speculative_reads",
            "Extra replicas asked because the first ones were slow to answer a read",
            self.speculative_reads.clone(),
        );
        r.register(
            "ring_states_refused",
            "Ring states from peers that were refused, by reason",
            self.ring_states_refused.clone(),
        );
        r.register("members", "Members of the ring", self.members.clone());
        r.register(
            "members_up",
            "Members seen up, this node included",
            self.members_up.clone(),
        );
        r.register(
            "ring_version",
            "The ring version",
            self.ring_version.clone(),
        );
    }

    /// Counts one failed replica call.
    pub fn count_failure(&self, e: &super::PeerError) {
        let reason = match e {
            super::PeerError::Call { .. } | super::PeerError::Closed(_) => "call",
            super::PeerError::BadAnswer { .. } => "bad_answer",
            super::PeerError::Refused { .. } => "refused",
        };
        self.replica_failures
            .get_or_create(&[("reason", reason)])
            .inc();
    }
}
