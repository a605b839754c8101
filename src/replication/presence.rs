//! Presence and peer discovery.
//!
//! Each node keeps a retained [`proto::Presence`] message on
//! `{topic_prefix}/presence/{node_id}` (node id, client and sync addresses,
//! a random per-process `incarnation`); its MQTT last will is an empty
//! retained message on the same topic, which clears it when the node
//! vanishes. Every node subscribes to `{topic_prefix}/presence/+`, so it
//! learns the live nodes and their sync addresses (written to
//! `NodeParts::discovered_peers` for anti-entropy) and notices a second
//! process running with its own node id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::codec::decode_presence;
use super::log_limit::LogLimit;
use super::metrics::ReplicationMetrics;

/// Discovered sync addresses, shared with anti-entropy: node id → `host:port`.
pub type DiscoveredPeers = Arc<RwLock<BTreeMap<String, String>>>;

/// What the connection should do after a presence message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceAction {
    /// Nothing.
    None,
    /// Our own presence was cleared while we are alive: publish it again.
    RepublishOwn,
    /// A peer appeared (or restarted, or moved): worth an anti-entropy
    /// round now rather than at the next periodic one.
    PeerJoined,
}

/// A live peer as announced by its presence message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Where its clients connect.
    pub client_addr: String,
    /// Its anti-entropy (gRPC) address, `""` when it has none.
    pub sync_addr: String,
    /// Its per-process random id.
    pub incarnation: u64,
    /// The connection generation in which it was last confirmed.
    generation: u64,
}

/// The live nodes seen through presence messages.
#[derive(Debug)]
pub struct PeerTable {
    own_id: String,
    own_incarnation: u64,
    peers: Mutex<BTreeMap<String, PeerInfo>>,
    generation: AtomicU64,
    own_echo_seen: AtomicBool,
    reported_duplicates: Mutex<BTreeSet<u64>>,
    discovered: DiscoveredPeers,
    metrics: Arc<ReplicationMetrics>,
    garbage_warning: LogLimit,
}

impl PeerTable {
    /// An empty table for the node `own_id` running as `own_incarnation`.
    pub fn new(
        own_id: String,
        own_incarnation: u64,
        discovered: DiscoveredPeers,
        metrics: Arc<ReplicationMetrics>,
    ) -> Self {
        metrics.known_nodes.set(1);
        Self {
            own_id,
            own_incarnation,
            peers: Mutex::new(BTreeMap::new()),
            generation: AtomicU64::new(0),
            own_echo_seen: AtomicBool::new(false),
            reported_duplicates: Mutex::new(BTreeSet::new()),
            discovered,
            metrics,
            garbage_warning: LogLimit::new(10_000),
        }
    }

