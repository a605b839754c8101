//! The `Cluster` and `Replica` gRPC services on the sync port.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::Cluster;
use crate::config::Consistency;
use crate::proto;
use crate::proto::cluster_server::{Cluster as ClusterRpc, ClusterServer};
use crate::proto::replica_server::{Replica as ReplicaRpc, ReplicaServer};
use crate::store::{MergeOutcome, WriteOp, WriteResult};
use crate::subsystem::GrpcServices;
use crate::sync::convert::{entry_from_proto, entry_to_proto};

/// Adds the `Cluster` and `Replica` services of `cluster` to the sync
/// port's routes.
pub fn services(cluster: &Arc<Cluster>, config: &crate::config::Config) -> GrpcServices {
    let max = crate::sync::limits::max_message_bytes(config.network.max_line_bytes);
    let service = ClusterService::new(cluster.clone());
    Arc::new(move |routes: &mut tonic::service::RoutesBuilder| {
        routes
            .add_service(
                ClusterServer::new(service.clone())
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .add_service(
                ReplicaServer::new(service.clone())
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            );
    })
}

/// Entries or keys one replica call may carry.
const MAX_ITEMS: usize = 16_384;

/// Serves `Cluster` (membership) and `Replica` (what coordinators ask).
#[derive(Clone)]
pub struct ClusterService {
    cluster: Arc<Cluster>,
}

impl ClusterService {
    /// The services of `cluster`.
    pub fn new(cluster: Arc<Cluster>) -> Self {
        Self { cluster }
    }

    /// Waits until what this call wrote is as durable as `storage.fsync`
    /// asks, before the caller is told it was applied.
    async fn durable(&self) -> Result<(), Status> {
        match &self.cluster.durability {
            Some(d) => d
                .wait_durable()
                .await
                .map_err(|e| Status::unavailable(format!("storage error: {e}"))),
            None => Ok(()),
        }
    }
}

#[tonic::async_trait]
impl ClusterRpc for ClusterService {
    async fn heartbeat(
        &self,
        request: Request<proto::HeartbeatRequest>,
    ) -> Result<Response<proto::HeartbeatResponse>, Status> {
        let req = request.into_inner();
        if let (Some(ring), Some(from)) = (&req.ring, &req.from) {
            self.cluster.learn_from(ring, from, None);
        }
        Ok(Response::new(self.cluster.heartbeat_answer()))
    }

    async fn get_ring_state(
        &self,
        _request: Request<proto::GetRingStateRequest>,
    ) -> Result<Response<proto::GetRingStateResponse>, Status> {
        Ok(Response::new(self.cluster.ring_status()))
    }

    async fn repair(
        &self,
        _request: Request<proto::RepairRequest>,
    ) -> Result<Response<proto::RepairResponse>, Status> {
        let peers = self
            .cluster
            .repair_all()
            .await
            .into_iter()
            .map(super::repair::PeerRepair::to_proto)
            .collect();
        Ok(Response::new(proto::RepairResponse {
            node_id: self.cluster.store.node_id().to_owned(),
            peers,
        }))
    }

    async fn cleanup(
        &self,
        _request: Request<proto::CleanupRequest>,
    ) -> Result<Response<proto::CleanupResponse>, Status> {
        let report = self
            .cluster
            .cleanup(self.cluster.sync_tuning.rpc_timeout)
            .await;
        Ok(Response::new(report.to_proto(self.cluster.store.node_id())))
    }
}

#[tonic::async_trait]
impl ReplicaRpc for ClusterService {
    async fn apply(
        &self,
        request: Request<proto::ApplyRequest>,
    ) -> Result<Response<proto::ApplyResponse>, Status> {
        let entries = request.into_inner().entries;
        if entries.len() > MAX_ITEMS {
            return Err(Status::invalid_argument(format!(
                "{} entries; at most {MAX_ITEMS} per call",
                entries.len()
            )));
        }
        let store = &self.cluster.store;
        let mut answer = proto::ApplyResponse {
            was_live: Vec::with_capacity(entries.len()),
            refused: Vec::new(),
        };
        for (i, wire) in entries.into_iter().enumerate() {
            let (key, entry) = entry_from_proto(wire)
                .map_err(|e| Status::invalid_argument(format!("entry {i}: {e}")))?;
            let (outcome, was_live) = store
                .merge_observed(&key, entry)
                .map_err(|e| Status::unavailable(e.to_string()))?;
            if matches!(outcome, MergeOutcome::Refused(_)) {
                answer.refused.push(i as u32);
            }
            answer.was_live.push(was_live);
        }
        self.durable().await?;
        Ok(Response::new(answer))
    }

    async fn read(
        &self,
        request: Request<proto::ReadRequest>,
    ) -> Result<Response<proto::ReadResponse>, Status> {
        let keys = request.into_inner().keys;
        if keys.len() > MAX_ITEMS {
            return Err(Status::invalid_argument(format!(
                "{} keys; at most {MAX_ITEMS} per call",
                keys.len()
            )));
        }
        let store = &self.cluster.store;
        let entries = keys
            .iter()
            .map(|key| match store.entry(key) {
                Some(entry) => entry_to_proto(key, &entry),
                None => proto::Entry {
                    key: key.clone(),
                    ..proto::Entry::default()
                },
            })
            .collect();
        Ok(Response::new(proto::ReadResponse { entries }))
    }

    async fn execute(
        &self,
        request: Request<proto::ExecuteRequest>,
    ) -> Result<Response<proto::ExecuteResponse>, Status> {
        use proto::execute_response::Outcome;
        let req = request.into_inner();
        let level = Consistency::parse_request(&req.consistency)
            .map_err(Status::invalid_argument)?
            .unwrap_or(self.cluster.coordinator.settings().write);
        let Some(rmw) = super::rmw_wire::from_request(&req).map_err(Status::invalid_argument)?
        else {
            // FLUSH: this node's own keys.
            let (result, _) = self.cluster.store.apply_local_into(WriteOp::Flush, None);
            let flushed = match result {
                Ok(WriteResult::Flushed(n)) => n as i64,
                Ok(_) => 0,
                Err(e) => return Err(Status::unavailable(e.to_string())),
            };
            self.durable().await?;
            return Ok(Response::new(proto::ExecuteResponse {
                outcome: Some(Outcome::Number(flushed)),
            }));
        };
        let outcome = match self
            .cluster
            .coordinator
            .execute_as_primary(rmw, level)
            .await
        {
            Ok(result) => {
                let shown = format!("{result:?}");
                super::rmw_wire::to_outcome(result).ok_or_else(|| {
                    Status::internal(format!("a read-modify-write returned {shown}"))
                })?
            }
            Err(e) => Outcome::Error(super::wire_error::to_wire(&e)),
        };
        Ok(Response::new(proto::ExecuteResponse {
            outcome: Some(outcome),
        }))
    }
}
