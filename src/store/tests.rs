//! Store tests: LWW merges, tombstones, atomic read-modify-write, limits.

use super::*;
use crate::clock;
use proptest::prelude::*;

fn store(node: &str) -> Store {
    store_with(StoreOptions {
        node_id: node.into(),
        ..StoreOptions::default()
    })
}

fn store_with(options: StoreOptions) -> Store {
    Store::new(options).expect("store")
}

fn entry(hlc: u64, node: u64, value: Option<&[u8]>) -> Entry {
    Entry {
        expires_at: None,
        version: Version::new(hlc, node),
        value: value.map(Into::into),
    }
}

fn set(s: &Store, k: &str, v: &str) -> Vec<Change> {
    s.apply_local(WriteOp::Set {
        key: k.as_bytes(),
        value: v.as_bytes(),
    })
    .expect("set")
    .1
}

#[test]
fn set_get_delete() {
    let s = store("a");
    assert_eq!(s.get(b"k"), None);
    set(&s, "k", "v");
    assert_eq!(s.get(b"k").as_deref(), Some(&b"v"[..]));
    assert_eq!(s.len(), 1);
    let (r, changes) = s.apply_local(WriteOp::Delete { key: b"k" }).expect("del");
    assert_eq!(r, WriteResult::Deleted(true));
    assert!(changes[0].entry.is_tombstone());
    assert_eq!(s.get(b"k"), None);
    assert_eq!(s.len(), 0);
    assert_eq!(s.entry_count(), 1, "the tombstone is kept");
    let (r, changes) = s.apply_local(WriteOp::Delete { key: b"k" }).expect("del");
    assert_eq!(r, WriteResult::Deleted(false));
    assert!(changes.is_empty());
}

#[test]
fn overwrites_get_strictly_newer_versions() {
    let s = store("a");
    let v1 = set(&s, "k", "1")[0].entry.version;
    let v2 = set(&s, "k", "2")[0].entry.version;
    assert!(v2 > v1);
    assert_eq!(v2.node, node_number("a"));
}

#[test]
fn local_write_after_a_future_remote_version_still_wins() {
    let s = store("a");
    let future = clock::from_physical_ms(clock::wall_clock_ms() + 10_000);
    s.merge(b"k", entry(future, 99, Some(b"remote")))
        .expect("merge");
    let change = set(&s, "k", "local");
    assert!(change[0].entry.version.hlc > future);
    assert_eq!(s.get(b"k").as_deref(), Some(&b"local"[..]));
}