    /// A new broker connection began: presence must be confirmed again
    /// (a restarted broker without persistence forgot every retained
    /// message, and nodes that died meanwhile will not come back).
    /// Returns the new connection generation.
    pub fn on_connected(&self) -> u64 {
        self.own_echo_seen.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Forgets peers not confirmed since connection `generation` began,
    /// unless a newer connection began meanwhile.
    pub fn sweep_unconfirmed(&self, generation: u64) {
        let gone: Vec<String> = {
            let mut peers = self.peers.lock();
            if self.generation.load(Ordering::SeqCst) != generation {
                return;
            }
            let gone = peers
                .iter()
                .filter(|(_, p)| p.generation < generation)
                .map(|(id, _)| id.clone())
                .collect::<Vec<_>>();
            for id in &gone {
                peers.remove(id);
            }
            self.metrics.known_nodes.set(1 + peers.len() as i64);
            gone
        };
        for id in gone {
            self.forget_discovered(&id);
            tracing::info!(peer = %id, "peer did not announce itself after reconnect; forgotten");
        }
    }

    /// Forgets every peer (replication disabled).
    pub fn clear(&self) {
        let ids: Vec<String> = std::mem::take(&mut *self.peers.lock())
            .into_keys()
            .collect();
        for id in ids {
            self.forget_discovered(&id);
        }
        self.metrics.known_nodes.set(1);
    }

    /// The other live nodes, by node id.
    pub fn peers(&self) -> BTreeMap<String, PeerInfo> {
        self.peers.lock().clone()
    }

    /// Handles a message on `{topic_prefix}/presence/{node_id}`.
    pub fn on_message(&self, node_id: &str, payload: &[u8]) -> PresenceAction {
        if payload.is_empty() {
            return self.on_cleared(node_id);
        }
        let presence = match decode_presence(node_id, payload) {
            Ok(p) => p,
            Err(e) => {
                self.metrics.messages_undecodable.inc();
                if self.garbage_warning.allow() {
                    tracing::warn!(node = %node_id, error = %e, "ignoring undecodable presence message");
                }
                return PresenceAction::None;
            }
        };
        if node_id == self.own_id {
            self.on_own_id(&presence);
            return PresenceAction::None;
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let info = PeerInfo {
            client_addr: presence.client_addr,
            sync_addr: presence.sync_addr,
            incarnation: presence.incarnation,
            generation,
        };
        let (is_new, count) = {
            let mut peers = self.peers.lock();
            let is_new = peers.get(node_id).is_none_or(|old| {
                old.incarnation != info.incarnation || old.sync_addr != info.sync_addr
            });
            peers.insert(node_id.to_owned(), info.clone());
            (is_new, peers.len())
        };
        self.metrics.known_nodes.set(1 + count as i64);
        if info.sync_addr.is_empty() {
            self.forget_discovered(node_id);
        } else {
            self.discovered
                .write()
                .insert(node_id.to_owned(), info.sync_addr.clone());
        }
        if is_new {
            tracing::info!(
                peer = %node_id,
                client = %info.client_addr,
                sync = %info.sync_addr,
                "peer present"
            );
            PresenceAction::PeerJoined
        } else {
            PresenceAction::None
        }
    }

    fn on_cleared(&self, node_id: &str) -> PresenceAction {
        if node_id == self.own_id {
            // Our retained presence was removed (e.g. by the last will of a
            // former process with our id): announce ourselves again.
            return if self.own_echo_seen.swap(false, Ordering::SeqCst) {
                PresenceAction::RepublishOwn
            } else {
                PresenceAction::None
            };
        }
        let removed = {
            let mut peers = self.peers.lock();
            let removed = peers.remove(node_id).is_some();
            self.metrics.known_nodes.set(1 + peers.len() as i64);
            removed
        };
        self.forget_discovered(node_id);
        if removed {
            tracing::info!(peer = %node_id, "peer left (presence cleared)");
        }
        PresenceAction::None
    }

    fn on_own_id(&self, presence: &crate::proto::Presence) {
        if presence.incarnation == self.own_incarnation {
            self.own_echo_seen.store(true, Ordering::SeqCst);
            return;
        }
        if !self.reported_duplicates.lock().insert(presence.incarnation) {
            return;
        }
        self.metrics.duplicate_node_id.inc();
        if self.own_echo_seen.load(Ordering::SeqCst) {
            tracing::error!(
                node_id = %self.own_id,
                other_client_addr = %presence.client_addr,
                other_sync_addr = %presence.sync_addr,
                other_started_unix_ms = presence.started_unix_ms,
                "DUPLICATE NODE ID: another live process announced itself with this node's \
                 node_id after this one did. Node ids must be unique: both processes stamp the \
                 same node number on their versions, so replicas can diverge. Stop one of them \
                 or give it a different node_id."
            );
        } else {
            tracing::error!(
                node_id = %self.own_id,
                other_client_addr = %presence.client_addr,
                other_sync_addr = %presence.sync_addr,
                other_started_unix_ms = presence.started_unix_ms,
                "DUPLICATE NODE ID? the broker holds the presence of another process with this \
                 node's node_id. If that process is still running, node ids are not unique and \
                 replicas can diverge: stop one of them or give it a different node_id."
            );
        }
    }

    fn forget_discovered(&self, node_id: &str) {
        self.discovered.write().remove(node_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Presence;
    use crate::replication::codec::encode_presence;

    fn table() -> (PeerTable, DiscoveredPeers, Arc<ReplicationMetrics>) {
        let discovered = DiscoveredPeers::default();
        let metrics = Arc::new(ReplicationMetrics::default());
        let t = PeerTable::new("me".into(), 1, discovered.clone(), metrics.clone());
        (t, discovered, metrics)
    }

    fn presence(id: &str, incarnation: u64, sync: &str) -> Vec<u8> {
        encode_presence(&Presence {
            node_id: id.into(),
            client_addr: "127.0.0.1:1".into(),
            sync_addr: sync.into(),
            incarnation,
            started_unix_ms: 0,
        })
        .to_vec()
    }

    #[test]
    fn peers_come_and_go() {
        let (t, discovered, m) = table();
        t.on_connected();
        assert_eq!(
            t.on_message("a", &presence("a", 5, "127.0.0.1:7380")),
            PresenceAction::PeerJoined
        );
        assert_eq!(
            t.on_message("a", &presence("a", 5, "127.0.0.1:7380")),
            PresenceAction::None
        );
        t.on_message("b", &presence("b", 6, ""));
        assert_eq!(m.known_nodes.get(), 3);
        assert_eq!(
            discovered.read().get("a").map(String::as_str),
            Some("127.0.0.1:7380")
        );
        assert!(!discovered.read().contains_key("b"));
        t.on_message("a", b"");
        assert!(!discovered.read().contains_key("a"));
        assert_eq!(t.peers().len(), 1);
        assert_eq!(m.known_nodes.get(), 2);
    }

    #[test]
    fn unconfirmed_peers_are_swept_after_reconnect() {
        let (t, discovered, _) = table();
        t.on_connected();
        t.on_message("a", &presence("a", 5, "x:1"));
        t.on_message("b", &presence("b", 6, "y:1"));
        let generation = t.on_connected();
        t.on_message("b", &presence("b", 6, "y:1"));
        t.sweep_unconfirmed(generation - 1);
        assert_eq!(t.peers().len(), 2, "a stale sweep changes nothing");
        t.sweep_unconfirmed(generation);
        assert_eq!(
            t.peers().keys().cloned().collect::<Vec<_>>(),
            vec!["b".to_owned()]
        );
        assert!(!discovered.read().contains_key("a"));
    }

    #[test]
    fn a_second_process_with_our_id_is_reported_once() {
        let (t, _, m) = table();
        t.on_connected();
        t.on_message("me", &presence("me", 1, ""));
        assert_eq!(m.duplicate_node_id.get(), 0);
        t.on_message("me", &presence("me", 99, ""));
        t.on_message("me", &presence("me", 99, ""));
        assert_eq!(m.duplicate_node_id.get(), 1);
        assert!(t.peers().is_empty());
    }

    #[test]
    fn own_presence_cleared_is_republished() {
        let (t, _, _) = table();
        t.on_connected();
        assert_eq!(t.on_message("me", b""), PresenceAction::None);
        t.on_message("me", &presence("me", 1, ""));
        assert_eq!(t.on_message("me", b""), PresenceAction::RepublishOwn);
    }

    #[test]
    fn garbage_is_counted() {
        let (t, _, m) = table();
        t.on_message("a", b"\xff\xff garbage");
        t.on_message("a", &presence("b", 1, ""));
        assert_eq!(m.messages_undecodable.get(), 2);
        assert!(t.peers().is_empty());
    }
}
