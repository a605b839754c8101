//! Anti-entropy cost: Merkle descent vs full exchange, in one run.
//!
//! Two in-memory stores hold the same `n` keys (16-byte keys, 100-byte
//! values); then `d` keys are changed (half on each side, or the one on the
//! local side for d = 1) and one round runs from the local store against a
//! real tonic server over the other store on 127.0.0.1. For each d and mode
//! it prints round trips, encoded protobuf bytes each way, TCP bytes each
//! way (HTTP/2 framing and headers included, counted on the client socket),
//! and wall time; then checks the targets.
//!
//! `cargo bench --bench sync` (release). `SYNC_BENCH_KEYS=100000` for a
//! quicker run.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use merklekv::config::SyncMode;
use merklekv::store::{Store, StoreOptions, TreeShape, WriteOp};
use merklekv::sync::metrics::SyncMetrics;
use merklekv::sync::{limits, run_round, RoundReport, Tuning};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::codegen::http::Uri;
use tonic::transport::Channel;

/// Bytes moved over the client's TCP socket.
#[derive(Clone, Default)]
struct Counters {
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
}

struct Counting {
    inner: TcpStream,
    counters: Counters,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.counters.received.fetch_add(n, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.counters.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A tonic connector whose sockets count their bytes.
#[derive(Clone)]
struct CountingConnector(Counters);

impl tower::Service<Uri> for CountingConnector {
    type Response = TokioIo<Counting>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let counters = self.0.clone();
        Box::pin(async move {
            let host = uri.host().unwrap_or("127.0.0.1").to_owned();
            let port = uri.port_u16().unwrap_or(80);
            let inner = TcpStream::connect((host.as_str(), port)).await?;
            inner.set_nodelay(true)?;
            Ok(TokioIo::new(Counting { inner, counters }))
        })
    }
}

fn key(i: usize) -> String {
    // 16 bytes.
    format!("key-{i:012}")
}

fn value(i: usize, generation: usize) -> Vec<u8> {
    // 100 bytes.
    let mut v = format!("value-{generation:04}-{i:012}-").into_bytes();
    v.resize(100, b'x');
    v
}

fn new_store(node: &str) -> Arc<Store> {
    Arc::new(
        Store::new(StoreOptions {
            node_id: node.into(),
            shape: TreeShape::DEFAULT,
            ..Default::default()
        })
        .expect("store"),
    )
}

/// Changes `d` keys: even ones on `local` (pushed), odd ones on `remote`
/// (pulled); spread over the key space.
fn diverge(local: &Store, remote: &Store, n: usize, d: usize, generation: usize) {
    for i in 0..d {
        let k = key((i * 7_919 + generation * 104_729) % n);
        let side = if i % 2 == 0 { local } else { remote };
        side.apply_local(WriteOp::Set {
            key: k.as_bytes(),
            value: &value(i, generation),
        })
        .expect("set");
    }
}

struct Row {
    d: usize,
    report: RoundReport,
    tcp_sent: u64,
    tcp_received: u64,
}

fn kb(bytes: u64) -> String {
    if bytes < 10_000 {
        format!("{bytes} B")
    } else if bytes < 10_000_000 {
        format!("{:.1} KB", bytes as f64 / 1e3)
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; ignore arguments. RUST_LOG=merklekv=trace
    // prints every RPC with its size and time.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let n: usize = std::env::var("SYNC_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let diffs = [0usize, 1, 100, 10_000];
    eprintln!("building two stores of {n} keys (16-byte keys, 100-byte values)…");
    let started = Instant::now();
    let local = new_store("bench-local");
    let remote = new_store("bench-remote");
    for i in 0..n {
        local
            .apply_local(WriteOp::Set {
                key: key(i).as_bytes(),
                value: &value(i, 0),
            })
            .expect("set");
    }
    let all = [0..=TreeShape::DEFAULT.leaf_count() - 1];
    local.visit_leaves(&all, |_, k, e| {
        remote.merge(k, e.to_entry()).expect("merge");
    });
    assert_eq!(local.root(), remote.root());
    eprintln!("built in {:?}", started.elapsed());

    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let server = merklekv::sync::server::serve(
        "127.0.0.1:0",
        remote.clone(),
        SyncMetrics::default(),
        limits::max_message_bytes(1 << 20),
        None,
        stop_rx,
    )
    .await
    .expect("serve");
    let addr = server.addr.to_string();
    let tuning = Tuning {
        rpc_timeout: Duration::from_secs(120),
        ..Tuning::default()
    };
    let counters = Counters::default();
    let channel: Channel = merklekv::sync::endpoint(&addr, &tuning)
        .expect("endpoint")
        .connect_with_connector(CountingConnector(counters.clone()))
        .await
        .expect("connect");
    // Warm the connection (HTTP/2 handshake is not part of a round).
    run_round(&local, channel.clone(), &addr, SyncMode::Merkle, &tuning)
        .await
        .expect("warm-up");

    let mut rows: Vec<(SyncMode, Row)> = Vec::new();
    let mut generation = 1;
    for &d in &diffs {
        for mode in [SyncMode::Merkle, SyncMode::Full] {
            diverge(&local, &remote, n, d, generation);
            generation += 1;
            let (s0, r0) = (
                counters.sent.load(Ordering::Relaxed),
                counters.received.load(Ordering::Relaxed),
            );
            let report = run_round(&local, channel.clone(), &addr, mode, &tuning)
                .await
                .expect("round");
            let tcp_sent = counters.sent.load(Ordering::Relaxed) - s0;
            let tcp_received = counters.received.load(Ordering::Relaxed) - r0;
            assert_eq!(
                local.root(),
                remote.root(),
                "d={d} {mode:?} did not converge"
            );
            let expected_pulled = (d / 2) as u64;
            assert_eq!(report.keys_pulled, expected_pulled, "d={d} {mode:?}");
            assert_eq!(report.keys_pushed, (d - d / 2) as u64, "d={d} {mode:?}");
            rows.push((
                mode,
                Row {
                    d,
                    report,
                    tcp_sent,
                    tcp_received,
                },
            ));
        }
    }
    let _ = stop.send(true);

    println!("n = {n} keys (16-byte keys, 100-byte values), tree fanout 16 depth 4, loopback");
    println!();
    println!("| d | mode | round trips | protobuf bytes sent | protobuf bytes received | TCP bytes sent | TCP bytes received | wall time | pulled / pushed |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for (mode, r) in &rows {
        let w = r.report.wire;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} ms | {} / {} |",
            r.d,
            mode.as_str(),
            w.rpcs,
            kb(w.bytes_sent),
            kb(w.bytes_received),
            kb(r.tcp_sent),
            kb(r.tcp_received),
            r.report.elapsed.as_secs_f64() * 1e3,
            r.report.keys_pulled,
            r.report.keys_pushed
        );
    }
    println!();
    let depth = TreeShape::DEFAULT.depth;
    let mut all_met = true;
    for &d in &diffs {
        let get = |m: SyncMode| {
            rows.iter()
                .find(|(mode, r)| *mode == m && r.d == d)
                .map(|(_, r)| r)
                .expect("row")
        };
        let (m, f) = (get(SyncMode::Merkle), get(SyncMode::Full));
        let bytes = |r: &Row| r.report.wire.bytes_sent + r.report.wire.bytes_received;
        let tcp = |r: &Row| r.tcp_sent + r.tcp_received;
        println!(
            "d = {d}: full / merkle = {:.0}x protobuf bytes, {:.0}x TCP bytes, {:.1}x wall time",
            bytes(f) as f64 / bytes(m).max(1) as f64,
            tcp(f) as f64 / tcp(m).max(1) as f64,
            f.report.elapsed.as_secs_f64() / m.report.elapsed.as_secs_f64().max(1e-9)
        );
        let mut check = |ok: bool, what: String| {
            all_met &= ok;
            println!("  [{}] {what}", if ok { "met" } else { "MISSED" });
        };
        match d {
            0 => {
                check(
                    m.report.wire.rpcs == 1,
                    format!("d=0: one round trip (got {})", m.report.wire.rpcs),
                );
                check(
                    bytes(m) < 200,
                    format!("d=0: under 200 protobuf bytes (got {})", bytes(m)),
                );
            }
            100 => {
                check(
                    m.report.wire.rpcs <= depth + 2,
                    format!(
                        "d=100: at most depth+2 = {} round trips (got {})",
                        depth + 2,
                        m.report.wire.rpcs
                    ),
                );
                check(
                    bytes(m) < 300_000,
                    format!("d=100: under 300 KB (got {})", kb(bytes(m))),
                );
            }
            _ => {}
        }
        if d <= 100 {
            let ratio = bytes(f) as f64 / bytes(m).max(1) as f64;
            check(
                ratio >= 100.0,
                format!("d={d}: merkle beats full by >= 100x in bytes (got {ratio:.0}x)"),
            );
        }
    }
    println!();
    println!("all targets met: {all_met}");
}
