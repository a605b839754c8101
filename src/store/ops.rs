//! Client writes: each stamps a fresh version under the key's shard lock, so
//! read-modify-write commands (INC, APPEND, …) are atomic per key.

use std::num::NonZeroU64;

use super::long_double::LongDouble;
use super::{Change, Entry, Location, Map, Prior, Store, StoreError, Version};

/// The longest value `SETRANGE` builds, whatever the configured limit
/// (Redis' `proto-max-bulk-len`).
const MAX_SETRANGE_BYTES: usize = 512 << 20;

/// What a write does to the key's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// No deadline (what a plain SET leaves).
    Clear,
    /// Keep the live key's deadline (`KEEPTTL`).
    Keep,
    /// Expire at this unix millisecond.
    At(NonZeroU64),
}

/// When a conditional SET writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetWhen {
    /// Always.
    Always,
    /// Only when the key is absent (`NX`).
    Absent,
    /// Only when the key is present (`XX`).
    Present,
}

/// When EXPIRE changes a deadline (Redis 7's `NX | XX | GT | LT`; a key
/// without one counts as never expiring).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireWhen {
    /// Always.
    Always,
    /// Only when the key has no deadline.
    NoDeadline,
    /// Only when it has one.
    HasDeadline,
    /// Only when the new deadline is later.
    Later,
    /// Only when the new deadline is earlier.
    Earlier,
    /// Only when the key has a deadline and the new one is earlier
    /// (`XX LT`).
    HasDeadlineEarlier,
}

/// A client write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp<'a> {
    /// Store a value.
    Set {
        /// Key.
        key: &'a [u8],
        /// Value.
        value: &'a [u8],
    },
    /// Delete a key (writes a tombstone when it is live).
    Delete {
        /// Key.
        key: &'a [u8],
    },
    /// Add `delta` to the decimal integer stored at `key` (missing = 0).
    Increment {
        /// Key.
        key: &'a [u8],
        /// Amount (negative to decrement).
        delta: i64,
    },
    /// Add the decimal number `delta` to the one stored at `key` (missing
    /// = 0) as Redis' `INCRBYFLOAT` does: `long double` arithmetic, the
    /// result stored as text; the deadline stays.
    IncrementFloat {
        /// Key.
        key: &'a [u8],
        /// The increment, as the client sent it.
        delta: &'a [u8],
    },
    /// Move a live key's value and deadline to `to` (`RENAME`; `RENAMENX`
    /// when `only_if_absent`: not over a live `to`). Both keys' shard locks
    /// are held together; `to` is written and `from` deleted, each with a
    /// new version. A missing `from` is `StoreError::NoSuchKey`.
    Rename {
        /// The key renamed.
        from: &'a [u8],
        /// Its new name.
        to: &'a [u8],
        /// Refuse to replace a live `to`.
        only_if_absent: bool,
    },
    /// Append `suffix` to the value (missing = empty).
    Append {
        /// Key.
        key: &'a [u8],
        /// Bytes to add at the end.
        suffix: &'a [u8],
        /// Refuse (`NotLineSafe`) when the result would hold `\r`/`\n`:
        /// the text protocol replies with the whole new value on one line.
        line_safe: bool,
    },
    /// Prepend `prefix` to the value (missing = empty).
    Prepend {
        /// Key.
        key: &'a [u8],
        /// Bytes to add at the front.
        prefix: &'a [u8],
        /// As for `Append`.
        line_safe: bool,
    },
    /// Set several keys (each key individually versioned).
    MultiSet {
        /// Key-value pairs, in order.
        pairs: &'a [(&'a [u8], &'a [u8])],
    },
    /// Set several keys only when none of them exists (`MSETNX`): all of
    /// them or none, atomically (their shard locks are held together).
    MultiSetIfAbsent {
        /// Key-value pairs, in order.
        pairs: &'a [(&'a [u8], &'a [u8])],
    },
    /// Delete every live key (replicated as tombstones).
    Flush,
    /// SET with options: a time to live, a condition, and the old value
    /// returned (`SET … EX|PX|EXAT|PXAT|KEEPTTL NX|XX GET`, `SETEX`, `SETNX`).
    SetWith {
        /// Key.
        key: &'a [u8],
        /// Value.
        value: &'a [u8],
        /// Deadline handling.
        ttl: Ttl,
        /// When to write.
        when: SetWhen,
    },
    /// Delete a key, answering its value (`GETDEL`).
    GetDel {
        /// Key.
        key: &'a [u8],
    },
    /// Overwrite part of the value from `offset`, zero-padding a shorter
    /// one (`SETRANGE`; missing = empty, and an empty `bytes` on a missing
    /// key writes nothing). The deadline stays.
    SetRange {
        /// Key.
        key: &'a [u8],
        /// Where `bytes` go.
        offset: usize,
        /// The bytes written.
        bytes: &'a [u8],
    },
    /// Set (`Some`) or remove (`None`, `PERSIST`) a live key's deadline,
    /// writing the same value with a new version. A deadline in the past
    /// expires the key at once.
    Expire {
        /// Key.
        key: &'a [u8],
        /// The new deadline.
        deadline: Option<NonZeroU64>,
        /// When to change it.
        when: ExpireWhen,
    },
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    /// Stored.
    Stored,
    /// Delete outcome: whether a live value was removed.
    Deleted(bool),
    /// The new integer after INC/DEC.
    Number(i64),
    /// The new value after APPEND/PREPEND.
    Value(Box<[u8]>),
    /// How many keys a FLUSH removed.
    Flushed(u64),
    /// A conditional write: whether it wrote, and the value the key held
    /// before (`None`: absent).
    Conditional {
        /// Whether the write happened.
        written: bool,
        /// The previous live value.
        old: Option<Box<[u8]>>,
    },
}

