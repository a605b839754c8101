//! Range-scoped anti-entropy in the partitioned cluster: `merklekv cluster
//! repair` brings a replica that missed writes up to date with exactly its
//! share of the keys, and costs one round trip per peer when in sync.

mod common;

use std::time::Duration;

use common::cluster::{
    held_locally, local_entries, runtime, start_cluster_with, wait_for_ring, wait_until_up, Ask,
    Plan, Started,
};
use common::wait_until;
use merklekv::cluster::Ring;

/// `merklekv cluster repair --node 127.0.0.1:<sync> --json`, parsed.
fn repair(sync: u16) -> serde_json::Value {
    admin("repair", sync)
}

/// `merklekv cluster <what> --node 127.0.0.1:<sync> --json`, parsed.
fn admin(what: &str, sync: u16) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_merklekv"))
        .args(["cluster", what, "--json", "--node"])
        .arg(format!("127.0.0.1:{sync}"))
        .output()
        .expect("run merklekv cluster repair");
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--json prints JSON")
}

fn sum(report: &serde_json::Value, field: &str) -> u64 {
    report["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|p| p[field].as_u64().expect(field))
        .sum()
}

#[test]
fn repair_gives_a_replica_that_missed_writes_exactly_its_share() {
    // Five nodes, RF 3, hints off and no periodic rounds: p3 is killed,
    // 1,500 keys are written (and 100 of them deleted) at quorum, p3
    // restarts empty and holds none of them until a repair on it runs.
    let Started {
        plan,
        mut nodes,
        rt,
        syncs,
    } = start_cluster_with(5, 3, &[("MERKLE_KV_CLUSTER_MAX_HINT_BYTES", "0")]);
    nodes[2].kill();
    assert!(wait_until_up(&rt, syncs[0], 4));
    let keys: Vec<String> = (0..1500).map(|i| format!("repair:{i}")).collect();
    let mut c1 = nodes[0].client();
    // Quorum (the default): p3's keys have two live replicas of three.
    for key in &keys {
        assert_eq!(c1.ask(&format!("SET {key} v")), "OK");
    }
    for key in keys.iter().step_by(15) {
        assert_eq!(c1.ask(&format!("DEL {key}")), "DELETED");
    }
    let spec = plan.spec(2, 3).env("MERKLE_KV_CLUSTER_MAX_HINT_BYTES", "0");
    nodes[2] = plan.start(2, spec);
    assert!(syncs.iter().all(|s| wait_until_up(&rt, *s, 5)));
    assert!(held_locally(&rt, syncs[2], &keys).iter().all(|held| !held));

    // Every key p3 replicates, live or deleted, is pulled; nothing else.
    let ring = Ring::new(plan.ids.clone(), 256);
    let owned: Vec<bool> = keys
        .iter()
        .map(|k| ring.replicas(k.as_bytes(), 3).any(|r| r == "p3"))
        .collect();
    let share = owned.iter().filter(|o| **o).count() as u64;
    let report = repair(syncs[2]);
    println!("repair of p3: {report}");
    assert_eq!(
        report["peers"].as_array().map(Vec::len),
        Some(4),
        "{report}"
    );
    // A key comes from the first peer that has it; later peers are in sync.
    assert_eq!(sum(&report, "keys_pulled"), share, "{report}");
    assert_eq!(sum(&report, "keys_pushed"), 0, "{report}");
    let entries = local_entries(&rt, syncs[2], &keys);
    for ((key, entry), owns) in keys.iter().zip(&entries).zip(&owned) {
        assert_eq!(entry.version.is_some(), *owns, "{key}: p3 owns it: {owns}");
    }
    let deleted = keys
        .iter()
        .zip(&entries)
        .step_by(15)
        .filter(|(_, e)| e.version.is_some());
    for (key, entry) in deleted {
        assert!(
            entry.tombstone,
            "{key}: the delete reached p3 as a tombstone"
        );
    }

    // In sync now: one CompareRanges round trip per peer, < 200 B a range.
    let again = repair(syncs[2]);
    println!("repair of p3, in sync: {again}");
    for peer in again["peers"].as_array().expect("peers") {
        assert_eq!(peer["in_sync"], true, "{again}");
        assert_eq!(peer["round_trips"], 1, "{again}");
        let ranges = peer["ranges"].as_u64().expect("ranges");
        let bytes = peer["bytes_sent"].as_u64().expect("bytes")
            + peer["bytes_received"].as_u64().expect("bytes");
        assert!(
            bytes < 200 * ranges,
            "{bytes} B for {ranges} ranges: {again}"
        );
    }
}

#[test]
fn periodic_range_rounds_heal_without_a_command() {
    // anti_entropy.enabled with a 1 s interval: p2 misses writes while it
    // is down (hints off) and gets its share from the periodic rounds.
    let Started {
        plan,
        mut nodes,
        rt,
        syncs,
    } = start_cluster_with(
        4,
        2,
        &[
            ("MERKLE_KV_CLUSTER_MAX_HINT_BYTES", "0"),
            ("MERKLE_KV_ANTI_ENTROPY_ENABLED", "true"),
            ("MERKLE_KV_ANTI_ENTROPY_INTERVAL_SECONDS", "1"),
        ],
    );
    nodes[1].kill();
    assert!(wait_until_up(&rt, syncs[0], 3));
    let keys: Vec<String> = (0..400).map(|i| format!("periodic:{i}")).collect();
    let mut c1 = nodes[0].client();
    assert_eq!(c1.ask("CONSISTENCY one"), "OK");
    for key in &keys {
        assert_eq!(c1.ask(&format!("SET {key} v")), "OK");
    }
    let spec = plan
        .spec(1, 2)
        .env("MERKLE_KV_CLUSTER_MAX_HINT_BYTES", "0")
        .env("MERKLE_KV_ANTI_ENTROPY_ENABLED", "true")
        .env("MERKLE_KV_ANTI_ENTROPY_INTERVAL_SECONDS", "1");
    nodes[1] = plan.start(1, spec);
    let ring = Ring::new(plan.ids.clone(), 256);
    let owned: Vec<bool> = keys
        .iter()
        .map(|k| ring.replicas(k.as_bytes(), 2).any(|r| r == "p2"))
        .collect();
    assert!(owned.iter().any(|o| *o) && owned.iter().any(|o| !o));
    assert!(
        wait_until(Duration::from_secs(20), || {
            held_locally(&rt, syncs[1], &keys) == owned
        }),
        "p2 does not hold exactly its share"
    );
}

#[test]
fn after_a_join_cleanup_hands_off_and_drops_what_old_owners_no_longer_replicate() {
    // Three nodes at RF 2 hold 1,200 keys; p4 joins. `cluster cleanup` on
    // each old node hands every key it no longer replicates to all of the
    // key's replicas (p4 among them) and forgets it: afterwards every key
    // is on exactly its two owners under the new ring, and readable.
    let plan = Plan::new(4);
    let mut nodes: Vec<_> = (0..3).map(|i| plan.start(i, plan.spec(i, 2))).collect();
    let rt = runtime();
    let syncs: Vec<u16> = plan.ports.iter().map(|p| p.1).collect();
    wait_for_ring(&rt, &syncs[..3], 3);
    let keys: Vec<String> = (0..1200).map(|i| format!("join:{i}")).collect();
    let mut c1 = nodes[0].client();
    assert_eq!(c1.ask("CONSISTENCY all"), "OK");
    for key in &keys {
        assert_eq!(c1.ask(&format!("SET {key} v-{key}")), "OK");
    }
    nodes.push(plan.start(3, plan.spec(3, 2)));
    wait_for_ring(&rt, &syncs, 4);
    assert!(held_locally(&rt, syncs[3], &keys).iter().all(|held| !held));

    let ring = Ring::new(plan.ids.clone(), 256);
    let owned = |id: &str| -> Vec<bool> {
        keys.iter()
            .map(|k| ring.replicas(k.as_bytes(), 2).any(|r| r == id))
            .collect()
    };
    let mut dropped = 0;
    for sync in &syncs[..3] {
        let report = admin("cleanup", *sync);
        println!("cleanup: {report}");
        assert_eq!(report["kept"], 0, "{report}");
        assert_eq!(report["dropped"], report["not_owned"], "{report}");
        dropped += report["dropped"].as_u64().expect("dropped");
    }
    let p4_share = owned("p4").iter().filter(|o| **o).count() as u64;
    // The old owners held 2 x 1,200 copies; p4's share left them.
    assert_eq!(
        dropped, p4_share,
        "every key p4 took was dropped by one old owner"
    );
    for (i, id) in plan.ids.iter().enumerate() {
        assert!(
            wait_until(Duration::from_secs(10), || held_locally(
                &rt, syncs[i], &keys
            ) == owned(id)),
            "{id} does not hold exactly its share"
        );
    }
    for key in keys.iter().step_by(7) {
        assert_eq!(c1.ask(&format!("GET {key}")), format!("VALUE v-{key}"));
    }
    // Nothing left to hand off, and the replicas agree.
    assert_eq!(admin("cleanup", syncs[0])["not_owned"], 0);
    for peer in repair(syncs[3])["peers"].as_array().expect("peers") {
        assert_eq!(peer["in_sync"], true, "{peer}");
    }
}
