//! One link per peer: a lazily connecting HTTP/2 channel that every call
//! to the peer shares, the peer's liveness as heartbeats saw it, and the
//! batchers that coalesce replica reads and writes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use super::batcher::{Batcher, Reply, SendBatch};
use super::error::PeerError;
use super::metrics::ClusterMetrics;
use crate::proto;
use crate::proto::cluster_client::ClusterClient;
use crate::proto::replica_client::ReplicaClient;
use crate::store::Entry;
use crate::sync::convert::entry_from_proto;

/// How links reach their peers.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// Connect and per-call timeout.
    pub timeout: Duration,
    /// Largest gRPC message either way.
    pub max_message_bytes: usize,
    /// A peer not heard from for this long is down.
    pub failure_timeout: Duration,
}

impl LinkSettings {
    /// A lazily connecting channel to `addr` with the links' timeout.
    pub fn channel(&self, addr: &str) -> Result<Channel, crate::sync::SyncError> {
        let tuning = crate::sync::Tuning {
            rpc_timeout: self.timeout,
            ..crate::sync::Tuning::default()
        };
        crate::sync::channel(addr, &tuning)
    }
}

/// What a replica answered for one key: its entry, if it holds one.
pub type ReadAnswer = Option<Entry>;

/// A `Read` answer as it comes off the wire: the key the entry is for
/// (checked against the asked key by [`PeerLink::read`]) and the entry.
type KeyedAnswer = Option<(Box<[u8]>, Entry)>;

/// What a replica answered for one applied entry: whether the key was live
/// before, or `None` when it refused the entry (a version beyond its clock
/// bound, or too large).
pub type ApplyAnswer = Option<bool>;

/// The link to one peer.
pub struct PeerLink {
    /// The peer's node id.
    pub node_id: String,
    /// Its sync address.
    pub sync_addr: String,
    replica: ReplicaClient<Channel>,
    cluster: ClusterClient<Channel>,
    apply: Batcher<proto::Entry, ApplyAnswer>,
    read: Batcher<Vec<u8>, KeyedAnswer>,
    epoch: Instant,
    /// Milliseconds after `epoch` of the last answer (0 = never).
    last_ok_ms: AtomicU64,
    /// Whether the peer answered within the failure timeout, as of the
    /// last heartbeat tick or answer (read on every request: no clock).
    up: AtomicBool,
    key_count: AtomicU64,
    memory_bytes: AtomicU64,
    failure_timeout: Duration,
}

impl PeerLink {
    /// A link to `node_id` at `sync_addr` (connects on first use).
    pub fn new(
        node_id: &str,
        sync_addr: &str,
        settings: &LinkSettings,
        metrics: &ClusterMetrics,
    ) -> Result<Arc<Self>, PeerError> {
        let channel = settings.channel(sync_addr).map_err(|e| PeerError::Call {
            rpc: "connect",
            peer: node_id.to_owned(),
            reason: e.to_string(),
        })?;
        let max = settings.max_message_bytes;
        let replica = ReplicaClient::new(channel.clone())
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let cluster = ClusterClient::new(channel)
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let apply = Batcher::start(node_id, apply_sender(node_id, &replica), {
            let (rpcs, items) = (metrics.replica_rpcs.clone(), metrics.batch_items.clone());
            move |n| {
                rpcs.get_or_create(&[("kind", "apply")]).inc();
                items.observe(n as f64);
            }
        });
        let read = Batcher::start(node_id, read_sender(node_id, &replica), {
            let (rpcs, items) = (metrics.replica_rpcs.clone(), metrics.batch_items.clone());
            move |n| {
                rpcs.get_or_create(&[("kind", "read")]).inc();
                items.observe(n as f64);
            }
        });
        Ok(Arc::new(Self {
            node_id: node_id.to_owned(),
            sync_addr: sync_addr.to_owned(),
            replica,
            cluster,
            apply,
            read,
            epoch: Instant::now(),
            last_ok_ms: AtomicU64::new(0),
            up: AtomicBool::new(false),
            key_count: AtomicU64::new(0),
            memory_bytes: AtomicU64::new(0),
            failure_timeout: settings.failure_timeout,
        }))
    }

    /// Whether the peer answered within the failure timeout, as of the
    /// last [`PeerLink::refresh`] or answer.
    #[inline]
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Re-decides [`PeerLink::is_up`] from the time of the last answer
    /// (every heartbeat tick).
    pub fn refresh(&self) {
        let up = match self.last_ok_ms.load(Ordering::Relaxed) {
            0 => false,
            at => {
                let now = self.epoch.elapsed().as_millis() as u64;
                now.saturating_sub(at) < self.failure_timeout.as_millis() as u64
            }
        };
        self.up.store(up, Ordering::Relaxed);
    }

    /// Milliseconds since the peer last answered (`None`: never).
    pub fn last_seen_ms(&self) -> Option<u64> {
        match self.last_ok_ms.load(Ordering::Relaxed) {
            0 => None,
            at => Some((self.epoch.elapsed().as_millis() as u64).saturating_sub(at)),
        }
    }

