//! Range-scoped anti-entropy: every `anti_entropy.interval_seconds` this
//! node runs a round with each member seen up, comparing only the ring
//! ranges the two of them replicate (`sync::run_range_round`); and
//! `Cluster/Repair` (`merklekv cluster repair`) runs the same rounds now.
//!
//! Pairs: each node starts rounds with every other member, so every pair
//! is compared from both ends each interval (a round moves keys both
//! ways, so one end would do; both halve the time to heal and cost one
//! `CompareRanges` round trip when in sync).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::link::PeerLink;
use super::membership::Slot;
use super::ring::Ring;
use super::Cluster;
use crate::store::hash_ranges::HashRange;
use crate::sync::{RoundReport, SyncError};

/// The key-hash ranges `a` and `b` both replicate, sorted, neighbours
/// merged, none wrapping.
pub fn shared_ranges(ring: &Ring, replication_factor: usize, a: &str, b: &str) -> Vec<HashRange> {
    let mut out: Vec<HashRange> = Vec::new();
    let tokens = ring.ranges(replication_factor);
    let whole = tokens.len() == 1;
    for range in tokens {
        if !(range.replicas.contains(&a) && range.replicas.contains(&b)) {
            continue;
        }
        if whole {
            return vec![0..=u64::MAX];
        }
        // (after, through]; the first range wraps around zero.
        if range.after < range.through {
            out.push(range.after + 1..=range.through);
        } else if range.after > range.through {
            out.push(0..=range.through);
            if range.after < u64::MAX {
                out.push(range.after + 1..=u64::MAX);
            }
        }
    }
    out.sort_unstable_by_key(|r| *r.start());
    let mut merged: Vec<HashRange> = Vec::with_capacity(out.len());
    for r in out {
        match merged.last_mut() {
            Some(prev) if prev.end().checked_add(1) == Some(*r.start()) => {
                *prev = *prev.start()..=*r.end();
            }
            _ => merged.push(r),
        }
    }
    merged
}

/// One peer's part of a repair: the round's report, or why it failed.
pub struct PeerRepair {
    /// The peer's node id.
    pub node_id: String,
    /// Ranges the two share (after merging neighbours).
    pub ranges: usize,
    /// What the round did.
    pub outcome: Result<RoundReport, SyncError>,
}

impl PeerRepair {
    /// The wire form (`Cluster/Repair`).
    pub fn to_proto(self) -> crate::proto::PeerRepairReport {
        let mut out = crate::proto::PeerRepairReport {
            node_id: self.node_id,
            ranges: u32::try_from(self.ranges).unwrap_or(u32::MAX),
            ..Default::default()
        };
        match self.outcome {
            Ok(r) => {
                out.in_sync = r.in_sync;
                out.keys_pulled = r.keys_pulled;
                out.keys_pushed = r.keys_pushed;
                out.round_trips = r.wire.rpcs;
                out.bytes_sent = r.wire.bytes_sent;
                out.bytes_received = r.wire.bytes_received;
                out.elapsed_ms = r.elapsed.as_millis() as u64;
            }
            Err(e) => out.error = e.to_string(),
        }
        out
    }
}

impl Cluster {
    /// Runs a range-scoped round with `link`'s peer.
    pub async fn repair_with(&self, link: &PeerLink) -> PeerRepair {
        let view = self.membership.view();
        let own = self.store.node_id();
        let ranges = shared_ranges(
            &view.ring,
            self.membership.replication_factor(),
            own,
            &link.node_id,
        );
        let outcome = match crate::sync::channel(&link.sync_addr, &self.sync_tuning) {
            Ok(channel) => {
                crate::sync::run_range_round(
                    &self.store,
                    channel,
                    &link.sync_addr,
                    &ranges,
                    &self.sync_tuning,
                )
                .await
            }
            Err(e) => Err(e),
        };
        self.count_repair(&outcome);
        PeerRepair {
            node_id: link.node_id.clone(),
            ranges: ranges.len(),
            outcome,
        }
    }

    /// Rounds with every member seen up now, one after another.
    pub async fn repair_all(&self) -> Vec<PeerRepair> {
        let view = self.membership.view();
        let mut out = Vec::new();
        for slot in &view.links {
            if let Slot::Peer(link) = slot {
                if link.is_up() {
                    out.push(self.repair_with(link).await);
                }
            }
        }
        out
    }

    fn count_repair(&self, outcome: &Result<RoundReport, SyncError>) {
        let m = &self.metrics;
        match outcome {
            Ok(r) => {
                let kind = if r.in_sync { "in_sync" } else { "repaired" };
                m.repair_rounds.get_or_create(&[("outcome", kind)]).inc();
                m.repair_keys
                    .get_or_create(&[("direction", "pulled")])
                    .inc_by(r.keys_pulled);
                m.repair_keys
                    .get_or_create(&[("direction", "pushed")])
                    .inc_by(r.keys_pushed);
            }
            Err(_) => {
                m.repair_rounds
                    .get_or_create(&[("outcome", "failed")])
                    .inc();
            }
        }
    }
}

/// Runs [`Cluster::repair_all`] every `interval` until shutdown.
pub async fn run(cluster: Arc<Cluster>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate: let the ring form
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let rounds = tokio::select! {
            r = cluster.repair_all() => r,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        for r in rounds {
            match &r.outcome {
                Ok(report) if report.in_sync => {
                    tracing::debug!(peer = %r.node_id, ranges = r.ranges, "ranges in sync");
                }
                Ok(report) => tracing::info!(
                    peer = %r.node_id,
                    ranges = r.ranges,
                    "range repair: {}",
                    report.summary()
                ),
                Err(e) => tracing::warn!(peer = %r.node_id, error = %e, "range repair failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_ranges_are_exactly_where_both_replicate() {
        let members: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
        let ring = Ring::new(members.iter(), 64);
        let shared = shared_ranges(&ring, 3, "n1", "n2");
        assert!(shared.windows(2).all(|w| w[0].end() < w[1].start()));
        // Sample hashes: in a shared range exactly when both replicate it.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let names: Vec<&str> = ring.replicas_of_hash(state, 3).collect();
            let both = names.contains(&"n1") && names.contains(&"n2");
            let i = shared.partition_point(|r| *r.end() < state);
            let inside = shared.get(i).is_some_and(|r| r.contains(&state));
            assert_eq!(both, inside, "hash {state:#x}: replicas {names:?}");
        }
        // Every member replicates everything at RF >= members.
        assert_eq!(shared_ranges(&ring, 5, "n1", "n2"), vec![0..=u64::MAX]);
    }
}
