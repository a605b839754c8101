//! One anti-entropy round against one peer.
//!
//! Merkle mode:
//! 1. `GetRoot` with our shape and root. Equal roots: done (one round trip).
//!    Otherwise the reply carries the root's children.
//! 2. Descend level by level. Each differing node is classified: the peer
//!    has nothing there → push the whole subtree; we have nothing → fetch
//!    it whole; small on both sides → list its digests whole; otherwise
//!    descend. One `GetChildren` per level carries every node to descend
//!    into. Nodes whose children are leaves (or all small) skip that call:
//!    their children go straight into the listing, each with our summary,
//!    and the peer lists only those that differ.
//! 3. `ListDigests` (paged) for the collected subtrees, merge-joined with
//!    our entries as pages arrive ([`super::compare`]).
//! 4. `FetchKeys` for what the peer has newer (merged by last-writer-wins),
//!    `PushEntries` for what we have newer.
//!
//! For d differing keys spread over a default tree (fanout 16, depth 4)
//! that is 1 + (depth − 2) + 1 + 2 = depth + 2 round trips.
//!
//! Full mode lists every digest of the peer and does steps 3–4 only: the
//! baseline Merkle mode is measured against.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use super::convert::{shape_from_proto, shape_to_proto, summary_from_proto, summary_to_proto};
use super::descent::Plan;
use super::error::SyncError;
use super::limits::{Tuning, MAX_SUBTREES_PER_CALL};
use super::peer::{PeerRpc, WireStats};
use super::ranges::Node;
use super::round_state::Round;
use crate::clock;
use crate::config::SyncMode;
use crate::proto;
use crate::store::{Change, Store};

/// What one round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundReport {
    /// The peer's sync address.
    pub peer: String,
    /// The peer's node id (from `GetRoot`).
    pub peer_node_id: String,
    /// Merkle descent or full exchange.
    pub mode: SyncMode,
    /// The roots were equal at the start (Merkle mode).
    pub in_sync: bool,
    /// Entries merged locally because the peer had them newer.
    pub keys_pulled: u64,
    /// Entries sent to the peer.
    pub keys_pushed: u64,
    /// How many of those the peer reported newer than its own.
    pub push_applied: u64,
    /// Key digests received from the peer.
    pub digests_received: u64,
    /// Mirror rounds: keys rewritten or deleted here to match the peer.
    pub keys_mirrored: u64,
    /// Mirror rounds: the local writes made, to replicate like any write.
    pub changes: Vec<Change>,
    /// Calls and encoded bytes each way.
    pub wire: WireStats,
    /// Wall time of the round.
    pub elapsed: Duration,
}

impl RoundReport {
    /// One line for `SYNC` replies and logs.
    pub fn summary(&self) -> String {
        let state = if self.in_sync {
            "already in sync".to_owned()
        } else if self.keys_mirrored > 0 {
            format!(
                "pulled {} keys, rewrote or deleted {} keys to match",
                self.keys_pulled, self.keys_mirrored
            )
        } else {
            format!(
                "pulled {} keys, pushed {} keys",
                self.keys_pulled, self.keys_pushed
            )
        };
        format!(
            "{state} with {} ({}): {} mode, {} round trip{}, {} bytes sent, {} bytes received, {} ms",
            self.peer,
            self.peer_node_id,
            self.mode.as_str(),
            self.wire.rpcs,
            if self.wire.rpcs == 1 { "" } else { "s" },
            self.wire.bytes_sent,
            self.wire.bytes_received,
            self.elapsed.as_millis()
        )
    }
}

/// Runs one round with the peer behind `channel`.
pub async fn run_round(
    store: &Arc<Store>,
    channel: Channel,
    peer: &str,
    mode: SyncMode,
    tuning: &Tuning,
) -> Result<RoundReport, SyncError> {
    round_with(store, channel, peer, mode, tuning, false).await
}

/// Runs one mirror round with the peer behind `channel` (`SYNC` without
/// `--merge`): afterwards this store holds exactly the peer's data. What
/// the peer has newer is merged as in any round; where this store is newer
/// or holds a key the peer lacks, nothing is pushed: the peer's state (its
/// value, deadline or tombstone, or a delete for a key it lacks) is
/// written here with a fresh version, so it replicates like any write
/// (the report carries those changes).
pub async fn run_mirror_round(
    store: &Arc<Store>,
    channel: Channel,
    peer: &str,
    mode: SyncMode,
    tuning: &Tuning,
) -> Result<RoundReport, SyncError> {
    round_with(store, channel, peer, mode, tuning, true).await
}

