//! The gRPC listener on the sync port: `MerkleSync` (plus the services
//! other subsystems add: `Cluster` and `Replica` in a partitioned cluster), gRPC health
//! (`grpc.health.v1`) and server reflection (v1 and v1alpha), so `grpcurl
//! -plaintext host:7380 list` works without a local copy of the proto.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use super::metrics::SyncMetrics;
use super::service::SyncService;
use crate::proto::merkle_sync_server::MerkleSyncServer;
use crate::store::Store;
use crate::subsystem::GrpcServices;

/// A bound, running sync server.
pub struct SyncServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Resolves when the server has stopped.
    pub task: JoinHandle<()>,
}

/// Binds `listen` and serves until `shutdown` turns `true`; `extra`
/// services are served beside `MerkleSync`.
pub async fn serve(
    listen: &str,
    store: Arc<Store>,
    metrics: SyncMetrics,
    max_message_bytes: usize,
    extra: Option<GrpcServices>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<SyncServer> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (network.sync_port)"))?;
    let addr = listener.local_addr()?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));

    let sync = MerkleSyncServer::new(SyncService::new(store, metrics))
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<MerkleSyncServer<SyncService>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building gRPC reflection (v1)")?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("building gRPC reflection (v1alpha)")?;

    let mut routes = Routes::builder();
    routes
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(sync);
    if let Some(add) = extra {
        add(&mut routes);
    }
    let router = Server::builder()
        .initial_stream_window_size(super::peer::STREAM_WINDOW_BYTES)
        .initial_connection_window_size(super::peer::CONNECTION_WINDOW_BYTES)
        .add_routes(routes.routes());
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
            health_reporter
                .set_not_serving::<MerkleSyncServer<SyncService>>()
                .await;
        };
        if let Err(e) = router.serve_with_incoming_shutdown(incoming, stop).await {
            tracing::error!(error = %e, "sync server failed");
        }
    });
    Ok(SyncServer { addr, task })
}
