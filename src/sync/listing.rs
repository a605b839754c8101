//! Step 3 of a round: `ListDigests` for the collected subtrees, page by
//! page, each page merge-joined with our entries to decide what to fetch
//! and what to push.

use std::ops::RangeInclusive;
use std::sync::Arc;

use super::compare::{compare_span, Decisions};
use super::convert::entry_wire_bytes;
use super::error::SyncError;
use super::limits::MAX_PAGES_PER_LISTING;
use super::ranges::{Node, Position};
use super::round_state::{blocking_error, Round};
use super::validate::{check_digests, check_listed};
use crate::proto;
use crate::store::hash_ranges::{self, HashRange};
use crate::store::{key_hash, Summary};

impl Round {
    /// Lists the peer's digests of `subtrees` page by page and decides, per
    /// page, what to fetch and push.
    pub(super) async fn list_and_compare(
        &mut self,
        subtrees: &[(Node, Option<Summary>)],
    ) -> Result<(), SyncError> {
        let shape = self.shape;
        let with_summaries = subtrees.iter().any(|s| s.1.is_some());
        let mut req = proto::ListDigestsRequest {
            subtrees: subtrees.iter().map(|(n, s)| n.to_proto(*s)).collect(),
            after: None,
            max_bytes: self.page_bytes(),
            hash_ranges: Vec::new(),
        };
        let mut resp = self.rpc.list_digests(req.clone()).await?;
        let listed: Vec<Node> = if with_summaries {
            check_listed(&resp.listed, subtrees.len())?
                .into_iter()
                .map(|i| subtrees[i].0)
                .collect()
        } else {
            subtrees.iter().map(|s| s.0).collect()
        };
        let ranges: Arc<[RangeInclusive<u64>]> = listed.iter().map(|n| n.leaves(shape)).collect();
        let mut after: Option<Position> = None;
        for _ in 0..MAX_PAGES_PER_LISTING {
            let Some(upto) = self
                .compare_page(resp, &ranges, None, after.as_ref())
                .await?
            else {
                return Ok(());
            };
            req.subtrees = listed
                .iter()
                .filter(|n| *n.leaves(shape).end() >= upto.leaf)
                .map(|n| n.to_proto(None))
                .collect();
            req.after = Some(upto.to_proto());
            after = Some(upto);
            resp = self.rpc.list_digests(req.clone()).await?;
        }
        Err(SyncError::protocol("ListDigests", "too many pages"))
    }

    /// One page of a listing: checks the peer's digests (in `ranges` and,
    /// when given, `hashes`; in order after `after`), compares them with our
    /// entries in the same span and queues what to fetch and push. Returns
    /// where the next page starts, `None` when the listing is over.
    pub(super) async fn compare_page(
        &mut self,
        resp: proto::ListDigestsResponse,
        ranges: &Arc<[RangeInclusive<u64>]>,
        hashes: Option<&Arc<[HashRange]>>,
        after: Option<&Position>,
    ) -> Result<Option<Position>, SyncError> {
        let more = resp.more;
        let theirs = check_digests(self.shape, resp.digests, ranges, after)?;
        if let Some(h) = hashes {
            if theirs
                .iter()
                .any(|l| !hash_ranges::contains(h, key_hash(&l.key)))
            {
                return Err(SyncError::protocol(
                    "ListDigests",
                    "listed a key outside the requested hash ranges",
                ));
            }
        }
        if more && theirs.is_empty() {
            return Err(SyncError::protocol(
                "ListDigests",
                "an empty page that claims more follow",
            ));
        }
        self.digests += theirs.len() as u64;
        let upto = if more {
            theirs.last().map(|l| l.position())
        } else {
            None
        };
        let store = self.store.clone();
        let (r, h, a, u, cutoff) = (
            ranges.clone(),
            hashes.cloned(),
            after.cloned(),
            upto.clone(),
            self.expired_before,
        );
        let decisions = tokio::task::spawn_blocking(move || {
            compare_span(
                &store,
                &r,
                h.as_deref(),
                a.as_ref(),
                u.as_ref(),
                &theirs,
                cutoff,
            )
        })
        .await
        .map_err(blocking_error)?;
        self.enqueue(decisions).await?;
        Ok(upto)
    }

    pub(super) fn page_bytes(&self) -> u32 {
        u32::try_from(self.tuning.page_bytes).unwrap_or(u32::MAX)
    }

    pub(super) async fn enqueue(&mut self, d: Decisions) -> Result<(), SyncError> {
        self.fetch.extend(d.fetch);
        for (key, value_len) in d.push {
            self.push_bytes += entry_wire_bytes(key.len(), value_len);
            self.push.push(key);
        }
        if self.fetch.len() >= self.tuning.fetch_batch_keys {
            self.flush_fetch().await?;
        }
        if self.push_bytes >= self.tuning.page_bytes {
            self.flush_push().await?;
        }
        Ok(())
    }
}
