//! Anti-entropy through the real protocol: a tonic `MerkleSync` server over
//! one store, the real round client over another, on loopback.

mod anti_entropy_support;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anti_entropy_support::{contents, store, sync, Peer};
use merklekv::clock;
use merklekv::config::SyncMode;
use merklekv::store::{Entry, Store, TreeShape, Version, WriteOp};
use merklekv::sync::Tuning;
use proptest::prelude::*;

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(anti_entropy_support::runtime)
}

#[derive(Debug, Clone)]
enum Op {
    Set(u16, u16),
    Del(u16),
    Inc(u16, i8),
    /// Copy the key's entry to the other side (partial replication).
    Replicate(u16),
}

fn op(keys: u16) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..keys, any::<u16>()).prop_map(|(k, v)| Op::Set(k, v)),
        2 => (0..keys).prop_map(Op::Del),
        2 => (0..keys, any::<i8>()).prop_map(|(k, d)| Op::Inc(k, d)),
        2 => (0..keys).prop_map(Op::Replicate),
    ]
}

fn apply(side: &Store, other: &Store, op: &Op) {
    let key = |k: &u16| format!("key-{k}").into_bytes();
    match op {
        Op::Set(k, v) => {
            let value = format!("value-{v}");
            let _ = side.apply_local(WriteOp::Set {
                key: &key(k),
                value: value.as_bytes(),
            });
        }
        Op::Del(k) => {
            let _ = side.apply_local(WriteOp::Delete { key: &key(k) });
        }
        // Fails (harmlessly) on a non-numeric value.
        Op::Inc(k, d) => {
            let _ = side.apply_local(WriteOp::Increment {
                key: &key(k),
                delta: i64::from(*d),
            });
        }
        Op::Replicate(k) => {
            if let Some(e) = side.entry(&key(k)) {
                other.merge(&key(k), e).expect("merge");
            }
        }
    }
}

/// Last-writer-wins union of two stores' contents.
fn lww_union(a: &Store, b: &Store) -> BTreeMap<Vec<u8>, Entry> {
    let mut out = contents(a);
    for (k, e) in contents(b) {
        match out.get(&k) {
            Some(mine) if mine.version >= e.version => {}
            _ => {
                out.insert(k, e);
            }
        }
    }
    out
}

