//! Keys with a time to live, through real processes: the RESP commands
//! byte for byte (and against the real redis-server in the same test when
//! it is installed), the text protocol's SETEX/EXPIRE/TTL, expiry across
//! three MQTT replicas with no traffic for the expiry itself, deadlines
//! kept across a restart, and an EXPIRE a replica missed repaired by
//! anti-entropy.

mod common;
mod durability_support;
mod replication_support;

use std::time::Duration;

use common::broker::Broker;
use common::redis::{reply, request};
use common::{wait_until, Client, NodeProcess, NodeSpec};
use replication_support::{metric, roots_equal, three_nodes, unique_prefix, wait_connected};

#[test]
fn expiry_commands_answer_byte_for_byte_as_redis_does() {
    let node = NodeProcess::start(NodeSpec::new("ttl"));
    let redis = common::redis::Redis::start();
    let far_s = (common_now_ms() / 1000 + 100_000).to_string();
    let far_ms = (common_now_ms() + 90_000_000).to_string();
    let expire_at_s = format!(":{far_s}\r\n");
    let expire_at_ms = format!(":{far_ms}\r\n");
    let script: Vec<(Vec<&str>, &str)> = vec![
        (vec!["SET", "k", "v", "EX", "100"], "+OK\r\n"),
        (vec!["TTL", "k"], ":100\r\n"),
        (vec!["SET", "k", "v", "PX", "100000"], "+OK\r\n"),
        (vec!["TTL", "k"], ":100\r\n"),
        (
            vec!["SET", "k", "v", "EX", "0"],
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            vec!["SET", "k", "v", "PX", "-5"],
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            vec!["SET", "k", "v", "EX", "abc"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (vec!["SET", "k", "v", "NX", "XX"], "-ERR syntax error\r\n"),
        (
            vec!["SET", "k", "v", "EX", "10", "KEEPTTL"],
            "-ERR syntax error\r\n",
        ),
        (
            vec!["SET", "k", "v", "EX", "10", "PX", "10"],
            "-ERR syntax error\r\n",
        ),
        (vec!["SET", "k", "v", "EX"], "-ERR syntax error\r\n"),
        (vec!["SET", "k", "v", "FOO"], "-ERR syntax error\r\n"),
        (vec!["SET", "n", "v", "NX"], "+OK\r\n"),
        (vec!["SET", "n", "w", "NX"], "$-1\r\n"),
        (vec!["SET", "n", "w", "XX", "GET"], "$1\r\nv\r\n"),
        (vec!["SET", "none", "w", "XX"], "$-1\r\n"),
        (vec!["SET", "fresh", "w", "GET"], "$-1\r\n"),
        (vec!["GET", "n"], "$1\r\nw\r\n"),
        (vec!["set", "n", "w", "nx", "get"], "$1\r\nw\r\n"),
        (vec!["SETNX", "n", "x"], ":0\r\n"),
        (vec!["SETNX", "m", "x"], ":1\r\n"),
        (
            vec!["SETNX", "m"],
            "-ERR wrong number of arguments for 'setnx' command\r\n",
        ),
        (vec!["SETEX", "s", "100", "v"], "+OK\r\n"),
        (vec!["TTL", "s"], ":100\r\n"),
        (
            vec!["SETEX", "s", "0", "v"],
            "-ERR invalid expire time in 'setex' command\r\n",
        ),
        (
            vec!["SETEX", "s", "x", "v"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (vec!["PSETEX", "p", "100000", "v"], "+OK\r\n"),
        (vec!["TTL", "p"], ":100\r\n"),
        (
            vec!["PSETEX", "p", "-1", "v"],
            "-ERR invalid expire time in 'psetex' command\r\n",
        ),
        (vec!["TTL", "missing"], ":-2\r\n"),
        (vec!["PTTL", "missing"], ":-2\r\n"),
        (vec!["TTL", "n"], ":-1\r\n"),
        (vec!["PTTL", "n"], ":-1\r\n"),
        (vec!["EXPIRETIME", "n"], ":-1\r\n"),
        (vec!["EXPIRE", "n", "100"], ":1\r\n"),
        (vec!["TTL", "n"], ":100\r\n"),
        (vec!["EXPIRE", "n", "200", "NX"], ":0\r\n"),
        (vec!["EXPIRE", "n", "200", "XX"], ":1\r\n"),
        (vec!["TTL", "n"], ":200\r\n"),
        (vec!["EXPIRE", "n", "100", "GT"], ":0\r\n"),
        (vec!["EXPIRE", "n", "100", "LT"], ":1\r\n"),
        (vec!["EXPIRE", "n", "300", "XX", "GT"], ":1\r\n"),
        (vec!["EXPIRE", "n", "100", "XX", "LT"], ":1\r\n"),
        (vec!["EXPIRE", "m", "100", "XX", "LT"], ":0\r\n"),
        (vec!["EXPIRE", "m", "100", "LT"], ":1\r\n"),
        (
            vec!["EXPIRE", "n", "100", "NX", "XX"],
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n",
        ),
        (
            vec!["EXPIRE", "n", "100", "GT", "LT"],
            "-ERR GT and LT options at the same time are not compatible\r\n",
        ),
        (
            vec!["EXPIRE", "n", "100", "FOO"],
            "-ERR Unsupported option FOO\r\n",
        ),
        (
            vec!["EXPIRE", "n", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            vec!["EXPIRE", "n"],
            "-ERR wrong number of arguments for 'expire' command\r\n",
        ),
        (vec!["EXPIRE", "missing", "100"], ":0\r\n"),
        (vec!["PERSIST", "n"], ":1\r\n"),
        (vec!["PERSIST", "n"], ":0\r\n"),
        (vec!["PERSIST", "missing"], ":0\r\n"),
        (vec!["TTL", "n"], ":-1\r\n"),
        (vec!["SET", "c", "1", "EX", "100"], "+OK\r\n"),
        (vec!["INCR", "c"], ":2\r\n"),
        (vec!["APPEND", "c", "0"], ":2\r\n"),
        (vec!["TTL", "c"], ":100\r\n"),
        (vec!["SET", "c", "5", "KEEPTTL"], "+OK\r\n"),
        (vec!["TTL", "c"], ":100\r\n"),
        (vec!["SET", "c", "6"], "+OK\r\n"),
        (vec!["TTL", "c"], ":-1\r\n"),
        (vec!["GETEX", "n", "EX", "100"], "$1\r\nw\r\n"),
        (vec!["TTL", "n"], ":100\r\n"),
        (vec!["GETEX", "n"], "$1\r\nw\r\n"),
        (vec!["TTL", "n"], ":100\r\n"),
        (vec!["GETEX", "n", "PERSIST"], "$1\r\nw\r\n"),
        (vec!["TTL", "n"], ":-1\r\n"),
        (vec!["GETEX", "missing", "EX", "5"], "$-1\r\n"),
        (
            vec!["GETEX", "n", "EX", "0"],
            "-ERR invalid expire time in 'getex' command\r\n",
        ),
        (vec!["GETEX", "n", "FOO"], "-ERR syntax error\r\n"),
        (
            vec!["GETEX", "n", "EX", "5", "PERSIST"],
            "-ERR syntax error\r\n",
        ),
        (vec!["PEXPIRE", "m", "100000"], ":1\r\n"),
        (vec!["TTL", "m"], ":100\r\n"),
        (vec!["EXPIREAT", "m", &far_s], ":1\r\n"),
        (vec!["EXPIRETIME", "m"], &expire_at_s),
        (vec!["PEXPIREAT", "m", &far_ms], ":1\r\n"),
        (vec!["PEXPIRETIME", "m"], &expire_at_ms),
        (vec!["EXPIRE", "n", "-1"], ":1\r\n"),
        (vec!["GET", "n"], "$-1\r\n"),
        (vec!["EXISTS", "n"], ":0\r\n"),
        (vec!["TTL", "n"], ":-2\r\n"),
        (vec!["SET", "gone", "v", "PXAT", "1"], "+OK\r\n"),
        (vec!["GET", "gone"], "$-1\r\n"),
        (vec!["SETNX", "gone", "again"], ":1\r\n"),
    ];
    let mut ours = node.client();
    let mut theirs = redis.as_ref().map(|r| Client::connect(r.port));
    for (args, expected) in &script {
        assert_eq!(
            &reply(&mut ours, args, expected.len()),
            expected,
            "ours, {args:?}"
        );
        if let Some(redis) = theirs.as_mut() {
            assert_eq!(
                &reply(redis, args, expected.len()),
                expected,
                "redis-server, {args:?}"
            );
        }
    }
    // PTTL counts milliseconds down from the deadline.
    ours.send(&request(&["PTTL", "m"]));
    let line = ours.line();
    let ms: i64 = line.trim_start_matches(':').trim().parse().expect("PTTL");
    assert!(ms > 89_000_000 && ms <= 90_000_000, "PTTL {line:?}");
}

fn common_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[test]
fn the_text_protocol_sets_expires_and_reports_ttls() {
    let node = NodeProcess::start(NodeSpec::new("ttl-text"));
    let mut c = node.client();
    assert_eq!(c.cmd("SETEX k 100 hello world"), "OK\r\n");
    assert_eq!(c.cmd("GET k"), "VALUE hello world\r\n");
    assert_eq!(c.cmd("TTL k"), "TTL 100\r\n");
    assert_eq!(c.cmd("EXPIRE k 200"), "OK\r\n");
    assert_eq!(c.cmd("TTL k"), "TTL 200\r\n");
    assert_eq!(c.cmd("EXPIRE missing 5"), "NOT_FOUND\r\n");
    assert_eq!(c.cmd("TTL missing"), "TTL -2\r\n");
    assert_eq!(c.cmd("SET p v"), "OK\r\n");
    assert_eq!(c.cmd("TTL p"), "TTL -1\r\n");
    assert_eq!(c.cmd("PERSIST k"), "OK\r\n");
    assert_eq!(c.cmd("TTL k"), "TTL -1\r\n");
    assert_eq!(c.cmd("PERSIST missing"), "NOT_FOUND\r\n");
    assert_eq!(
        c.cmd("SETEX k 0 v"),
        "ERROR invalid expire time in 'setex' command\r\n"
    );
    assert_eq!(
        c.cmd("SETEX k 5"),
        "ERROR SETEX command requires a key, a number of seconds and a value\r\n"
    );
    assert_eq!(
        c.cmd("EXPIRE k soon"),
        "ERROR EXPIRE seconds must be an integer\r\n"
    );
    assert_eq!(c.cmd("TTL"), "ERROR TTL command requires arguments\r\n");
    // A key set through the text protocol expires for RESP clients too.
    assert_eq!(c.cmd("SETEX short 1 v"), "OK\r\n");
    assert!(wait_until(Duration::from_secs(5), || c.cmd("GET short")
        == "NOT_FOUND\r\n"));
    assert_eq!(c.cmd("TTL short"), "TTL -2\r\n");
    // The connection still works after every error.
    assert_eq!(c.cmd("GET k"), "VALUE hello world\r\n");
}

#[test]
fn a_key_set_with_ex_on_one_replica_is_gone_on_all_three_without_traffic() {
    let broker = Broker::start();
    let nodes = three_nodes(&broker, &unique_prefix("ttl"));
    wait_connected(&nodes, 3);
    let mut c = nodes[0].client();
    for i in 0..20 {
        assert_eq!(c.cmd(&format!("SET plain{i} v")), "OK\r\n");
    }
    let mut resp = Client::connect(nodes[0].port);
    assert_eq!(
        reply(&mut resp, &["SET", "session", "data", "EX", "2"], 5),
        "+OK\r\n"
    );
    let set_at = std::time::Instant::now();
    for node in &nodes {
        let mut nc = node.client();
        assert!(
            wait_until(Duration::from_secs(10), || nc.cmd("GET session")
                == "VALUE data\r\n"),
            "{} never got the key",
            node.spec.node_id
        );
    }
    assert!(wait_until(Duration::from_secs(10), || roots_equal(&nodes)));
    let published = metric(&nodes[0], "merklekv_replication_changes_published_total");
    let root_before: Vec<String> = nodes.iter().map(replication_support::hash).collect();
    // Gone everywhere once the deadline passed (compared with each node's
    // clock; the nodes share this machine's).
    std::thread::sleep(Duration::from_secs(2).saturating_sub(set_at.elapsed()));
    for node in &nodes {
        let mut nc = node.client();
        assert!(
            wait_until(Duration::from_millis(500), || nc.cmd("GET session")
                == "NOT_FOUND\r\n"),
            "{} still has the key after its deadline",
            node.spec.node_id
        );
        assert_eq!(nc.cmd("TTL session"), "TTL -2\r\n");
    }
    // The expiry cycle turns it into the same tombstone on every node: the
    // roots agree again, and differ from before.
    assert!(
        wait_until(Duration::from_secs(5), || roots_equal(&nodes)
            && replication_support::hash(&nodes[0]) != root_before[0]),
        "roots did not settle after the expiry"
    );
    for node in &nodes {
        assert!(wait_until(Duration::from_secs(5), || metric(
            node,
            "merklekv_keys_expired_total"
        ) == 1.0));
        assert_eq!(node.client().info_field("db_expires"), "0");
    }
    assert_eq!(
        metric(&nodes[0], "merklekv_replication_changes_published_total"),
        published,
        "expiring published nothing"
    );
}

#[test]
fn a_restart_keeps_deadlines() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let mut node = NodeProcess::start(durability_support::persistent("ttl-disk", &dir, "always"));
    let mut c = node.client();
    assert_eq!(c.cmd("SETEX long 1000 kept"), "OK\r\n");
    assert_eq!(c.cmd("SETEX short 2 brief"), "OK\r\n");
    assert_eq!(c.cmd("SET plain forever"), "OK\r\n");
    let root = c.cmd("HASH");
    drop(c);
    assert_eq!(node.terminate(), Some(0));
    let node = NodeProcess::start(durability_support::persistent("ttl-disk", &dir, "always"));
    let mut c = node.client();
    assert_eq!(c.cmd("HASH"), root, "the same entries, deadlines included");
    let ttl: i64 = c
        .cmd("TTL long")
        .trim()
        .trim_start_matches("TTL ")
        .parse()
        .expect("ttl");
    assert!((990..=1000).contains(&ttl), "TTL long after restart: {ttl}");
    assert_eq!(c.cmd("TTL plain"), "TTL -1\r\n");
    assert!(wait_until(Duration::from_secs(5), || c.cmd("GET short")
        == "NOT_FOUND\r\n"));
    assert_eq!(c.cmd("GET long"), "VALUE kept\r\n");
}

#[test]
fn an_expire_a_replica_missed_is_repaired_by_anti_entropy() {
    let a = NodeProcess::start(NodeSpec::new("ae-a"));
    let b = NodeProcess::start(NodeSpec::new("ae-b"));
    let (mut ca, mut cb) = (a.client(), b.client());
    assert_eq!(ca.cmd("SET k v"), "OK\r\n");
    assert_eq!(ca.cmd("SET other w"), "OK\r\n");
    let sync = |c: &mut Client, peer: &NodeProcess| {
        let reply = c.cmd(&format!("SYNC 127.0.0.1 {}", peer.sync_port));
        assert!(reply.starts_with("OK"), "SYNC: {reply}");
    };
    sync(&mut cb, &a);
    assert_eq!(cb.cmd("TTL k"), "TTL -1\r\n");
    // b misses the EXPIRE (no broker): its tree differs, and a round heals it.
    assert_eq!(ca.cmd("EXPIRE k 500"), "OK\r\n");
    assert_ne!(ca.cmd("HASH"), cb.cmd("HASH"));
    sync(&mut cb, &a);
    let ttl: i64 = cb
        .cmd("TTL k")
        .trim()
        .trim_start_matches("TTL ")
        .parse()
        .expect("ttl");
    assert!((490..=500).contains(&ttl), "TTL on b: {ttl}");
    assert_eq!(ca.cmd("HASH"), cb.cmd("HASH"));
    // A PERSIST travels the same way.
    assert_eq!(ca.cmd("PERSIST k"), "OK\r\n");
    sync(&mut cb, &a);
    assert_eq!(cb.cmd("TTL k"), "TTL -1\r\n");
    assert_eq!(ca.cmd("HASH"), cb.cmd("HASH"));
}

#[test]
fn a_partitioned_cluster_coordinates_ttl_commands_on_every_replica() {
    let started = common::cluster::start_cluster(3, 2);
    let (nodes, rt, syncs) = (&started.nodes, &started.rt, &started.syncs);
    let mut clients: Vec<Client> = nodes.iter().map(NodeProcess::client).collect();
    let keys: Vec<String> = (0..30).map(|i| format!("ttl:{i}")).collect();
    for k in &keys {
        assert_eq!(clients[0].cmd(&format!("SETEX {k} 100 v-{k}")), "OK\r\n");
    }
    for (n, c) in clients.iter_mut().enumerate() {
        for k in &keys {
            assert_eq!(
                c.cmd(&format!("TTL {k}")),
                "TTL 100\r\n",
                "{k} through node {n}"
            );
        }
    }
    // Each key's two replicas hold the same deadline, the third nothing.
    let held: Vec<Vec<merklekv::proto::Entry>> = syncs
        .iter()
        .map(|&sync| common::cluster::local_entries(rt, sync, &keys))
        .collect();
    for (i, k) in keys.iter().enumerate() {
        let deadlines: Vec<u64> = held
            .iter()
            .filter(|entries| entries[i].version.is_some())
            .map(|entries| entries[i].expires_at_unix_ms)
            .collect();
        assert_eq!(deadlines.len(), 2, "{k} on {} nodes", deadlines.len());
        assert!(
            deadlines[0] > 0 && deadlines[0] == deadlines[1],
            "{k}: {deadlines:?}"
        );
    }
    // EXPIRE and PERSIST through one node, read through another.
    assert_eq!(clients[2].cmd("EXPIRE ttl:0 200"), "OK\r\n");
    assert_eq!(clients[0].cmd("TTL ttl:0"), "TTL 200\r\n");
    assert_eq!(clients[1].cmd("PERSIST ttl:0"), "OK\r\n");
    assert_eq!(clients[2].cmd("TTL ttl:0"), "TTL -1\r\n");
    assert_eq!(clients[2].cmd("EXPIRE missing 5"), "NOT_FOUND\r\n");
    // The RESP forms, through the coordinator.
    let mut resp = Client::connect(nodes[1].port);
    let script: Vec<(Vec<&str>, &str)> = vec![
        (vec!["SET", "n", "v", "NX"], "+OK\r\n"),
        (vec!["SET", "n", "w", "NX"], "$-1\r\n"),
        (vec!["SETNX", "n", "x"], ":0\r\n"),
        (vec!["SET", "n", "w", "XX", "GET", "KEEPTTL"], "$1\r\nv\r\n"),
        (vec!["GETEX", "n", "EX", "50"], "$1\r\nw\r\n"),
        (vec!["TTL", "n"], ":50\r\n"),
        (vec!["EXPIRE", "n", "10", "GT"], ":0\r\n"),
        (vec!["EXPIRE", "n", "10", "LT"], ":1\r\n"),
        (vec!["PERSIST", "n"], ":1\r\n"),
        (vec!["PTTL", "n"], ":-1\r\n"),
        (
            vec!["SET", "k", "v", "EX", "0"],
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (vec!["SET", "short", "v", "PX", "1500"], "+OK\r\n"),
    ];
    for (args, expected) in &script {
        assert_eq!(
            &reply(&mut resp, args, expected.len()),
            expected,
            "{args:?}"
        );
    }
    // Gone everywhere after its deadline; each replica expires it into the
    // same tombstone on its own.
    std::thread::sleep(Duration::from_millis(1_500));
    for c in clients.iter_mut() {
        assert!(wait_until(Duration::from_secs(2), || c.cmd("GET short")
            == "NOT_FOUND\r\n"));
        assert_eq!(c.cmd("TTL short"), "TTL -2\r\n");
    }
    assert!(
        wait_until(Duration::from_secs(5), || {
            let replicas: Vec<merklekv::proto::Entry> = syncs
                .iter()
                .map(|&sync| common::cluster::local_entries(rt, sync, &["short"]).remove(0))
                .filter(|e| e.version.is_some())
                .collect();
            replicas.len() == 2
                && replicas
                    .iter()
                    .all(|e| e.tombstone && e.expires_at_unix_ms > 0)
                && replicas[0] == replicas[1]
        }),
        "the replicas did not expire `short` into the same tombstone"
    );
}
