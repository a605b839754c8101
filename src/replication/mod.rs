//! MQTT hot-path replication.
//!
//! After every successful local write the command path hands the write's
//! *result* (key, new value or tombstone, version) to a bounded
//! [`queue::ChangeQueue`] and replies at once: a client never waits for the
//! broker. A publisher task packs queued changes into
//! [`crate::proto::ChangeBatch`] messages (QoS 1, `{topic_prefix}/updates`);
//! every node merges the batches of the others through
//! [`crate::store::Store::merge`] (last-writer-wins, idempotent). When the
//! broker is down or slow, writes still succeed locally, changes beyond the
//! queue are dropped and counted, and anti-entropy repairs the replicas;
//! every reconnect re-subscribes and triggers an anti-entropy round at
//! once. Retained presence messages announce each node's addresses and
//! catch a second process running with the same node id.
//!
//! Files: [`codec`] (wire format), [`queue`] (write path → publisher),
//! [`publisher`], [`subscriber`], [`connection`] (event loop, reconnects),
//! [`presence`], [`probe`] (duplicate node ids), [`session`] (one client and its tasks), [`control`]
//! (`REPLICATE …`), [`settings`], [`metrics`]. See `docs/replication.md`.

pub mod backoff;
pub mod codec;
pub mod connection;
pub mod control;
pub mod log_limit;
pub mod metrics;
pub mod presence;
pub mod probe;
pub mod publisher;
pub mod queue;
pub mod session;
pub mod settings;
pub mod shared;
pub mod subscriber;

use std::sync::Arc;

use anyhow::Context as _;
use tokio::runtime::Handle;

use crate::hooks::Hooks;
use crate::subsystem::{Attached, StartUp, StopStep};
use control::Replication;
use metrics::ReplicationMetrics;
use presence::PeerTable;
use queue::ChangeQueue;
use settings::Settings;
use shared::Shared;

/// Attaches replication to a starting node.
///
/// Without a broker configured the node runs standalone: one log line says
/// so, and `REPLICATE enable` only sets the switch `REPLICATE status` reports
/// ("no broker configured"). With a broker
/// but `mqtt.enabled = false`, everything is prepared and `REPLICATE
/// enable` starts it. Otherwise the session starts now; the node does not
/// wait for the broker (an unreachable broker is retried in the background).
pub async fn attach(start: StartUp<'_>) -> anyhow::Result<Attached> {
    let runtime = Handle::current();
    let config = start.config;
    if config.mqtt_broker().is_none() {
        tracing::info!("replication disabled: no MQTT broker configured");
        return Ok(Attached {
            hooks: Hooks {
                replication: Some(Arc::new(Replication::unconfigured(runtime))),
                ..Hooks::default()
            },
            ..Attached::default()
        });
    }
    let incarnation = rand::random::<u64>();
    let settings = Settings::new(config, start.facts, incarnation)?;
    // Fail at start-up, not at the first connect, on a bad TLS setup.
    settings
        .mqtt_options()
        .context("cannot set up the MQTT client")?;
    warn_if_unroutable(&settings);

    let metrics = Arc::new(ReplicationMetrics::default());
    metrics.register(start.registry);
    let queue = Arc::new(ChangeQueue::new(config.mqtt.queue_size, metrics.clone()));
    let peers = PeerTable::new(
        config.node_id.clone(),
        incarnation,
        start.discovered_peers.clone(),
        metrics.clone(),
    );
    let broker = format!("{}:{}", settings.broker.host, settings.broker.port);
    let topic = settings.updates_topic.clone();
    let shared = Arc::new(Shared::new(
        settings,
        start.store.clone(),
        queue.clone(),
        metrics,
        peers,
        start.sync_trigger.clone(),
    ));
    let replication = Arc::new(Replication::new(shared, runtime));
    let hooks = Hooks {
        changes: Some(queue),
        replication: Some(replication.clone()),
        ..Hooks::default()
    };

    if config.mqtt_enabled() {
        replication.start().context("cannot start replication")?;
        tracing::info!(%broker, %topic, "replication over MQTT starting");
    } else {
        tracing::info!(
            %broker,
            "replication disabled by mqtt.enabled = false; `REPLICATE enable` starts it"
        );
    }
    let stopper = replication;
    let stop: StopStep = Box::new(move || Box::pin(async move { stopper.shutdown().await }));
    Ok(Attached {
        hooks,
        stop: Some(stop),
        ..Attached::default()
    })
}

/// Warns when peers would be told to dial an unspecified address.
fn warn_if_unroutable(settings: &Settings) {
    let p = &settings.presence;
    for addr in [&p.client_addr, &p.sync_addr] {
        if addr.starts_with("0.0.0.0:") || addr.starts_with("[::]:") {
            tracing::warn!(
                %addr,
                "presence advertises an unspecified address; set network.advertise_address \
                 so that peers can dial this node"
            );
        }
    }
}
