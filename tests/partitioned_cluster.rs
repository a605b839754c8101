//! The partitioned cluster end to end: real node processes on loopback,
//! placing keys over the ring, forwarding, quorums and failures.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{
    apply_by_hand, held_locally, local_entries, ring_state, runtime, signal, start_cluster,
    start_cluster_with, version_by_hand, wait_for_ring, wait_until_up, Ask, Plan, Started,
};
use common::{wait_until, Client, NodeProcess};
use merklekv::cluster::Ring;
use merklekv::proto;
use merklekv::proto::cluster_client::ClusterClient;

#[test]
fn five_nodes_rf3_place_each_key_on_exactly_its_three_owners() {
    let Started {
        plan,
        nodes,
        rt,
        syncs,
    } = start_cluster(5, 3);

    // 20,000 writes through every node in turn, pipelined.
    const KEYS: usize = 20_000;
    let keys: Vec<String> = (0..KEYS).map(|i| format!("key:{i:06}")).collect();
    let mut clients: Vec<Client> = nodes.iter().map(NodeProcess::client).collect();
    for (n, chunk) in keys.chunks(500).enumerate() {
        let count = clients.len();
        let client = &mut clients[n % count];
        let batch: String = chunk.iter().map(|k| format!("SET {k} v-{k}\n")).collect();
        client.send(batch.as_bytes());
        for k in chunk {
            assert_eq!(client.reply(), "OK", "SET {k}");
        }
    }

    // Each key is on exactly its three owners (the third replica of a
    // quorum write may still be applying it when the reply comes: wait).
    let ring = Ring::new(plan.ids.clone(), 256);
    let placed = |held: &[Vec<bool>]| {
        keys.iter().enumerate().find_map(|(k, key)| {
            let owners: Vec<&str> = ring.replicas(key.as_bytes(), 3).collect();
            plan.ids.iter().enumerate().find_map(|(i, id)| {
                (held[i][k] != owners.contains(&id.as_str()))
                    .then(|| format!("{key} on {id}: owners are {owners:?}"))
            })
        })
    };
    let mut misplaced = None;
    let settled = wait_until(Duration::from_secs(10), || {
        let held: Vec<Vec<bool>> = syncs.iter().map(|s| held_locally(&rt, *s, &keys)).collect();
        misplaced = placed(&held);
        misplaced.is_none()
    });
    assert!(settled, "{misplaced:?}");
    // Per-node key counts are about 3/5 of the total (DBSIZE is local).
    for (i, client) in clients.iter_mut().enumerate() {
        let count: usize = client
            .ask("DBSIZE")
            .trim_start_matches("DBSIZE ")
            .parse()
            .expect("dbsize");
        let share = count as f64 / KEYS as f64;
        assert!(
            (0.45..=0.75).contains(&share),
            "{} holds {share:.2} of the keys",
            plan.ids[i]
        );
    }
    // Every key is readable from every node (a sample through each).
    for client in &mut clients {
        for key in keys.iter().step_by(97) {
            assert_eq!(client.ask(&format!("GET {key}")), format!("VALUE v-{key}"));
        }
    }
}

