//! The scheduler: rounds on the sync trigger, none when disabled.

mod anti_entropy_support;
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anti_entropy_support::{runtime, store, Peer};
use common::{wait_until, NodeProcess, NodeSpec};
use merklekv::config::SyncMode;
use merklekv::store::{TreeShape, WriteOp};
use merklekv::sync::metrics::SyncMetrics;
use merklekv::sync::scheduler::{self, PeerSource, Schedule};
use merklekv::sync::{SyncEngine, Tuning};
use tokio::sync::{watch, Notify};

#[test]
fn the_trigger_runs_a_round_with_every_peer_now() {
    runtime().block_on(async {
        let local = store("local", TreeShape::DEFAULT);
        let peers = [
            Peer::serve(store("p1", TreeShape::DEFAULT)).await,
            Peer::serve(store("p2", TreeShape::DEFAULT)).await,
        ];
        let set = |k: &str| {
            local
                .apply_local(WriteOp::Set {
                    key: k.as_bytes(),
                    value: b"v",
                })
                .expect("set");
        };
        // Written before the scheduler starts: its first round may come at
        // once (a random delay from 0 s), and one that ran before this write
        // would leave nothing to copy until the trigger.
        set("first");
        let engine = Arc::new(SyncEngine::new(
            local.clone(),
            Tuning::default(),
            SyncMetrics::default(),
        ));
        let trigger = Arc::new(Notify::new());
        let (stop, stop_rx) = watch::channel(false);
        let discovered = Arc::new(parking_lot::RwLock::new(BTreeMap::from([(
            "p2".to_owned(),
            peers[1].addr.to_string(),
        )])));
        let task = tokio::spawn(scheduler::run(
            engine,
            PeerSource {
                static_peers: vec![peers[0].addr.to_string()],
                discovered,
                own: vec![],
            },
            // An interval far longer than the test: only the first round
            // (soon after start) and triggered rounds can run.
            Schedule {
                interval: Duration::from_secs(3600),
                max_concurrent: 1,
                mode: SyncMode::Merkle,
            },
            trigger.clone(),
            stop_rx,
        ));
        let has = |k: &str| peers.iter().all(|p| p.store.contains(k.as_bytes()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !has("first") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            has("first"),
            "no first round with static and discovered peers"
        );

        set("second");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!has("second"), "a round ran without a trigger");
        trigger.notify_one();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !has("second") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            has("second"),
            "the trigger did not run a round with every peer"
        );

        let _ = stop.send(true);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("scheduler stops on shutdown")
            .expect("scheduler task");
        for p in peers {
            p.stop().await;
        }
    });
}

#[test]
fn disabled_anti_entropy_runs_no_rounds_but_serves_sync() {
    let target = NodeProcess::start(NodeSpec::new("target"));
    let node = NodeProcess::start(
        NodeSpec::new("idle")
            .env("MERKLE_KV_ANTI_ENTROPY_ENABLED", "false")
            .env("MERKLE_KV_ANTI_ENTROPY_INTERVAL_SECONDS", 1)
            .env(
                "MERKLE_KV_ANTI_ENTROPY_PEER_LIST",
                format!("127.0.0.1:{}", target.sync_port),
            ),
    );
    let (mut c, mut t) = (node.client(), target.client());
    assert_eq!(c.cmd("SET k v"), "OK\r\n");
    // Two intervals and a half: a periodic round would have copied `k`.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(t.cmd("GET k"), "NOT_FOUND\r\n");
    // The peer can still sync with the idle node, and SYNC works from it.
    let reply = t.cmd(&format!("SYNC 127.0.0.1 {} --verbose", node.sync_port));
    assert!(
        reply.starts_with("OK pulled 1 keys, pushed 0 keys"),
        "{reply}"
    );
    assert!(wait_until(Duration::from_secs(1), || t.cmd("GET k") == "VALUE v\r\n"));
}

#[test]
fn a_running_node_collects_tombstones_after_the_grace_period() {
    let node =
        NodeProcess::start(NodeSpec::new("gc").env("MERKLE_KV_STORAGE_TOMBSTONE_GRACE_SECONDS", 2));
    let mut c = node.client();
    assert_eq!(c.cmd("SET doomed v"), "OK\r\n");
    assert_eq!(c.cmd("SET kept v"), "OK\r\n");
    // Timed from before the DEL: the grace period runs from the delete, and
    // slow replies to the commands in between must not eat into the bound.
    let started = Instant::now();
    assert_eq!(c.cmd("DEL doomed"), "DELETED\r\n");
    let with_tombstone = c.cmd("HASH");
    assert_eq!(c.info_field("tombstones"), "1");
    assert!(
        wait_until(Duration::from_secs(10), || c.info_field("tombstones")
            == "0"),
        "the tombstone was not collected"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "collected before its grace period ran out"
    );
    assert_eq!(c.cmd("GET doomed"), "NOT_FOUND\r\n");
    assert_eq!(c.cmd("GET kept"), "VALUE v\r\n");
    // The tombstone left the Merkle index too.
    assert_ne!(c.cmd("HASH"), with_tombstone);
    assert_eq!(c.info_field("db_keys"), "1");
}
