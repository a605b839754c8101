//! One range-scoped anti-entropy round, for the partitioned cluster: two
//! replicas compare only the key-hash ranges they both replicate.
//!
//! 1. `CompareRanges`: our summary of every shared range, in one call (up
//!    to 65,536 ranges); the peer answers which differ. In sync: that one
//!    round trip is the whole round.
//! 2. `ListDigests` with those ranges (paged), merge-joined with our
//!    entries in the same ranges ([`super::compare`]).
//! 3. `FetchKeys` for what the peer has newer, `PushEntries` for what we
//!    have newer — as in a whole-tree round.
//!
//! Keys outside the ranges are never listed, fetched or pushed: each side
//! keeps only its share. A peer that lists a key outside them is refused.

use std::sync::Arc;
use std::time::Instant;

use tonic::transport::Channel;

use super::convert::{summary_from_proto, summary_to_proto};
use super::error::SyncError;
use super::hash_scope::{leaf_spans, ranges_to_proto, MAX_RANGES_PER_CALL};
use super::limits::{Tuning, MAX_PAGES_PER_LISTING};
use super::ranges::Position;
use super::round::RoundReport;
use super::round_state::{blocking_error, Round};
use crate::config::SyncMode;
use crate::proto;
use crate::store::hash_ranges::HashRange;
use crate::store::Store;

/// Runs one round over `ranges` (sorted, disjoint) with the peer behind
/// `channel`.
pub async fn run_range_round(
    store: &Arc<Store>,
    channel: Channel,
    peer: &str,
    ranges: &[HashRange],
    tuning: &Tuning,
) -> Result<RoundReport, SyncError> {
    let started = Instant::now();
    let mut round = Round::new(store, channel, tuning);
    let (peer_node_id, differing) = round.compare_ranges(ranges).await?;
    for chunk in differing.chunks(MAX_RANGES_PER_CALL) {
        round.list_and_compare_hashes(chunk).await?;
    }
    round.flush_fetch().await?;
    round.flush_push().await?;
    Ok(round.report(
        peer,
        peer_node_id,
        SyncMode::Merkle,
        differing.is_empty(),
        started,
    ))
}

impl Round {
    /// Step 1: the shared ranges whose summaries differ, and the peer's id.
    async fn compare_ranges(
        &mut self,
        ranges: &[HashRange],
    ) -> Result<(String, Vec<HashRange>), SyncError> {
        let store = self.store.clone();
        let owned = ranges.to_vec();
        let ours = tokio::task::spawn_blocking(move || store.hash_range_summaries(&owned))
            .await
            .map_err(blocking_error)?;
        let mut node_id = String::new();
        let mut differing = Vec::new();
        for (n, chunk) in ranges.chunks(MAX_RANGES_PER_CALL).enumerate() {
            let base = n * MAX_RANGES_PER_CALL;
            let resp = self
                .rpc
                .compare_ranges(proto::CompareRangesRequest {
                    ranges: ranges_to_proto(chunk),
                    summaries: ours[base..base + chunk.len()]
                        .iter()
                        .map(|s| summary_to_proto(*s))
                        .collect(),
                })
                .await?;
            node_id = resp.node_id.chars().take(256).collect();
            let bad = |r: &str| SyncError::protocol("CompareRanges", r);
            if resp.summaries.len() != resp.differing.len() {
                return Err(bad("a summary missing for a differing range"));
            }
            let mut previous: Option<u32> = None;
            for (&i, theirs) in resp.differing.iter().zip(&resp.summaries) {
                let in_order = previous.is_none_or(|p| p < i);
                let Some(range) = chunk.get(i as usize).filter(|_| in_order) else {
                    return Err(bad("range indexes out of order or out of range"));
                };
                previous = Some(i);
                let theirs = summary_from_proto(theirs).map_err(|e| bad(&e.to_string()))?;
                if theirs != ours[base + i as usize] {
                    differing.push(range.clone());
                }
            }
        }
        Ok((node_id, differing))
    }

    /// Steps 2–3 for `hashes`: lists the peer's digests in them page by
    /// page and decides, per page, what to fetch and push.
    async fn list_and_compare_hashes(&mut self, hashes: &[HashRange]) -> Result<(), SyncError> {
        let shape = self.shape;
        let leaves: Arc<[std::ops::RangeInclusive<u64>]> = leaf_spans(shape, hashes).into();
        let scope: Arc<[HashRange]> = hashes.into();
        let mut req = proto::ListDigestsRequest {
            subtrees: Vec::new(),
            after: None,
            max_bytes: self.page_bytes(),
            hash_ranges: ranges_to_proto(hashes),
        };
        let mut after: Option<Position> = None;
        for _ in 0..MAX_PAGES_PER_LISTING {
            let resp = self.rpc.list_digests(req.clone()).await?;
            let Some(upto) = self
                .compare_page(resp, &leaves, Some(&scope), after.as_ref())
                .await?
            else {
                return Ok(());
            };
            req.after = Some(upto.to_proto());
            after = Some(upto);
        }
        Err(SyncError::protocol("ListDigests", "too many pages"))
    }
}
