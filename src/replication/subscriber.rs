//! Applies change batches received on `{topic_prefix}/updates`.
//!
//! Every change goes through [`Store::merge`] (last-writer-wins,
//! idempotent), so duplicates, re-deliveries and out-of-order batches are
//! harmless. Batches this node published itself are skipped before
//! decoding. Payloads that do not decode are counted and ignored; nothing
//! a publisher sends can panic the node.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::codec::{decode_batch, peek_origin};
use super::log_limit::LogLimit;
use super::metrics::ReplicationMetrics;
use crate::store::{MergeOutcome, Store};

/// Milliseconds between two warnings about bad payloads or refused merges.
const WARNING_INTERVAL_MS: u64 = 10_000;

/// What one payload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// Changes that were newer and applied.
    pub applied: u64,
    /// Changes that were not newer.
    pub stale: u64,
    /// Changes the store could not apply (memory limit, disk).
    pub failed: u64,
    /// Changes that break the store's rules (a version beyond the clock's
    /// bound, an oversized key or value): never stored.
    pub refused: u64,
    /// The batch was our own and skipped.
    pub own: bool,
    /// The payload did not decode.
    pub undecodable: bool,
}

/// Merges received batches into the store.
#[derive(Debug)]
pub struct Subscriber {
    store: Arc<Store>,
    own_node: String,
    metrics: Arc<ReplicationMetrics>,
    garbage_warning: LogLimit,
    merge_warning: LogLimit,
}

impl Subscriber {
    /// A subscriber for the node `own_node`.
    pub fn new(store: Arc<Store>, own_node: String, metrics: Arc<ReplicationMetrics>) -> Self {
        Self {
            store,
            own_node,
            metrics,
            garbage_warning: LogLimit::new(WARNING_INTERVAL_MS),
            merge_warning: LogLimit::new(WARNING_INTERVAL_MS),
        }
    }

    /// Applies payloads from `inbound` until its sender is dropped.
    pub async fn run(self, mut inbound: mpsc::Receiver<Bytes>) {
        while let Some(payload) = inbound.recv().await {
            self.apply(&payload);
        }
    }

    /// Decodes one payload and merges its changes.
    pub fn apply(&self, payload: &[u8]) -> Applied {
        let mut out = Applied::default();
        self.metrics.batches_received.inc();
        if peek_origin(payload) == Some(self.own_node.as_bytes()) {
            self.metrics.own_batches_skipped.inc();
            out.own = true;
            return out;
        }
        let batch = match decode_batch(payload) {
            Ok(b) => b,
            Err(e) => {
                self.metrics.messages_undecodable.inc();
                out.undecodable = true;
                if self.garbage_warning.allow() {
                    tracing::warn!(
                        error = %e,
                        bytes = payload.len(),
                        "ignoring undecodable message on the replication topic"
                    );
                }
                return out;
            }
        };
        if batch.origin_node == self.own_node {
            self.metrics.own_batches_skipped.inc();
            out.own = true;
            return out;
        }
        for change in batch.changes {
            match self.store.merge(&change.key, change.entry) {
                Ok(MergeOutcome::Applied) => out.applied += 1,
                Ok(MergeOutcome::Stale) => out.stale += 1,
                Ok(MergeOutcome::Refused(reason)) => {
                    out.refused += 1;
                    if self.merge_warning.allow() {
                        tracing::warn!(
                            reason = reason.as_str(),
                            origin = %batch.origin_node,
                            "refused a replicated change that breaks the store's rules"
                        );
                    }
                }
                Err(e) => {
                    out.failed += 1;
                    if self.merge_warning.allow() {
                        tracing::warn!(
                            error = %e,
                            origin = %batch.origin_node,
                            "store refused a replicated change; anti-entropy will retry"
                        );
                    }
                }
            }
        }
        self.metrics.changes_applied.inc_by(out.applied);
        self.metrics.changes_stale.inc_by(out.stale);
        self.metrics.merge_errors.inc_by(out.failed);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::codec::encode_batch;
    use crate::store::{Change, Entry, StoreOptions, Version, WriteOp};

    fn store(node: &str) -> Arc<Store> {
        Arc::new(
            Store::new(StoreOptions {
                node_id: node.into(),
                ..StoreOptions::default()
            })
            .expect("store"),
        )
    }

    fn changes_of(store: &Store, op: WriteOp<'_>) -> Vec<Change> {
        store.apply_local(op).expect("write").1
    }

    #[test]
    fn applies_remote_changes_idempotently() {
        let a = store("a");
        let b = store("b");
        let mut changes = changes_of(
            &a,
            WriteOp::Set {
                key: b"k",
                value: b"v",
            },
        );
        changes.extend(changes_of(
            &a,
            WriteOp::Set {
                key: b"gone",
                value: b"x",
            },
        ));
        changes.extend(changes_of(&a, WriteOp::Delete { key: b"gone" }));
        let payload = encode_batch("a", a.node_number(), changes);
        let sub = Subscriber::new(
            b.clone(),
            "b".into(),
            Arc::new(ReplicationMetrics::default()),
        );
        let first = sub.apply(&payload);
        assert_eq!(first.applied, 3);
        let again = sub.apply(&payload);
        assert_eq!((again.applied, again.stale), (0, 3));
        assert_eq!(b.get(b"k"), Some(b"v".to_vec()));
        assert_eq!(b.get(b"gone"), None);
        assert_eq!(a.root(), b.root());
    }

    #[test]
    fn skips_own_batches_and_counts_garbage() {
        let b = store("b");
        let metrics = Arc::new(ReplicationMetrics::default());
        let sub = Subscriber::new(b.clone(), "b".into(), metrics.clone());
        let own = encode_batch(
            "b",
            1,
            vec![Change {
                key: b"k".to_vec().into(),
                entry: Entry {
                    expires_at: None,
                    version: Version::new(1, 1),
                    value: Some(b"v".to_vec().into()),
                },
            }],
        );
        assert!(sub.apply(&own).own);
        assert!(b.is_empty());
        assert!(sub.apply(b"garbage \x00\xff").undecodable);
        assert!(sub.apply(b"").undecodable);
        assert_eq!(metrics.messages_undecodable.get(), 2);
        assert_eq!(metrics.own_batches_skipped.get(), 1);
        assert_eq!(metrics.batches_received.get(), 3);
        assert!(b.is_empty());
    }

    #[test]
    fn a_change_with_a_version_beyond_the_bound_is_refused() {
        let b = store("b");
        let sub = Subscriber::new(
            b.clone(),
            "b".into(),
            Arc::new(ReplicationMetrics::default()),
        );
        let poison = encode_batch(
            "liar",
            7,
            vec![Change {
                key: b"z".to_vec().into(),
                entry: Entry {
                    expires_at: None,
                    version: Version::new(u64::MAX, u64::MAX),
                    value: Some(b"poison".to_vec().into()),
                },
            }],
        );
        let out = sub.apply(&poison);
        assert_eq!((out.applied, out.refused), (0, 1));
        assert!(b.is_empty());
        assert_eq!(b.refusals().future_versions(), 1);
    }
}
