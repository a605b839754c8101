//! The state one anti-entropy round carries from step to step: the peer,
//! the keys waiting to be fetched or pushed, and the counters its report
//! is made of. The steps (`round`, `descent`, `listing`, `transfer`) each
//! extend [`Round`] from their own file.

use std::sync::Arc;

use super::error::SyncError;
use super::limits::Tuning;
use super::peer::PeerRpc;
use crate::store::{Change, Store, TreeShape};

/// One round in progress.
pub(super) struct Round {
    /// The local store.
    pub(super) store: Arc<Store>,
    /// Its tree shape (the peer's must match).
    pub(super) shape: TreeShape,
    /// Calls to the peer, counting bytes and round trips.
    pub(super) rpc: PeerRpc,
    /// Page sizes, batch sizes, timeouts.
    pub(super) tuning: Tuning,
    /// Tombstones older than this HLC are not exchanged (collected).
    pub(super) expired_before: Option<u64>,
    /// Keys to fetch, not yet asked for.
    pub(super) fetch: Vec<Box<[u8]>>,
    /// Keys to push, not yet sent, and their estimated bytes.
    pub(super) push: Vec<Box<[u8]>>,
    pub(super) push_bytes: usize,
    /// Keys fetched and merged.
    pub(super) pulled: u64,
    /// Keys pushed.
    pub(super) pushed: u64,
    /// Pushed keys the peer applied.
    pub(super) push_applied: u64,
    /// Digests received.
    pub(super) digests: u64,
    /// Mirror round (`SYNC` without `--merge`): nothing is pushed; keys
    /// where we differ take the peer's state locally, keys it lacks are
    /// deleted here.
    pub(super) mirror: bool,
    /// Keys a mirror round rewrote or deleted locally.
    pub(super) mirrored: u64,
    /// The local writes a mirror round made, for replication.
    pub(super) changes: Vec<Change>,
}

/// A local worker task that failed.
pub(super) fn blocking_error(e: tokio::task::JoinError) -> SyncError {
    SyncError::Internal(format!("worker failed: {e}"))
}
