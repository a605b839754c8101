//! Ring lookups and a 100-node placement simulation (issue 14).
//!
//!     cargo bench --bench ring
//!
//! Prints, once, the simulation of a 100-node ring with 256 vnodes each:
//! the spread of what each node stores at RF 3, and the share of keys
//! whose replicas change when a 101st node joins; then criterion times one
//! replica lookup (RF 3 and RF 1) and, for scale, the key hash alone.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use merklekv::cluster::Ring;

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("node{i:03}")).collect()
}

fn simulate() {
    let ring = Ring::new(names(100), 256);
    let shares = ring.ownership(3);
    let mean = 3.0 / 100.0;
    let (lo, hi) = shares
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), s| (lo.min(*s), hi.max(*s)));
    let grown = Ring::new(names(101), 256);
    let keys = 200_000;
    let moved = (0..keys)
        .filter(|i| {
            let key = format!("key:{i:08}");
            !ring
                .replicas(key.as_bytes(), 3)
                .eq(grown.replicas(key.as_bytes(), 3))
        })
        .count();
    let primary_moved = (0..keys)
        .filter(|i| {
            let key = format!("key:{i:08}");
            ring.replicas(key.as_bytes(), 1).next() != grown.replicas(key.as_bytes(), 1).next()
        })
        .count();
    eprintln!(
        "ring simulation, 100 nodes x 256 vnodes, RF 3: stored share min {:.4} / max {:.4} \
         (mean {mean:.4}: {:+.1} % / {:+.1} %); a 101st node joins: primary moves for {:.2} % \
         of {keys} keys (1/101 = 0.99 %), some replica changes for {:.2} %",
        lo,
        hi,
        (lo / mean - 1.0) * 100.0,
        (hi / mean - 1.0) * 100.0,
        primary_moved as f64 * 100.0 / keys as f64,
        moved as f64 * 100.0 / keys as f64,
    );
}

fn lookups(c: &mut Criterion) {
    simulate();
    let ring = Ring::new(names(100), 256);
    let keys: Vec<Vec<u8>> = (0..4096)
        .map(|i| format!("key:{i:08}").into_bytes())
        .collect();
    let mut i = 0usize;
    c.bench_function("ring_replicas_rf3_100_nodes", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            let mut replicas = ring.replicas(black_box(&keys[i]), 3);
            (replicas.next(), replicas.next(), replicas.next())
        })
    });
    c.bench_function("ring_primary_100_nodes", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            ring.replicas(black_box(&keys[i]), 1).next()
        })
    });
    c.bench_function("key_hash_alone", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            merklekv::store::key_hash(black_box(&keys[i]))
        })
    });
}

criterion_group!(benches, lookups);
criterion_main!(benches);