#[test]
fn forwarded_writes_keep_the_coordinators_version_on_every_replica() {
    let Started {
        plan,
        nodes,
        rt,
        syncs,
    } = start_cluster(4, 3);
    let ring = Ring::new(plan.ids.clone(), 256);
    // A key p1 does not replicate, written through p1.
    let key = (0..)
        .map(|i| format!("fwd:{i}"))
        .find(|k| !ring.replicas(k.as_bytes(), 3).any(|id| id == "p1"))
        .expect("a key p1 does not own");
    // At `all`, so every replica has it when the reply comes (a quorum
    // reply may come before the third replica applied it).
    let mut c1 = nodes[0].client();
    assert_eq!(c1.ask("CONSISTENCY all"), "OK");
    assert_eq!(c1.ask(&format!("SET {key} hello")), "OK");
    let versions: Vec<Option<proto::Version>> = syncs
        .iter()
        .map(|s| local_entries(&rt, *s, &[&key])[0].version)
        .collect();
    assert!(versions[0].is_none(), "p1 is no replica of {key}");
    let stored: Vec<&proto::Version> = versions.iter().flatten().collect();
    assert_eq!(stored.len(), 3, "{versions:?}");
    assert!(stored.windows(2).all(|w| w[0] == w[1]), "{versions:?}");
    assert_eq!(
        stored[0].node,
        merklekv::store::node_number("p1"),
        "stamped by the coordinator"
    );
    // A pipeline reads as if its commands ran one by one, though the
    // coordinator runs those on different keys at once.
    let mut pipelined = nodes[0].client();
    let mut script = String::new();
    for i in 0..40 {
        script.push_str(&format!(
            "SET pipe:{i} a{i}\nGET pipe:{i}\nAPPEND pipe:{i} b\nGET pipe:{i}\n"
        ));
    }
    script.push_str("DBSIZE\n");
    pipelined.send(script.as_bytes());
    for i in 0..40 {
        assert_eq!(pipelined.reply(), "OK");
        assert_eq!(pipelined.reply(), format!("VALUE a{i}"));
        assert_eq!(pipelined.reply(), format!("VALUE a{i}b"));
        assert_eq!(pipelined.reply(), format!("VALUE a{i}b"));
    }
    assert!(pipelined.reply().starts_with("DBSIZE "));
    // Read-modify-writes serialise on the primary, whoever coordinates.
    let mut clients: Vec<Client> = nodes.iter().map(NodeProcess::client).collect();
    for round in 0..25 {
        for client in &mut clients {
            assert!(
                client.ask("INC counter").starts_with("VALUE "),
                "round {round}"
            );
        }
    }
    assert_eq!(clients[2].ask("GET counter"), "VALUE 100");
}

#[test]
fn quorums_survive_one_replica_down_and_fail_fast_with_two() {
    // Three nodes, RF 3: every node replicates every key.
    let Started { mut nodes, .. } = start_cluster(3, 3);
    let mut c1 = nodes[0].client();
    assert_eq!(c1.ask("SET before ok"), "OK");
    assert_eq!(c1.ask("CONSISTENCY"), "write=quorum read=quorum");

    nodes[2].kill();
    for i in 0..20 {
        assert_eq!(c1.ask(&format!("SET one-down:{i} v")), "OK");
        assert_eq!(c1.ask(&format!("GET one-down:{i}")), "VALUE v");
    }
    let mut c2 = nodes[1].client();
    assert_eq!(c2.ask("GET one-down:7"), "VALUE v");

    nodes[1].kill();
    let started = Instant::now();
    assert_eq!(
        c1.ask("SET two-down v"),
        "ERROR unavailable: 1 of 2 replicas answered"
    );
    assert_eq!(
        c1.ask("GET before"),
        "ERROR unavailable: 1 of 2 replicas answered"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "unavailable took {:?}",
        started.elapsed()
    );
    // RESP clients read the UNAVAILABLE code.
    let mut resp = Client::connect(nodes[0].port);
    resp.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    assert_eq!(resp.reply(), "-UNAVAILABLE 1 of 2 replicas answered");
    // `one` still succeeds.
    assert_eq!(c1.ask("CONSISTENCY one"), "OK");
    assert_eq!(c1.ask("SET two-down v"), "OK");
    assert_eq!(c1.ask("GET two-down"), "VALUE v");
    assert_eq!(c1.ask("CONSISTENCY all"), "OK");
    assert_eq!(
        c1.ask("GET two-down"),
        "ERROR unavailable: 1 of 3 replicas answered"
    );
    assert_eq!(
        c1.ask("CONSISTENCY two"),
        "ERROR unknown consistency level; use one, quorum or all"
    );
}