/// Applies `op`. Each key it writes is pushed to `changes` when given
/// (replication needs them), as it is written; without a collector no copy
/// of the key or value is made. Returns the result and how many keys were
/// written — also when the op fails part-way (an MSET or FLUSH that hits
/// the memory limit or a storage error after some keys), so the caller
/// can still replicate and wait for what did change.
pub(super) fn apply(
    store: &Store,
    op: WriteOp<'_>,
    mut changes: Option<&mut Vec<Change>>,
) -> (Result<WriteResult, StoreError>, usize) {
    let collect = changes.is_some();
    let mut written = 0usize;
    let mut record = |change: Option<Change>| {
        written += 1;
        if let (Some(list), Some(change)) = (changes.as_deref_mut(), change) {
            list.push(change);
        }
    };
    let result = apply_recording(store, op, collect, &mut record);
    (result, written)
}

/// The body of [`apply`]: performs `op`, calling `record` once per key
/// written (with the change when `collect` is set).
fn apply_recording(
    store: &Store,
    op: WriteOp<'_>,
    collect: bool,
    record: &mut impl FnMut(Option<Change>),
) -> Result<WriteResult, StoreError> {
    let result = match op {
        WriteOp::Set { key, value } => {
            record(store.write_local(key, collect, Ttl::Clear, |_| Ok(Some(value.into())))?);
            WriteResult::Stored
        }
        WriteOp::SetWith {
            key,
            value,
            ttl,
            when,
        } => {
            let mut old = None;
            let written = store.rewrite(key, collect, |current| {
                old = current.map(|(v, _)| Box::<[u8]>::from(v));
                let go = match when {
                    SetWhen::Always => true,
                    SetWhen::Absent => current.is_none(),
                    SetWhen::Present => current.is_some(),
                };
                let deadline = match ttl {
                    Ttl::Clear => None,
                    Ttl::Keep => current.and_then(|(_, d)| d),
                    Ttl::At(d) => Some(d),
                };
                Ok(go.then(|| (Some(Box::from(value)), deadline)))
            })?;
            conditional(written, old, record)
        }
        WriteOp::GetDel { key } => {
            let mut old = None;
            let written = store.rewrite(key, collect, |current| {
                old = current.map(|(v, _)| Box::<[u8]>::from(v));
                Ok(current.map(|_| (None, None)))
            })?;
            conditional(written, old, record)
        }
        WriteOp::SetRange { key, offset, bytes } => {
            let mut length = 0usize;
            let written = store.rewrite(key, collect, |current| {
                let (old, deadline) = current.unwrap_or((&[], None));
                if bytes.is_empty() {
                    length = old.len();
                    return Ok(None);
                }
                // Checked before anything is allocated: an offset is a
                // client's number.
                let too_large = StoreError::ValueTooLarge {
                    limit: store.entry_rule.max_value_bytes,
                };
                let end = offset.checked_add(bytes.len()).ok_or(too_large.clone())?;
                if !store.entry_rule.fits(end) || end > MAX_SETRANGE_BYTES {
                    return Err(too_large);
                }
                let mut v = old.to_vec();
                if v.len() < end {
                    v.resize(end, 0);
                }
                v[offset..end].copy_from_slice(bytes);
                length = v.len();
                Ok(Some((Some(v.into_boxed_slice()), deadline)))
            })?;
            if let Some(change) = written {
                record(change);
            }
            WriteResult::Number(i64::try_from(length).unwrap_or(i64::MAX))
        }
        WriteOp::Expire {
            key,
            deadline,
            when,
        } => {
            let mut old = None;
            let written = store.rewrite(key, collect, |current| {
                let Some((value, now)) = current else {
                    return Ok(None);
                };
                old = Some(Box::<[u8]>::from(value));
                let go = match (when, now, deadline) {
                    (_, None, None) => false, // PERSIST without a deadline
                    (ExpireWhen::Always, ..) => true,
                    (ExpireWhen::NoDeadline, now, _) => now.is_none(),
                    (ExpireWhen::HasDeadline, now, _) => now.is_some(),
                    // No deadline is "never": later than any, earlier than none.
                    (ExpireWhen::Later, Some(now), Some(new)) => new > now,
                    (ExpireWhen::Later, None, _) => false,
                    (ExpireWhen::Earlier, Some(now), Some(new)) => new < now,
                    (ExpireWhen::Earlier, None, _) => true,
                    (ExpireWhen::HasDeadlineEarlier, Some(now), Some(new)) => new < now,
                    (ExpireWhen::HasDeadlineEarlier, ..) => false,
                    (ExpireWhen::Later | ExpireWhen::Earlier, Some(_), None) => false,
                };
                Ok(go.then(|| (Some(Box::from(value)), deadline)))
            })?;
            conditional(written, old, record)
        }
        WriteOp::Delete { key } => {
            let loc = store.locate(key);
            let mut shard = store.shards[loc.shard].write();
            let live = shard
                .get(key)
                .is_some_and(|s| store.live_value(s).is_some());
            if !live {
                return Ok(WriteResult::Deleted(false));
            }
            record(store.stamp_and_write(&mut shard, loc, key, None, None, collect)?);
            WriteResult::Deleted(true)
        }
        WriteOp::Increment { key, delta } => {
            let mut result = 0i64;
            record(store.write_local(key, collect, Ttl::Keep, |old| {
                let current = match old {
                    None => 0,
                    Some(bytes) => parse_i64(bytes).ok_or_else(|| StoreError::NotANumber {
                        key: String::from_utf8_lossy(key).into_owned(),
                    })?,
                };
                result = current.checked_add(delta).ok_or(StoreError::Overflow)?;
                Ok(Some(result.to_string().into_bytes().into_boxed_slice()))
            })?);
            WriteResult::Number(result)
        }
        WriteOp::IncrementFloat { key, delta } => {
            let mut value = Box::default();
            record(store.write_local(key, collect, Ttl::Keep, |old| {
                let current = match old {
                    None => LongDouble::ZERO,
                    Some(bytes) => LongDouble::parse(bytes).ok_or(StoreError::NotAFloat)?,
                };
                let by = LongDouble::parse(delta).ok_or(StoreError::NotAFloat)?;
                let text = current
                    .add(by)
                    .and_then(LongDouble::to_redis_text)
                    .ok_or(StoreError::NotFinite)?;
                // A huge sum is thousands of digits: never more than a
                // client may send (replicas would refuse it).
                if !store.entry_rule.fits(text.len()) {
                    return Err(StoreError::ValueTooLarge {
                        limit: store.entry_rule.max_value_bytes,
                    });
                }
                value = Box::from(text.as_bytes());
                Ok(Some(text.into_bytes().into_boxed_slice()))
            })?);
            WriteResult::Value(value)
        }
        WriteOp::Rename {
            from,
            to,
            only_if_absent,
        } => {
            let written = store.rename(from, to, only_if_absent, collect, record)?;
            WriteResult::Conditional { written, old: None }
        }
        WriteOp::Append {
            key,
            suffix,
            line_safe,
        } => join(store, key, suffix, Side::End, line_safe, collect, record)?,
        WriteOp::Prepend {
            key,
            prefix,
            line_safe,
        } => join(store, key, prefix, Side::Start, line_safe, collect, record)?,
        WriteOp::MultiSet { pairs } => {
            for (key, value) in pairs {
                record(store.write_local(key, collect, Ttl::Clear, |_| Ok(Some((*value).into())))?);
            }
            WriteResult::Stored
        }
        WriteOp::MultiSetIfAbsent { pairs } => {
            let written = store.set_all_if_absent(pairs, collect, record)?;
            WriteResult::Conditional { written, old: None }
        }
        WriteOp::Flush => {
            let mut flushed = 0u64;
            for shard_index in 0..store.shards.len() {
                let mut shard = store.shards[shard_index].write();
                let live: Vec<Box<[u8]>> = shard
                    .iter()
                    .filter(|(_, s)| !s.is_tombstone())
                    .map(|(k, _)| Box::from(k.as_slice()))
                    .collect();
                for key in live {
                    let loc = store.locate(&key);
                    record(store.stamp_and_write(&mut shard, loc, &key, None, None, collect)?);
                    flushed += 1;
                }
            }
            WriteResult::Flushed(flushed)
        }
    };
    Ok(result)
}

