//! Graceful restarts keep everything, in every fsync mode: values,
//! tombstones and the Merkle root (`HASH`) come back as they were.

mod common;
mod durability_support;

use std::time::Duration;

use common::{metric, wait_until, Client, NodeProcess};
use durability_support::{dbsize, persistent, read_values, root_hash};

/// A mix of writes: plain SETs, overwrites, DELs (tombstones), INC, APPEND,
/// MSET and values with spaces. Returns the keys touched.
fn write_mix(client: &mut Client) -> Vec<String> {
    let mut keys = Vec::new();
    for i in 0..300 {
        let key = format!("key:{i}");
        assert_eq!(
            client.cmd(&format!("SET {key} value {i} with spaces")),
            "OK\r\n"
        );
        keys.push(key);
    }
    for i in (0..300).step_by(3) {
        assert_eq!(
            client.cmd(&format!("SET key:{i} overwritten-{i}")),
            "OK\r\n"
        );
    }
    for i in (1..300).step_by(5) {
        assert_eq!(client.cmd(&format!("DEL key:{i}")), "DELETED\r\n");
    }
    assert_eq!(client.cmd("INC counter 41"), "VALUE 41\r\n");
    assert_eq!(client.cmd("INC counter"), "VALUE 42\r\n");
    assert_eq!(client.cmd("APPEND log abc"), "VALUE abc\r\n");
    assert_eq!(client.cmd("APPEND log def"), "VALUE abcdef\r\n");
    assert_eq!(client.cmd("MSET m1 one m2 two"), "OK\r\n");
    assert_eq!(client.cmd("SET gone soon"), "OK\r\n");
    assert_eq!(client.cmd("DEL gone"), "DELETED\r\n");
    keys.extend(["counter", "log", "m1", "m2", "gone"].map(String::from));
    // The empty key and a binary value, through RESP.
    let mut resp = Client::connect(client.writer.peer_addr().expect("peer").port());
    resp.send(b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$3\r\na\x00b\r\n");
    assert_eq!(resp.line(), "+OK\r\n");
    keys
}

/// Writes, stops the node with `stop`, restarts, and compares everything.
fn restart_keeps_everything(fsync: &str, stop: impl FnOnce(&mut NodeProcess)) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let mut node = NodeProcess::start(persistent("n1", &dir, fsync));
    let mut client = node.client();
    let keys = write_mix(&mut client);
    let values = read_values(&mut client, &keys);
    let hash = root_hash(&mut client);
    let size = dbsize(&mut client);
    let hlc: u64 = client.info_field("hlc").parse().expect("hlc");
    let data_dir = client.info_field("data_dir");
    assert!(data_dir.ends_with("data"), "INFO data_dir {data_dir}");
    drop(client);
    stop(&mut node);
    drop(node);

    let node = NodeProcess::start(persistent("n1", &dir, fsync));
    let mut client = node.client();
    assert_eq!(
        read_values(&mut client, &keys),
        values,
        "fsync={fsync}: values"
    );
    assert_eq!(root_hash(&mut client), hash, "fsync={fsync}: Merkle root");
    assert_eq!(dbsize(&mut client), size, "fsync={fsync}: DBSIZE");
    assert_eq!(client.cmd("GET gone"), "NOT_FOUND\r\n");
    let mut resp = Client::connect(node.port);
    resp.send(b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
    assert_eq!(resp.line(), "$3\r\n");
    assert_eq!(resp.line(), "a\x00b\r\n");
    let restored_hlc: u64 = client.info_field("hlc").parse().expect("hlc");
    assert!(
        restored_hlc >= hlc,
        "HLC went backwards: {restored_hlc} < {hlc}"
    );
    // The clock carries on from where it was: an overwrite after the
    // restart wins (its version is newer than the stored one).
    assert_eq!(client.cmd("SET counter 7"), "OK\r\n");
    assert_eq!(client.cmd("GET counter"), "VALUE 7\r\n");
}

fn sigterm(node: &mut NodeProcess) {
    assert_eq!(node.terminate(), Some(0), "clean exit on SIGTERM");
}

#[test]
fn sigterm_restart_keeps_everything_with_fsync_always() {
    restart_keeps_everything("always", sigterm);
}

#[test]
fn sigterm_restart_keeps_everything_with_fsync_everysec() {
    restart_keeps_everything("everysec", sigterm);
}

#[test]
fn sigterm_restart_keeps_everything_with_fsync_never() {
    restart_keeps_everything("never", sigterm);
}

#[test]
fn shutdown_command_flushes_before_exit() {
    restart_keeps_everything("never", durability_support::shutdown);
}

#[test]
fn sigint_restart_keeps_everything() {
    restart_keeps_everything("everysec", |node| {
        let status = std::process::Command::new("kill")
            .arg("-INT")
            .arg(node.child.id().to_string())
            .status()
            .expect("kill -INT");
        assert!(status.success());
        assert!(
            wait_until(Duration::from_secs(10), || !node.is_running()),
            "node still running 10 s after SIGINT"
        );
        assert_eq!(node.child.wait().ok().and_then(|s| s.code()), Some(0));
    });
}

#[test]
fn persistence_off_starts_empty_every_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let mut spec = common::NodeSpec::new("mem").env("MERKLE_KV_STORAGE_PERSISTENCE", "false");
    spec.data_dir = Some(dir.clone());
    let mut node = NodeProcess::start(spec.clone());
    assert_eq!(node.client().cmd("SET a 1"), "OK\r\n");
    assert_eq!(node.client().info_field("data_dir"), "in-memory");
    durability_support::shutdown(&mut node);
    drop(node);
    assert!(
        !dir.join("LOCK").exists() && !dir.join("engine").exists(),
        "an in-memory node must not write to the data dir"
    );
    let node = NodeProcess::start(spec);
    assert_eq!(node.client().cmd("GET a"), "NOT_FOUND\r\n");
}

