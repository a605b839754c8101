//! The `merklekv` command line: `--help`, `--version`, configuration
//! errors that name the file and the key, and environment overrides.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Client};

/// The binary with a clean environment (no stray `MERKLE_KV_*`).
fn merklekv() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_merklekv"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run merklekv")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_and_version() {
    let out = run(merklekv().arg("--help"));
    assert!(out.status.success(), "--help failed: {out:?}");
    let help = text(&out.stdout);
    for needle in ["Usage: merklekv", "--config", "bench", "--version"] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    let out = run(merklekv().arg("--version"));
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("merklekv {}", env!("CARGO_PKG_VERSION"))
    );
    let out = run(merklekv().arg("--no-such-flag"));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--no-such-flag"));
}

/// Runs the node with `toml` as its config file; it must exit non-zero
/// with a message naming the file and every string in `needles`.
fn assert_bad_config(toml: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, toml).expect("write config");
    let out = run(merklekv()
        .arg("--config")
        .arg(&path)
        .env("MERKLE_KV_STORAGE_PERSISTENCE", "false"));
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "config {toml:?} was accepted: {stderr}"
    );
    assert!(
        stderr.contains(&path.display().to_string()),
        "message must name the file: {stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "message must mention {needle:?}: {stderr}"
        );
    }
}

#[test]
fn bad_config_files_exit_non_zero_naming_file_and_key() {
    assert_bad_config(
        "[network]\nbind_prot = 7379\n",
        &["network.bind_prot", "network.bind_port"],
    );
    assert_bad_config("[network]\nbind_port = 70000\n", &["network.bind_port"]);
    assert_bad_config("[network]\nbind_port = 0\n", &["network.bind_port"]);
    assert_bad_config(
        "[network]\nbind_port = \"abc\"\n",
        &["network.bind_port", "integer"],
    );
    assert_bad_config("node_id = \"\"\n", &["node_id"]);
    assert_bad_config("[nonsense]\nx = 1\n", &["nonsense"]);
    assert_bad_config("this is not toml", &[]);
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("does-not-exist.toml");
    let out = run(merklekv().arg("--config").arg(&path));
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&path.display().to_string()) && stderr.contains("No such file"),
        "{stderr}"
    );
}

#[test]
fn a_bad_environment_override_names_the_variable() {
    let out = run(merklekv().env("MERKLE_KV_NETWORK_BIND_PORT", "abc"));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("MERKLE_KV_NETWORK_BIND_PORT"));
    let out = run(merklekv().env("MERKLE_KV_NETWORK_BIND_PROT", "1"));
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("MERKLE_KV_NETWORK_BIND_PROT"), "{stderr}");
    assert!(stderr.contains("MERKLE_KV_NETWORK_BIND_PORT"), "{stderr}");
}

/// Kills the child on drop.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the node and returns it once it printed its `ready` line.
fn start(cmd: &mut Command) -> (Running, String) {
    let mut child = Running(
        cmd.env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            if line.starts_with("merklekv ready") {
                return (child, line);
            }
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("node exited during start-up: {status}");
        }
    }
    panic!("node not ready after 20 s");
}

#[test]
fn the_environment_overrides_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("node.toml");
    let file_port = free_port();
    let env_port = free_port();
    std::fs::write(
        &path,
        format!(
            "node_id = \"from-file\"\n[network]\nbind_port = {file_port}\nsync_port = {}\n\
             metrics_port = {}\n[storage]\npersistence = false\n[anti_entropy]\nenabled = false\n",
            free_port(),
            free_port()
        ),
    )
    .expect("write config");
    let (_node, ready) = start(
        merklekv()
            .arg("--config")
            .arg(&path)
            .env("MERKLE_KV_NETWORK_BIND_PORT", env_port.to_string())
            .env("MERKLE_KV_NODE_ID", "from-env"),
    );
    assert!(
        ready.contains(&format!("client=127.0.0.1:{env_port}")) && ready.contains("from-env"),
        "{ready}"
    );
    let mut c = Client::connect(env_port);
    assert_eq!(c.cmd("PING"), "PONG\r\n");
    c.send(b"INFO\r\n");
    assert_eq!(c.line(), "INFO\r\n");
    c.line(); // version
    assert_eq!(c.line(), "node_id:from-env\r\n");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", file_port)).is_err(),
        "the file's port must not be used"
    );
}

#[test]
fn the_config_file_port_is_used_without_overrides() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("node.toml");
    let port = free_port();
    std::fs::write(
        &path,
        format!(
            "[network]\nbind_port = {port}\nsync_port = {}\nmetrics_port = {}\n\
             [storage]\npersistence = false\n[anti_entropy]\nenabled = false\n",
            free_port(),
            free_port()
        ),
    )
    .expect("write config");
    let (_node, ready) = start(merklekv().arg("--config").arg(&path));
    assert!(
        ready.contains(&format!("client=127.0.0.1:{port}")),
        "{ready}"
    );
    assert_eq!(Client::connect(port).cmd("PING"), "PONG\r\n");
}
