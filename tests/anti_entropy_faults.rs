//! Peers that are down, slow, or lie: the round fails with a logged,
//! counted error, nothing bad is merged, and the node keeps serving.

mod anti_entropy_support;
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anti_entropy_support::fake::{serve_garbage, serve_liar, Lie};
use anti_entropy_support::{range_sync_at, runtime, store, sync_at};
use common::{free_port, wait_until, NodeProcess, NodeSpec};
use merklekv::config::SyncMode;
use merklekv::store::{TreeShape, WriteOp};
use merklekv::sync::Tuning;

#[test]
fn lying_slow_and_down_peers_fail_the_round_and_change_nothing() {
    let rt = runtime();
    rt.block_on(async {
        let local = store("honest", TreeShape::DEFAULT);
        for i in 0..2000 {
            local
                .apply_local(WriteOp::Set {
                    key: format!("k{i}").as_bytes(),
                    value: b"v",
                })
                .expect("set");
        }
        let root = local.root();
        // A short per-RPC timeout for the slow peer (it must end the round
        // long before the peer's 30 s sleep); the default 10 s for the others,
        // so that a reply delayed by a loaded machine is not a timeout and
        // every lie is judged by what the peer said.
        let quick = Tuning {
            rpc_timeout: Duration::from_secs(1),
            ..Tuning::default()
        };
        let patient = Tuning::default();
        let cases = [
            (Lie::WrongShape, "shape_mismatch"),
            (Lie::GarbageHash, "protocol"),
            (Lie::WrongChildCount, "protocol"),
            (Lie::StuckPages, "protocol"),
            (Lie::ForeignKeys, "protocol"),
            (Lie::RepeatedKeys, "protocol"),
            (Lie::UnaskedEntries, "protocol"),
            (Lie::Errors, "rpc_error"),
            (Lie::Slow, "timeout"),
        ];
        for (lie, kind) in cases {
            let addr = serve_liar(lie).await;
            let tuning = if lie == Lie::Slow { &quick } else { &patient };
            for mode in [SyncMode::Merkle, SyncMode::Full] {
                if mode == SyncMode::Full && matches!(lie, Lie::WrongChildCount | Lie::ForeignKeys)
                {
                    continue; // full mode never descends
                }
                let started = Instant::now();
                let err = sync_at(&local, addr, mode, tuning)
                    .await
                    .expect_err("a lying peer must fail the round");
                assert_eq!(err.kind(), kind, "{lie:?} {mode:?}: {err}");
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "{lie:?} took too long"
                );
                assert_eq!(local.root(), root, "{lie:?}: something was merged");
            }
            // Range-scoped rounds (the partitioned cluster) too; the shape
            // and the root hash play no part in them.
            if !matches!(lie, Lie::WrongShape | Lie::GarbageHash) {
                let err = range_sync_at(&local, addr, tuning)
                    .await
                    .expect_err("a lying peer must fail the range round");
                assert_eq!(err.kind(), kind, "{lie:?} range round: {err}");
                assert_eq!(local.root(), root, "{lie:?}: something was merged");
            }
        }
        // Nothing listening.
        let down = free_port();
        let err = sync_at(
            &local,
            format!("127.0.0.1:{down}").parse().expect("addr"),
            SyncMode::Merkle,
            &patient,
        )
        .await
        .expect_err("down peer");
        assert_eq!(err.kind(), "unavailable", "{err}");
        // Not gRPC at all.
        let garbage = serve_garbage().await;
        let err = sync_at(&local, garbage, SyncMode::Merkle, &patient)
            .await
            .expect_err("garbage peer");
        assert!(err.to_string().contains("GetRoot failed"), "{err}");
        assert_eq!(local.root(), root);
    });
}

/// `value` of the Prometheus sample whose line starts with `series`.
fn metric(port: u16, series: &str) -> f64 {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return 0.0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A TCP peer that answers every connection with garbage and hangs up
/// (not gRPC, not even HTTP/2); `host:port`. The thread serves until the
/// test process exits.
fn garbage_peer() -> std::net::SocketAddr {
    use std::io::Write as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind garbage peer");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.write_all(b"\x00\xffgarbage that is not HTTP/2\r\n\r\n");
        }
    });
    addr
}

