//! Wires the parts of a node together and runs it until shutdown.
//!
//! Start-up order: store (and its durable log), client listener, sync
//! service, replication, metrics; then one `ready` line. Shutdown (signal or
//! `SHUTDOWN`): stop accepting, let connections finish their in-flight
//! commands, stop the background tasks, flush storage, return.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::server::context::NodeFacts;
use crate::server::stats::Stats;
use crate::server::{ClientListener, Hooks, Limits, ServerContext};
use crate::store::{Store, StoreOptions, TreeShape};

/// How long open connections get to finish after shutdown is requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A started node.
pub struct RunningNode {
    /// Where clients connect (the bound address, useful with port 0).
    pub client_addr: SocketAddr,
    ctx: Arc<ServerContext>,
    listener: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
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
    pub async fn wait(self) -> anyhow::Result<()> {
        let _ = self.listener.await;
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
    })?;
    Ok(Arc::new(store))
}

/// Starts a node: binds its listeners and spawns its tasks.
pub async fn start(config: Config) -> anyhow::Result<RunningNode> {
    let started = Instant::now();
    let store = build_store(&config)?;
    let hooks = Hooks::default();

    let client_listener = TcpListener::bind(config.client_listen_addr())
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (network.bind_port)",
                config.client_listen_addr()
            )
        })?;
    let client_addr = client_listener.local_addr()?;

    let (shutdown, _) = watch::channel(false);
    let ctx = Arc::new(ServerContext {
        store,
        stats: Arc::new(Stats::default()),
        clients: Default::default(),
        limits: Limits {
            max_line_bytes: config.network.max_line_bytes,
            max_connections: config.network.max_connections,
            idle_timeout: (config.network.idle_timeout_seconds > 0)
                .then(|| Duration::from_secs(config.network.idle_timeout_seconds)),
        },
        hooks,
        facts: NodeFacts {
            node_id: config.node_id.clone(),
            client_addr: client_addr.to_string(),
            sync_addr: String::new(),
            data_dir: "in-memory".into(),
        },
        started,
        shutdown,
    });
    let background = Vec::new();

    let listener =
        tokio::spawn(ClientListener::new(client_listener, ctx.clone()).run(DRAIN_TIMEOUT));
    tracing::info!(
        node_id = %config.node_id,
        client = %client_addr,
        data_dir = %ctx.facts.data_dir,
        "node ready"
    );
    // A machine-readable line for scripts and tests (ports may be ephemeral).
    println!(
        "merklekv ready node_id={} client={}",
        config.node_id, client_addr
    );
    Ok(RunningNode {
        client_addr,
        ctx,
        listener,
        background,
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