/// The result of a conditional write: records its change when it wrote.
fn conditional(
    written: Option<Option<Change>>,
    old: Option<Box<[u8]>>,
    record: &mut impl FnMut(Option<Change>),
) -> WriteResult {
    let done = written.is_some();
    if let Some(change) = written {
        record(change);
    }
    WriteResult::Conditional { written: done, old }
}

/// Parses a stored value as a decimal i64 (optional sign, no spaces).
fn parse_i64(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Where APPEND/PREPEND put the added bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// After the old value (APPEND).
    End,
    /// Before the old value (PREPEND).
    Start,
}

/// APPEND and PREPEND: joins `added` to the live value (missing = empty)
/// on `side`, under the value rule; the result is the new value.
fn join(
    store: &Store,
    key: &[u8],
    added: &[u8],
    side: Side,
    line_safe: bool,
    collect: bool,
    record: &mut impl FnMut(Option<Change>),
) -> Result<WriteResult, StoreError> {
    let mut value = Box::default();
    record(store.write_local(key, collect, Ttl::Keep, |old| {
        store.entry_rule.check_joined(old, added, line_safe)?;
        let old = old.unwrap_or_default();
        let mut v = Vec::with_capacity(old.len() + added.len());
        match side {
            Side::End => {
                v.extend_from_slice(old);
                v.extend_from_slice(added);
            }
            Side::Start => {
                v.extend_from_slice(added);
                v.extend_from_slice(old);
            }
        }
        value = v.clone().into_boxed_slice();
        Ok(Some(v.into_boxed_slice()))
    })?);
    Ok(WriteResult::Value(value))
}

