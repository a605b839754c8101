//! Prometheus metrics of anti-entropy (`merklekv_sync_*`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::error::SyncError;
use super::round::RoundReport;

/// Label set `{result="…"}` or `{reason="…"}`.
type Labels = [(&'static str, &'static str); 1];

/// Counters of rounds run by this node and of requests it served.
#[derive(Debug, Clone)]
pub struct SyncMetrics {
    /// Rounds by outcome: `in_sync`, `repaired`, `failed`.
    pub rounds: Family<Labels, Counter>,
    /// Failed rounds by reason (`unavailable`, `timeout`, `protocol`, …).
    pub failures: Family<Labels, Counter>,
    /// Entries merged locally because the peer had them newer.
    pub keys_pulled: Counter,
    /// Entries sent to peers because we had them newer.
    pub keys_pushed: Counter,
    /// Encoded request bytes sent by rounds.
    pub bytes_sent: Counter,
    /// Encoded response bytes received by rounds.
    pub bytes_received: Counter,
    /// RPCs made by rounds (round trips; every call is sequential).
    pub rpcs: Counter,
    /// Wall time per round, seconds.
    pub round_seconds: Histogram,
    /// Entries peers pushed to us that were newer than ours.
    pub pushed_to_us: Counter,
    /// Tombstones removed by garbage collection.
    pub tombstones_collected: Counter,
    /// Values the active expiry cycle turned into tombstones.
    pub keys_expired: Counter,
}

impl Default for SyncMetrics {
    fn default() -> Self {
        Self {
            rounds: Family::default(),
            failures: Family::default(),
            keys_pulled: Counter::default(),
            keys_pushed: Counter::default(),
            bytes_sent: Counter::default(),
            bytes_received: Counter::default(),
            rpcs: Counter::default(),
            // 1 ms .. ~65 s
            round_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            pushed_to_us: Counter::default(),
            tombstones_collected: Counter::default(),
            keys_expired: Counter::default(),
        }
    }
}

impl SyncMetrics {
    /// Registers every metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sync_rounds",
            "Anti-entropy rounds run by this node, by result (in_sync, repaired, failed)",
            self.rounds.clone(),
        );
        registry.register(
            "sync_failures",
            "Failed anti-entropy rounds, by reason",
            self.failures.clone(),
        );
        registry.register(
            "sync_keys_pulled",
            "Entries merged from peers during anti-entropy",
            self.keys_pulled.clone(),
        );
        registry.register(
            "sync_keys_pushed",
            "Entries sent to peers during anti-entropy",
            self.keys_pushed.clone(),
        );
        registry.register(
            "sync_bytes_sent",
            "Encoded protobuf bytes of anti-entropy requests",
            self.bytes_sent.clone(),
        );
        registry.register(
            "sync_bytes_received",
            "Encoded protobuf bytes of anti-entropy responses",
            self.bytes_received.clone(),
        );
        registry.register(
            "sync_rpcs",
            "Anti-entropy RPCs made (each one round trip)",
            self.rpcs.clone(),
        );
        registry.register(
            "sync_round_seconds",
            "Wall time of anti-entropy rounds",
            self.round_seconds.clone(),
        );
        registry.register(
            "sync_pushed_to_us",
            "Entries pushed by peers that were newer than ours",
            self.pushed_to_us.clone(),
        );
        registry.register(
            "tombstones_collected",
            "Tombstones garbage-collected after the grace period",
            self.tombstones_collected.clone(),
        );
        registry.register(
            "keys_expired",
            "Values whose deadline passed, turned into tombstones by the active expiry cycle",
            self.keys_expired.clone(),
        );
    }

    /// Records a finished round.
    pub fn record(&self, outcome: &Result<RoundReport, SyncError>) {
        match outcome {
            Ok(r) => {
                let result = if r.in_sync { "in_sync" } else { "repaired" };
                self.rounds.get_or_create(&[("result", result)]).inc();
                self.keys_pulled.inc_by(r.keys_pulled);
                self.keys_pushed.inc_by(r.keys_pushed);
                self.bytes_sent.inc_by(r.wire.bytes_sent);
                self.bytes_received.inc_by(r.wire.bytes_received);
                self.rpcs.inc_by(u64::from(r.wire.rpcs));
                self.round_seconds.observe(r.elapsed.as_secs_f64());
            }
            Err(e) => {
                self.rounds.get_or_create(&[("result", "failed")]).inc();
                self.failures.get_or_create(&[("reason", e.kind())]).inc();
            }
        }
    }
}
