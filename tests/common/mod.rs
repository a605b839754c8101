//! Shared test harness: runs the real `merklekv` binary on free loopback
//! ports and talks to it over TCP.
#![allow(dead_code)]

pub mod broker;
pub mod cluster;
pub mod redis;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 for a node or broker to listen on.
///
/// A port from `bind(0)` comes out of the kernel's ephemeral range, the same
/// range outgoing connections take their source ports from: between this
/// call and the node's own bind, any connect() on the machine (a node
/// dialling the broker, a test client) can take it, and the node then fails
/// with "Address already in use". So the port is taken from below the
/// ephemeral range instead, where the kernel never hands out ports by
/// itself, walking a per-process cursor (seeded by the pid, so parallel test
/// binaries start apart) and skipping any port that is in use now.
pub fn free_port() -> u16 {
    static CURSOR: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);
    let Some((low, high)) = listen_port_range() else {
        // No room below the ephemeral range: let the kernel pick.
        return TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
    };
    let span = u32::from(high - low);
    let seed = (std::process::id().wrapping_mul(7919)) % span;
    let _ = CURSOR.compare_exchange(
        u32::MAX,
        seed,
        std::sync::atomic::Ordering::Relaxed,
        std::sync::atomic::Ordering::Relaxed,
    );
    for _ in 0..span {
        let step = CURSOR.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = low + (step % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {low}..{high}");
}

/// The ports `free_port` hands out: from 10000 up to the start of the
/// kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), or
/// `None` when that range starts too low to leave room.
fn listen_port_range() -> Option<(u16, u16)> {
    const LOW: u16 = 10_000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    (ephemeral_start > LOW + 1_000).then_some((LOW, ephemeral_start))
}

/// The body of an HTTP/1.0 GET of `path` on 127.0.0.1:`port` (empty when
/// nothing answers).
#[allow(dead_code)]
pub fn http_get(port: u16, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes());
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

/// The path of the program `name` on PATH (or in /usr/bin).
#[allow(dead_code)]
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Options for one node process.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// node_id.
    pub node_id: String,
    /// Extra `MERKLE_KV_*` variables.
    pub env: Vec<(String, String)>,
    /// Data directory (a fresh temp dir when `None`).
    pub data_dir: Option<PathBuf>,
    /// Extra TOML appended to the generated config file.
    pub toml: String,
}

impl NodeSpec {
    /// A node with defaults: persistence off, no broker, anti-entropy off.
    pub fn new(node_id: &str) -> Self {
        Self {
            node_id: node_id.into(),
            env: Vec::new(),
            data_dir: None,
            toml: String::new(),
        }
    }

    /// Adds a `MERKLE_KV_*` variable.
    pub fn env(mut self, k: &str, v: impl ToString) -> Self {
        self.env.push((k.into(), v.to_string()));
        self
    }
}

/// A running node process; killed on drop.
pub struct NodeProcess {
    /// The child process.
    pub child: Child,
    /// Client port.
    pub port: u16,
    /// Sync (gRPC) port.
    pub sync_port: u16,
    /// Metrics port.
    pub metrics_port: u16,
    /// Data directory in use.
    pub data_dir: PathBuf,
    /// Keeps a temp data dir alive.
    _tmp: Option<tempfile::TempDir>,
    /// Lines the node printed on stdout/stderr.
    pub output: mpsc::Receiver<String>,
    /// The spec it was started with (for restarts).
    pub spec: NodeSpec,
}

impl NodeProcess {
    /// Starts a node and waits for its `ready` line (up to 20 s).
    pub fn start(spec: NodeSpec) -> Self {
        Self::start_with_ports(spec, free_port(), free_port(), free_port())
    }