#[test]
fn concurrent_writers_share_fsyncs_with_fsync_always() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = NodeProcess::start(persistent("gc", &tmp.path().join("data"), "always"));
    let port = node.port;
    let handles: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Client::connect(port);
                for i in 0..150 {
                    assert_eq!(c.cmd(&format!("SET t{t}-{i} x")), "OK\r\n");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("writer");
    }
    let writes = metric(node.metrics_port, "merklekv_storage_persisted_writes_total");
    let fsyncs = metric(node.metrics_port, "merklekv_storage_fsyncs_total");
    assert_eq!(writes, 1200.0);
    assert!(fsyncs >= 1.0, "every acknowledged write needs an fsync");
    assert!(
        fsyncs < writes,
        "group commit: 8 concurrent writers should share fsyncs ({fsyncs} fsyncs for {writes} writes)"
    );
    eprintln!("{writes} writes, {fsyncs} fsyncs");
}

#[test]
fn fsync_always_does_one_fsync_per_sequential_write() {
    // One client, one write at a time: no two writes can share a batch, so
    // a node that replies before its fsync shows fewer fsyncs than writes.
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = NodeProcess::start(persistent("fs1", &tmp.path().join("data"), "always"));
    let before = metric(node.metrics_port, "merklekv_storage_fsyncs_total");
    let mut c = node.client();
    for i in 0..100 {
        assert_eq!(c.cmd(&format!("SET seq{i} x")), "OK\r\n");
        if i % 10 == 9 {
            assert_eq!(c.cmd(&format!("DEL seq{i}")), "DELETED\r\n");
        }
    }
    let fsyncs = metric(node.metrics_port, "merklekv_storage_fsyncs_total") - before;
    assert!(
        fsyncs >= 110.0,
        "110 sequential acknowledged writes need 110 fsyncs, saw {fsyncs}"
    );
}

/// Many writes with 1 MiB log segments: several checkpoints fold the log
/// into the engine while writes go on; a `kill -9` then a restart, and a
/// clean restart after that, keep every acknowledged write.
#[test]
fn writes_survive_kill_9_across_checkpoints() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let spec = || persistent("cp", &dir, "everysec").env("MERKLE_KV_STORAGE_LOG_SEGMENT_MB", "1");
    let mut node = NodeProcess::start(spec());
    let mut client = node.client();
    let value = |i: u32, round: u32| format!("{round}-{i}-{}", "x".repeat(100));
    const KEYS: u32 = 20_000;
    // Three passes over the same keys (~3 × 2.6 MB of log), pipelined.
    for round in 0..3 {
        for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
            let mut req = String::new();
            for i in chunk {
                req.push_str(&format!("SET k{i} {}\r\n", value(*i, round)));
            }
            client.send(req.as_bytes());
            for _ in chunk {
                assert_eq!(client.line(), "OK\r\n");
            }
        }
    }
    for i in (0..KEYS).step_by(7) {
        assert_eq!(client.cmd(&format!("DEL k{i}")), "DELETED\r\n");
    }
    assert!(
        wait_until(Duration::from_secs(30), || metric(
            node.metrics_port,
            "merklekv_storage_checkpoints_total"
        ) >= 3.0),
        "fewer than 3 checkpoints after ~8 MB of writes"
    );
    let expected = |i: u32| (i % 7 != 0).then(|| value(i, 2));
    let keys: Vec<String> = (0..KEYS).map(|i| format!("k{i}")).collect();
    let want: Vec<Option<String>> = (0..KEYS).map(expected).collect();
    let hash = root_hash(&mut client);
    node.kill();
    drop(node);

    let mut node = NodeProcess::start(spec());
    let mut client = node.client();
    assert!(read_values(&mut client, &keys) == want, "after kill -9");
    assert_eq!(root_hash(&mut client), hash, "Merkle root after kill -9");
    assert!(metric(node.metrics_port, "merklekv_storage_replayed_changes") > 0.0);
    durability_support::shutdown(&mut node);
    drop(node);

    let node = NodeProcess::start(spec());
    let mut client = node.client();
    assert!(
        read_values(&mut client, &keys) == want,
        "after a clean restart"
    );
    assert_eq!(
        root_hash(&mut client),
        hash,
        "Merkle root after a clean restart"
    );
    assert_eq!(
        metric(node.metrics_port, "merklekv_storage_replayed_changes"),
        0.0,
        "a clean shutdown folds the whole log into the engine"
    );
    assert_eq!(metric(node.metrics_port, "merklekv_storage_log_bytes"), 0.0);
}