impl Store {
    /// `MSETNX`: takes the write locks of every shard the keys live in (in
    /// shard order; no other path holds two at once), writes every pair
    /// when no key is live, nothing otherwise. Returns whether it wrote.
    fn set_all_if_absent(
        &self,
        pairs: &[(&[u8], &[u8])],
        collect: bool,
        record: &mut impl FnMut(Option<Change>),
    ) -> Result<bool, StoreError> {
        let mut shards: Vec<usize> = pairs.iter().map(|(k, _)| self.locate(k).shard).collect();
        shards.sort_unstable();
        shards.dedup();
        let mut guards: Vec<_> = shards.iter().map(|&i| self.shards[i].write()).collect();
        let guard_of = |shard: usize| shards.binary_search(&shard).unwrap_or(0);
        let any_live = pairs.iter().any(|(key, _)| {
            let loc = self.locate(key);
            guards[guard_of(loc.shard)]
                .get(*key)
                .is_some_and(|s| self.live_value(s).is_some())
        });
        if any_live {
            return Ok(false);
        }
        for (key, value) in pairs {
            let loc = self.locate(key);
            let shard = &mut guards[guard_of(loc.shard)];
            record(self.stamp_and_write(shard, loc, key, Some((*value).into()), None, collect)?);
        }
        Ok(true)
    }

