//! Wires the parts of a node together and runs it until shutdown.
//!
//! Start-up: the store, then each subsystem attaches itself to
//! [`NodeParts`] (durable storage, anti-entropy, replication, metrics),
//! then the client listener starts and one `ready` line is printed.
//! Shutdown (signal or `SHUTDOWN`): stop accepting, let connections finish
//! their in-flight commands, run the subsystems' stop steps in reverse
//! order (replication, sync, storage flush), return.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::server::context::NodeFacts;
use crate::server::idle_poll::IdlePoller;
use crate::server::stats::Stats;
use crate::server::{ClientListener, Hooks, Limits, ServerContext};
use crate::store::{Store, StoreOptions, TreeShape};

/// How long open connections get to finish after shutdown is requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A step run at shutdown, after client connections have drained.
pub type StopStep = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Everything a subsystem needs at start-up, and where it registers itself.
pub struct NodeParts {
    /// The loaded configuration.
    pub config: Config,
    /// The store.
    pub store: Arc<Store>,
    /// Hooks into the command path (durability, sync, replication).
    pub hooks: Hooks,
    /// Server counters.
    pub stats: Arc<Stats>,
    /// Keeps a worker polling between client requests (`None`:
    /// `network.idle_poll_us = 0`).
    pub idle_poll: Option<Arc<IdlePoller>>,
    /// Facts shown by INFO (subsystems fill in their addresses).
    pub facts: NodeFacts,
    /// Flips to `true` when shutdown begins; subscribe to stop tasks.
    pub shutdown: watch::Sender<bool>,
    /// Long-running tasks (aborted after the stop steps ran).
    pub background: Vec<JoinHandle<()>>,
    /// Stop steps, run in reverse registration order.
    pub stop_steps: Vec<StopStep>,
    /// Prometheus metrics registered by subsystems.
    pub registry: prometheus_client::registry::Registry,
    /// Notified to run an anti-entropy round with every peer now (e.g.
    /// after an MQTT reconnect).
    pub sync_trigger: Arc<tokio::sync::Notify>,
    /// Sync addresses (`host:port`) of peers learned at run time (MQTT
    /// presence), in addition to `anti_entropy.peer_list`.
    pub discovered_peers: Arc<parking_lot::RwLock<std::collections::BTreeMap<String, String>>>,
}

/// A started node.
pub struct RunningNode {
    /// Where clients connect.
    pub client_addr: SocketAddr,
    ctx: Arc<ServerContext>,
    listener: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
    stop_steps: Vec<StopStep>,
}

impl RunningNode {
    /// The shared server context (store, stats, hooks).
    pub fn context(&self) -> &Arc<ServerContext> {
        &self.ctx
    }

    /// Begins a graceful shutdown.
    pub fn shutdown(&self) {
        self.ctx.request_shutdown();
    }

    /// Waits until shutdown was requested and everything has stopped.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let _ = self.listener.await;
        while let Some(step) = self.stop_steps.pop() {
            step().await;
        }
        for task in &self.background {
            task.abort();
        }
        for task in self.background {
            let _ = task.await;
        }
        tracing::info!(node_id = %self.ctx.facts.node_id, "node stopped");
        Ok(())
    }
}

/// Builds the store described by the configuration.
pub fn build_store(config: &Config) -> anyhow::Result<Arc<Store>> {
    let store = Store::new(StoreOptions {
        node_id: config.node_id.clone(),
        shape: TreeShape {
            fanout: config.anti_entropy.tree_fanout,
            depth: config.anti_entropy.tree_depth,
        },
        max_clock_skew_ms: config.storage.max_clock_skew_ms,
        memory_limit_bytes: config.storage.memory_limit_mb.saturating_mul(1024 * 1024),
        max_value_bytes: config.network.max_line_bytes as u64,
        merkle_index: true,
    })?;
    Ok(Arc::new(store))
}

/// Starts a node: attaches its subsystems, binds the client listener.
pub async fn start(config: Config) -> anyhow::Result<RunningNode> {
    let started = Instant::now();
    let store = build_store(&config)?;
    let (shutdown, _) = watch::channel(false);
    let client_listener = TcpListener::bind(config.client_listen_addr())
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (network.bind_port)",
                config.client_listen_addr()
            )
        })?;
    let client_addr = client_listener.local_addr()?;
    let idle_poll =
        IdlePoller::new(Duration::from_micros(config.network.idle_poll_us)).map(Arc::new);
    let mut parts = NodeParts {
        facts: NodeFacts {
            node_id: config.node_id.clone(),
            client_addr: client_addr.to_string(),
            sync_addr: "disabled".into(),
            data_dir: "in-memory".into(),
            worker_threads: tokio::runtime::Handle::current().metrics().num_workers(),
        },
        config,
        idle_poll,
        store,
        hooks: Hooks::default(),
        stats: Arc::new(Stats::default()),
        shutdown,
        background: Vec::new(),
        stop_steps: Vec::new(),
        registry: prometheus_client::registry::Registry::with_prefix("merklekv"),
        sync_trigger: Arc::new(tokio::sync::Notify::new()),
        discovered_peers: Default::default(),
    };

    // Subsystems attach here, in dependency order (one line each):
    // durable storage → anti-entropy → replication; metrics stays last.
    crate::persistence::attach(&mut parts).await?;
    crate::sync::attach(&mut parts).await?;
    crate::replication::attach(&mut parts).await?;
    crate::metrics::attach(&mut parts).await?;

    if let Some(poller) = parts.idle_poll.clone() {
        let stopped = parts.shutdown.subscribe();
        parts
            .background
            .push(tokio::spawn(async move { poller.run(stopped).await }));
    }
    let ctx = Arc::new(ServerContext {
        store: parts.store.clone(),
        stats: parts.stats.clone(),
        clients: Default::default(),
        limits: Limits {
            max_line_bytes: parts.config.network.max_line_bytes,
            max_connections: parts.config.network.max_connections,
            idle_timeout: (parts.config.network.idle_timeout_seconds > 0)
                .then(|| Duration::from_secs(parts.config.network.idle_timeout_seconds)),
        },
        hooks: parts.hooks,
        facts: parts.facts,
        idle_poll: parts.idle_poll.clone(),
        started,
        shutdown: parts.shutdown,
    });

    let listener =
        tokio::spawn(ClientListener::new(client_listener, ctx.clone()).run(DRAIN_TIMEOUT));
    tracing::info!(
        node_id = %ctx.facts.node_id,
        client = %client_addr,
        sync = %ctx.facts.sync_addr,
        data_dir = %ctx.facts.data_dir,
        worker_threads = ctx.facts.worker_threads,
        "node ready"
    );
    // A machine-readable line for scripts and tests.
    println!(
        "merklekv ready node_id={} client={} sync={}",
        ctx.facts.node_id, client_addr, ctx.facts.sync_addr
    );
    Ok(RunningNode {
        client_addr,
        ctx,
        listener,
        background: parts.background,
        stop_steps: parts.stop_steps,
    })
}

/// Runs a node until SIGINT, SIGTERM or `SHUTDOWN`.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let node = start(config).await?;
    let ctx = node.context().clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received, shutting down");
        ctx.request_shutdown();
    });
    node.wait().await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
