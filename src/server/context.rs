//! What every connection shares, and the hooks the other subsystems plug
//! into the command path.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::clients::ClientRegistry;
use super::idle_poll::IdlePoller;
use super::stats::Stats;
use crate::store::{Change, Store};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Receives the changes of every successful local write (replication).
/// Must never block: a full queue drops and counts.
pub trait ChangeSink: Send + Sync {
    /// Hands over the changes of one command.
    fn submit(&self, changes: Vec<Change>);
}

/// Runs one anti-entropy round on demand (`SYNC host port [--full]`).
pub trait SyncRunner: Send + Sync {
    /// Syncs with the peer's sync endpoint; `Ok` carries a one-line summary.
    fn sync_with(&self, host: String, port: u16, full: bool) -> BoxFuture<Result<String, String>>;
}

/// Starts, stops and reports MQTT replication (`REPLICATE …`).
pub trait ReplicationControl: Send + Sync {
    /// Starts replication (no-op when running).
    fn enable(&self) -> Result<(), String>;
    /// Stops replication.
    fn disable(&self);
    /// `REPLICATION enabled <n> nodes …` / `REPLICATION disabled`.
    fn status(&self) -> String;
}

/// Makes recorded writes durable before their replies go out
/// (`storage.fsync = "always"`), sharing fsyncs between connections.
pub trait Durability: Send + Sync {
    /// Resolves once every write recorded so far is on disk.
    fn wait_durable(&self) -> BoxFuture<Result<(), String>>;
}

/// Optional subsystems; absent ones answer with a clear error.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Replication publisher.
    pub changes: Option<Arc<dyn ChangeSink>>,
    /// Anti-entropy on demand.
    pub sync: Option<Arc<dyn SyncRunner>>,
    /// Replication control.
    pub replication: Option<Arc<dyn ReplicationControl>>,
    /// Group commit for `fsync = "always"`.
    pub durability: Option<Arc<dyn Durability>>,
}

/// Connection limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest accepted request line / RESP bulk string.
    pub max_line_bytes: usize,
    /// Most simultaneous client connections.
    pub max_connections: usize,
    /// Close connections idle this long (`None` = never).
    pub idle_timeout: Option<Duration>,
}

/// Facts shown by INFO.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    /// Configured node id.
    pub node_id: String,
    /// Client listen address.
    pub client_addr: String,
    /// Sync (gRPC) listen address.
    pub sync_addr: String,
    /// Data directory (or "in-memory").
    pub data_dir: String,
    /// Worker threads of the runtime the node runs on (read from the
    /// runtime itself, so it is the count in use, not the configured one).
    pub worker_threads: usize,
}

/// Shared by every connection.
pub struct ServerContext {
    /// The store.
    pub store: Arc<Store>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Connected clients.
    pub clients: ClientRegistry,
    /// Limits.
    pub limits: Limits,
    /// Plug-in subsystems.
    pub hooks: Hooks,
    /// Static facts for INFO.
    pub facts: NodeFacts,
    /// Keeps a worker polling between client requests (`None`: off).
    pub idle_poll: Option<Arc<IdlePoller>>,
    /// When the node started.
    pub started: Instant,
    /// Flipped to `true` to begin a graceful shutdown.
    pub shutdown: watch::Sender<bool>,
}

impl ServerContext {
    /// Begins a graceful shutdown (SHUTDOWN command, signal).
    pub fn request_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}
