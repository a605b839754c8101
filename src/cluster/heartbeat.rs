//! Failure detection: every `cluster.heartbeat_interval_ms` this node
//! heartbeats every member it knows, every seed (`anti_entropy.peer_list`)
//! and every peer MQTT presence announced. An answer marks the member up
//! and carries its ring state; a member without an answer for
//! `cluster.failure_timeout_ms` is down (a plain timeout: simple to reason
//! about, and the coordinator retries the next replica anyway). A member
//! seen up with hints waiting gets them (one delivery task per member).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::watch;
use tonic::transport::Channel;

use super::Cluster;
use crate::proto;
use crate::proto::cluster_client::ClusterClient;
use crate::subsystem::DiscoveredPeers;

/// Where heartbeats go besides the known members.
pub struct Targets {
    /// `anti_entropy.peer_list`.
    pub seeds: Vec<String>,
    /// Peers MQTT presence announced.
    pub discovered: DiscoveredPeers,
    /// This node's own addresses (never heartbeated).
    pub own: Vec<String>,
}

/// Heartbeats until shutdown.
pub async fn run(
    cluster: Arc<Cluster>,
    targets: Targets,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    // Clients for addresses that are not (yet) members' links.
    let mut strangers: HashMap<String, ClusterClient<Channel>> = HashMap::new();
    // Hint deliveries running, one per replica at most.
    let mut deliveries = tokio::task::JoinSet::new();
    let mut delivering: BTreeSet<String> = BTreeSet::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let own = cluster.membership.own();
        let ring = cluster.membership.ring_state();
        let links = cluster.membership.links();
        let mut calls = Vec::new();
        let mut addressed: BTreeSet<String> = targets.own.iter().cloned().collect();
        addressed.insert(own.sync_addr.clone());
        for link in links {
            addressed.insert(link.sync_addr.clone());
            calls.push((link.sync_addr.clone(), link.cluster_client()));
        }
        let extra: Vec<String> = targets
            .seeds
            .iter()
            .cloned()
            .chain(targets.discovered.read().values().cloned())
            .collect();
        for addr in extra {
            if !addressed.insert(addr.clone()) {
                continue;
            }
            let client = match strangers.get(&addr) {
                Some(c) => c.clone(),
                None => match cluster.stranger_client(&addr) {
                    Some(c) => {
                        strangers.insert(addr.clone(), c.clone());
                        c
                    }
                    None => continue,
                },
            };
            calls.push((addr, client));
        }
        let timeout = interval.max(Duration::from_millis(200));
        let beats = calls.into_iter().map(|(addr, mut client)| {
            let request = proto::HeartbeatRequest {
                from: Some(own.clone()),
                ring: Some(ring.clone()),
            };
            async move {
                let answer = tokio::time::timeout(timeout, client.heartbeat(request)).await;
                (addr, answer)
            }
        });
        for (addr, answer) in join_all(beats).await {
            match answer {
                Ok(Ok(answer)) => {
                    let answer = answer.into_inner();
                    match (&answer.ring, &answer.node) {
                        (Some(ring), Some(node)) if node.node_id != own.node_id => {
                            cluster.learn_from(
                                ring,
                                node,
                                Some((answer.key_count, answer.memory_bytes)),
                            );
                            strangers.remove(&addr);
                        }
                        (_, Some(_)) => {} // ourselves under another address
                        _ => {
                            tracing::warn!(peer = %addr, "heartbeat answer without a ring state");
                            cluster.metrics.heartbeat_failures.inc();
                        }
                    }
                }
                Ok(Err(status)) => {
                    tracing::debug!(peer = %addr, %status, "heartbeat failed");
                    cluster.metrics.heartbeat_failures.inc();
                }
                Err(_) => {
                    tracing::debug!(peer = %addr, "heartbeat timed out");
                    cluster.metrics.heartbeat_failures.inc();
                }
            }
        }
        for link in cluster.membership.links() {
            link.refresh();
            if link.is_up()
                && cluster.has_hints(&link.node_id)
                && !delivering.contains(&link.node_id)
            {
                delivering.insert(link.node_id.clone());
                let (cluster, id) = (cluster.clone(), link.node_id.clone());
                deliveries.spawn(async move {
                    cluster.deliver_hints(link).await;
                    id
                });
            }
        }
        while let Some(done) = deliveries.try_join_next() {
            if let Ok(id) = done {
                delivering.remove(&id);
            }
        }
        cluster
            .metrics
            .members_up
            .set(cluster.membership.members_up() as i64);
    }
}