#[test]
fn a_lying_peer_is_refused_and_counted() {
    let Started {
        nodes, rt, syncs, ..
    } = start_cluster(2, 2);
    let mut client = rt
        .block_on(ClusterClient::connect(format!(
            "http://127.0.0.1:{}",
            syncs[0]
        )))
        .expect("connect");
    // Another replication factor: refused, the ring unchanged.
    let liar = proto::Member {
        node_id: "liar".into(),
        sync_addr: "127.0.0.1:1".into(),
        client_addr: String::new(),
    };
    let bad = proto::HeartbeatRequest {
        from: Some(liar.clone()),
        ring: Some(proto::RingState {
            version: u64::MAX,
            members: vec![liar.clone()],
            vnodes: 256,
            replication_factor: 5,
        }),
    };
    rt.block_on(client.heartbeat(bad)).expect("answered");
    // Garbage member ids: refused.
    let garbage = proto::HeartbeatRequest {
        from: Some(proto::Member {
            node_id: "bad id\n".into(),
            sync_addr: "nowhere".into(),
            client_addr: String::new(),
        }),
        ring: Some(proto::RingState {
            version: 7,
            members: vec![],
            vnodes: 256,
            replication_factor: 2,
        }),
    };
    rt.block_on(client.heartbeat(garbage)).expect("answered");
    let state = ring_state(&rt, syncs[0]).expect("state");
    assert_eq!(state.members.len(), 2, "{state:?}");
    let refused = |reason: &str| {
        common::metric(
            nodes[0].metrics_port,
            &format!("merklekv_cluster_ring_states_refused_total{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(refused("mismatch"), 1.0);
    assert_eq!(refused("invalid"), 1.0);
    // The node still serves.
    assert_eq!(nodes[1].client().ask("SET x 1"), "OK");
    // `merklekv cluster status|ring` read the same ring.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_merklekv"))
            .args(args)
            .output()
            .expect("run merklekv cluster");
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).expect("utf8")
    };
    let node = format!("127.0.0.1:{}", syncs[0]);
    let status: serde_json::Value =
        serde_json::from_str(&cli(&["cluster", "status", "--node", &node, "--json"]))
            .expect("status json");
    let members = status["members"].as_array().expect("members");
    assert_eq!(members.len(), 2, "{status}");
    assert!(members.iter().all(|m| m["up"] == true), "{status}");
    let owned: f64 = members
        .iter()
        .map(|m| m["ownership"].as_f64().unwrap_or(0.0))
        .sum();
    assert!((owned - 2.0).abs() < 1e-6, "RF 2 over 2 nodes: {status}");
    let table = cli(&["cluster", "status", "--node", &node]);
    assert!(table.contains("2 members (2 up)"), "{table}");
    let ring = cli(&["cluster", "ring", "--node", &node]);
    assert_eq!(ring.lines().count(), 2 + 2 * 256, "{ring}");
    assert_eq!(nodes[0].client().ask("GET x"), "VALUE 1");
}

#[test]
fn grpc_kv_puts_once_per_request_id_and_reports_versions() {
    use merklekv::proto::kv_store_client::KvStoreClient;
    let Started {
        nodes, rt, syncs, ..
    } = start_cluster(3, 2);
    rt.block_on(async {
        let mut kv = KvStoreClient::connect(format!("http://127.0.0.1:{}", syncs[0]))
            .await
            .expect("connect");
        let put = |value: &str, request_id: u64| proto::KvPutRequest {
            key: b"g".to_vec(),
            value: value.as_bytes().to_vec(),
            client_id: "client-7".into(),
            request_id,
            consistency: "all".into(),
        };
        let first = kv.put(put("one", 1)).await.expect("put").into_inner();
        assert!(!first.replayed);
        let version = first.version.expect("a version");
        // A newer write by someone else, then the retry of request 1: the
        // retry answers as the first attempt did and writes nothing.
        assert_eq!(nodes[1].client().ask("SET g two"), "OK");
        let retry = kv.put(put("one", 1)).await.expect("retry").into_inner();
        assert!(retry.replayed);
        assert_eq!(retry.version, Some(version));
        let read = kv
            .get(proto::KvGetRequest {
                key: b"g".to_vec(),
                consistency: "quorum".into(),
            })
            .await
            .expect("get")
            .into_inner();
        assert!(read.found);
        assert_eq!(read.value, b"two");
        assert!(read.version.expect("version").hlc > version.hlc);
        // A new request id is a new write.
        let second = kv.put(put("three", 2)).await.expect("put").into_inner();
        assert!(!second.replayed);
        assert_eq!(nodes[2].client().ask("GET g"), "VALUE three");
        let gone = kv
            .delete(proto::KvDeleteRequest {
                key: b"g".to_vec(),
                client_id: "client-7".into(),
                request_id: 3,
                consistency: String::new(),
            })
            .await
            .expect("delete")
            .into_inner();
        assert!(gone.existed);
        assert_eq!(nodes[0].client().ask("GET g"), "NOT_FOUND");
        let bad = kv
            .get(proto::KvGetRequest {
                key: b"g".to_vec(),
                consistency: "most".into(),
            })
            .await
            .expect_err("bad level");
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    });
}

#[test]
fn a_stalled_replica_never_blocks_a_client_past_the_timeout() {
    // Three nodes, RF 3; p3 is frozen (SIGSTOP): it accepts connections
    // but answers nothing.
    let Started {
        mut nodes,
        rt,
        syncs,
        ..
    } = start_cluster(3, 3);
    let mut c1 = nodes[0].client();
    assert_eq!(c1.ask("SET before v"), "OK");
    let keys: Vec<String> = (0..40).map(|i| format!("spec:{i}")).collect();
    for k in &keys {
        assert_eq!(c1.ask(&format!("SET {k} v")), "OK");
    }
    signal(&nodes[2], "-STOP");
    // Quorum needs p1 and p2 only: no wait for p3. Reads that asked p3
    // first (about half of these keys, by ring order) ask p2 as well after
    // cluster.speculative_retry_ms (100 ms), long before p3 is seen down
    // (1 s) or the request timeout (1 s).
    let started = Instant::now();
    assert_eq!(c1.ask("SET during v"), "OK");
    let pipeline: String = keys.iter().map(|k| format!("GET {k}\r\n")).collect();
    c1.send(pipeline.as_bytes());
    for k in &keys {
        assert_eq!(c1.reply(), "VALUE v", "GET {k} with p3 stalled");
    }
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert!(
        common::metric(
            nodes[0].metrics_port,
            "merklekv_cluster_speculative_reads_total"
        ) > 0.0
    );
    // `all` waits for p3 until cluster.request_timeout_ms (1 s), then answers.
    assert_eq!(c1.ask("CONSISTENCY all"), "OK");
    let started = Instant::now();
    assert_eq!(
        c1.ask("SET stalled v"),
        "ERROR unavailable: 2 of 3 replicas answered"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // Once p3 is seen down (no heartbeat answer for 1 s) it is not waited for.
    assert!(wait_until_up(&rt, syncs[0], 2));
    let started = Instant::now();
    assert_eq!(
        c1.ask("GET before"),
        "ERROR unavailable: 2 of 3 replicas answered"
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    signal(&nodes[2], "-CONT");
    assert!(wait_until(Duration::from_secs(10), || c1.ask("GET before")
        == "VALUE v"));
    // The writes p3 was sent but never answered reach it: as hints once
    // their calls timed out, or as the calls themselves (they were on its
    // socket) once it runs again. Anti-entropy is off here.
    let missed = ["during", "stalled"];
    assert!(wait_until(Duration::from_secs(10), || {
        local_entries(&rt, syncs[2], &missed)
            .iter()
            .all(|e| e.version.is_some())
    }));
    nodes[2].kill();
}

#[test]
fn a_quorum_read_repairs_the_stale_replica() {
    // Three nodes, RF 3. Newer entries are merged by hand into p1 and p2
    // only (as a coordinator would, had p3 missed them); a quorum read
    // through p3 (its own stale copy plus one fresh replica) writes the
    // newest back to p3.
    let Started {
        nodes, rt, syncs, ..
    } = start_cluster(3, 3);
    let mut c1 = nodes[0].client();
    assert_eq!(c1.ask("CONSISTENCY all"), "OK");
    assert_eq!(c1.ask("SET fresh v0"), "OK");
    assert_eq!(c1.ask("SET gone v0"), "OK");
    let version = version_by_hand();
    let newer = vec![
        proto::Entry {
            expires_at_unix_ms: 0,
            key: b"fresh".to_vec(),
            value: b"v1".to_vec(),
            tombstone: false,
            version: Some(version),
        },
        proto::Entry {
            expires_at_unix_ms: 0,
            key: b"gone".to_vec(),
            value: Vec::new(),
            tombstone: true,
            version: Some(version),
        },
    ];
    apply_by_hand(&rt, &syncs[..2], &newer);
    let local = |sync: u16| local_entries(&rt, sync, &["fresh", "gone"]);
    assert_eq!(local(syncs[2])[0].value, b"v0", "p3 is stale");
    let mut c3 = nodes[2].client();
    assert_eq!(c3.ask("GET fresh"), "VALUE v1");
    assert_eq!(c3.ask("GET gone"), "NOT_FOUND");
    let repaired = local(syncs[2]);
    assert_eq!(repaired[0].value, b"v1");
    assert_eq!(repaired[0].version, Some(version));
    assert!(
        repaired[1].tombstone,
        "the delete reached p3 as a tombstone"
    );
    assert_eq!(
        common::metric(nodes[2].metrics_port, "merklekv_cluster_read_repairs_total"),
        2.0
    );
}

#[test]
fn hints_bring_a_returning_replica_up_to_date_without_anti_entropy() {
    // Three nodes, RF 3, anti-entropy off (the harness default). p3 is
    // killed; writes through p1 succeed at quorum and leave hints for p3;
    // p3 restarts empty (persistence off) and receives exactly those writes
    // within a heartbeat or two of being seen up.
    let Started {
        plan,
        mut nodes,
        rt,
        syncs,
    } = start_cluster(3, 3);
    nodes[2].kill();
    assert!(wait_until_up(&rt, syncs[0], 2));
    let keys: Vec<String> = (0..300).map(|i| format!("hinted:{i}")).collect();
    let mut c1 = nodes[0].client();
    for key in &keys {
        assert_eq!(c1.ask(&format!("SET {key} v")), "OK");
    }
    assert_eq!(c1.ask("DEL hinted:7"), "DELETED");
    let p1_metrics = nodes[0].metrics_port;
    assert_eq!(
        common::metric(p1_metrics, "merklekv_cluster_hints_stored_total"),
        301.0
    );
    let spec = plan.spec(2, 3);
    nodes[2] = plan.start(2, spec);
    let back = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || {
            held_locally(&rt, syncs[2], &keys).iter().all(|held| *held)
        }),
        "p3 did not get its hints"
    );
    let took = back.elapsed();
    assert!(took < Duration::from_secs(5), "hints took {took:?}");
    // Counted once the batch's answers are in, just after they were applied.
    assert!(wait_until(Duration::from_secs(5), || {
        common::metric(p1_metrics, "merklekv_cluster_hints_delivered_total") == 301.0
    }));
    assert_eq!(
        common::metric(p1_metrics, "merklekv_cluster_hints_bytes"),
        0.0
    );
    // The delete arrived as a tombstone: p3 alone (CONSISTENCY one) reads
    // it as absent.
    let mut c3 = nodes[2].client();
    assert_eq!(c3.ask("CONSISTENCY one"), "OK");
    assert_eq!(c3.ask("GET hinted:7"), "NOT_FOUND");
    assert_eq!(c3.ask("GET hinted:8"), "VALUE v");
}

#[test]
fn hints_survive_a_coordinator_crash() {
    // p1 (persistence on) holds hints for the dead p3, is killed -9 after
    // the hint flush interval (100 ms) and restarted; p3 then comes back
    // and gets every write from p1's hints read back from disk (anti-entropy
    // is off, and no read touches those keys).
    let plan = Plan::new(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p1 = plan.spec(0, 3).env("MERKLE_KV_STORAGE_PERSISTENCE", true);
    p1.data_dir = Some(dir.path().join("p1"));
    let mut nodes = [
        plan.start(0, p1),
        plan.start(1, plan.spec(1, 3)),
        plan.start(2, plan.spec(2, 3)),
    ];
    let rt = runtime();
    let syncs: Vec<u16> = plan.ports.iter().map(|p| p.1).collect();
    wait_for_ring(&rt, &syncs, 3);
    nodes[2].kill();
    assert!(wait_until_up(&rt, syncs[0], 2));
    let keys: Vec<String> = (0..200).map(|i| format!("durable-hint:{i}")).collect();
    let mut c1 = nodes[0].client();
    for key in &keys {
        assert_eq!(c1.ask(&format!("SET {key} v")), "OK");
    }
    assert_eq!(
        common::metric(nodes[0].metrics_port, "merklekv_cluster_hints_stored_total"),
        200.0
    );
    let hint_file = dir.path().join("p1").join("hints").join("p3.hints");
    std::thread::sleep(Duration::from_millis(400));
    nodes[0].kill();
    assert!(
        hint_file.exists(),
        "no hint file at {}",
        hint_file.display()
    );
    let spec = nodes[0].spec.clone();
    nodes[0] = plan.start(0, spec);
    nodes[2] = plan.start(2, plan.spec(2, 3));
    assert!(
        wait_until(Duration::from_secs(15), || {
            held_locally(&rt, syncs[2], &keys).iter().all(|held| *held)
        }),
        "p3 did not get the hints p1 read back"
    );
    assert!(wait_until(Duration::from_secs(5), || {
        common::metric(
            nodes[0].metrics_port,
            "merklekv_cluster_hints_delivered_total",
        ) == 200.0
    }));
    // Delivered: the file is gone.
    assert!(wait_until(Duration::from_secs(5), || !hint_file.exists()));
}

#[test]
fn read_repair_chance_repairs_replicas_a_read_at_one_did_not_ask() {
    // cluster.read_repair_chance = 1.0: every read, once answered, also
    // asks the replicas its level did not. A newer entry is merged by hand
    // into p1 and p2 only; a read at `one` through p1 (answered from p1's
    // own store) still brings p3 up to date.
    let Started {
        nodes, rt, syncs, ..
    } = start_cluster_with(3, 3, &[("MERKLE_KV_CLUSTER_READ_REPAIR_CHANCE", "1.0")]);
    let mut c1 = nodes[0].client();
    assert_eq!(c1.ask("CONSISTENCY all"), "OK");
    assert_eq!(c1.ask("SET chance v0"), "OK");
    let newer = proto::Entry {
        expires_at_unix_ms: 0,
        key: b"chance".to_vec(),
        value: b"v1".to_vec(),
        tombstone: false,
        version: Some(version_by_hand()),
    };
    apply_by_hand(&rt, &syncs[..2], &[newer]);
    assert_eq!(local_entries(&rt, syncs[2], &["chance"])[0].value, b"v0");
    assert_eq!(c1.ask("CONSISTENCY one"), "OK");
    assert_eq!(c1.ask("GET chance"), "VALUE v1");
    assert!(
        wait_until(Duration::from_secs(5), || {
            local_entries(&rt, syncs[2], &["chance"])[0].value == b"v1"
        }),
        "p3 was not repaired"
    );
    assert!(
        common::metric(
            nodes[0].metrics_port,
            "merklekv_cluster_read_repair_checks_total"
        ) >= 1.0
    );
    assert_eq!(
        common::metric(nodes[0].metrics_port, "merklekv_cluster_read_repairs_total"),
        1.0
    );
}

#[test]
fn writes_to_a_replica_that_died_unnoticed_become_hints() {
    // p3 is killed and written to at once, before p1 sees it down (1 s):
    // the calls p1 sends it fail after the quorum reply, and each becomes
    // a hint (a write after p3 is seen down becomes one directly). p3
    // restarts empty; its only source is p1's hints (anti-entropy off).
    let Started {
        plan,
        mut nodes,
        rt,
        syncs,
    } = start_cluster(3, 3);
    let keys: Vec<String> = (0..50).map(|i| format!("unnoticed:{i}")).collect();
    let mut c1 = nodes[0].client();
    nodes[2].kill();
    for key in &keys {
        assert_eq!(c1.ask(&format!("SET {key} v")), "OK");
    }
    let p1_metrics = nodes[0].metrics_port;
    assert!(
        wait_until(Duration::from_secs(10), || {
            common::metric(p1_metrics, "merklekv_cluster_hints_stored_total") == 50.0
        }),
        "stored {}",
        common::metric(p1_metrics, "merklekv_cluster_hints_stored_total")
    );
    nodes[2] = plan.start(2, plan.spec(2, 3));
    assert!(
        wait_until(Duration::from_secs(10), || {
            held_locally(&rt, syncs[2], &keys).iter().all(|held| *held)
        }),
        "p3 did not get the writes it missed"
    );
}
