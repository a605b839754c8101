//! Versions from elsewhere never freeze a key (issue 19): a version beyond
//! the clock's bound is refused on every way in, and a client write after
//! any mix of remote versions wins.

use super::*;
use crate::clock::{self, from_physical_ms, wall_clock_ms};
use proptest::prelude::*;

fn store(node: &str, max_value_bytes: u64) -> Store {
    Store::new(StoreOptions {
        node_id: node.into(),
        max_value_bytes,
        ..StoreOptions::default()
    })
    .expect("store")
}

fn entry(hlc: u64, node: u64, value: Option<&[u8]>) -> Entry {
    Entry {
        expires_at: None,
        version: Version::new(hlc, node),
        value: value.map(Into::into),
    }
}

#[test]
fn a_version_at_u64_max_is_refused_and_the_key_stays_writable() {
    let s = store("a", 0);
    let poison = entry(u64::MAX, u64::MAX, Some(b"poison"));
    assert_eq!(
        s.merge(b"z", poison),
        Ok(MergeOutcome::Refused(Refusal::FutureVersion))
    );
    assert_eq!(s.get(b"z"), None);
    assert_eq!(s.refusals().future_versions(), 1);
    s.apply_local(WriteOp::Set {
        key: b"z",
        value: b"one",
    })
    .expect("set");
    s.apply_local(WriteOp::Set {
        key: b"z",
        value: b"two",
    })
    .expect("set");
    assert_eq!(s.get(b"z").as_deref(), Some(&b"two"[..]));
    assert!(s.entry(b"z").expect("entry").version.hlc < u64::MAX);
}

#[test]
fn restore_and_replay_leave_out_versions_beyond_the_bound() {
    let s = store("a", 0);
    s.restore(b"r", entry(u64::MAX - 7, 1, Some(b"x")));
    s.replay(b"p", Some(entry(u64::MAX, 1, Some(b"y"))));
    assert_eq!(s.entry_count(), 0);
    assert_eq!(s.refusals().future_versions(), 2);
    s.restore(b"ok", entry(5, 1, Some(b"v")));
    assert_eq!(s.get(b"ok").as_deref(), Some(&b"v"[..]));
}

#[test]
fn a_write_whose_floor_lies_beyond_the_bound_is_refused_not_frozen() {
    // A stored version beyond the bound (admitted before the wall clock
    // was set back): planted directly, as no way in admits it today.
    let s = store("a", 0);
    let poisoned = super::MAX_STORED_HLC;
    let loc = s.locate(b"k");
    {
        let mut shard = s.shards[loc.shard].write();
        let prior = Prior::of(b"k", shard.get(&b"k"[..]));
        s.write_slot(
            &mut shard,
            loc,
            b"k",
            entry(poisoned, 1, Some(b"v")),
            prior,
            false,
            false,
        )
        .expect("plant");
    }
    let refused = s
        .apply_local(WriteOp::Set {
            key: b"k",
            value: b"w",
        })
        .expect_err("refused");
    assert!(
        matches!(refused, StoreError::ClockAhead { .. }),
        "{refused:?}"
    );
    assert_eq!(s.refusals().clock_ahead_writes(), 1);
    assert_eq!(s.get(b"k").as_deref(), Some(&b"v"[..]));
    // Other keys are untouched and the clock keeps working.
    s.apply_local(WriteOp::Set {
        key: b"other",
        value: b"x",
    })
    .expect("set");
}

#[test]
fn the_bound_is_the_stores_own() {
    // A version 30 s ahead: within a 60 s bound (taken, and written past),
    // beyond a 1 s bound (refused on the way in).
    let s = Store::new(StoreOptions {
        max_clock_skew_ms: 60_000,
        ..StoreOptions::default()
    })
    .expect("store");
    let ahead = from_physical_ms(wall_clock_ms() + 30_000);
    s.restore(b"k", entry(ahead, 1, Some(b"v")));
    let strict = Store::new(StoreOptions {
        max_clock_skew_ms: 1_000,
        ..StoreOptions::default()
    })
    .expect("store");
    // The same entry, 30 s ahead of a 1 s bound: refused on the way in.
    strict.restore(b"k", entry(ahead, 1, Some(b"v")));
    assert_eq!(strict.entry_count(), 0);
    // On the lenient store a write is stamped past it, within its bound.
    s.apply_local(WriteOp::Set {
        key: b"k",
        value: b"w",
    })
    .expect("within 60 s");
    assert!(s.entry(b"k").expect("entry").version.hlc > ahead);
}

#[test]
fn oversized_remote_entries_are_refused() {
    let s = store("a", 8);
    assert_eq!(
        s.merge(b"k", entry(1, 1, Some(&[b'v'; 9]))),
        Ok(MergeOutcome::Refused(Refusal::OversizedValue))
    );
    assert_eq!(
        s.merge(&[b'k'; 9], entry(1, 1, None)),
        Ok(MergeOutcome::Refused(Refusal::OversizedKey))
    );
    assert_eq!(
        s.merge(b"k", entry(1, 1, Some(&[b'v'; 8]))),
        Ok(MergeOutcome::Applied)
    );
    assert_eq!(s.refusals().oversized(), 2);
}

/// A remote version: anything from the past to u64::MAX.
fn remote_hlc() -> impl Strategy<Value = u64> {
    let now = clock::from_physical_ms(wall_clock_ms());
    prop_oneof![
        Just(u64::MAX),
        Just(u64::MAX - 1),
        0..now,
        now..now + (30_000 << 16),
        now + (120_000 << 16)..u64::MAX,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any mix of remote versions, merged in any order into two replicas,
    /// leaves them equal; a client write afterwards wins on each.
    #[test]
    fn remote_versions_never_freeze_a_key(
        changes in proptest::collection::vec(
            (0u8..4, remote_hlc(), 1u64..4, proptest::option::of(0u8..255)),
            0..24,
        ),
        seed in any::<u64>(),
    ) {
        let a = store("a", 0);
        let b = store("b", 0);
        let changes: Vec<(Vec<u8>, Entry)> = changes
            .into_iter()
            .map(|(k, hlc, node, v)| {
                let value = v.map(|v| vec![v]);
                (vec![b'k', k], entry(hlc, node, value.as_deref()))
            })
            .collect();
        for (key, e) in &changes {
            let _ = a.merge(key, e.clone()).expect("merge");
        }
        let mut shuffled = changes.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        for (key, e) in &shuffled {
            let _ = b.merge(key, e.clone()).expect("merge");
        }
        prop_assert_eq!(a.root(), b.root());
        for s in [&a, &b] {
            for k in 0u8..4 {
                let key = [b'k', k];
                s.apply_local(WriteOp::Set { key: &key, value: b"mine" }).expect("write wins");
                prop_assert_eq!(s.get(&key), Some(b"mine".to_vec()));
                prop_assert!(s.entry(&key).expect("entry").version.hlc <= s.clock().bound());
            }
        }
    }
}
