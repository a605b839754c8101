//! Wires the parts of a node together and runs it until shutdown.
//!
//! Start-up: the store, then each subsystem attaches in turn (durable
//! storage, anti-entropy, replication, metrics) and returns what it adds
//! (hooks, tasks, a stop step), which the node assembles; then the client
//! listener starts and one `ready` line is printed. Shutdown (signal or
//! `SHUTDOWN`): stop accepting, let connections finish their in-flight
//! commands, run the subsystems' stop steps in reverse order (replication,
//! sync, storage flush), return.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::config::Config;
use crate::hooks::{Hooks, NodeFacts};
use crate::metrics::ServerFigures;
use crate::server::grpc_kv::LateContext;
use crate::server::idle_poll::IdlePoller;
use crate::server::stats::Stats;
use crate::server::{ClientListener, Limits, ServerContext};
use crate::store::{Store, StoreOptions, TreeShape};
use crate::subsystem::{Attached, DiscoveredPeers, GrpcServices, StartUp, StopStep};

/// How long open connections get to finish after shutdown is requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What every subsystem reads while it attaches.
struct Wiring {
    config: Config,
    store: Arc<Store>,
    facts: NodeFacts,
    shutdown: watch::Sender<bool>,
    sync_trigger: Arc<tokio::sync::Notify>,
    discovered_peers: DiscoveredPeers,
    registry: prometheus_client::registry::Registry,
    cluster: Option<Arc<Cluster>>,
    grpc_services: Option<GrpcServices>,
}

impl Wiring {
    /// What the next subsystem to attach sees.
    fn start_up(&mut self) -> StartUp<'_> {
        StartUp {
            config: &self.config,
            store: &self.store,
            facts: &self.facts,
            shutdown: &self.shutdown,
            sync_trigger: &self.sync_trigger,
            discovered_peers: &self.discovered_peers,
            registry: &mut self.registry,
            grpc_services: self.grpc_services.as_ref(),
        }
    }
}

/// What the subsystems added so far.
#[derive(Default)]
struct Assembly {
    hooks: Hooks,
    background: Vec<JoinHandle<()>>,
    stop_steps: Vec<StopStep>,
}

impl Assembly {
    /// Takes in one subsystem's additions; its addresses go into `facts`.
    fn add(&mut self, attached: Attached, facts: &mut NodeFacts) {
        let Attached {
            hooks,
            tasks,
            stop,
            sync_addr,
            data_dir,
        } = attached;
        self.hooks = std::mem::take(&mut self.hooks).merged(hooks);
        self.background.extend(tasks);
        self.stop_steps.extend(stop);
        if let Some(addr) = sync_addr {
            facts.sync_addr = addr;
        }
        if let Some(dir) = data_dir {
            facts.data_dir = dir;
        }
    }
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
        restamp_future_versions: config.storage.restamp_future_versions,
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
    let mut wiring = Wiring {
        facts: NodeFacts {
            node_id: config.node_id.clone(),
            client_addr: client_addr.to_string(),
            sync_addr: "disabled".into(),
            data_dir: "in-memory".into(),
            worker_threads: tokio::runtime::Handle::current().metrics().num_workers(),
        },
        config,
        store,
        shutdown,
        sync_trigger: Arc::new(tokio::sync::Notify::new()),
        discovered_peers: DiscoveredPeers::default(),
        registry: prometheus_client::registry::Registry::with_prefix("merklekv"),
        cluster: None,
        grpc_services: None,
    };
    let stats = Arc::new(Stats::default());
    let mut assembly = Assembly::default();

    // Subsystems attach here, in dependency order (one line each):
    // durable storage → (cluster) → anti-entropy → replication →
    // (heartbeats); metrics stays last. The cluster is built once durable
    // storage is there (replica writes wait on it) and before the sync
    // server, which serves its services.
    let attached = crate::persistence::attach(wiring.start_up()).await?;
    assembly.add(attached, &mut wiring.facts);
    wiring.cluster = Cluster::new(
        &wiring.config,
        wiring.store.clone(),
        assembly.hooks.durability.clone(),
    );
    // The sync port also serves the gRPC client API (it reaches the
    // server context once that exists) and, partitioned, the cluster's.
    let late_ctx: LateContext = Arc::default();
    let max_message_bytes =
        crate::sync::limits::max_message_bytes(wiring.config.network.max_line_bytes);
    let kv = crate::server::grpc_kv::services(
        late_ctx.clone(),
        wiring.config.network.max_line_bytes,
        max_message_bytes,
    );
    let cluster_services = wiring
        .cluster
        .as_ref()
        .map(|c| crate::cluster::service::services(c, &wiring.config));
    wiring.grpc_services = Some(Arc::new(
        move |routes: &mut tonic::service::RoutesBuilder| {
            kv(routes);
            if let Some(add) = &cluster_services {
                add(routes);
            }
        },
    ));
    let attached = crate::sync::attach(wiring.start_up()).await?;
    assembly.add(attached, &mut wiring.facts);
    let attached = crate::replication::attach(wiring.start_up()).await?;
    assembly.add(attached, &mut wiring.facts);
    if let Some(cluster) = wiring.cluster.clone() {
        let attached = crate::cluster::attach(wiring.start_up(), &cluster).await?;
        assembly.add(attached, &mut wiring.facts);
    }
    let figures = ServerFigures {
        stats: stats.clone(),
        idle_poll: idle_poll.clone(),
    };
    let attached = crate::metrics::attach(wiring.start_up(), figures).await?;
    assembly.add(attached, &mut wiring.facts);

    let Wiring {
        config,
        store,
        shutdown,
        facts,
        cluster,
        ..
    } = wiring;
    if let Some(poller) = idle_poll.clone() {
        let stopped = shutdown.subscribe();
        assembly
            .background
            .push(tokio::spawn(async move { poller.run(stopped).await }));
    }
    let network = &config.network;
    let ctx = Arc::new(ServerContext {
        store,
        stats,
        clients: Default::default(),
        limits: Limits {
            max_line_bytes: network.max_line_bytes,
            max_connections: network.max_connections,
            max_connections_per_ip: network.max_connections_per_ip,
            idle_timeout: (network.idle_timeout_seconds > 0)
                .then(|| Duration::from_secs(network.idle_timeout_seconds)),
            reply_timeout: (network.reply_timeout_seconds > 0)
                .then(|| Duration::from_secs(network.reply_timeout_seconds)),
            max_client_memory_bytes: usize::try_from(
                network.max_client_memory_mb.saturating_mul(1 << 20),
            )
            .unwrap_or(usize::MAX),
        },
        hooks: assembly.hooks,
        auth: crate::server::auth::Authenticator::new(&config.security),
        cluster,
        facts,
        idle_poll,
        started,
        shutdown,
    });

    let _ = late_ctx.set(ctx.clone());
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
        background: assembly.background,
        stop_steps: assembly.stop_steps,
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
