//! Periodic anti-entropy: a round with every peer about every
//! `interval_seconds` (±20 % jitter so nodes do not synchronise), at most
//! `max_concurrent_syncs` at once, and a round with every peer right away
//! when the sync trigger fires (after an MQTT reconnect). Tombstone garbage
//! collection is the store's (`store::tombstone_gc`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::runner::SyncEngine;
use crate::config::SyncMode;

/// Where the peers come from.
pub struct PeerSource {
    /// `anti_entropy.peer_list`.
    pub static_peers: Vec<String>,
    /// Peers learned at run time (node id → sync address).
    pub discovered: Arc<parking_lot::RwLock<BTreeMap<String, String>>>,
    /// Our own sync addresses (bound and advertised), never synced with.
    pub own: Vec<String>,
}

impl PeerSource {
    /// The current peers, deduplicated, ourselves excluded.
    pub fn peers(&self) -> Vec<String> {
        let own_sockets: Vec<SocketAddr> = self.own.iter().filter_map(|a| a.parse().ok()).collect();
        let is_own = |p: &str| {
            self.own.iter().any(|o| o == p)
                || p.parse::<SocketAddr>()
                    .is_ok_and(|s| own_sockets.contains(&s))
        };
        let discovered = self.discovered.read();
        let mut out: Vec<String> = Vec::new();
        for p in self.static_peers.iter().chain(discovered.values()) {
            let p = p.trim();
            if !p.is_empty() && !is_own(p) && !out.iter().any(|o| o == p) {
                out.push(p.to_owned());
            }
        }
        out
    }
}

/// Settings of the periodic loop.
pub struct Schedule {
    /// Time between rounds with one peer.
    pub interval: Duration,
    /// Rounds at once.
    pub max_concurrent: usize,
    /// Merkle or full.
    pub mode: SyncMode,
}

fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(rand::random_range(0.8..1.2))
}

/// Runs rounds until `shutdown` turns `true`.
pub async fn run(
    engine: Arc<SyncEngine>,
    source: PeerSource,
    schedule: Schedule,
    trigger: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(schedule.max_concurrent.max(1)));
    let mut due: HashMap<String, Instant> = HashMap::new();
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut tasks: JoinSet<String> = JoinSet::new();
    // The first round with a peer comes soon after start-up, spread a little.
    let first_delay = (schedule.interval / 4).min(Duration::from_secs(2));
    loop {
        let now = Instant::now();
        let peers = source.peers();
        due.retain(|p, _| peers.contains(p));
        for p in &peers {
            due.entry(p.clone())
                .or_insert_with(|| now + first_delay.mul_f64(rand::random_range(0.0..1.0)));
        }
        for (peer, at) in due.iter_mut() {
            if *at > now || in_flight.contains(peer) {
                continue;
            }
            *at = now + jittered(schedule.interval);
            in_flight.insert(peer.clone());
            let (engine, permits, peer, mode) =
                (engine.clone(), permits.clone(), peer.clone(), schedule.mode);
            tasks.spawn(async move {
                if let Ok(_permit) = permits.acquire().await {
                    let _ = engine.sync_with(&peer, mode).await;
                }
                peer
            });
        }
        // Wake for the next due peer, and at least once per interval to
        // pick up newly discovered peers.
        let next = due
            .iter()
            .filter(|(p, _)| !in_flight.contains(*p))
            .map(|(_, at)| *at)
            .min()
            .unwrap_or(now + schedule.interval)
            .min(now + schedule.interval)
            .max(now + Duration::from_millis(10));
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = trigger.notified() => {
                tracing::debug!("anti-entropy triggered: a round with every peer now");
                let now = Instant::now();
                due.values_mut().for_each(|at| *at = now);
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(peer) = done {
                    in_flight.remove(&peer);
                }
            }
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    tasks.abort_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_skip_ourselves_and_duplicates() {
        let discovered = Arc::new(parking_lot::RwLock::new(BTreeMap::from([
            ("n2".to_owned(), "10.0.0.2:7380".to_owned()),
            ("n1".to_owned(), "10.0.0.1:7380".to_owned()),
            ("n3".to_owned(), "127.0.0.1:7381".to_owned()),
        ])));
        let source = PeerSource {
            static_peers: vec!["127.0.0.1:7381".into(), " ".into(), "127.0.0.1:7380".into()],
            discovered,
            own: vec!["127.0.0.1:7380".into(), "10.0.0.1:7380".into()],
        };
        assert_eq!(source.peers(), vec!["127.0.0.1:7381", "10.0.0.2:7380"]);
    }
}
