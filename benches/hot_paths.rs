//! Criterion benchmarks of the in-process hot paths: store writes and reads
//! (with the Merkle index and digest), merges, and request parsing.
//!
//! Run: `cargo bench --bench hot_paths`.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use merklekv::protocol::{resp, text};
use merklekv::store::{Entry, Store, StoreOptions, Version, WriteOp};

fn keys(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("key:{i:012}").into_bytes())
        .collect()
}

fn loaded_store(keys: &[Vec<u8>], value: &[u8]) -> Store {
    let store = Store::new(StoreOptions::default()).expect("store");
    for k in keys {
        store
            .apply_local(WriteOp::Set { key: k, value })
            .expect("set");
    }
    store
}

fn store_paths(c: &mut Criterion) {
    let keys = keys(100_000);
    let value = [b'x'; 100];
    let store = loaded_store(&keys, &value);
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("set_overwrite_100B", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            store
                .apply_local(WriteOp::Set {
                    key: &keys[i],
                    value: &value,
                })
                .expect("set")
        })
    });
    g.bench_function("get_hit_100B", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            store.get_with(&keys[i], |v| black_box(v.map(<[u8]>::len)))
        })
    });
    g.bench_function("incr", |b| {
        b.iter(|| {
            store
                .apply_local(WriteOp::Increment {
                    key: b"counter",
                    delta: 1,
                })
                .expect("incr")
        })
    });
    let mut hlc = 1u64 << 40;
    g.bench_function("merge_newer", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            hlc += 1;
            store
                .merge(
                    &keys[i],
                    Entry {
                        expires_at: None,
                        version: Version::new(hlc, 9),
                        value: Some(value.into()),
                    },
                )
                .expect("merge")
        })
    });
    g.bench_function("set_new_keys_into_empty_store", |b| {
        b.iter_batched(
            || Store::new(StoreOptions::default()).expect("store"),
            |s| {
                for k in keys.iter().take(1000) {
                    s.apply_local(WriteOp::Set {
                        key: k,
                        value: &value,
                    })
                    .expect("set");
                }
                s
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn parse_paths(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    let line = format!("SET key:000000001234 {}", "x".repeat(100));
    g.bench_function("text_set_100B", |b| {
        b.iter(|| text::parse_line(black_box(line.as_bytes())).map(|_| ()))
    });
    let req = format!(
        "*3\r\n$3\r\nSET\r\n$16\r\nkey:000000001234\r\n$100\r\n{}\r\n",
        "x".repeat(100)
    );
    let mut ranges = Vec::new();
    g.bench_function("resp_set_100B", |b| {
        b.iter(|| {
            let n = resp::parse_request(black_box(req.as_bytes()), 1 << 20, &mut ranges)
                .expect("frame");
            let cmd = resp::to_command(req.as_bytes(), &ranges).map(|_| ());
            (n, cmd)
        })
    });
    g.finish();
}

criterion_group!(benches, store_paths, parse_paths);
criterion_main!(benches);