    /// Records word from the peer (a heartbeat either way), with the keys
    /// and bytes it reported when it did.
    pub fn mark_seen(&self, size: Option<(u64, u64)>) {
        let now = (self.epoch.elapsed().as_millis() as u64).max(1);
        self.last_ok_ms.store(now, Ordering::Relaxed);
        self.up.store(true, Ordering::Relaxed);
        if let Some((keys, bytes)) = size {
            self.key_count.store(keys, Ordering::Relaxed);
            self.memory_bytes.store(bytes, Ordering::Relaxed);
        }
    }

    /// Live keys and bytes the peer reported in its last heartbeat.
    pub fn reported_size(&self) -> (u64, u64) {
        (
            self.key_count.load(Ordering::Relaxed),
            self.memory_bytes.load(Ordering::Relaxed),
        )
    }

    /// The peer's `Cluster` client (heartbeats share the link's channel).
    pub fn cluster_client(&self) -> ClusterClient<Channel> {
        self.cluster.clone()
    }

    /// The peer's `Replica` client, for unbatched calls (`Execute`).
    pub fn replica_client(&self) -> ReplicaClient<Channel> {
        self.replica.clone()
    }

    /// Queues a coordinator-stamped entry for the peer's next `Apply`;
    /// the reply says whether the key was live before.
    pub fn apply(&self, key: &[u8], entry: &Entry) -> Result<Reply<ApplyAnswer>, PeerError> {
        let wire = crate::sync::convert::entry_to_proto(key, entry);
        let bytes = key.len() + entry.value.as_ref().map_or(0, |v| v.len()) + 32;
        self.apply.submit(wire, bytes)
    }

    /// Queues `key` for the peer's next `Read`; resolves to the peer's
    /// entry for it (an entry for another key is a bad answer).
    pub fn read(
        &self,
        key: &[u8],
    ) -> Result<
        impl std::future::Future<Output = Result<ReadAnswer, PeerError>> + Send + 'static,
        PeerError,
    > {
        let reply = self.read.submit(key.to_vec(), key.len() + 4)?;
        let asked: smallvec::SmallVec<[u8; 32]> = key.into();
        let peer = self.node_id.clone();
        Ok(async move {
            match reply.await {
                Ok(Ok(None)) => Ok(None),
                Ok(Ok(Some((got, entry)))) if *got == *asked => Ok(Some(entry)),
                Ok(Ok(Some(_))) => Err(bad_answer("Read", &peer, "an entry for another key")),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(PeerError::Closed(peer)),
            }
        })
    }
}

fn call_failed(rpc: &'static str, peer: &str, status: &tonic::Status) -> PeerError {
    PeerError::Call {
        rpc,
        peer: peer.to_owned(),
        reason: format!("{}: {}", status.code(), status.message()),
    }
}

fn bad_answer(rpc: &'static str, peer: &str, reason: impl Into<String>) -> PeerError {
    PeerError::BadAnswer {
        rpc,
        peer: peer.to_owned(),
        reason: reason.into(),
    }
}

fn apply_sender(
    peer: &str,
    client: &ReplicaClient<Channel>,
) -> SendBatch<proto::Entry, ApplyAnswer> {
    let (peer, client) = (peer.to_owned(), client.clone());
    Arc::new(move |entries: Vec<proto::Entry>| {
        let (peer, mut client) = (peer.clone(), client.clone());
        Box::pin(async move {
            let asked = entries.len();
            let answer = client
                .apply(proto::ApplyRequest { entries })
                .await
                .map_err(|s| call_failed("Apply", &peer, &s))?
                .into_inner();
            if answer.was_live.len() != asked {
                return Err(bad_answer(
                    "Apply",
                    &peer,
                    format!("{} answers for {asked} entries", answer.was_live.len()),
                ));
            }
            let mut out: Vec<ApplyAnswer> = answer.was_live.into_iter().map(Some).collect();
            for &i in &answer.refused {
                match out.get_mut(i as usize) {
                    Some(slot) => *slot = None,
                    None => return Err(bad_answer("Apply", &peer, "refused index out of range")),
                }
            }
            Ok(out)
        })
    })
}

fn read_sender(peer: &str, client: &ReplicaClient<Channel>) -> SendBatch<Vec<u8>, KeyedAnswer> {
    let (peer, client) = (peer.to_owned(), client.clone());
    Arc::new(move |keys: Vec<Vec<u8>>| {
        let (peer, mut client) = (peer.clone(), client.clone());
        Box::pin(async move {
            let asked = keys.len();
            let answer = client
                .read(proto::ReadRequest { keys })
                .await
                .map_err(|s| call_failed("Read", &peer, &s))?
                .into_inner();
            if answer.entries.len() != asked {
                return Err(bad_answer(
                    "Read",
                    &peer,
                    format!("{} entries for {asked} keys", answer.entries.len()),
                ));
            }
            let mut out = Vec::with_capacity(asked);
            for wire in answer.entries {
                if wire.version.is_none() {
                    out.push(None);
                    continue;
                }
                let keyed =
                    entry_from_proto(wire).map_err(|e| bad_answer("Read", &peer, e.to_string()))?;
                out.push(Some(keyed));
            }
            Ok(out)
        })
    })
}