fn shapes() -> impl Strategy<Value = TreeShape> {
    prop_oneof![
        Just(TreeShape {
            fanout: 2,
            depth: 1
        }),
        Just(TreeShape {
            fanout: 4,
            depth: 3
        }),
        Just(TreeShape {
            fanout: 16,
            depth: 2
        }),
        Just(TreeShape::DEFAULT),
        Just(TreeShape {
            fanout: 2,
            depth: 8
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Two stores built from random interleavings of SET/DEL/INC (and
    /// partial replication) end identical — contents and roots — after one
    /// round, whatever the shape, page size or descent threshold.
    #[test]
    fn one_round_makes_two_stores_identical(
        shape in shapes(),
        ops in (1u16..400).prop_flat_map(|keys| prop::collection::vec((any::<bool>(), op(keys)), 0..300)),
        page_bytes in prop_oneof![Just(1usize), Just(300), Just(4096), Just(3 << 20)],
        small_subtree in prop_oneof![Just(0u64), Just(4), Just(32), Just(10_000)],
        full in prop::bool::weighted(0.2),
    ) {
        let a = store("node-a", shape);
        let b = store("node-b", shape);
        for (on_a, op) in &ops {
            let (side, other) = if *on_a { (&a, &b) } else { (&b, &a) };
            apply(side, other, op);
        }
        let expected = lww_union(&a, &b);
        let were_equal = contents(&a) == contents(&b);
        let tuning = Tuning { page_bytes, small_subtree, ..Tuning::default() };
        let mode = if full { SyncMode::Full } else { SyncMode::Merkle };
        let report = rt().block_on(async {
            let peer = Peer::serve(b.clone()).await;
            let r = sync(&a, &peer, mode, &tuning).await;
            peer.stop().await;
            r
        }).expect("round");
        prop_assert_eq!(contents(&a), expected.clone());
        prop_assert_eq!(contents(&b), expected);
        prop_assert_eq!(a.root(), b.root());
        prop_assert_eq!(a.len(), b.len());
        if were_equal && !full {
            prop_assert!(report.in_sync);
            prop_assert_eq!(report.wire.rpcs, 1);
        }
    }
}

fn tuning() -> Tuning {
    Tuning::default()
}

fn put(s: &Store, key: &str, value: &str) {
    s.apply_local(WriteOp::Set {
        key: key.as_bytes(),
        value: value.as_bytes(),
    })
    .expect("set");
}

fn copy_all(from: &Store, to: &Store) {
    for (k, e) in contents(from) {
        to.merge(&k, e).expect("merge");
    }
}

#[test]
fn tombstones_propagate_and_are_never_resurrected() {
    rt().block_on(async {
        for mode in [SyncMode::Merkle, SyncMode::Full] {
            let a = store("a", TreeShape::DEFAULT);
            let b = store("b", TreeShape::DEFAULT);
            let c = store("c", TreeShape::DEFAULT);
            for i in 0..500 {
                put(&a, &format!("k{i}"), "old");
            }
            copy_all(&a, &b);
            copy_all(&a, &c);
            // a deletes; b and c still hold the old live values.
            for i in 0..50 {
                a.apply_local(WriteOp::Delete {
                    key: format!("k{i}").as_bytes(),
                })
                .expect("del");
            }
            let peer_a = Peer::serve(a.clone()).await;
            // b pulls the tombstones.
            let r = sync(&b, &peer_a, mode, &tuning()).await.expect("b<-a");
            assert_eq!(r.keys_pulled, 50, "{mode:?}");
            assert_eq!(contents(&a), contents(&b));
            assert!(!b.contains(b"k7"));
            assert!(b.entry(b"k7").expect("tombstone kept").is_tombstone());
            peer_a.stop().await;
            // c pushes its stale live values at a: a keeps its tombstones and c
            // learns them.
            let peer_a = Peer::serve(a.clone()).await;
            let r = sync(&c, &peer_a, mode, &tuning()).await.expect("c->a");
            assert_eq!(r.keys_pushed, 0, "{mode:?}: c has nothing newer");
            assert!(!a.contains(b"k7") && !c.contains(b"k7"));
            assert_eq!(a.len(), 450);
            assert_eq!(c.root(), a.root());
            // Another round changes nothing.
            let r = sync(&c, &peer_a, mode, &tuning()).await.expect("again");
            assert_eq!((r.keys_pulled, r.keys_pushed), (0, 0));
            peer_a.stop().await;
        }
    });
}

#[test]
fn expired_tombstones_are_not_copied_but_still_win() {
    rt().block_on(async {
        let a = store("a", TreeShape::DEFAULT);
        let b = store("b", TreeShape::DEFAULT);
        let long_ago = clock::from_physical_ms(clock::wall_clock_ms() - 3_600_000);
        let tomb = |hlc| Entry {
            expires_at: None,
            version: Version::new(hlc, 1),
            value: None,
        };
        // Only a has this old tombstone: not worth copying.
        a.merge(b"gone", tomb(long_ago)).expect("merge");
        // b has an even older live value for this one: the tombstone wins.
        a.merge(b"stale", tomb(long_ago)).expect("merge");
        b.merge(
            b"stale",
            Entry {
                expires_at: None,
                version: Version::new(long_ago - 1000, 2),
                value: Some(b"zombie".to_vec().into()),
            },
        )
        .expect("merge");
        let t = Tuning {
            tombstone_grace: Some(Duration::from_secs(60)),
            ..tuning()
        };
        let peer = Peer::serve(b.clone()).await;
        sync(&a, &peer, SyncMode::Merkle, &t).await.expect("round");
        peer.stop().await;
        assert!(b.entry(b"gone").is_none(), "expired tombstone copied");
        assert!(!b.contains(b"stale"), "zombie value survived");
        assert!(a.entry(b"stale").expect("kept").is_tombstone());
    });
}

#[test]
fn deleting_then_reapplying_the_same_entry_restores_the_root() {
    let a = store("a", TreeShape::DEFAULT);
    for i in 0..1000 {
        put(&a, &format!("k{i}"), "v");
    }
    let before = a.root();
    let original = a.entry(b"k42").expect("entry");
    // Delete (tombstone), collect the tombstone, re-apply the original.
    a.merge(
        b"k42",
        Entry {
            expires_at: None,
            version: Version::new(1, 1),
            value: None,
        },
    )
    .expect("merge");
    assert_eq!(a.root(), before, "an older tombstone must not apply");
    a.apply_local(WriteOp::Delete { key: b"k42" }).expect("del");
    assert_ne!(a.root(), before);
    assert_eq!(
        a.gc_tombstones(clock::wall_clock_ms() + 1000, 0)
            .expect("gc"),
        1
    );
    a.merge(b"k42", original).expect("re-apply");
    assert_eq!(a.root(), before);
}

#[test]
fn visit_leaves_matches_leaf_entries() {
    for shape in [
        TreeShape {
            fanout: 2,
            depth: 1,
        },
        TreeShape {
            fanout: 16,
            depth: 2,
        },
        TreeShape::DEFAULT,
        TreeShape {
            fanout: 2,
            depth: 8,
        },
    ] {
        let s = store("a", shape);
        for i in 0..3000 {
            put(&s, &format!("key{i}"), "v");
        }
        let leaves = shape.leaf_count();
        // Sorted, disjoint, some reaching past the last leaf.
        let ranges = if leaves < 64 {
            vec![0..=0, 1..=(leaves + 10)]
        } else {
            vec![
                0..=0,
                3..=(leaves / 3),
                (leaves / 2)..=(leaves / 2 + 5),
                (leaves - 2)..=(leaves + 10),
            ]
        };
        let mut seen = Vec::new();
        s.visit_leaves(&ranges, |leaf, k, _| seen.push((leaf, k.to_vec())));
        seen.sort();
        let mut expected = Vec::new();
        for r in &ranges {
            for leaf in r.clone().filter(|l| *l < leaves) {
                for (k, _) in s.leaf_entries(leaf) {
                    expected.push((leaf, k.to_vec()));
                }
            }
        }
        expected.sort();
        assert_eq!(seen.len(), expected.len(), "{shape:?}");
        assert!(seen == expected, "{shape:?}");
    }
}

/// Two stores with `n` equal keys, then `d` differing keys: half newer on
/// `a`, half newer on `b`.
fn diverged(n: usize, d: usize) -> (Arc<Store>, Arc<Store>) {
    let a = store("a", TreeShape::DEFAULT);
    let b = store("b", TreeShape::DEFAULT);
    for i in 0..n {
        put(&a, &format!("key{i:08}"), "value");
    }
    copy_all(&a, &b);
    for i in 0..d {
        let side = if i % 2 == 0 { &a } else { &b };
        put(side, &format!("key{:08}", i * 7919 % n), "changed");
    }
    (a, b)
}

#[test]
fn round_trips_and_bytes_stay_small() {
    rt().block_on(async {
        let (a, b) = diverged(20_000, 0);
        let peer = Peer::serve(b.clone()).await;
        let r = sync(&a, &peer, SyncMode::Merkle, &tuning())
            .await
            .expect("d=0");
        assert!(r.in_sync);
        assert_eq!(r.wire.rpcs, 1);
        assert!(r.wire.bytes_sent + r.wire.bytes_received < 200, "{r:?}");
        peer.stop().await;

        let (a, b) = diverged(20_000, 100);
        let peer = Peer::serve(b.clone()).await;
        let r = sync(&a, &peer, SyncMode::Merkle, &tuning())
            .await
            .expect("d=100");
        assert_eq!(a.root(), b.root());
        assert_eq!((r.keys_pulled, r.keys_pushed), (50, 50));
        assert!(r.wire.rpcs <= TreeShape::DEFAULT.depth + 2, "{r:?}");
        assert!(r.wire.bytes_sent + r.wire.bytes_received < 300_000, "{r:?}");
        peer.stop().await;

        let (a, b) = diverged(20_000, 100);
        let peer = Peer::serve(b.clone()).await;
        let full = sync(&a, &peer, SyncMode::Full, &tuning())
            .await
            .expect("full");
        assert_eq!(a.root(), b.root());
        assert_eq!((full.keys_pulled, full.keys_pushed), (50, 50));
        assert!(full.digests_received >= 20_000);
        assert!(
            full.wire.bytes_received > 10 * r.wire.bytes_received,
            "merkle {r:?} full {full:?}"
        );
        peer.stop().await;
    });
}

#[test]
fn one_side_empty_moves_whole_subtrees() {
    rt().block_on(async {
        let (a, _) = diverged(5000, 0);
        let empty = store("e", TreeShape::DEFAULT);
        // Pull everything into an empty node.
        let peer = Peer::serve(a.clone()).await;
        let r = sync(&empty, &peer, SyncMode::Merkle, &tuning())
            .await
            .expect("pull");
        assert_eq!(r.keys_pulled, 5000);
        assert_eq!(r.digests_received, 0, "no digests needed for an empty side");
        assert_eq!(empty.root(), a.root());
        peer.stop().await;
        // Push everything to an empty node.
        let empty = store("e2", TreeShape::DEFAULT);
        let peer = Peer::serve(empty.clone()).await;
        let r = sync(&a, &peer, SyncMode::Merkle, &tuning())
            .await
            .expect("push");
        assert_eq!((r.keys_pushed, r.push_applied), (5000, 5000));
        assert_eq!(empty.root(), a.root());
        peer.stop().await;
    });
}

#[test]
fn a_diff_larger_than_4_mib_is_paged() {
    rt().block_on(async {
        let a = store("a", TreeShape::DEFAULT);
        let b = store("b", TreeShape::DEFAULT);
        let big = "x".repeat(100_000);
        // 6 MB only on a (b must pull it), 5 MB only on b (b must push it),
        // plus shared keys so the descent runs rather than a whole fetch.
        for i in 0..60 {
            put(&a, &format!("a-big-{i}"), &big);
        }
        for i in 0..50 {
            put(&b, &format!("b-big-{i}"), &big);
        }
        for i in 0..2000 {
            put(&a, &format!("shared-{i}"), "v");
        }
        let shared: Vec<_> = contents(&a)
            .into_iter()
            .filter(|(k, _)| k.starts_with(b"shared"))
            .collect();
        for (k, e) in shared {
            b.merge(&k, e).expect("merge");
        }
        let peer = Peer::serve(a.clone()).await;
        let r = sync(&b, &peer, SyncMode::Merkle, &tuning())
            .await
            .expect("round");
        assert_eq!((r.keys_pulled, r.keys_pushed), (60, 50));
        assert_eq!(contents(&a), contents(&b));
        assert_eq!(a.root(), b.root());
        assert!(r.wire.bytes_received > 6_000_000 && r.wire.bytes_sent > 5_000_000);
        // GetRoot, ListDigests, two FetchKeys pages, two PushEntries pages.
        const AT_LEAST: u32 = 6;
        assert!(r.wire.rpcs >= AT_LEAST, "{r:?}");
        peer.stop().await;
    });
}
