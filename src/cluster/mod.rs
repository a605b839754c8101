//! The partitioned cluster, a layer between the client server and the
//! store: who replicates a key ([`ring`]), who is in the ring and up
//! ([`membership`], [`heartbeat`]), and the [`coordinator`] that takes any
//! client request and asks the key's replicas over one batched link per
//! peer ([`link`], [`batcher`]); replicas answer through [`service`].
//!
//! Off by default: `cluster.replication_factor = 0` keeps every node a
//! full replica and none of this runs (see docs/cluster.md).

pub mod admin;
mod batcher;
pub mod cleanup;
pub mod coordinator;
mod error;
mod heartbeat;
pub mod hint_log;
pub mod hints;
mod link;
pub mod membership;
mod metrics;
pub mod repair;
pub mod ring;
pub mod rmw;
mod rmw_wire;
pub mod service;
mod wire_error;

use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Channel;

pub use coordinator::Coordinator;
pub use error::{ClusterError, PeerError};
pub use membership::{Membership, RingView, Slot};
pub use metrics::ClusterMetrics;
pub use ring::{Replicas, Ring, TokenRange, MAX_REPLICATION_FACTOR};
pub use rmw::Rmw;

use crate::config::Config;
use crate::hooks::Durability;
use crate::proto;
use crate::proto::cluster_client::ClusterClient;
use crate::store::Store;
use crate::subsystem::{Attached, StartUp};

/// A node's part in a partitioned cluster.
pub struct Cluster {
    pub(crate) store: Arc<Store>,
    /// The ring and its members.
    pub membership: Arc<Membership>,
    /// Runs client requests over the ring.
    pub coordinator: Coordinator,
    pub(crate) durability: Option<Arc<dyn Durability>>,
    pub(crate) metrics: ClusterMetrics,
    hints: Arc<hints::Hints>,
    hint_metrics: hints::HintMetrics,
    links: link::LinkSettings,
    /// Timeouts and page sizes of range-scoped anti-entropy rounds.
    sync_tuning: crate::sync::Tuning,
}

impl Cluster {
    /// The cluster part of a node configured with a replication factor;
    /// `None` for a full-replica node. `durability` makes replica writes
    /// wait for `storage.fsync = "always"`.
    pub fn new(
        config: &Config,
        store: Arc<Store>,
        durability: Option<Arc<dyn Durability>>,
    ) -> Option<Arc<Self>> {
        let c = &config.cluster;
        if !c.is_partitioned() {
            return None;
        }
        let metrics = ClusterMetrics::default();
        let timeout = Duration::from_millis(c.request_timeout_ms);
        let links = link::LinkSettings {
            timeout,
            max_message_bytes: crate::sync::limits::max_message_bytes(
                config.network.max_line_bytes,
            ),
            failure_timeout: Duration::from_millis(c.failure_timeout_ms),
        };
        let membership = Arc::new(Membership::new(
            &config.node_id,
            c.vnodes,
            c.replication_factor,
            links.clone(),
            metrics.clone(),
        ));
        let hint_metrics = hints::HintMetrics::default();
        let hints = hints::Hints::new(
            c.max_hint_bytes,
            Duration::from_secs(c.max_hint_age_seconds),
            hint_metrics.clone(),
        );
        let hints = Arc::new(match config.storage.persistence {
            false => hints,
            true => {
                let dir = config.data_dir().join("hints");
                match hint_log::HintLog::open(&dir) {
                    Ok((log, loaded)) => {
                        let (hints, kept) = hints.with_log(log, loaded);
                        if kept > 0 {
                            tracing::info!(hints = kept, dir = %dir.display(), "hints read back from disk");
                        }
                        hints
                    }
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), error = %e, "cannot open the hint directory; hints are kept in memory only");
                        hints
                    }
                }
            }
        });
        let coordinator = Coordinator::new(
            store.clone(),
            membership.clone(),
            hints.clone(),
            durability.clone(),
            coordinator::Settings {
                write: c.write_consistency,
                read: c.read_consistency,
                timeout,
                speculative_retry: (c.speculative_retry_ms > 0)
                    .then(|| Duration::from_millis(c.speculative_retry_ms)),
                read_repair_chance: c.read_repair_chance,
            },
            metrics.clone(),
        );
        Some(Arc::new(Self {
            store,
            membership,
            coordinator,
            durability,
            metrics,
            hints,
            hint_metrics,
            links,
            sync_tuning: crate::sync::tuning_from_config(config),
        }))
    }

    /// Merges a peer's ring state (refusals logged and counted) and marks
    /// the peer seen, with its reported size when known.
    pub(crate) fn learn_from(
        &self,
        ring: &proto::RingState,
        from: &proto::Member,
        size: Option<(u64, u64)>,
    ) {
        if let Err(refusal) = self.membership.learn(ring, Some(from)) {
            tracing::warn!(peer = %from.node_id, addr = %from.sync_addr, %refusal, "ring state refused");
            self.metrics
                .ring_states_refused
                .get_or_create(&[("reason", refusal.reason())])
                .inc();
            return;
        }
        if let Some(link) = self.membership.link(&from.node_id) {
            link.mark_seen(size);
        }
    }

    /// This node's heartbeat answer.
    pub(crate) fn heartbeat_answer(&self) -> proto::HeartbeatResponse {
        proto::HeartbeatResponse {
            node: Some(self.membership.own()),
            ring: Some(self.membership.ring_state()),
            key_count: self.store.len(),
            memory_bytes: self.store.memory_used(),
        }
    }

    /// The ring and every member's status, as this node sees them.
    pub fn ring_status(&self) -> proto::GetRingStateResponse {
        let view = self.membership.view();
        let ownership = view.ring.ownership(self.membership.replication_factor());
        let own = self.membership.own();
        let ring = self.membership.ring_state();
        let client_addr = |id: &str| {
            ring.members
                .iter()
                .find(|m| m.node_id == id)
                .map(|m| m.client_addr.clone())
                .unwrap_or_default()
        };
        let mut members = Vec::with_capacity(view.links.len());
        for (i, id) in view.ring.members().iter().enumerate() {
            let share = ownership.get(i).copied().unwrap_or(0.0);
            let status = match view.links.get(i) {
                Some(Slot::Own) => proto::MemberStatus {
                    member: Some(own.clone()),
                    up: true,
                    last_seen_ms: 0,
                    key_count: self.store.len(),
                    memory_bytes: self.store.memory_used(),
                    ownership: share,
                },
                Some(Slot::Peer(link)) => {
                    let (keys, bytes) = link.reported_size();
                    proto::MemberStatus {
                        member: Some(proto::Member {
                            node_id: id.clone(),
                            sync_addr: link.sync_addr.clone(),
                            client_addr: client_addr(id),
                        }),
                        up: link.is_up(),
                        last_seen_ms: link.last_seen_ms().unwrap_or(u64::MAX),
                        key_count: keys,
                        memory_bytes: bytes,
                        ownership: share,
                    }
                }
                Some(Slot::Unreachable(_)) | None => proto::MemberStatus {
                    member: Some(proto::Member {
                        node_id: id.clone(),
                        ..proto::Member::default()
                    }),
                    last_seen_ms: u64::MAX,
                    ownership: share,
                    ..proto::MemberStatus::default()
                },
            };
            members.push(status);
        }
        proto::GetRingStateResponse {
            ring: Some(ring),
            members,
            node_id: own.node_id,
        }
    }

    /// Hands `link`'s hints over while it stays up, a batch at a time;
    /// what fails goes back for the next try.
    pub(crate) async fn deliver_hints(&self, link: Arc<link::PeerLink>) {
        const BATCH: usize = 1024;
        while link.is_up() {
            let batch = self.hints.take(&link.node_id, BATCH);
            if batch.is_empty() {
                return;
            }
            let replies: Vec<_> = batch
                .iter()
                .map(|h| link.apply(&h.key, &h.entry).ok())
                .collect();
            let mut failed = Vec::new();
            let mut delivered = 0;
            for (hint, reply) in batch.into_iter().zip(replies) {
                let ok = match reply {
                    Some(reply) => {
                        // A refused entry (None) is not retried: it never fits.
                        matches!(reply.await, Ok(Ok(_)))
                    }
                    None => false,
                };
                if ok {
                    delivered += 1;
                } else {
                    failed.push(hint);
                }
            }
            self.hints.delivered(&link.node_id, delivered);
            if !failed.is_empty() {
                tracing::debug!(peer = %link.node_id, failed = failed.len(), "hints not delivered");
                self.hints.put_back(&link.node_id, failed);
                return;
            }
        }
    }

    /// Whether hints wait for `node_id`.
    pub(crate) fn has_hints(&self, node_id: &str) -> bool {
        self.hints.has(node_id)
    }

    /// A `Cluster` client for an address no member link covers yet.
    fn stranger_client(&self, addr: &str) -> Option<ClusterClient<Channel>> {
        match self.links.channel(addr) {
            Ok(channel) => Some(ClusterClient::new(channel)),
            Err(e) => {
                tracing::warn!(%addr, error = %e, "cannot heartbeat this address");
                None
            }
        }
    }
}

