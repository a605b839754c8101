//! `merklekv cluster cleanup` (Cassandra's `nodetool cleanup`): after the
//! ring changed (a node joined), this node hands the keys it no longer
//! replicates to their replicas and forgets them — only once **every**
//! replica of the key acknowledged the entry, so no copy is lost; a key
//! with a replica down, or written again meanwhile, is kept for the next
//! run.

use std::time::Duration;

use futures_util::future::join_all;

use super::membership::Slot;
use super::Cluster;
use crate::proto;

/// Keys handed off per batch.
const BATCH: usize = 1024;

/// What one cleanup did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    /// Entries (tombstones included) looked at.
    pub scanned: u64,
    /// Of those, entries this node does not replicate.
    pub not_owned: u64,
    /// Handed to every replica and forgotten here.
    pub dropped: u64,
    /// Kept: a replica was down or did not acknowledge, or the key was
    /// written again meanwhile.
    pub kept: u64,
}

impl CleanupReport {
    /// The wire form (`Cluster/Cleanup`).
    pub fn to_proto(&self, node_id: &str) -> proto::CleanupResponse {
        proto::CleanupResponse {
            node_id: node_id.to_owned(),
            scanned: self.scanned,
            not_owned: self.not_owned,
            dropped: self.dropped,
            kept: self.kept,
        }
    }
}

impl Cluster {
    /// Hands off and forgets the keys this node does not replicate under
    /// its current ring.
    pub async fn cleanup(&self, timeout: Duration) -> CleanupReport {
        let view = self.membership.view();
        let rf = self.membership.replication_factor();
        let store = self.store.clone();
        let ring_view = view.clone();
        let scan = tokio::task::spawn_blocking(move || {
            let own = store.node_id().to_owned();
            let last = store.shape().leaf_count() - 1;
            let (mut scanned, mut unowned) = (0u64, Vec::new());
            store.visit_leaves(&[0..=last], |_, key, _| {
                scanned += 1;
                if !ring_view.ring.replicas(key, rf).any(|r| r == own) {
                    unowned.push(Box::<[u8]>::from(key));
                }
            });
            (scanned, unowned)
        })
        .await;
        let Ok((scanned, unowned)) = scan else {
            tracing::warn!("the cleanup scan failed");
            return CleanupReport::default();
        };
        let mut report = CleanupReport {
            scanned,
            not_owned: unowned.len() as u64,
            ..CleanupReport::default()
        };
        for chunk in unowned.chunks(BATCH) {
            let mut sends = Vec::with_capacity(chunk.len());
            for key in chunk {
                let Some(entry) = self.store.entry(key) else {
                    report.kept += 1; // gone meanwhile
                    continue;
                };
                let mut replies = Vec::new();
                let mut every_replica_up = true;
                let mut replicas = view.ring.replicas(key, rf);
                while let Some(i) = replicas.next_index() {
                    match view.links.get(i) {
                        Some(Slot::Peer(link)) if link.is_up() => match link.apply(key, &entry) {
                            Ok(reply) => replies.push(reply),
                            Err(_) => every_replica_up = false,
                        },
                        _ => every_replica_up = false,
                    }
                }
                if !every_replica_up || replies.is_empty() {
                    report.kept += 1;
                    continue;
                }
                sends.push(async move {
                    let answers = join_all(replies).await;
                    let acknowledged = answers.iter().all(|a| matches!(a, Ok(Ok(Some(_)))));
                    (key, entry.version, acknowledged)
                });
            }
            let sent = sends.len() as u64;
            let Ok(done) = tokio::time::timeout(timeout, join_all(sends)).await else {
                report.kept += sent; // the others were counted above
                continue;
            };
            for (key, version, acknowledged) in done {
                let forgotten = acknowledged
                    && self
                        .store
                        .forget_if_version(key, version)
                        .unwrap_or_else(|e| {
                            tracing::warn!(error = %e, "cannot forget a handed-off key");
                            false
                        });
                if forgotten {
                    report.dropped += 1;
                } else {
                    report.kept += 1;
                }
            }
        }
        tracing::info!(
            scanned = report.scanned,
            not_owned = report.not_owned,
            dropped = report.dropped,
            kept = report.kept,
            "cleanup: keys this node no longer replicates handed off"
        );
        report
    }
}
