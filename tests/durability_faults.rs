//! Faults around the data directory: a second process, damaged files, and
//! the memory limit. Each ends in a clear outcome, never a panic.

mod common;
mod durability_support;

use std::path::{Path, PathBuf};

use common::{metric, NodeProcess};
use durability_support::{persistent, read_values, run_expecting_exit};

/// The active (highest-numbered) journal file of the engine.
fn active_journal(dir: &Path) -> PathBuf {
    let mut journals: Vec<(u64, PathBuf)> = std::fs::read_dir(dir.join("engine"))
        .expect("engine dir")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let n = path
                .file_name()?
                .to_str()?
                .strip_suffix(".jnl")?
                .parse()
                .ok()?;
            Some((n, path))
        })
        .collect();
    journals.sort();
    journals.pop().expect("a journal file").1
}

/// The newest (active) change-log segment.
fn active_segment(dir: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir.join("log"))
        .expect("log dir")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    segments.pop().expect("a change-log segment")
}

fn assert_refused(output: &str, code: Option<i32>, dir: &Path, what: &str) {
    assert!(
        code.is_some_and(|c| c != 0),
        "exit code {code:?}, output:\n{output}"
    );
    assert!(
        !output.contains("panicked"),
        "panic instead of an error:\n{output}"
    );
    assert!(
        !output.contains("merklekv ready"),
        "started anyway:\n{output}"
    );
    assert!(
        output.contains(&dir.display().to_string()),
        "message does not name the data dir {}:\n{output}",
        dir.display()
    );
    assert!(output.contains(what), "message lacks {what:?}:\n{output}");
}

fn tmp_data_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::fs::canonicalize(tmp.path())
        .expect("canonical")
        .join("data");
    (tmp, dir)
}

#[test]
fn a_second_process_on_the_same_data_dir_is_refused() {
    let (_tmp, dir) = tmp_data_dir();
    let first = NodeProcess::start(persistent("first", &dir, "everysec"));
    let (code, output) = run_expecting_exit(&persistent("second", &dir, "everysec"));
    assert_refused(&output, code, &dir, "in use by another merklekv process");
    assert!(
        output.contains(&format!("pid {}", first.child.id())),
        "message does not name the holder's pid {}:\n{output}",
        first.child.id()
    );
    // The first node is unharmed.
    assert_eq!(first.client().cmd("PING"), "PONG\r\n");
}

#[test]
fn a_torn_change_log_tail_after_a_crash_keeps_every_complete_write() {
    let (_tmp, dir) = tmp_data_dir();
    let mut node = NodeProcess::start(persistent("torn", &dir, "always"));
    let mut client = node.client();
    assert_eq!(client.cmd("SET first 1"), "OK\r\n");
    let segment = active_segment(&dir);
    let after_first = std::fs::read(&segment).expect("segment").len();
    assert_eq!(client.cmd("SET second 2"), "OK\r\n");
    node.kill();
    drop(node);
    // Cut the last write in half, as a crash during its append would.
    let bytes = std::fs::read(&segment).expect("segment");
    assert!(bytes.len() > after_first, "the second write is in the log");
    let cut = after_first + (bytes.len() - after_first) / 2;
    std::fs::write(&segment, &bytes[..cut]).expect("truncate");

    let node = NodeProcess::start(persistent("torn", &dir, "always"));
    let mut client = node.client();
    let keys = ["first".to_string(), "second".to_string()];
    assert_eq!(
        read_values(&mut client, &keys),
        vec![Some("1".to_string()), None],
        "the complete write survives, the torn one is dropped"
    );
    assert_eq!(
        metric(node.metrics_port, "merklekv_storage_unclean_start"),
        1.0,
        "the crash is noticed"
    );
    assert_eq!(
        metric(node.metrics_port, "merklekv_storage_replayed_changes"),
        1.0,
        "one whole change was replayed from the log"
    );
}