async fn round_with(
    store: &Arc<Store>,
    channel: Channel,
    peer: &str,
    mode: SyncMode,
    tuning: &Tuning,
    mirror: bool,
) -> Result<RoundReport, SyncError> {
    let started = Instant::now();
    let mut round = Round::new(store, channel, tuning);
    round.mirror = mirror;
    let (peer_node_id, in_sync) = round.run(mode).await?;
    Ok(round.report(peer, peer_node_id, mode, in_sync, started))
}

impl Round {
    /// A round with the peer behind `channel`, nothing done yet.
    pub(super) fn new(store: &Arc<Store>, channel: Channel, tuning: &Tuning) -> Self {
        let expired_before = tuning.tombstone_grace.map(|g| {
            let grace_ms = u64::try_from(g.as_millis()).unwrap_or(u64::MAX);
            clock::from_physical_ms(clock::wall_clock_ms().saturating_sub(grace_ms))
        });
        Round {
            store: store.clone(),
            shape: store.shape(),
            rpc: PeerRpc::new(channel, tuning.max_message_bytes),
            tuning: tuning.clone(),
            expired_before,
            fetch: Vec::new(),
            push: Vec::new(),
            push_bytes: 0,
            pulled: 0,
            pushed: 0,
            push_applied: 0,
            digests: 0,
            mirror: false,
            mirrored: 0,
            changes: Vec::new(),
        }
    }

    /// What the round did, once it is over.
    pub(super) fn report(
        self,
        peer: &str,
        peer_node_id: String,
        mode: SyncMode,
        in_sync: bool,
        started: Instant,
    ) -> RoundReport {
        RoundReport {
            peer: peer.to_owned(),
            peer_node_id,
            mode,
            in_sync,
            keys_pulled: self.pulled,
            keys_pushed: self.pushed,
            push_applied: self.push_applied,
            digests_received: self.digests,
            keys_mirrored: self.mirrored,
            changes: self.changes,
            wire: self.rpc.wire,
            elapsed: started.elapsed(),
        }
    }
}

impl Round {
    /// The whole round; returns the peer's node id and whether the roots
    /// were equal.
    async fn run(&mut self, mode: SyncMode) -> Result<(String, bool), SyncError> {
        let ours = self.store.root();
        let resp = self
            .rpc
            .get_root(proto::GetRootRequest {
                shape: Some(shape_to_proto(self.shape)),
                root: Some(summary_to_proto(ours)),
            })
            .await?;
        let bad = |r: &str| SyncError::protocol("GetRoot", r);
        let theirs_shape = shape_from_proto(resp.shape.as_ref().ok_or_else(|| bad("no shape"))?);
        if theirs_shape != self.shape {
            return Err(SyncError::ShapeMismatch {
                ours: self.shape,
                theirs: theirs_shape,
            });
        }
        let theirs = summary_from_proto(resp.root.as_ref().ok_or_else(|| bad("no root"))?)
            .map_err(|e| bad(&e.to_string()))?;
        let node_id: String = resp.node_id.chars().take(256).collect();
        match mode {
            SyncMode::Full => {
                self.list_and_compare(&[(Node::ROOT, None)]).await?;
            }
            SyncMode::Merkle => {
                if theirs == ours {
                    return Ok((node_id, true));
                }
                let root_children = resp
                    .children
                    .iter()
                    .map(summary_from_proto)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(&e.to_string()))?;
                let plan = self.descend(ours, theirs, root_children).await?;
                self.execute(plan).await?;
            }
        }
        self.flush_fetch().await?;
        self.flush_push().await?;
        Ok((node_id, false))
    }

    async fn execute(&mut self, plan: Plan) -> Result<(), SyncError> {
        for chunk in plan.list.chunks(MAX_SUBTREES_PER_CALL) {
            self.list_and_compare(chunk).await?;
        }
        for chunk in plan.fetch_whole.chunks(MAX_SUBTREES_PER_CALL) {
            self.fetch_subtrees(chunk).await?;
        }
        self.push_subtrees(&plan.push_whole).await
    }
}
