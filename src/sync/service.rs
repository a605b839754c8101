//! The `MerkleSync` gRPC service: answers a peer's round from the store.
//!
//! Stateless: every page names where it resumes, so a peer that disappears
//! mid-round leaves nothing behind. Every request is checked (node indexes,
//! order of subtrees, sizes) and answered within the page budget; store
//! scans run on the blocking pool so the runtime keeps serving.

use std::ops::RangeInclusive;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert::{
    digest_to_proto, digest_wire_bytes, entry_from_proto, entry_to_proto, entry_wire_bytes,
    shape_from_proto, shape_to_proto, summary_from_proto, summary_to_proto,
};
use super::hash_scope;
use super::limits::{
    MAX_CHILDREN_PER_CALL, MAX_KEYS_PER_CALL, MAX_PAGE_BYTES, MAX_SUBTREES_PER_CALL,
};
use super::metrics::SyncMetrics;
use super::ranges::{collect_page, sorted_disjoint, subtree_from_proto, Node, Position};
use crate::clock;
use crate::proto::merkle_sync_server::MerkleSync;
use crate::proto::{
    CompareRangesRequest, CompareRangesResponse, FetchKeysRequest, FetchKeysResponse,
    GetChildrenRequest, GetChildrenResponse, GetRootRequest, GetRootResponse, ListDigestsRequest,
    ListDigestsResponse, PushEntriesRequest, PushEntriesResponse,
};
use crate::store::{MergeOutcome, Store, StoreError};

/// Serves a store to peers.
pub struct SyncService {
    store: Arc<Store>,
    metrics: SyncMetrics,
}

impl SyncService {
    /// A service over `store`, counting what peers push in `metrics`.
    pub fn new(store: Arc<Store>, metrics: SyncMetrics) -> Self {
        Self { store, metrics }
    }
}

fn invalid(msg: impl Into<String>) -> Status {
    Status::invalid_argument(msg.into())
}

fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::StorageFull => Status::resource_exhausted(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}

/// The page budget for a requested size (0 = the maximum).
fn page_budget(requested: u32) -> usize {
    match requested {
        0 => MAX_PAGE_BYTES,
        n => (n as usize).min(MAX_PAGE_BYTES),
    }
}

async fn blocking<T: Send + 'static>(
    rpc: &'static str,
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("worker failed: {e}")))?;
    tracing::trace!(
        rpc,
        micros = started.elapsed().as_micros() as u64,
        "sync rpc served"
    );
    out
}

/// Checks the requested subtrees; returns each one's leaf range and the
/// caller's summary (if any).
type Subtrees = Vec<(RangeInclusive<u64>, Node, Option<crate::store::Summary>)>;

fn parse_subtrees(store: &Store, subtrees: &[crate::proto::Subtree]) -> Result<Subtrees, Status> {
    if subtrees.len() > MAX_SUBTREES_PER_CALL {
        return Err(invalid(format!(
            "at most {MAX_SUBTREES_PER_CALL} subtrees per call, got {}",
            subtrees.len()
        )));
    }
    let shape = store.shape();
    let parsed = subtrees
        .iter()
        .map(|s| {
            let (node, summary) = subtree_from_proto(shape, s).map_err(invalid)?;
            Ok((node.leaves(shape), node, summary))
        })
        .collect::<Result<Subtrees, Status>>()?;
    let ranges: Vec<RangeInclusive<u64>> = parsed.iter().map(|p| p.0.clone()).collect();
    if !sorted_disjoint(&ranges) {
        return Err(invalid("subtrees must be sorted and must not overlap"));
    }
    Ok(parsed)
}

fn list_digests(store: &Store, req: ListDigestsRequest) -> Result<ListDigestsResponse, Status> {
    // What to list: leaf ranges, only keys in these hash ranges (range-
    // scoped anti-entropy), and which requested subtrees differ.
    let (ranges, hashes, listed) = if req.hash_ranges.is_empty() {
        let (ranges, listed) = differing_subtrees(store, &req.subtrees)?;
        (ranges, None, listed)
    } else {
        if !req.subtrees.is_empty() {
            return Err(invalid("ask for subtrees or for hash ranges, not both"));
        }
        let hashes = hash_scope::ranges_from_proto(&req.hash_ranges).map_err(invalid)?;
        (
            hash_scope::leaf_spans(store.shape(), &hashes),
            Some(hashes),
            Vec::new(),
        )
    };
    let after = req.after.as_ref().map(Position::from_proto);
    let (page, more) = collect_page(
        store,
        &ranges,
        hashes.as_deref(),
        after.as_ref(),
        page_budget(req.max_bytes),
        |l| digest_wire_bytes(l.key.len()),
    );
    Ok(ListDigestsResponse {
        digests: page
            .iter()
            .map(|l| digest_to_proto(&l.key, l.version, l.tombstone))
            .collect(),
        listed,
        more,
    })
}