#[test]
fn lww_picks_the_same_winner_in_any_order() {
    let entries = [
        entry(5, 1, Some(b"a")),
        entry(7, 1, Some(b"b")),
        entry(7, 2, Some(b"c")),
        entry(6, 3, None),
    ];
    let mut roots = Vec::new();
    for perm in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2]] {
        let s = store("x");
        for i in perm {
            s.merge(b"k", entries[i].clone()).expect("merge");
        }
        assert_eq!(
            s.get(b"k").as_deref(),
            Some(&b"c"[..]),
            "equal hlc breaks by node id"
        );
        roots.push(s.root());
    }
    assert!(roots.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn merge_is_idempotent() {
    let s = store("x");
    assert_eq!(
        s.merge(b"k", entry(5, 1, Some(b"a"))).expect("m"),
        MergeOutcome::Applied
    );
    let root = s.root();
    assert_eq!(
        s.merge(b"k", entry(5, 1, Some(b"a"))).expect("m"),
        MergeOutcome::Stale
    );
    assert_eq!(s.root(), root);
}

#[test]
fn tombstones_beat_older_values_and_lose_to_newer_ones() {
    let s = store("x");
    s.merge(b"k", entry(5, 1, Some(b"old"))).expect("m");
    s.merge(b"k", entry(6, 1, None)).expect("m");
    assert_eq!(s.get(b"k"), None);
    assert_eq!(
        s.merge(b"k", entry(5, 9, Some(b"older"))).expect("m"),
        MergeOutcome::Stale
    );
    assert_eq!(s.get(b"k"), None);
    s.merge(b"k", entry(7, 1, Some(b"new"))).expect("m");
    assert_eq!(s.get(b"k").as_deref(), Some(&b"new"[..]));
}

#[test]
fn increment_counts_from_zero_and_refuses_non_numbers_and_overflow() {
    let s = store("a");
    let inc = |k: &str, d: i64| {
        s.apply_local(WriteOp::Increment {
            key: k.as_bytes(),
            delta: d,
        })
    };
    assert_eq!(inc("n", 5).expect("inc").0, WriteResult::Number(5));
    assert_eq!(inc("n", -7).expect("inc").0, WriteResult::Number(-2));
    set(&s, "t", "abc");
    assert!(matches!(inc("t", 1), Err(StoreError::NotANumber { .. })));
    set(&s, "big", &i64::MAX.to_string());
    assert_eq!(inc("big", 1), Err(StoreError::Overflow));
    assert_eq!(
        s.get(b"big").as_deref(),
        Some(i64::MAX.to_string().as_bytes())
    );
    set(&s, "small", &i64::MIN.to_string());
    assert_eq!(inc("small", -1), Err(StoreError::Overflow));
}

#[test]
fn append_and_prepend() {
    let s = store("a");
    let r = s
        .apply_local(WriteOp::Append {
            key: b"k",
            suffix: b"lo",
            line_safe: false,
        })
        .expect("append");
    assert_eq!(r.0, WriteResult::Value(b"lo"[..].into()));
    s.apply_local(WriteOp::Prepend {
        key: b"k",
        prefix: b"hel",
        line_safe: false,
    })
    .expect("prepend");
    s.apply_local(WriteOp::Append {
        key: b"k",
        suffix: b"!",
        line_safe: false,
    })
    .expect("append");
    assert_eq!(s.get(b"k").as_deref(), Some(&b"hello!"[..]));
}

#[test]
fn append_and_prepend_never_grow_a_value_past_the_limit() {
    let s = store_with(StoreOptions {
        max_value_bytes: 8,
        ..StoreOptions::default()
    });
    set(&s, "k", "12345");
    let too_large = Err(StoreError::ValueTooLarge { limit: 8 });
    let append = |suffix: &[u8]| {
        s.apply_local(WriteOp::Append {
            key: b"k",
            suffix,
            line_safe: true,
        })
        .map(|(r, _)| r)
    };
    assert_eq!(append(b"6789"), too_large);
    let prepended = s.apply_local(WriteOp::Prepend {
        key: b"k",
        prefix: b"0000",
        line_safe: true,
    });
    assert_eq!(prepended.map(|(r, _)| r), too_large);
    // Unchanged by the refused writes; exactly the limit is allowed.
    assert_eq!(s.get(b"k").as_deref(), Some(&b"12345"[..]));
    assert_eq!(
        append(b"678"),
        Ok(WriteResult::Value(b"12345678"[..].into()))
    );
}

#[test]
fn concurrent_increments_sum_exactly() {
    let s = std::sync::Arc::new(store("a"));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    s.apply_local(WriteOp::Increment {
                        key: b"n",
                        delta: 1,
                    })
                    .expect("inc");
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().expect("join"));
    assert_eq!(s.get(b"n").as_deref(), Some(&b"8000"[..]));
}

#[test]
fn flush_tombstones_every_live_key() {
    let s = store("a");
    for i in 0..100 {
        set(&s, &format!("k{i}"), "v");
    }
    let (r, changes) = s.apply_local(WriteOp::Flush).expect("flush");
    assert_eq!(r, WriteResult::Flushed(100));
    assert_eq!(changes.len(), 100);
    assert!(changes.iter().all(|c| c.entry.is_tombstone()));
    assert_eq!(s.len(), 0);
    // A replica applying the changes ends empty too.
    let other = store("b");
    other.merge(b"k1", entry(1, 5, Some(b"v"))).expect("m");
    for c in changes {
        other.merge(&c.key, c.entry).expect("m");
    }
    assert_eq!(other.len(), 0);
}

#[test]
fn memory_limit_refuses_growth_but_allows_deletes() {
    let s = store_with(StoreOptions {
        memory_limit_bytes: 2_000,
        ..StoreOptions::default()
    });
    let mut stored = 0;
    for i in 0..100 {
        match s.apply_local(WriteOp::Set {
            key: format!("k{i}").as_bytes(),
            value: &[b'x'; 100],
        }) {
            Ok(_) => stored += 1,
            Err(e) => {
                assert_eq!(e, StoreError::StorageFull);
                break;
            }
        }
    }
    assert!(stored > 0 && stored < 100);
    assert!(s.apply_local(WriteOp::Delete { key: b"k0" }).is_ok());
    assert_eq!(s.get(b"k1").map(|v| v.len()), Some(100));
}

