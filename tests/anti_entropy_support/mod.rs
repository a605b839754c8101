//! In-process anti-entropy peers: a real tonic `MerkleSync` server on
//! 127.0.0.1:0 serving a [`Store`], and the real client against it.
#![allow(dead_code)]

pub mod fake;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use merklekv::config::SyncMode;
use merklekv::store::{Entry, Store, StoreOptions, TreeShape};
use merklekv::sync::metrics::SyncMetrics;
use merklekv::sync::{limits, run_round, RoundReport, SyncError, Tuning};
use tokio::sync::watch;

/// A store with the given node id and shape.
pub fn store(node: &str, shape: TreeShape) -> Arc<Store> {
    Arc::new(
        Store::new(StoreOptions {
            node_id: node.into(),
            shape,
            ..Default::default()
        })
        .expect("store"),
    )
}

/// A running in-process sync server.
pub struct Peer {
    /// The store it serves.
    pub store: Arc<Store>,
    /// Where it listens.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Peer {
    /// Serves `store` on a free loopback port.
    pub async fn serve(store: Arc<Store>) -> Peer {
        let (stop, rx) = watch::channel(false);
        let server = merklekv::sync::server::serve(
            "127.0.0.1:0",
            store.clone(),
            SyncMetrics::default(),
            limits::max_message_bytes(1 << 20),
            None,
            rx,
        )
        .await
        .expect("serve");
        Peer {
            store,
            addr: server.addr,
            stop,
            task: server.task,
        }
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// One round from `local` against the server at `addr`.
pub async fn sync_at(
    local: &Arc<Store>,
    addr: SocketAddr,
    mode: SyncMode,
    tuning: &Tuning,
) -> Result<RoundReport, SyncError> {
    let peer = addr.to_string();
    let channel = merklekv::sync::channel(&peer, tuning)?;
    run_round(local, channel, &peer, mode, tuning).await
}

/// One range-scoped round (every key hash) from `local` against the peer
/// at `addr`.
pub async fn range_sync_at(
    local: &Arc<Store>,
    addr: SocketAddr,
    tuning: &Tuning,
) -> Result<RoundReport, SyncError> {
    let peer = addr.to_string();
    let channel = merklekv::sync::channel(&peer, tuning)?;
    let halves = [0..=u64::MAX / 2, u64::MAX / 2 + 1..=u64::MAX];
    merklekv::sync::run_range_round(local, channel, &peer, &halves, tuning).await
}

/// One round from `local` against `peer`.
pub async fn sync(
    local: &Arc<Store>,
    peer: &Peer,
    mode: SyncMode,
    tuning: &Tuning,
) -> Result<RoundReport, SyncError> {
    sync_at(local, peer.addr, mode, tuning).await
}

/// Every entry (tombstones included), by key.
pub fn contents(store: &Store) -> BTreeMap<Vec<u8>, Entry> {
    let mut out = BTreeMap::new();
    let all = 0..=store.shape().leaf_count() - 1;
    store.visit_leaves(&[all], |_, k, e| {
        out.insert(k.to_vec(), e.to_entry());
    });
    out
}

/// A two-thread runtime for tests that drive async code from sync ones.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}