#[test]
fn a_corrupted_change_log_record_is_a_clear_startup_error() {
    let (_tmp, dir) = tmp_data_dir();
    let mut node = NodeProcess::start(persistent("bad", &dir, "always"));
    let mut client = node.client();
    assert_eq!(client.cmd("SET first some-value"), "OK\r\n");
    assert_eq!(client.cmd("SET second other-value"), "OK\r\n");
    node.kill();
    drop(node);
    let segment = active_segment(&dir);
    let mut bytes = std::fs::read(&segment).expect("segment");
    let pos = bytes
        .windows(10)
        .position(|w| w == b"some-value")
        .expect("value in the change log");
    bytes[pos] ^= 0xff;
    std::fs::write(&segment, &bytes).expect("corrupt");
    let (code, output) = run_expecting_exit(&persistent("bad", &dir, "always"));
    assert_refused(&output, code, &dir, "is damaged at byte");
    assert!(output.contains("not an interrupted write"), "{output}");
    assert!(output.contains("move the directory aside"), "{output}");
}

/// Writes `SET k<i> v<i>` for `range`, then shuts the node down cleanly.
fn write_and_stop(dir: &Path, range: std::ops::Range<u32>) {
    let mut node = NodeProcess::start(persistent("clean", dir, "everysec"));
    let mut client = node.client();
    for i in range {
        assert_eq!(client.cmd(&format!("SET k{i} v{i}")), "OK\r\n");
    }
    durability_support::shutdown(&mut node);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn data_lost_after_a_clean_shutdown_is_detected_not_served() {
    let (tmp, dir) = tmp_data_dir();
    write_and_stop(&dir, 0..10);
    let old_engine = tmp.path().join("engine-after-10");
    copy_dir(&dir.join("engine"), &old_engine);
    write_and_stop(&dir, 10..20);
    assert!(
        dir.join("CLEAN").exists(),
        "a clean shutdown leaves its marker"
    );

    // The engine files replaced by an older copy: 10 of 20 entries.
    std::fs::remove_dir_all(dir.join("engine")).expect("rm engine");
    copy_dir(&old_engine, &dir.join("engine"));
    let (code, output) = run_expecting_exit(&persistent("clean", &dir, "everysec"));
    assert_refused(
        &output,
        code,
        &dir,
        "differs from what the last clean shutdown left",
    );
    assert!(output.contains("expected 20 entries, found 10"), "{output}");

    // The engine directory gone: the engine alone would start empty.
    std::fs::remove_dir_all(dir.join("engine")).expect("rm engine");
    let (code, output) = run_expecting_exit(&persistent("clean", &dir, "everysec"));
    assert_refused(&output, code, &dir, "expected 20 entries, found 0");

    // The documented way to accept what is there: delete the marker.
    let _ = std::fs::remove_dir_all(dir.join("engine"));
    copy_dir(&old_engine, &dir.join("engine"));
    std::fs::remove_file(dir.join("CLEAN")).expect("remove marker");
    let node = NodeProcess::start(persistent("clean", &dir, "everysec"));
    assert_eq!(durability_support::dbsize(&mut node.client()), 10);
}

#[test]
fn damage_to_the_journal_head_after_a_clean_shutdown_loses_nothing() {
    let (_tmp, dir) = tmp_data_dir();
    write_and_stop(&dir, 0..20);
    // The shutdown wrote everything into table files, so garbage over the
    // start of the journal costs nothing.
    let journal = active_journal(&dir);
    let mut bytes = std::fs::read(&journal).expect("journal");
    for (i, b) in bytes.iter_mut().take(64).enumerate() {
        *b = (i as u8).wrapping_mul(37) ^ 0xa5;
    }
    std::fs::write(&journal, &bytes).expect("damage");
    let node = NodeProcess::start(persistent("clean", &dir, "everysec"));
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    let values = read_values(&mut node.client(), &keys);
    let expected: Vec<Option<String>> = (0..20).map(|i| Some(format!("v{i}"))).collect();
    assert_eq!(values, expected);
}

#[test]
fn a_clean_restart_is_not_reported_as_a_crash() {
    let (_tmp, dir) = tmp_data_dir();
    let mut node = NodeProcess::start(persistent("ok", &dir, "everysec"));
    assert_eq!(node.client().cmd("SET a 1"), "OK\r\n");
    assert_eq!(
        metric(node.metrics_port, "merklekv_storage_unclean_start"),
        0.0
    );
    durability_support::shutdown(&mut node);
    drop(node);
    let node = NodeProcess::start(persistent("ok", &dir, "everysec"));
    assert_eq!(
        metric(node.metrics_port, "merklekv_storage_unclean_start"),
        0.0
    );
    assert_eq!(
        metric(node.metrics_port, "merklekv_storage_recovered_entries"),
        1.0
    );
    assert!(
        !dir.join("CLEAN").exists(),
        "the marker is removed once the node runs"
    );
}

#[test]
fn a_damaged_table_or_version_file_is_a_clear_startup_error() {
    let (_tmp, dir) = tmp_data_dir();
    let mut node = NodeProcess::start(persistent("tables", &dir, "never"));
    assert_eq!(node.client().cmd("SET a 1"), "OK\r\n");
    durability_support::shutdown(&mut node);
    drop(node);
    let tables: Vec<PathBuf> = std::fs::read_dir(dir.join("engine/keyspaces"))
        .expect("keyspaces")
        .filter_map(|e| std::fs::read_dir(e.ok()?.path().join("tables")).ok())
        .flatten()
        .filter_map(|e| Some(e.ok()?.path()))
        .collect();
    assert!(!tables.is_empty(), "the engine keeps table files");
    let table = &tables[0];
    let original = std::fs::read(table).expect("table");
    let mut bytes = original.clone();
    for b in bytes.iter_mut().skip(16).take(8) {
        *b ^= 0x5a;
    }
    std::fs::write(table, &bytes).expect("damage table");
    let (code, output) = run_expecting_exit(&persistent("tables", &dir, "never"));
    assert_refused(&output, code, &dir, "cannot open the storage engine");

    std::fs::write(table, &original).expect("repair table");
    std::fs::write(dir.join("engine/version"), b"garbage").expect("damage version");
    let (code, output) = run_expecting_exit(&persistent("tables", &dir, "never"));
    assert_refused(&output, code, &dir, "format version marker");
}

#[test]
fn memory_limit_refuses_writes_but_reads_and_deletes_keep_working() {
    let (_tmp, dir) = tmp_data_dir();
    let node = NodeProcess::start(
        persistent("full", &dir, "everysec").env("MERKLE_KV_STORAGE_MEMORY_LIMIT_MB", 1),
    );
    let mut client = node.client();
    let value = "x".repeat(10_000);
    let mut stored = 0;
    let mut full_reply = None;
    for i in 0..200 {
        let reply = client.cmd(&format!("SET big{i} {value}"));
        if reply == "OK\r\n" {
            stored += 1;
        } else {
            full_reply = Some(reply);
            break;
        }
    }
    assert_eq!(full_reply.as_deref(), Some("ERROR Storage full\r\n"));
    assert!(
        (90..=105).contains(&stored),
        "1 MiB holds about 100 values of 10 kB, stored {stored}"
    );
    // Reads keep working.
    assert_eq!(client.cmd("GET big0"), format!("VALUE {value}\r\n"));
    assert_eq!(
        client.cmd(&format!("SET more {value}")),
        "ERROR Storage full\r\n"
    );
    // RESP clients see the same error.
    let mut resp = common::Client::connect(node.port);
    resp.send(
        format!(
            "*3\r\n$3\r\nSET\r\n$4\r\nresp\r\n${}\r\n{value}\r\n",
            value.len()
        )
        .as_bytes(),
    );
    assert_eq!(resp.line(), "-ERR Storage full\r\n");
    // Deletes keep working and make room again.
    assert_eq!(client.cmd("DEL big0"), "DELETED\r\n");
    assert_eq!(client.cmd("DEL big1"), "DELETED\r\n");
    assert_eq!(client.cmd(&format!("SET more {value}")), "OK\r\n");
    assert_eq!(client.cmd("GET big0"), "NOT_FOUND\r\n");
}

#[test]
fn a_key_too_long_for_the_disk_is_refused_and_the_node_carries_on() {
    let (_tmp, dir) = tmp_data_dir();
    let node = NodeProcess::start(persistent("long", &dir, "always"));
    let mut client = node.client();
    let key = "k".repeat(70_000);
    let reply = client.cmd(&format!("SET {key} v"));
    assert!(
        reply.starts_with("ERROR") && reply.contains("65534"),
        "reply {reply:?}"
    );
    assert_eq!(client.cmd(&format!("GET {key}")), "NOT_FOUND\r\n");
    assert_eq!(client.cmd("SET short v"), "OK\r\n");
    assert_eq!(client.cmd("GET short"), "VALUE v\r\n");
}