#[test]
fn a_multi_set_that_fails_part_way_reports_what_it_wrote() {
    let s = store_with(StoreOptions {
        memory_limit_bytes: 1_000,
        ..StoreOptions::default()
    });
    let value = [b'x'; 300];
    let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    let pairs: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (k.as_bytes(), &value[..])).collect();
    for collect in [true, false] {
        s.apply_local(WriteOp::Flush).expect("flush");
        let mut changes = Vec::new();
        let (result, written) = s.apply_local_into(
            WriteOp::MultiSet { pairs: &pairs },
            collect.then_some(&mut changes),
        );
        assert_eq!(result, Err(StoreError::StorageFull));
        assert!(written > 0 && written < pairs.len(), "{written}");
        // The keys written before the failure are stored, and (when
        // collected) each has its change, in order.
        for key in &keys[..written] {
            assert_eq!(s.get(key.as_bytes()).map(|v| v.len()), Some(300));
        }
        assert_eq!(s.get(keys[written].as_bytes()), None);
        if collect {
            let changed: Vec<&[u8]> = changes.iter().map(|c| &c.key[..]).collect();
            let expected: Vec<&[u8]> = keys[..written].iter().map(|k| k.as_bytes()).collect();
            assert_eq!(changed, expected);
        } else {
            assert!(changes.is_empty());
        }
    }
}

#[test]
fn scan_is_sorted_and_filtered_by_prefix() {
    let s = store("a");
    for k in ["user:2", "user:1", "other", "user:10"] {
        set(&s, k, "v");
    }
    s.apply_local(WriteOp::Delete { key: b"user:2" })
        .expect("del");
    let keys: Vec<_> = s.scan(b"user:").into_iter().map(|k| k.to_vec()).collect();
    assert_eq!(keys, vec![b"user:1".to_vec(), b"user:10".to_vec()]);
}

#[test]
fn gc_removes_only_old_tombstones() {
    let s = store("a");
    s.merge(b"old", entry(clock::from_physical_ms(1_000), 1, None))
        .expect("m");
    set(&s, "live", "v");
    s.apply_local(WriteOp::Delete { key: b"live" })
        .expect("del");
    let removed = s.gc_tombstones(clock::wall_clock_ms(), 60_000).expect("gc");
    assert_eq!(removed, 1);
    assert!(s.entry(b"old").is_none());
    assert!(s.entry(b"live").is_some_and(|e| e.is_tombstone()));
}

#[test]
fn leaf_listing_covers_each_entry_once() {
    let s = store("a");
    for i in 0..2000 {
        set(&s, &format!("key{i}"), "v");
    }
    let leaves: std::collections::BTreeSet<u64> = (0..2000)
        .map(|i| s.leaf_of_key(format!("key{i}").as_bytes()))
        .collect();
    let total: usize = leaves.iter().map(|l| s.leaf_entries(*l).len()).sum();
    assert_eq!(total, 2000);
    let mut visited = 0;
    s.visit_leaves(&[0..=s.shape().leaf_count() - 1], |_, _, _| visited += 1);
    assert_eq!(visited, 2000);
}

#[derive(Debug, Clone)]
enum Op {
    Set(u8, u8),
    Del(u8),
    Inc(u8, i8),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..20, any::<u8>()).prop_map(|(k, v)| Op::Set(k, v)),
        (0u8..20).prop_map(Op::Del),
        (0u8..20, any::<i8>()).prop_map(|(k, d)| Op::Inc(k, d)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Replicas receiving the same changes in different orders converge to
    /// the same contents and the same root.
    #[test]
    fn replicas_converge_in_any_delivery_order(ops in proptest::collection::vec(op_strategy(), 1..80), seed in any::<u64>()) {
        let origin = store("origin");
        let mut changes = Vec::new();
        for op in &ops {
            let k;
            let res = match op {
                Op::Set(key, v) => { k = format!("k{key}"); origin.apply_local(WriteOp::Set { key: k.as_bytes(), value: &[*v] }) }
                Op::Del(key) => { k = format!("k{key}"); origin.apply_local(WriteOp::Delete { key: k.as_bytes() }) }
                Op::Inc(key, d) => { k = format!("n{key}"); origin.apply_local(WriteOp::Increment { key: k.as_bytes(), delta: *d as i64 }) }
            };
            if let Ok((_, c)) = res { changes.extend(c); }
        }
        let a = store("a");
        let b = store("b");
        for c in &changes { a.merge(&c.key, c.entry.clone()).expect("merge"); }
        let mut shuffled = changes.clone();
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        for c in shuffled.iter().chain(shuffled.iter()) { b.merge(&c.key, c.entry.clone()).expect("merge"); }
        prop_assert_eq!(a.root(), origin.root());
        prop_assert_eq!(b.root(), origin.root());
        for k in origin.scan(b"") { prop_assert_eq!(b.get(&k), origin.get(&k)); }
        prop_assert_eq!(b.len(), origin.len());
    }
}

