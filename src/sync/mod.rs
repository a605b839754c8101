//! Anti-entropy over gRPC: the `MerkleSync` service, the descent client,
//! and the scheduler that heals replicas without anyone running a command.
//!
//! * [`server`] / [`service`]: the sync port (`network.sync_port`), with
//!   gRPC health and reflection.
//! * [`round`]: one round against one peer (Merkle descent or full
//!   exchange), reporting round trips and bytes each way; its steps live
//!   in `descent`, `listing` and `transfer`, its state in `round_state`.
//! * [`scheduler`]: rounds with every peer every `interval_seconds`, on the
//!   sync trigger, and tombstone garbage collection.
//! * [`runner`]: runs rounds for the scheduler and for `SYNC host port`.
//!
//! See `docs/anti-entropy.md` for the protocol and its guarantees.

pub(crate) mod compare;
pub(crate) mod convert;
mod descent;
pub(crate) mod error;
pub(crate) mod hash_scope;
pub mod limits;
mod listing;
pub mod metrics;
pub(crate) mod peer;
mod port_probe;
pub mod range_round;
pub(crate) mod ranges;
pub(crate) mod round;
mod round_state;
pub(crate) mod runner;
pub mod scheduler;
pub mod server;
pub(crate) mod service;
mod transfer;
pub(crate) mod validate;

use std::sync::Arc;
use std::time::Duration;

pub use error::SyncError;
pub use limits::Tuning;
pub use peer::{channel, endpoint, WireStats};
pub use range_round::run_range_round;
pub use round::{run_round, RoundReport};
pub use runner::SyncEngine;

use crate::hooks::Hooks;
use crate::subsystem::{Attached, StartUp, StopStep};

/// How long shutdown waits for the gRPC server to finish in-flight calls.
const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The round tuning a node's configuration asks for.
pub fn tuning_from_config(config: &crate::config::Config) -> Tuning {
    Tuning {
        rpc_timeout: Duration::from_secs(config.anti_entropy.timeout_seconds.max(1)),
        tombstone_grace: Some(Duration::from_secs(config.storage.tombstone_grace_seconds)),
        max_message_bytes: limits::max_message_bytes(config.network.max_line_bytes),
        ..Tuning::default()
    }
}

/// Starts the sync server, registers the `SYNC` hook and metrics, and (when
/// `anti_entropy.enabled`) the periodic rounds; tombstone collection always
/// runs.
pub async fn attach(start: StartUp<'_>) -> anyhow::Result<Attached> {
    let config = start.config;
    let tuning = tuning_from_config(config);
    let metrics = metrics::SyncMetrics::default();
    metrics.register(start.registry);

    let server = server::serve(
        &config.sync_listen_addr(),
        start.store.clone(),
        metrics.clone(),
        tuning.max_message_bytes,
        start.grpc_services.cloned(),
        start.shutdown.subscribe(),
    )
    .await?;
    let sync_addr = server.addr.to_string();

    let engine = Arc::new(SyncEngine::new(
        start.store.clone(),
        tuning,
        metrics.clone(),
    ));
    let hooks = Hooks {
        sync: Some(Arc::new(runner::OnDemand(engine.clone()))),
        ..Hooks::default()
    };
    let mut tasks = Vec::new();

    let ae = &config.anti_entropy;
    let partitioned = config.cluster.is_partitioned();
    // Partitioned, the cluster runs range-scoped rounds instead
    // (cluster::repair): a whole-tree round would copy every key to every
    // node.
    if ae.enabled && !partitioned {
        let source = scheduler::PeerSource {
            static_peers: ae.peer_list.clone(),
            discovered: start.discovered_peers.clone(),
            own: vec![server.addr.to_string(), config.advertised_sync_addr()],
        };
        let schedule = scheduler::Schedule {
            interval: Duration::from_secs(ae.interval_seconds.max(1)),
            max_concurrent: ae.max_concurrent_syncs,
            mode: ae.mode,
        };
        tasks.push(tokio::spawn(scheduler::run(
            engine,
            source,
            schedule,
            start.sync_trigger.clone(),
            start.shutdown.subscribe(),
        )));
    }
    let collected = metrics.tombstones_collected.clone();
    tasks.push(tokio::spawn(crate::store::collect_tombstones(
        start.store.clone(),
        Duration::from_secs(config.storage.tombstone_grace_seconds),
        move |n| {
            collected.inc_by(n as u64);
        },
        start.shutdown.subscribe(),
    )));

    let expired = metrics.keys_expired.clone();
    tasks.push(tokio::spawn(crate::store::run_expiry(
        start.store.clone(),
        move |n| {
            expired.inc_by(n as u64);
        },
        start.shutdown.subscribe(),
    )));

    let task = server.task;
    let stop: StopStep = Box::new(move || {
        Box::pin(async move {
            let abort = task.abort_handle();
            if tokio::time::timeout(SERVER_STOP_TIMEOUT, task)
                .await
                .is_err()
            {
                abort.abort();
            }
        })
    });
    tracing::info!(
        sync = %sync_addr,
        periodic = ae.enabled && !partitioned,
        mode = ae.mode.as_str(),
        peers = ae.peer_list.len(),
        "anti-entropy attached"
    );
    Ok(Attached {
        hooks,
        tasks,
        stop: Some(stop),
        sync_addr: Some(sync_addr),
        ..Attached::default()
    })
}
