//! The client key-value API over gRPC (`KVStore` on the sync port): Get,
//! Put and Delete with optional per-request consistency and idempotent
//! retries. In a partitioned cluster every call goes through the
//! coordinator, as a client-port command would; on a full replica it writes
//! the local store, replicates over MQTT and waits for durability, as SET
//! and DEL do.

use std::sync::{Arc, OnceLock};

use tonic::{Request, Response, Status};

use super::context::ServerContext;
use super::request_ids::RequestIds;
use crate::cluster::ClusterError;
use crate::config::Consistency;
use crate::proto;
use crate::proto::kv_store_server::{KvStore, KvStoreServer};
use crate::store::{StoreError, Version, WriteOp, WriteResult};
use crate::subsystem::GrpcServices;

/// The server context, once the node finished starting.
pub type LateContext = Arc<OnceLock<Arc<ServerContext>>>;

/// Serves `KVStore`.
#[derive(Clone)]
pub struct KvService {
    ctx: LateContext,
    puts: Arc<RequestIds<proto::KvPutResponse>>,
    deletes: Arc<RequestIds<proto::KvDeleteResponse>>,
    max_value_bytes: usize,
}

/// Adds `KVStore` to the sync port's routes; it answers `UNAVAILABLE`
/// until `ctx` is set.
pub fn services(
    ctx: LateContext,
    max_value_bytes: usize,
    max_message_bytes: usize,
) -> GrpcServices {
    let service = KvService {
        ctx,
        puts: Arc::default(),
        deletes: Arc::default(),
        max_value_bytes,
    };
    Arc::new(move |routes: &mut tonic::service::RoutesBuilder| {
        routes.add_service(
            KvStoreServer::new(service.clone())
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        );
    })
}

impl KvService {
    fn ctx(&self) -> Result<&Arc<ServerContext>, Status> {
        self.ctx
            .get()
            .ok_or_else(|| Status::unavailable("the node is starting"))
    }

    fn check_key(&self, key: &[u8]) -> Result<(), Status> {
        if key.is_empty() || key.len() > self.max_value_bytes {
            return Err(Status::invalid_argument(format!(
                "a key is 1 to {} bytes",
                self.max_value_bytes
            )));
        }
        Ok(())
    }
}

fn level(s: &str) -> Result<Option<Consistency>, Status> {
    Consistency::parse_request(s).map_err(Status::invalid_argument)
}

fn version(v: Version) -> Option<proto::Version> {
    Some(proto::Version {
        hlc: v.hlc,
        node: v.node,
    })
}

fn cluster_status(e: ClusterError) -> Status {
    match e {
        ClusterError::Unavailable { .. } => Status::unavailable(e.to_string()),
        ClusterError::Store(s) => store_status(s),
        ClusterError::Remote { message, .. } => Status::failed_precondition(message),
    }
}

fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::StorageFull | StoreError::Log(_) => Status::unavailable(e.to_string()),
        other => Status::failed_precondition(other.to_string()),
    }
}

/// A write on a full replica: the local store, then MQTT and durability.
async fn write_locally(
    ctx: &ServerContext,
    op: WriteOp<'_>,
) -> Result<(WriteResult, Option<Version>), Status> {
    let (result, changes) = ctx.store.apply_local(op).map_err(store_status)?;
    let stamped = changes.first().map(|c| c.entry.version);
    if let (Some(sink), false) = (&ctx.hooks.changes, changes.is_empty()) {
        sink.submit(changes);
    }
    if let Some(d) = &ctx.hooks.durability {
        d.wait_durable()
            .await
            .map_err(|e| Status::unavailable(format!("storage error: {e}")))?;
    }
    Ok((result, stamped))
}

#[tonic::async_trait]
impl KvStore for KvService {
    async fn get(
        &self,
        request: Request<proto::KvGetRequest>,
    ) -> Result<Response<proto::KvGetResponse>, Status> {
        let ctx = self.ctx()?;
        let req = request.into_inner();
        self.check_key(&req.key)?;
        let level = level(&req.consistency)?;
        let entry = match &ctx.cluster {
            Some(cluster) => cluster
                .coordinator
                .get(&req.key, level)
                .await
                .map_err(cluster_status)?,
            None => ctx.store.entry(&req.key).filter(|e| !e.is_tombstone()),
        };
        Ok(Response::new(match entry {
            Some(entry) => proto::KvGetResponse {
                found: true,
                version: version(entry.version),
                value: entry.value.map(Vec::from).unwrap_or_default(),
            },
            None => proto::KvGetResponse::default(),
        }))
    }

    async fn put(
        &self,
        request: Request<proto::KvPutRequest>,
    ) -> Result<Response<proto::KvPutResponse>, Status> {
        let ctx = self.ctx()?;
        let req = request.into_inner();
        self.check_key(&req.key)?;
        if req.value.len() > self.max_value_bytes {
            return Err(Status::invalid_argument(format!(
                "the value is {} bytes; at most {}",
                req.value.len(),
                self.max_value_bytes
            )));
        }
        if let Some(mut answer) = self.puts.answered(&req.client_id, req.request_id) {
            answer.replayed = true;
            return Ok(Response::new(answer));
        }
        let level = level(&req.consistency)?;
        let stamped = match &ctx.cluster {
            Some(cluster) => Some(
                cluster
                    .coordinator
                    .set(&req.key, &req.value, level)
                    .await
                    .map_err(cluster_status)?,
            ),
            None => {
                let op = WriteOp::Set {
                    key: &req.key,
                    value: &req.value,
                };
                write_locally(ctx, op).await?.1
            }
        };
        let answer = proto::KvPutResponse {
            version: stamped.and_then(version),
            replayed: false,
        };
        self.puts.remember(&req.client_id, req.request_id, answer);
        Ok(Response::new(answer))
    }

    async fn delete(
        &self,
        request: Request<proto::KvDeleteRequest>,
    ) -> Result<Response<proto::KvDeleteResponse>, Status> {
        let ctx = self.ctx()?;
        let req = request.into_inner();
        self.check_key(&req.key)?;
        if let Some(mut answer) = self.deletes.answered(&req.client_id, req.request_id) {
            answer.replayed = true;
            return Ok(Response::new(answer));
        }
        let level = level(&req.consistency)?;
        let (existed, stamped) = match &ctx.cluster {
            Some(cluster) => {
                let (existed, v) = cluster
                    .coordinator
                    .delete(&req.key, level)
                    .await
                    .map_err(cluster_status)?;
                (existed, Some(v))
            }
            None => {
                let (result, v) = write_locally(ctx, WriteOp::Delete { key: &req.key }).await?;
                (result == WriteResult::Deleted(true), v)
            }
        };
        let answer = proto::KvDeleteResponse {
            existed,
            version: stamped.and_then(version),
            replayed: false,
        };
        self.deletes
            .remember(&req.client_id, req.request_id, answer);
        Ok(Response::new(answer))
    }
}
