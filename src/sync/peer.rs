//! Calling a peer: channels with timeouts, and RPCs that count their
//! round trips and encoded bytes.

use std::future::Future;

use prost::Message;
use tonic::transport::{Channel, Endpoint};

use super::error::SyncError;
use super::limits::Tuning;
use crate::proto::merkle_sync_client::MerkleSyncClient;
use crate::proto::{
    CompareRangesRequest, CompareRangesResponse, FetchKeysRequest, FetchKeysResponse,
    GetChildrenRequest, GetChildrenResponse, GetRootRequest, GetRootResponse, ListDigestsRequest,
    ListDigestsResponse, PushEntriesRequest, PushEntriesResponse,
};

/// HTTP/2 flow-control windows: a page (up to 3 MiB) fits in one stream
/// window, so large pages do not stall on window updates.
pub const STREAM_WINDOW_BYTES: u32 = 4 * 1024 * 1024;
/// Connection-level window (a few pages in flight).
pub const CONNECTION_WINDOW_BYTES: u32 = 16 * 1024 * 1024;

/// The endpoint for `addr` (`host:port`) with the tuning's connect and
/// per-RPC timeouts, TCP_NODELAY and page-sized HTTP/2 windows.
pub fn endpoint(addr: &str, tuning: &Tuning) -> Result<Endpoint, SyncError> {
    let bad = || SyncError::BadAddress(addr.to_owned());
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() || addr.contains('/') {
        return Err(bad());
    }
    Ok(Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|_| bad())?
        .connect_timeout(tuning.rpc_timeout)
        .timeout(tuning.rpc_timeout)
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES))
}

/// A lazily connecting channel to `addr` (see [`endpoint`]).
pub fn channel(addr: &str, tuning: &Tuning) -> Result<Channel, SyncError> {
    Ok(endpoint(addr, tuning)?.connect_lazy())
}

/// What a round put on the wire: RPCs made and encoded protobuf bytes of
/// requests and responses (HTTP/2 framing not included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Calls made; every call is one round trip (calls are sequential).
    pub rpcs: u32,
    /// Encoded request bytes.
    pub bytes_sent: u64,
    /// Encoded response bytes.
    pub bytes_received: u64,
}

/// A peer's `MerkleSync` client that counts its traffic.
pub struct PeerRpc {
    client: MerkleSyncClient<Channel>,
    /// Traffic so far.
    pub wire: WireStats,
}

impl PeerRpc {
    /// A client over `channel`, refusing responses above `max_message_bytes`.
    pub fn new(channel: Channel, max_message_bytes: usize) -> Self {
        Self {
            client: MerkleSyncClient::new(channel)
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
            wire: WireStats::default(),
        }
    }

    async fn call<Req, Resp, Fut>(
        &mut self,
        rpc: &'static str,
        req: Req,
        f: impl FnOnce(MerkleSyncClient<Channel>, Req) -> Fut,
    ) -> Result<Resp, SyncError>
    where
        Req: Message,
        Resp: Message,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let sent = req.encoded_len() as u64;
        self.wire.rpcs += 1;
        self.wire.bytes_sent += sent;
        let started = std::time::Instant::now();
        let resp = f(self.client.clone(), req)
            .await
            .map_err(|s| SyncError::rpc(rpc, s))?
            .into_inner();
        let received = resp.encoded_len() as u64;
        self.wire.bytes_received += received;
        tracing::trace!(
            rpc,
            sent,
            received,
            micros = started.elapsed().as_micros() as u64,
            "sync rpc"
        );
        Ok(resp)
    }

    /// `GetRoot`.
    pub async fn get_root(&mut self, req: GetRootRequest) -> Result<GetRootResponse, SyncError> {
        self.call(
            "GetRoot",
            req,
            |mut c, r| async move { c.get_root(r).await },
        )
        .await
    }

    /// `GetChildren`.
    pub async fn get_children(
        &mut self,
        req: GetChildrenRequest,
    ) -> Result<GetChildrenResponse, SyncError> {
        self.call("GetChildren", req, |mut c, r| async move {
            c.get_children(r).await
        })
        .await
    }

    /// `ListDigests`.
    pub async fn list_digests(
        &mut self,
        req: ListDigestsRequest,
    ) -> Result<ListDigestsResponse, SyncError> {
        self.call("ListDigests", req, |mut c, r| async move {
            c.list_digests(r).await
        })
        .await
    }

    /// `FetchKeys`.
    pub async fn fetch_keys(
        &mut self,
        req: FetchKeysRequest,
    ) -> Result<FetchKeysResponse, SyncError> {
        self.call(
            "FetchKeys",
            req,
            |mut c, r| async move { c.fetch_keys(r).await },
        )
        .await
    }

    /// `PushEntries`.
    pub async fn push_entries(
        &mut self,
        req: PushEntriesRequest,
    ) -> Result<PushEntriesResponse, SyncError> {
        self.call("PushEntries", req, |mut c, r| async move {
            c.push_entries(r).await
        })
        .await
    }

    /// `CompareRanges`.
    pub async fn compare_ranges(
        &mut self,
        req: CompareRangesRequest,
    ) -> Result<CompareRangesResponse, SyncError> {
        self.call("CompareRanges", req, |mut c, r| async move {
            c.compare_ranges(r).await
        })
        .await
    }
}