    /// `RENAME` / `RENAMENX`: holds the write locks of both keys' shards (in
    /// shard order, like `MSETNX`), writes `from`'s value and deadline to
    /// `to` and deletes `from`. Returns whether it renamed (`false`: a live
    /// `to` and `only_if_absent`, or `RENAMENX k k`).
    fn rename(
        &self,
        from: &[u8],
        to: &[u8],
        only_if_absent: bool,
        collect: bool,
        record: &mut impl FnMut(Option<Change>),
    ) -> Result<bool, StoreError> {
        let (source, target) = (self.locate(from), self.locate(to));
        let first = source.shard.min(target.shard);
        let mut first_guard = self.shards[first].write();
        let mut second_guard = (target.shard != source.shard)
            .then(|| self.shards[source.shard.max(target.shard)].write());
        let (source_map, target_map): (&mut Map, Option<&mut Map>) = match &mut second_guard {
            None => (&mut first_guard, None),
            Some(second) if source.shard == first => (&mut first_guard, Some(second)),
            Some(second) => (second, Some(&mut first_guard)),
        };
        let moved = source_map.get(from).and_then(|slot| {
            self.live_value(slot)
                .map(|value| (Box::<[u8]>::from(value), slot.expires_at()))
        });
        let Some((value, deadline)) = moved else {
            return Err(StoreError::NoSuchKey);
        };
        if from == to {
            return Ok(!only_if_absent);
        }
        let target_live = target_map
            .as_deref()
            .unwrap_or(source_map)
            .get(to)
            .is_some_and(|slot| self.live_value(slot).is_some());
        if only_if_absent && target_live {
            return Ok(false);
        }
        let into = match target_map {
            Some(map) => map,
            None => &mut *source_map,
        };
        record(self.stamp_and_write(into, target, to, Some(value), deadline, collect)?);
        record(self.stamp_and_write(source_map, source, from, None, None, collect)?);
        Ok(true)
    }

    /// Read-modify-write of one key under its shard lock: `compute` sees the
    /// live value (or `None`) and returns the new value (or `None` for a
    /// tombstone); `ttl` says whether a live key's deadline stays (INCR,
    /// APPEND) or goes (SET; `Ttl::At` is not used here).
    /// Returns the change when `collect` is set.
    fn write_local(
        &self,
        key: &[u8],
        collect: bool,
        ttl: Ttl,
        compute: impl FnOnce(Option<&[u8]>) -> Result<Option<Box<[u8]>>, StoreError>,
    ) -> Result<Option<Change>, StoreError> {
        let loc = self.locate(key);
        let mut shard = self.shards[loc.shard].write();
        let slot = shard.get(key);
        let live = slot.and_then(|s| self.live_value(s));
        let new_value = compute(live)?;
        let deadline = match ttl {
            Ttl::Keep if live.is_some() => slot.and_then(|s| s.expires_at()),
            Ttl::At(d) => Some(d),
            _ => None,
        };
        let floor = slot.map_or(0, |s| s.version().hlc);
        let prior = Prior::of(key, slot);
        self.write_stamped(
            &mut shard, loc, key, new_value, deadline, floor, prior, collect,
        )
    }