/// The leaf ranges of the requested subtrees that differ from the caller's
/// summaries (all of them when it sent none), and their positions in the
/// request when it sent any.
fn differing_subtrees(
    store: &Store,
    subtrees: &[crate::proto::Subtree],
) -> Result<(Vec<RangeInclusive<u64>>, Vec<u32>), Status> {
    let subtrees = parse_subtrees(store, subtrees)?;
    let any_summary = subtrees.iter().any(|s| s.2.is_some());
    let mut ranges = Vec::with_capacity(subtrees.len());
    let mut listed = Vec::new();
    for (i, (range, node, summary)) in subtrees.into_iter().enumerate() {
        let differs = summary.is_none_or(|s| store.index().node(node.level, node.index) != Some(s));
        if differs {
            ranges.push(range);
            if any_summary {
                listed.push(i as u32);
            }
        }
    }
    Ok((ranges, listed))
}

/// `CompareRanges`: which of the caller's range summaries differ from ours.
fn compare_ranges(
    store: &Store,
    req: CompareRangesRequest,
) -> Result<CompareRangesResponse, Status> {
    let ranges = hash_scope::ranges_from_proto(&req.ranges).map_err(invalid)?;
    if req.summaries.len() != ranges.len() {
        return Err(invalid(format!(
            "{} summaries for {} ranges",
            req.summaries.len(),
            ranges.len()
        )));
    }
    let theirs = req
        .summaries
        .iter()
        .map(summary_from_proto)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    let ours = store.hash_range_summaries(&ranges);
    let mut out = CompareRangesResponse {
        node_id: store.node_id().to_owned(),
        ..CompareRangesResponse::default()
    };
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        if o != t {
            out.differing.push(i as u32);
            out.summaries.push(summary_to_proto(*o));
        }
    }
    Ok(out)
}

fn fetch_keys(store: &Store, req: FetchKeysRequest) -> Result<FetchKeysResponse, Status> {
    let budget = page_budget(req.max_bytes);
    if !req.keys.is_empty() && !req.subtrees.is_empty() {
        return Err(invalid("ask for keys or for subtrees, not both"));
    }
    let mut entries = Vec::new();
    let mut bytes = 0usize;
    if !req.keys.is_empty() {
        if req.keys.len() > MAX_KEYS_PER_CALL {
            return Err(invalid(format!(
                "at most {MAX_KEYS_PER_CALL} keys per call, got {}",
                req.keys.len()
            )));
        }
        let mut done = 0u32;
        for key in &req.keys {
            if let Some(entry) = store.entry(key) {
                let size = entry_wire_bytes(key.len(), entry.value.as_ref().map_or(0, |v| v.len()));
                if !entries.is_empty() && bytes.saturating_add(size) > budget {
                    return Ok(FetchKeysResponse {
                        entries,
                        more: true,
                        keys_done: done,
                    });
                }
                bytes = bytes.saturating_add(size);
                entries.push(entry_to_proto(key, &entry));
            }
            done += 1;
        }
        return Ok(FetchKeysResponse {
            entries,
            more: false,
            keys_done: done,
        });
    }
    let ranges: Vec<RangeInclusive<u64>> = parse_subtrees(store, &req.subtrees)?
        .into_iter()
        .map(|s| s.0)
        .collect();
    let after = req.after.as_ref().map(Position::from_proto);
    let (page, more) = collect_page(store, &ranges, None, after.as_ref(), budget, |l| {
        entry_wire_bytes(l.key.len(), l.value_len)
    });
    for listed in page {
        // Read the value now; an entry collected meanwhile is skipped.
        if let Some(entry) = store.entry(&listed.key) {
            entries.push(entry_to_proto(&listed.key, &entry));
        }
    }
    Ok(FetchKeysResponse {
        entries,
        more,
        keys_done: 0,
    })
}