    /// Starts a node on the given ports.
    pub fn start_with_ports(spec: NodeSpec, port: u16, sync_port: u16, metrics_port: u16) -> Self {
        let (tmp, data_dir) = match &spec.data_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::tempdir().expect("tempdir");
                let d = t.path().to_path_buf();
                (Some(t), d)
            }
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_merklekv"));
        let config_path = data_dir.with_extension("toml");
        std::fs::create_dir_all(&data_dir).expect("data dir");
        std::fs::write(&config_path, &spec.toml).expect("config file");
        cmd.arg("--config").arg(&config_path);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "RUST_LOG",
                std::env::var("MERKLEKV_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env("MERKLE_KV_NODE_ID", &spec.node_id)
            .env("MERKLE_KV_NETWORK_BIND_PORT", port.to_string())
            .env("MERKLE_KV_NETWORK_SYNC_PORT", sync_port.to_string())
            .env("MERKLE_KV_NETWORK_METRICS_PORT", metrics_port.to_string())
            .env("MERKLE_KV_STORAGE_DATA_DIR", data_dir.display().to_string());
        let has = |k: &str| spec.env.iter().any(|(key, _)| key == k);
        if !has("MERKLE_KV_STORAGE_PERSISTENCE") {
            cmd.env("MERKLE_KV_STORAGE_PERSISTENCE", "false");
        }
        if !has("MERKLE_KV_ANTI_ENTROPY_ENABLED") {
            cmd.env("MERKLE_KV_ANTI_ENTROPY_ENABLED", "false");
        }
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn merklekv");
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")) as Box<dyn Read + Send>,
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if std::env::var_os("MERKLEKV_TEST_ECHO").is_some() {
                        eprintln!("[node] {line}");
                    }
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.starts_with("merklekv ready") => break,
                Ok(line) => eprintln!("[{}] {line}", spec.node_id),
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!("node {} exited during start-up: {status}", spec.node_id);
                    }
                    assert!(
                        Instant::now() < deadline,
                        "node {} not ready after 20 s",
                        spec.node_id
                    );
                }
            }
        }
        Self {
            child,
            port,
            sync_port,
            metrics_port,
            data_dir,
            _tmp: tmp,
            output: rx,
            spec,
        }
    }

    /// A new text-protocol client connection.
    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to 10 s for a clean exit; returns the code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        None
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Resident memory of the process in bytes (Linux).
    pub fn rss_bytes(&self) -> u64 {
        let statm =
            std::fs::read_to_string(format!("/proc/{}/statm", self.child.id())).unwrap_or_default();
        statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0)
            * 4096
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A blocking text-protocol client.
pub struct Client {
    /// Reader half.
    pub reader: BufReader<TcpStream>,
    /// Writer half.
    pub writer: TcpStream,
}

impl Client {
    /// Connects to 127.0.0.1:`port` (5 s read timeout).
    pub fn connect(port: u16) -> Self {
        Self::from_stream(TcpStream::connect(("127.0.0.1", port)).expect("connect"))
    }

    /// A client over an open connection (10 s read timeout).
    pub fn from_stream(stream: TcpStream) -> Self {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Reads one reply line including its `\r\n`.
    pub fn line(&mut self) -> String {
        let mut buf = Vec::new();
        self.reader.read_until(b'\n', &mut buf).expect("read line");
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Sends `cmd\r\n` and returns the first reply line (with `\r\n`).
    pub fn cmd(&mut self, cmd: &str) -> String {
        self.send(format!("{cmd}\r\n").as_bytes());
        self.line()
    }

    /// Sends `cmd` and reads `n` reply lines.
    pub fn cmd_lines(&mut self, cmd: &str, n: usize) -> Vec<String> {
        self.send(format!("{cmd}\r\n").as_bytes());
        (0..n).map(|_| self.line()).collect()
    }

    /// One field of `INFO` (a fixed set of `name:value` lines; a `PING`
    /// sent behind it marks where the reply ends).
    pub fn info_field(&mut self, name: &str) -> String {
        self.send(b"INFO\r\nPING\r\n");
        assert_eq!(self.line(), "INFO\r\n");
        let prefix = format!("{name}:");
        let mut found = None;
        loop {
            let line = self.line();
            if line == "PONG\r\n" {
                break;
            }
            if let Some(v) = line.strip_prefix(&prefix) {
                found = Some(v.trim_end().to_string());
            }
        }
        found.unwrap_or_else(|| panic!("INFO has no {name} field"))
    }

    /// Whether the server closed the connection: EOF (or a reset) within
    /// 5 s. Unread bytes, a read timeout or any other error count as open,
    /// so a server that keeps the connection up fails the check.
    pub fn is_closed(&mut self) -> bool {
        use std::io::ErrorKind;
        let _ = self
            .reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(5)));
        let mut b = [0u8; 1];
        match self.reader.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
            ),
        }
    }
}

/// Polls `f` every 50 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Reads `/metrics` and returns the value of `name` (first sample).
pub fn metric(port: u16, name: &str) -> f64 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("metrics connect");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("metrics request");
    let mut body = String::new();
    stream.read_to_string(&mut body).expect("metrics body");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing from:\n{body}"))
}
