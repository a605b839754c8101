//! What the Merkle index costs a write.
//!
//! * `index/path_update`: adding `new - old` along one root-to-leaf path of
//!   the default tree (fanout 16, depth 4: five nodes), random leaves.
//! * `index/entry_digest`: the XXH3-128 entry digest of a 16-byte key with a
//!   100-byte value (what every write hashes).
//! * `index/entry_digest_sha256`: the same framing hashed with SHA-256 (the
//!   architecture's suggestion), measured beside it to justify XXH3.
//! * `index/per_write`: both together — the whole per-write index cost.
//! * `store_set/*`: `Store::apply_local(SET)` overwriting 100,000 keys, on
//!   the default tree and on a one-level tree (fanout 256, depth 1: the
//!   same 256 lock shards, but a two-node path whose 257 counters stay in
//!   cache), and on the default tree with the index switched off
//!   (`StoreOptions::merkle_index = false`: no digest, no path update), the
//!   baseline for "SET throughput with the index on vs off".
//!
//! `cargo bench --bench merkle_index`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use merklekv::store::{
    entry_digest, key_hash, MerkleIndex, Store, StoreOptions, TreeShape, Version, WriteOp,
};

const KEYS: usize = 100_000;

fn key(i: usize) -> String {
    format!("key-{i:012}")
}

fn value() -> Vec<u8> {
    vec![b'v'; 100]
}

fn index_costs(c: &mut Criterion) {
    let shape = TreeShape::DEFAULT;
    let index = MerkleIndex::new(shape).expect("shape");
    let v = value();
    let items: Vec<(u64, u128, u128)> = (0..KEYS)
        .map(|i| {
            let k = key(i);
            let leaf = shape.leaf_of(key_hash(k.as_bytes()));
            let old = entry_digest(k.as_bytes(), Version::new(1, 1), Some(&v));
            let new = entry_digest(k.as_bytes(), Version::new(2, 1), Some(&v));
            index.insert(leaf, old);
            (leaf, old, new)
        })
        .collect();
    let mut g = c.benchmark_group("index");
    g.bench_function("path_update", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let (leaf, old, new) = items[i % KEYS];
            // The index does not check `old`; sums just drift, which
            // costs the same.
            index.replace(black_box(leaf), old, new);
            i += 1;
        })
    });
    let k = key(42);
    g.bench_function("entry_digest", |b| {
        b.iter(|| {
            entry_digest(
                black_box(k.as_bytes()),
                Version::new(7, 1),
                Some(black_box(&v)),
            )
        })
    });
    g.bench_function("entry_digest_sha256", |b| {
        use sha2::{Digest, Sha256};
        b.iter(|| {
            let (key, value) = (black_box(k.as_bytes()), black_box(&v));
            let mut h = Sha256::new();
            h.update((key.len() as u64).to_le_bytes());
            h.update(key);
            h.update(7u64.to_le_bytes());
            h.update(1u64.to_le_bytes());
            h.update([1u8]);
            h.update((value.len() as u64).to_le_bytes());
            h.update(value);
            let d = h.finalize();
            u128::from_le_bytes(d[..16].try_into().expect("32-byte digest"))
        })
    });
    g.bench_function("per_write", |b| {
        let mut i = 0usize;
        let mut hlc = 10u64;
        b.iter(|| {
            let (leaf, old, _) = items[i % KEYS];
            hlc += 1;
            let new = entry_digest(black_box(k.as_bytes()), Version::new(hlc, 1), Some(&v));
            index.replace(leaf, old, new);
            i += 1;
        })
    });
    g.finish();
}

fn store_set(c: &mut Criterion) {
    let v = value();
    let keys: Vec<String> = (0..KEYS).map(key).collect();
    let mut g = c.benchmark_group("store_set");
    let flat = TreeShape {
        fanout: 256,
        depth: 1,
    };
    for (name, shape, merkle_index) in [
        ("default_tree_16x4", TreeShape::DEFAULT, true),
        ("flat_tree_256x1", flat, true),
        ("index_off", TreeShape::DEFAULT, false),
    ] {
        let store = Store::new(StoreOptions {
            shape,
            merkle_index,
            ..Default::default()
        })
        .expect("store");
        for k in &keys {
            store
                .apply_local(WriteOp::Set {
                    key: k.as_bytes(),
                    value: &v,
                })
                .expect("set");
        }
        g.bench_function(name, |b| {
            let mut i = 0usize;
            b.iter(|| {
                let k = &keys[i % KEYS];
                i += 1;
                store
                    .apply_local(WriteOp::Set {
                        key: black_box(k.as_bytes()),
                        value: &v,
                    })
                    .expect("set")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, index_costs, store_set);
criterion_main!(benches);