#[test]
fn node_counts_failed_rounds_and_keeps_serving() {
    let rt = runtime();
    let stuck = rt.block_on(serve_liar(Lie::StuckPages));
    let slow = rt.block_on(serve_liar(Lie::Slow));
    let wrong_shape = rt.block_on(serve_liar(Lie::WrongShape));
    let garbage = garbage_peer();
    let node = NodeProcess::start(
        NodeSpec::new("n1")
            .env("MERKLE_KV_ANTI_ENTROPY_ENABLED", "true")
            .env("MERKLE_KV_ANTI_ENTROPY_INTERVAL_SECONDS", 1)
            .env("MERKLE_KV_ANTI_ENTROPY_TIMEOUT_SECONDS", 1)
            .env(
                "MERKLE_KV_ANTI_ENTROPY_PEER_LIST",
                format!("{stuck},{slow},{wrong_shape},{garbage}"),
            ),
    );
    let mut c = node.client();
    assert_eq!(c.cmd("SET greeting hello"), "OK\r\n");

    // On demand: a down peer, a lying peer and a slow one are all errors.
    let down = free_port();
    let reply = c.cmd(&format!("SYNC 127.0.0.1 {down}"));
    assert!(
        reply.starts_with(&format!(
            "ERROR SYNC with 127.0.0.1:{down} failed: GetRoot failed: Unavailable"
        )),
        "{reply}"
    );
    let reply = c.cmd(&format!("SYNC 127.0.0.1 {}", stuck.port()));
    assert!(
        reply.starts_with("ERROR SYNC with") && reply.contains("invalid ListDigests"),
        "{reply}"
    );
    let started = Instant::now();
    let reply = c.cmd(&format!("SYNC 127.0.0.1 {} --full", slow.port()));
    assert!(
        reply.starts_with("ERROR SYNC with") && reply.contains("GetRoot failed"),
        "{reply}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the per-RPC timeout was not applied"
    );

    // The periodic rounds fail too, are counted by reason, and the node
    // keeps serving. The quick failures (stuck, wrong shape, garbage) pile
    // up faster than the slow peer's 1 s timeouts, so wait for every count
    // together rather than for the total alone.
    let failed = r#"merklekv_sync_rounds_total{result="failed"}"#;
    let timeouts = r#"merklekv_sync_failures_total{reason="timeout"}"#;
    let protocol = r#"merklekv_sync_failures_total{reason="protocol"}"#;
    assert!(
        wait_until(Duration::from_secs(20), || {
            assert_eq!(c.cmd("GET greeting"), "VALUE hello\r\n");
            metric(node.metrics_port, failed) >= 7.0
                && metric(node.metrics_port, timeouts) >= 2.0
                && metric(node.metrics_port, protocol) >= 2.0
        }),
        "periodic failures not counted: {} failed, {} timeouts, {} protocol",
        metric(node.metrics_port, failed),
        metric(node.metrics_port, timeouts),
        metric(node.metrics_port, protocol)
    );
    assert!(
        wait_until(Duration::from_secs(10), || metric(
            node.metrics_port,
            r#"merklekv_sync_failures_total{reason="shape_mismatch"}"#
        ) >= 1.0),
        "a peer with another tree shape was not refused and counted"
    );
    // The peer that answers with bytes that are not HTTP/2 fails its rounds
    // as well (counted under whichever transport reason tonic reports).
    let reply = c.cmd(&format!("SYNC 127.0.0.1 {}", garbage.port()));
    assert!(reply.starts_with("ERROR SYNC with"), "{reply}");
    assert_eq!(c.cmd("SET after failures"), "OK\r\n");
    let logged: Vec<String> = node.output.try_iter().collect();
    assert!(
        logged
            .iter()
            .any(|l| l.contains("anti-entropy round failed")),
        "no failure logged: {logged:?}"
    );
}
