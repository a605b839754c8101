//! Runs rounds for the scheduler and for `SYNC host port [--full]`:
//! keeps one channel per peer, records metrics, logs outcomes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tonic::transport::Channel;

use super::error::SyncError;
use super::limits::Tuning;
use super::metrics::SyncMetrics;
use super::peer;
use super::round::{run_mirror_round, run_round, RoundReport};
use crate::config::SyncMode;
use crate::hooks::{BoxFuture, SyncOutcome, SyncRequestError, SyncRunner};
use crate::store::Store;

/// Channels kept at most (peers named by `SYNC` can be anything).
const MAX_CACHED_CHANNELS: usize = 256;

/// A peer that keeps failing for the same reason is reported at `warn`
/// at most this often (every failure is still counted and logged at
/// `debug`).
const REPEAT_WARNING_EVERY: Duration = Duration::from_secs(60);

/// The last failure reported for a peer.
struct Failing {
    reason: &'static str,
    warned: Instant,
    since: Instant,
    count: u64,
}

/// Runs anti-entropy rounds against peers.
pub struct SyncEngine {
    store: Arc<Store>,
    tuning: Tuning,
    metrics: SyncMetrics,
    channels: Mutex<HashMap<String, Channel>>,
    failing: Mutex<HashMap<String, Failing>>,
}

impl SyncEngine {
    /// An engine syncing `store`.
    pub fn new(store: Arc<Store>, tuning: Tuning, metrics: SyncMetrics) -> Self {
        Self {
            store,
            tuning,
            metrics,
            channels: Mutex::new(HashMap::new()),
            failing: Mutex::new(HashMap::new()),
        }
    }

    fn channel(&self, addr: &str) -> Result<Channel, SyncError> {
        let mut channels = self.channels.lock();
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let c = peer::channel(addr, &self.tuning)?;
        if channels.len() >= MAX_CACHED_CHANNELS {
            channels.clear();
        }
        channels.insert(addr.to_owned(), c.clone());
        Ok(c)
    }

    /// One round with the peer at `addr` (`host:port`).
    pub async fn sync_with(&self, addr: &str, mode: SyncMode) -> Result<RoundReport, SyncError> {
        self.round(addr, mode, false).await
    }

    /// One mirror round with the peer at `addr`: afterwards this node holds
    /// exactly the peer's data ([`run_mirror_round`]).
    pub async fn mirror_from(&self, addr: &str, mode: SyncMode) -> Result<RoundReport, SyncError> {
        self.round(addr, mode, true).await
    }

    /// A round of either kind, counted and logged.
    async fn round(
        &self,
        addr: &str,
        mode: SyncMode,
        mirror: bool,
    ) -> Result<RoundReport, SyncError> {
        let outcome = match self.channel(addr) {
            Ok(channel) if mirror => {
                run_mirror_round(&self.store, channel, addr, mode, &self.tuning).await
            }
            Ok(channel) => run_round(&self.store, channel, addr, mode, &self.tuning).await,
            Err(e) => Err(e),
        };
        self.metrics.record(&outcome);
        self.log(addr, mode, &outcome);
        outcome
    }

    /// Logs a round: successes at `debug`/`info`, the first failure (and a
    /// change of reason, and a reminder every minute) at `warn`, repeats at
    /// `debug`, and a recovery at `info`.
    fn log(&self, addr: &str, mode: SyncMode, outcome: &Result<RoundReport, SyncError>) {
        let mut failing = self.failing.lock();
        match outcome {
            Ok(r) => {
                if let Some(f) = failing.remove(addr) {
                    tracing::info!(
                        peer = addr,
                        failed_rounds = f.count,
                        failing_for_secs = f.since.elapsed().as_secs(),
                        "anti-entropy with peer recovered"
                    );
                }
                if r.in_sync {
                    tracing::debug!(peer = addr, "anti-entropy: {}", r.summary());
                } else {
                    tracing::info!(peer = addr, "anti-entropy: {}", r.summary());
                }
            }
            Err(e) => {
                let now = Instant::now();
                let reason = e.kind();
                let warn = match failing.get_mut(addr) {
                    Some(f) => {
                        f.count += 1;
                        let due = f.reason != reason || f.warned.elapsed() >= REPEAT_WARNING_EVERY;
                        if due {
                            f.reason = reason;
                            f.warned = now;
                        }
                        due
                    }
                    None => {
                        if failing.len() >= MAX_CACHED_CHANNELS {
                            failing.clear();
                        }
                        failing.insert(
                            addr.to_owned(),
                            Failing {
                                reason,
                                warned: now,
                                since: now,
                                count: 1,
                            },
                        );
                        true
                    }
                };
                if warn {
                    tracing::warn!(
                        peer = addr,
                        mode = mode.as_str(),
                        reason,
                        error = %e,
                        "anti-entropy round failed"
                    );
                } else {
                    tracing::debug!(peer = addr, reason, error = %e, "anti-entropy round failed again");
                }
            }
        }
    }
}

/// The `SYNC host port [--merge] [--full] [--verbose]` hook.
pub struct OnDemand(pub Arc<SyncEngine>);

impl SyncRunner for OnDemand {
    fn sync_with(
        &self,
        host: String,
        port: u16,
        flags: crate::protocol::SyncFlags,
    ) -> BoxFuture<Result<SyncOutcome, SyncRequestError>> {
        let engine = self.0.clone();
        Box::pin(async move {
            let port = super::port_probe::sync_port_behind(&host, port).await;
            let addr = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            let mode = if flags.full {
                SyncMode::Full
            } else {
                SyncMode::Merkle
            };
            let report = if flags.merge {
                engine.sync_with(&addr, mode).await
            } else {
                engine.mirror_from(&addr, mode).await
            };
            report
                .map(|r| SyncOutcome {
                    summary: r.summary(),
                    changes: r.changes,
                })
                .map_err(|e| e.into())
        })
    }
}
