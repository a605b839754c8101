//! Helpers shared by the durability tests: nodes with persistence on,
//! pipelined reads, and running the binary to its exit.
#![allow(dead_code)]

use std::io::{BufRead, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{free_port, Client, NodeSpec};

/// A node spec with persistence on in `dir` and the given fsync policy.
pub fn persistent(node_id: &str, dir: &Path, fsync: &str) -> NodeSpec {
    let mut spec = NodeSpec::new(node_id)
        .env("MERKLE_KV_STORAGE_PERSISTENCE", "true")
        .env("MERKLE_KV_STORAGE_FSYNC", fsync);
    spec.data_dir = Some(dir.to_path_buf());
    spec
}

/// `GET` of every key, pipelined in chunks; `None` for `NOT_FOUND`.
pub fn read_values(client: &mut Client, keys: &[String]) -> Vec<Option<String>> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let mut req = String::new();
        for k in chunk {
            req.push_str("GET ");
            req.push_str(k);
            req.push_str("\r\n");
        }
        client.send(req.as_bytes());
        for k in chunk {
            let line = client.line();
            let line = line.trim_end();
            if line == "NOT_FOUND" {
                out.push(None);
            } else if let Some(v) = line.strip_prefix("VALUE ") {
                out.push(Some(v.to_string()));
            } else {
                panic!("unexpected reply to GET {k}: {line:?}");
            }
        }
    }
    out
}

/// The node's Merkle root (`HASH`).
pub fn root_hash(client: &mut Client) -> String {
    let reply = client.cmd("HASH");
    assert!(reply.starts_with("HASH "), "HASH reply {reply:?}");
    reply.trim_end().to_string()
}

/// The number of live keys (`DBSIZE`).
pub fn dbsize(client: &mut Client) -> u64 {
    let reply = client.cmd("DBSIZE");
    reply
        .trim_end()
        .strip_prefix("DBSIZE ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("DBSIZE reply {reply:?}"))
}

/// Stops the node with `SHUTDOWN` and checks that it exits cleanly.
pub fn shutdown(node: &mut crate::common::NodeProcess) {
    assert_eq!(node.client().cmd("SHUTDOWN"), "OK\r\n");
    assert!(
        crate::common::wait_until(Duration::from_secs(10), || !node.is_running()),
        "node still running 10 s after SHUTDOWN"
    );
    assert_eq!(node.child.wait().ok().and_then(|s| s.code()), Some(0));
}

/// Runs the binary with `spec` until it exits (at most 20 s). It is not
/// meant to start: if it becomes ready it is killed and the exit code is
/// `None`. Returns the exit code and everything it printed.
pub fn run_expecting_exit(spec: &NodeSpec) -> (Option<i32>, String) {
    let dir = spec.data_dir.clone().expect("spec needs a data dir");
    let config_path = dir.with_extension("second.toml");
    std::fs::write(&config_path, &spec.toml).expect("config file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_merklekv"));
    cmd.arg("--config")
        .arg(&config_path)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("MERKLE_KV_NODE_ID", &spec.node_id)
        .env("MERKLE_KV_NETWORK_BIND_PORT", free_port().to_string())
        .env("MERKLE_KV_NETWORK_SYNC_PORT", free_port().to_string())
        .env("MERKLE_KV_NETWORK_METRICS_PORT", free_port().to_string())
        .env("MERKLE_KV_STORAGE_DATA_DIR", dir.display().to_string())
        .env("MERKLE_KV_ANTI_ENTROPY_ENABLED", "false");
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn merklekv");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let readers: Vec<_> = [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().expect("stderr")) as Box<dyn Read + Send>,
    ]
    .into_iter()
    .map(|stream| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    let status = loop {
        while let Ok(line) = rx.try_recv() {
            lines.push(line);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        // It must not start: once it is ready, stop it and report.
        if lines.iter().any(|l| l.starts_with("merklekv ready")) || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for r in readers {
        let _ = r.join();
    }
    lines.extend(rx.try_iter());
    let output = lines.join("\n");
    (status, output)
}