fn push_entries(store: &Store, req: PushEntriesRequest) -> Result<u64, Status> {
    let entries = req
        .entries
        .into_iter()
        .map(entry_from_proto)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("bad entry: {e}")))?;
    let mut applied = 0u64;
    for (key, entry) in entries {
        if store.merge(&key, entry).map_err(store_status)? == MergeOutcome::Applied {
            applied += 1;
        }
    }
    Ok(applied)
}

#[tonic::async_trait]
impl MerkleSync for SyncService {
    async fn get_root(
        &self,
        request: Request<GetRootRequest>,
    ) -> Result<Response<GetRootResponse>, Status> {
        let req = request.into_inner();
        let store = &self.store;
        let shape = store.shape();
        let root = store.root();
        let mut children = Vec::new();
        if let (Some(their_shape), Some(their_root)) = (&req.shape, &req.root) {
            let their_root = summary_from_proto(their_root).map_err(|e| invalid(e.to_string()))?;
            if shape_from_proto(their_shape) == shape && their_root != root {
                children = store
                    .index()
                    .children(0, 0)
                    .unwrap_or_default()
                    .into_iter()
                    .map(summary_to_proto)
                    .collect();
            }
        }
        let hlc_now = store
            .clock()
            .peek()
            .max(clock::from_physical_ms(clock::wall_clock_ms()));
        Ok(Response::new(GetRootResponse {
            root: Some(summary_to_proto(root)),
            key_count: store.len(),
            shape: Some(shape_to_proto(shape)),
            node_id: store.node_id().to_owned(),
            hlc_now,
            children,
        }))
    }

    async fn get_children(
        &self,
        request: Request<GetChildrenRequest>,
    ) -> Result<Response<GetChildrenResponse>, Status> {
        let req = request.into_inner();
        let shape = self.store.shape();
        if req.level >= shape.depth {
            return Err(invalid(format!(
                "level {} has no children (tree depth {})",
                req.level, shape.depth
            )));
        }
        let total = req.indexes.len().saturating_mul(shape.fanout as usize);
        if total > MAX_CHILDREN_PER_CALL {
            return Err(invalid(format!(
                "at most {MAX_CHILDREN_PER_CALL} children per call, asked for {total}"
            )));
        }
        let Some(kids) = self.store.index().children_of_many(req.level, &req.indexes) else {
            let bad = req
                .indexes
                .iter()
                .find(|&&i| i >= shape.nodes_at(req.level))
                .copied()
                .unwrap_or_default();
            return Err(invalid(format!("no node {bad} at level {}", req.level)));
        };
        let children = kids.into_iter().map(summary_to_proto).collect();
        Ok(Response::new(GetChildrenResponse { children }))
    }

    async fn list_digests(
        &self,
        request: Request<ListDigestsRequest>,
    ) -> Result<Response<ListDigestsResponse>, Status> {
        let store = self.store.clone();
        let req = request.into_inner();
        blocking("ListDigests", move || list_digests(&store, req))
            .await
            .map(Response::new)
    }

    async fn compare_ranges(
        &self,
        request: Request<CompareRangesRequest>,
    ) -> Result<Response<CompareRangesResponse>, Status> {
        let store = self.store.clone();
        let req = request.into_inner();
        blocking("CompareRanges", move || compare_ranges(&store, req))
            .await
            .map(Response::new)
    }

    async fn fetch_keys(
        &self,
        request: Request<FetchKeysRequest>,
    ) -> Result<Response<FetchKeysResponse>, Status> {
        let store = self.store.clone();
        let req = request.into_inner();
        blocking("FetchKeys", move || fetch_keys(&store, req))
            .await
            .map(Response::new)
    }

    async fn push_entries(
        &self,
        request: Request<PushEntriesRequest>,
    ) -> Result<Response<PushEntriesResponse>, Status> {
        let store = self.store.clone();
        let req = request.into_inner();
        let applied = blocking("PushEntries", move || push_entries(&store, req)).await?;
        self.metrics.pushed_to_us.inc_by(applied);
        Ok(Response::new(PushEntriesResponse { applied }))
    }
}
