//! The extension points of the command path: what the client server calls
//! and the subsystems (replication, anti-entropy, durable storage)
//! implement. This room sits on a low floor — it knows the store and
//! nothing above it — so the server and every subsystem can depend on it
//! without depending on each other.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::store::Change;
pub use crate::store::LogError;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Receives the changes of every successful local write (replication).
/// Must never block: a full queue drops and counts.
pub trait ChangeSink: Send + Sync {
    /// Hands over the changes of one command.
    fn submit(&self, changes: Vec<Change>);
}

/// Why an on-demand anti-entropy round failed. `Display` is the
/// subsystem's own description of the failure, shown to the client after
/// `SYNC with host:port failed: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncRequestError {
    /// The peer address is not usable.
    #[error("{0}")]
    BadAddress(String),
    /// The peer could not be reached in time.
    #[error("{0}")]
    Unreachable(String),
    /// The peer answered, but with an error or something the protocol
    /// does not allow.
    #[error("{0}")]
    Refused(String),
    /// This node could not apply what the peer sent (memory limit, disk).
    #[error("{0}")]
    Local(String),
}

/// Runs one anti-entropy round on demand (`SYNC host port [--merge] [--full]`).
pub trait SyncRunner: Send + Sync {
    /// One anti-entropy round with the peer at `host:port` (its sync port,
    /// or its client port: the runner asks the peer for its sync port).
    fn sync_with(
        &self,
        host: String,
        port: u16,
        flags: crate::protocol::SyncFlags,
    ) -> BoxFuture<Result<SyncOutcome, SyncRequestError>>;
}

/// What a `SYNC` round did.
#[derive(Debug, Clone, Default)]
pub struct SyncOutcome {
    /// The round's figures, one line.
    pub summary: String,
    /// Local writes a mirror round made (to replicate like any write).
    pub changes: Vec<crate::store::Change>,
}

/// Why `REPLICATE enable` could not start replication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicationError {
    /// The node has no broker to replicate through.
    #[error("replication unavailable: no MQTT broker configured ([mqtt] broker_address)")]
    NoBroker,
    /// Shutdown has begun; nothing starts again.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The MQTT session could not be set up (TLS files, options).
    #[error("{0}")]
    Setup(String),
}

/// Starts, stops and reports MQTT replication (`REPLICATE …`).
pub trait ReplicationControl: Send + Sync {
    /// Starts replication (no-op when running).
    fn enable(&self) -> Result<(), ReplicationError>;
    /// Stops replication.
    fn disable(&self);
    /// `REPLICATION enabled <n> nodes …` / `REPLICATION disabled`.
    fn status(&self) -> String;
}

/// Makes recorded writes durable before their replies go out
/// (`storage.fsync = "always"`), sharing fsyncs between connections.
pub trait Durability: Send + Sync {
    /// Resolves once every write recorded so far is on disk.
    fn wait_durable(&self) -> BoxFuture<Result<(), LogError>>;
}

/// When durable storage last had everything written before then on disk
/// (`LASTSAVE`).
pub trait SaveClock: Send + Sync {
    /// Unix seconds of the change log's last fsync or checkpoint (the
    /// node's start, once recovery is done, before the first).
    fn last_save_unix_secs(&self) -> u64;
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
    /// When the data was last saved (durable storage).
    pub saves: Option<Arc<dyn SaveClock>>,
}

impl Hooks {
    /// These hooks, with every hook `other` provides taking the place of
    /// ours.
    pub fn merged(self, other: Hooks) -> Hooks {
        Hooks {
            changes: other.changes.or(self.changes),
            sync: other.sync.or(self.sync),
            replication: other.replication.or(self.replication),
            durability: other.durability.or(self.durability),
            saves: other.saves.or(self.saves),
        }
    }
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
