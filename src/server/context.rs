//! What every connection shares.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::clients::ClientRegistry;
use super::idle_poll::IdlePoller;
use super::stats::Stats;
use crate::hooks::{Hooks, NodeFacts};
use crate::store::Store;

/// Connection limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest accepted request line / RESP bulk string.
    pub max_line_bytes: usize,
    /// Most simultaneous client connections.
    pub max_connections: usize,
    /// Most simultaneous client connections from one IP address (0 = no
    /// cap).
    pub max_connections_per_ip: usize,
    /// Close connections idle this long (`None` = never).
    pub idle_timeout: Option<Duration>,
    /// Close a client whose replies made no progress this long (`None` =
    /// never).
    pub reply_timeout: Option<Duration>,
    /// Most bytes all clients together may hold in unfinished requests
    /// and unsent replies (0 = no cap).
    pub max_client_memory_bytes: usize,
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
    /// Client credentials and protected mode (`[security]`).
    pub auth: super::auth::Authenticator,
    /// The partitioned cluster; `None` for a full replica (keyed commands
    /// then run on the local store, as always).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
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
