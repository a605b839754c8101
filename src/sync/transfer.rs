//! Moving entries: fetching what the peer has newer (by key or whole
//! subtrees, paged, merged by last-writer-wins on the blocking pool) and
//! pushing what we have newer (in pages of at most `page_bytes`).

use std::ops::RangeInclusive;

use super::compare::Decisions;
use super::convert::{entry_to_proto, entry_wire_bytes};
use super::error::SyncError;
use super::limits::{MAX_KEYS_PER_CALL, MAX_PAGES_PER_LISTING};
use super::ranges::{next_batch, Node, Position};
use super::round_state::{blocking_error, Round};
use super::validate::{check_fetched_keys, check_fetched_subtrees, KeyedEntries};
use crate::proto;
use crate::store::{key_hash, Entry, MergeOutcome, SetWhen, Ttl, WriteOp};

/// What becomes of keys fetched by name.
#[derive(Debug, Clone, Copy)]
enum Fetched {
    /// Merged by last-writer-wins.
    Merge,
    /// Their state written here (a mirror round).
    Mirror,
}

impl Round {
    /// Fetches the queued keys (paged) and merges them.
    pub(super) async fn flush_fetch(&mut self) -> Result<(), SyncError> {
        let keys = std::mem::take(&mut self.fetch);
        self.fetch_keys_paged(&keys, Fetched::Merge).await
    }

    /// Asks the peer for `keys`, at most a page per call, and merges what
    /// it sends (`Merge`), or writes the peer's state of every asked key
    /// here (`Mirror`: a key it does not send is one it lacks).
    async fn fetch_keys_paged(
        &mut self,
        keys: &[Box<[u8]>],
        how: Fetched,
    ) -> Result<(), SyncError> {
        let page_bytes = self.tuning.page_bytes.max(1);
        let mut start = 0;
        for _ in 0..MAX_PAGES_PER_LISTING {
            if start >= keys.len() {
                return Ok(());
            }
            // A request of at most MAX_KEYS_PER_CALL keys and ~page_bytes.
            let mut end = start;
            let mut bytes = 0usize;
            while end < keys.len() && end - start < MAX_KEYS_PER_CALL {
                bytes += keys[end].len() + 4;
                if end > start && bytes > page_bytes {
                    break;
                }
                end += 1;
            }
            let asked = &keys[start..end];
            let resp = self
                .rpc
                .fetch_keys(proto::FetchKeysRequest {
                    keys: asked.iter().map(|k| k.to_vec()).collect(),
                    max_bytes: self.page_bytes(),
                    ..Default::default()
                })
                .await?;
            let done = resp.keys_done as usize;
            if done == 0 || done > asked.len() || (!resp.more && done != asked.len()) {
                return Err(SyncError::protocol(
                    "FetchKeys",
                    format!("covered {done} of {} keys", asked.len()),
                ));
            }
            let entries = check_fetched_keys(resp.entries, &asked[..done])?;
            match how {
                Fetched::Merge => self.merge(entries).await?,
                Fetched::Mirror => self.take_theirs(&asked[..done], entries).await?,
            }
            start += done;
        }
        Err(SyncError::protocol("FetchKeys", "too many pages"))
    }

    /// Fetches whole subtrees (paged) and merges them.
    pub(super) async fn fetch_subtrees(&mut self, nodes: &[Node]) -> Result<(), SyncError> {
        let shape = self.shape;
        let ranges: Vec<RangeInclusive<u64>> = nodes.iter().map(|n| n.leaves(shape)).collect();
        let mut req = proto::FetchKeysRequest {
            subtrees: nodes.iter().map(|n| n.to_proto(None)).collect(),
            max_bytes: self.page_bytes(),
            ..Default::default()
        };
        let mut after: Option<Position> = None;
        for _ in 0..MAX_PAGES_PER_LISTING {
            let resp = self.rpc.fetch_keys(req.clone()).await?;
            if resp.more && resp.entries.is_empty() {
                return Err(SyncError::protocol(
                    "FetchKeys",
                    "an empty page that claims more follow",
                ));
            }
            let entries = check_fetched_subtrees(shape, resp.entries, &ranges, after.as_ref())?;
            let last = entries.last().map(|(k, _)| Position {
                leaf: shape.leaf_of(key_hash(k)),
                key: k.clone(),
            });
            self.merge(entries).await?;
            if !resp.more {
                return Ok(());
            }
            after = last;
            req.after = after.as_ref().map(Position::to_proto);
        }
        Err(SyncError::protocol("FetchKeys", "too many pages"))
    }