    /// A conditional read-modify-write of one key under its shard lock:
    /// `decide` sees the live value and deadline (or `None`) and returns the
    /// new value and deadline, or `None` to leave the key alone. Returns
    /// `Some(change)` when it wrote (the change itself when `collect`).
    #[allow(clippy::type_complexity)]
    fn rewrite(
        &self,
        key: &[u8],
        collect: bool,
        decide: impl FnOnce(
            Option<(&[u8], Option<NonZeroU64>)>,
        )
            -> Result<Option<(Option<Box<[u8]>>, Option<NonZeroU64>)>, StoreError>,
    ) -> Result<Option<Option<Change>>, StoreError> {
        let loc = self.locate(key);
        let mut shard = self.shards[loc.shard].write();
        let slot = shard.get(key);
        let live = slot.and_then(|s| self.live_value(s).map(|v| (v, s.expires_at())));
        let Some((value, deadline)) = decide(live)? else {
            return Ok(None);
        };
        if let Some(v) = &value {
            if !self.entry_rule.fits(v.len()) {
                return Err(StoreError::ValueTooLarge {
                    limit: self.entry_rule.max_value_bytes,
                });
            }
        }
        let floor = slot.map_or(0, |s| s.version().hlc);
        let prior = Prior::of(key, slot);
        self.write_stamped(&mut shard, loc, key, value, deadline, floor, prior, collect)
            .map(Some)
    }

    /// Counts and describes a write refused because the key's version lies
    /// beyond the clock's bound.
    #[cold]
    fn refuse_clock_ahead(&self, key: &[u8], ahead: crate::clock::ClockAhead) -> StoreError {
        self.refusals.count_clock_ahead();
        StoreError::ClockAhead {
            key: String::from_utf8_lossy(key).into_owned(),
            ahead_ms: ahead.ahead_ms,
        }
    }

    /// Stamps a version newer than the key's current one and writes it.
    pub(super) fn stamp_and_write(
        &self,
        shard: &mut Map,
        loc: Location,
        key: &[u8],
        value: Option<Box<[u8]>>,
        expires_at: Option<NonZeroU64>,
        collect: bool,
    ) -> Result<Option<Change>, StoreError> {
        let slot = shard.get(key);
        let floor = slot.map_or(0, |s| s.version().hlc);
        let prior = Prior::of(key, slot);
        self.write_stamped(shard, loc, key, value, expires_at, floor, prior, collect)
    }

    /// Writes `value` with a version newer than `floor`; returns the
    /// change (a copy of key and entry) when `collect` is set.
    #[allow(clippy::too_many_arguments)]
    fn write_stamped(
        &self,
        shard: &mut Map,
        loc: Location,
        key: &[u8],
        value: Option<Box<[u8]>>,
        expires_at: Option<NonZeroU64>,
        floor: u64,
        prior: Prior,
        collect: bool,
    ) -> Result<Option<Change>, StoreError> {
        let hlc = match self.clock.next_after(floor) {
            Ok(hlc) => hlc,
            Err(ahead) => return Err(self.refuse_clock_ahead(key, ahead)),
        };
        let version = Version::new(hlc, self.node);
        // A delete carries no deadline.
        let expires_at = if value.is_some() { expires_at } else { None };
        let entry = Entry {
            version,
            value,
            expires_at,
        };
        let change = collect.then(|| Change {
            key: key.into(),
            entry: entry.clone(),
        });
        self.write_slot(shard, loc, key, entry, prior, true, true)?;
        Ok(change)
    }
}
