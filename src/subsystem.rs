//! How a subsystem (durable storage, anti-entropy, replication) joins a
//! starting node: it reads what it needs from [`StartUp`] and returns what
//! it adds as an [`Attached`], which `node.rs` assembles. No subsystem
//! reaches into the node, so the node depends on the subsystems and never
//! the other way round.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::hooks::{BoxFuture, Hooks, NodeFacts};
use crate::store::Store;

/// A step run at shutdown, after client connections have drained.
pub type StopStep = Box<dyn FnOnce() -> BoxFuture<()> + Send>;

/// Sync addresses (`host:port`) of peers learned at run time (MQTT
/// presence), by node id: replication fills it, anti-entropy reads it.
pub type DiscoveredPeers = Arc<parking_lot::RwLock<BTreeMap<String, String>>>;

/// Adds gRPC services to the sync port's routes.
pub type GrpcServices = Arc<dyn Fn(&mut tonic::service::RoutesBuilder) + Send + Sync>;

/// What a subsystem reads while it attaches.
pub struct StartUp<'a> {
    /// The loaded configuration.
    pub config: &'a Config,
    /// The store.
    pub store: &'a Arc<Store>,
    /// Facts about the node so far (earlier subsystems' addresses
    /// included).
    pub facts: &'a NodeFacts,
    /// Flips to `true` when shutdown begins; subscribe to stop tasks.
    pub shutdown: &'a watch::Sender<bool>,
    /// Notified to run an anti-entropy round with every peer now (e.g.
    /// after an MQTT reconnect).
    pub sync_trigger: &'a Arc<Notify>,
    /// Peers learned at run time, in addition to
    /// `anti_entropy.peer_list`.
    pub discovered_peers: &'a DiscoveredPeers,
    /// Where the subsystem registers its Prometheus metrics.
    pub registry: &'a mut prometheus_client::registry::Registry,
    /// More gRPC services for the sync port (the partitioned cluster's
    /// `Cluster` and `Replica`), served beside `MerkleSync`.
    pub grpc_services: Option<&'a GrpcServices>,
}

/// What a subsystem adds to the node.
#[derive(Default)]
pub struct Attached {
    /// Hooks into the command path it provides.
    pub hooks: Hooks,
    /// Long-running tasks (aborted after the stop steps ran).
    pub tasks: Vec<JoinHandle<()>>,
    /// Its shutdown step (run in reverse attach order).
    pub stop: Option<StopStep>,
    /// The sync (gRPC) address it listens on, for INFO and presence.
    pub sync_addr: Option<String>,
    /// The data directory it stores into, for INFO.
    pub data_dir: Option<String>,
}