/// Every node summary of the store's tree, level by level.
fn tree_snapshot(s: &Store) -> Vec<Vec<Summary>> {
    let shape = s.shape();
    (0..=shape.depth)
        .map(|level| {
            (0..shape.nodes_at(level))
                .map(|i| s.index().node(level, i).expect("node in range"))
                .collect()
        })
        .collect()
}

fn changed_nodes(before: &[Vec<Summary>], after: &[Vec<Summary>]) -> usize {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| b.iter().zip(a).filter(|(x, y)| x != y).count())
        .sum()
}

#[test]
fn each_client_write_changes_exactly_depth_plus_one_tree_nodes() {
    let s = store("a");
    for i in 0..500 {
        set(&s, &format!("k{i}"), "v");
    }
    let path = s.shape().depth as usize + 1;
    let mut before = tree_snapshot(&s);
    let mut step = |label: &str, op: WriteOp<'_>| {
        s.apply_local(op).expect(label);
        let after = tree_snapshot(&s);
        assert_eq!(changed_nodes(&before, &after), path, "{label}");
        before = after;
    };
    step(
        "new key",
        WriteOp::Set {
            key: b"fresh",
            value: b"1",
        },
    );
    step(
        "overwrite",
        WriteOp::Set {
            key: b"k7",
            value: b"2",
        },
    );
    step("delete", WriteOp::Delete { key: b"k8" });
    step(
        "increment",
        WriteOp::Increment {
            key: b"n",
            delta: 5,
        },
    );
    step(
        "append",
        WriteOp::Append {
            key: b"k9",
            suffix: b"!",
            line_safe: false,
        },
    );
}

#[test]
fn short_keys_are_stored_inline_and_long_ones_round_trip() {
    // 32 bytes in the bucket (smallvec's `union` feature): 24 inline.
    assert_eq!(std::mem::size_of::<StoredKey>(), 32);
    assert!(!StoredKey::from_slice(&[b'k'; INLINE_KEY_BYTES]).spilled());
    assert!(StoredKey::from_slice(&[b'k'; INLINE_KEY_BYTES + 1]).spilled());

    let store = store("n1");
    let short = "key:000000012345".to_string();
    let long = "x".repeat(300);
    let edge = "e".repeat(INLINE_KEY_BYTES);
    for key in [&short, &long, &edge] {
        set(&store, key, "v1");
        set(&store, key, "v2");
        assert_eq!(store.get(key.as_bytes()).as_deref(), Some(&b"v2"[..]));
    }
    assert_eq!(store.len(), 3);
    let listed = store.scan(b"");
    let mut expected: Vec<Box<[u8]>> = [&edge, &short, &long]
        .iter()
        .map(|k| Box::from(k.as_bytes()))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// SCAN's guarantee: a key present for the whole scan is returned by
    /// it, whatever is written and deleted between pages.
    #[test]
    fn scan_pages_return_every_key_present_throughout(
        count in 1usize..50,
        stable in 1usize..400,
        churn in proptest::collection::vec((0u32..2000, any::<bool>()), 0..300),
    ) {
        let s = store("a");
        for i in 0..stable {
            set(&s, &format!("stable:{i}"), "v");
        }
        let mut seen: std::collections::HashSet<Box<[u8]>> = std::collections::HashSet::new();
        let mut churn = churn.into_iter();
        let mut cursor = 0;
        for pages in 0.. {
            prop_assert!(pages < 100_000, "the scan never ended");
            let (keys, next) = s.scan_page(cursor, count);
            prop_assert!(keys.len() <= count + 4, "a page of {} for COUNT {count}", keys.len());
            seen.extend(keys);
            for (n, delete) in churn.by_ref().take(5) {
                let key = format!("churn:{n}");
                if delete {
                    s.apply_local(WriteOp::Delete { key: key.as_bytes() }).expect("del");
                } else {
                    set(&s, &key, "x");
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for i in 0..stable {
            let key = format!("stable:{i}");
            prop_assert!(seen.contains(key.as_bytes()), "{key} was missed");
        }
    }
}