    /// Queues every entry of subtrees the peer has nothing in.
    pub(super) async fn push_subtrees(&mut self, nodes: &[Node]) -> Result<(), SyncError> {
        let ranges: Vec<RangeInclusive<u64>> = nodes.iter().map(|n| n.leaves(self.shape)).collect();
        let mut from = 0;
        for _ in 0..=self.store.shard_count() {
            let Some((batch, next)) = next_batch(&self.store, &ranges, None, None, None, from)
            else {
                break;
            };
            let cutoff = self.expired_before;
            let decisions = Decisions {
                fetch: Vec::new(),
                push: batch
                    .into_iter()
                    .filter(|l| !(l.tombstone && cutoff.is_some_and(|c| l.version.hlc < c)))
                    .map(|l| (l.key, l.value_len))
                    .collect(),
            };
            self.enqueue(decisions).await?;
            from = next;
        }
        Ok(())
    }

    /// Sends the queued keys' current entries in pages (a mirror round
    /// takes the peer's state of them instead).
    pub(super) async fn flush_push(&mut self) -> Result<(), SyncError> {
        let keys = std::mem::take(&mut self.push);
        self.push_bytes = 0;
        if self.mirror {
            return self.fetch_keys_paged(&keys, Fetched::Mirror).await;
        }
        let mut page = Vec::new();
        let mut bytes = 0usize;
        for key in keys {
            let Some(entry) = self.store.entry(&key) else {
                continue; // garbage-collected meanwhile
            };
            let size = entry_wire_bytes(key.len(), entry.value.as_ref().map_or(0, |v| v.len()));
            if !page.is_empty() && bytes.saturating_add(size) > self.tuning.page_bytes {
                self.send_push(std::mem::take(&mut page)).await?;
                bytes = 0;
            }
            bytes = bytes.saturating_add(size);
            page.push(entry_to_proto(&key, &entry));
        }
        if !page.is_empty() {
            self.send_push(page).await?;
        }
        Ok(())
    }

    async fn send_push(&mut self, entries: Vec<proto::Entry>) -> Result<(), SyncError> {
        let sent = entries.len() as u64;
        let resp = self
            .rpc
            .push_entries(proto::PushEntriesRequest {
                entries,
                origin_node: self.store.node_id().to_owned(),
            })
            .await?;
        self.pushed += sent;
        self.push_applied += resp.applied.min(sent);
        Ok(())
    }

    /// Mirror rounds: writes the peer's state of each of `asked` here with a
    /// fresh version (its value and deadline, or a delete when it holds a
    /// tombstone or nothing), on the blocking pool; the writes are kept for
    /// replication.
    async fn take_theirs(
        &mut self,
        asked: &[Box<[u8]>],
        theirs: KeyedEntries,
    ) -> Result<(), SyncError> {
        let store = self.store.clone();
        let asked: Vec<Box<[u8]>> = asked.to_vec();
        let (mirrored, changes) = tokio::task::spawn_blocking(move || {
            // `theirs` is in `asked` order (check_fetched_keys), a subset.
            let mut theirs = theirs.into_iter().peekable();
            let mut mirrored = 0u64;
            let mut changes = Vec::new();
            for key in &asked {
                let entry = theirs.next_if(|(k, _)| k == key).map(|(_, e)| e);
                let op = match &entry {
                    Some(Entry {
                        value: Some(value),
                        expires_at,
                        ..
                    }) => WriteOp::SetWith {
                        key,
                        value,
                        ttl: expires_at.map_or(Ttl::Clear, Ttl::At),
                        when: SetWhen::Always,
                    },
                    _ => WriteOp::Delete { key },
                };
                let (_, written) = store.apply_local(op)?;
                if !written.is_empty() {
                    mirrored += 1;
                }
                changes.extend(written);
            }
            Ok::<_, SyncError>((mirrored, changes))
        })
        .await
        .map_err(blocking_error)??;
        self.mirrored += mirrored;
        self.changes.extend(changes);
        Ok(())
    }

    /// Merges fetched entries on the blocking pool.
    async fn merge(&mut self, entries: KeyedEntries) -> Result<(), SyncError> {
        if entries.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        let applied = tokio::task::spawn_blocking(move || {
            let mut applied = 0u64;
            for (key, entry) in entries {
                if store.merge(&key, entry)? == MergeOutcome::Applied {
                    applied += 1;
                }
            }
            Ok::<u64, SyncError>(applied)
        })
        .await
        .map_err(blocking_error)??;
        self.pulled += applied;
        Ok(())
    }
}