/// Starts heartbeats and registers the metrics; the services are served
/// on the sync port by anti-entropy's server (see `sync::server`).
pub async fn attach(start: StartUp<'_>, cluster: &Arc<Cluster>) -> anyhow::Result<Attached> {
    let config = start.config;
    cluster.metrics.register(start.registry);
    cluster.hint_metrics.register(start.registry);
    let sync_addr = config.advertised_addr(&start.facts.sync_addr);
    let client_addr = config.advertised_addr(&start.facts.client_addr);
    cluster.membership.set_own_addrs(&sync_addr, &client_addr);
    let targets = heartbeat::Targets {
        seeds: config.anti_entropy.peer_list.clone(),
        discovered: start.discovered_peers.clone(),
        own: vec![
            start.facts.sync_addr.clone(),
            sync_addr.clone(),
            config.advertised_sync_addr(),
        ],
    };
    let interval = Duration::from_millis(config.cluster.heartbeat_interval_ms);
    let task = tokio::spawn(heartbeat::run(
        cluster.clone(),
        targets,
        interval,
        start.shutdown.subscribe(),
    ));
    let flusher = tokio::spawn(flush_hints(cluster.clone(), start.shutdown.subscribe()));
    let mut tasks = vec![task, flusher];
    let ae = &config.anti_entropy;
    if ae.enabled {
        tasks.push(tokio::spawn(repair::run(
            cluster.clone(),
            Duration::from_secs(ae.interval_seconds.max(1)),
            start.shutdown.subscribe(),
        )));
    }
    tracing::info!(
        replication_factor = config.cluster.replication_factor,
        vnodes = config.cluster.vnodes,
        write = config.cluster.write_consistency.as_str(),
        read = config.cluster.read_consistency.as_str(),
        range_repair = ae.enabled,
        sync = %sync_addr,
        "partitioned cluster attached"
    );
    Ok(Attached {
        tasks,
        ..Attached::default()
    })
}

/// Writes buffered hints to disk every [`hint_log::FLUSH_INTERVAL`], and
/// once more at shutdown.
async fn flush_hints(cluster: Arc<Cluster>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(hint_log::FLUSH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => cluster.hints.flush(),
            _ = shutdown.wait_for(|stop| *stop) => {
                cluster.hints.flush();
                return;
            }
        }
    }
}
