//! A real MQTT broker for tests: `mosquitto` on a free loopback port with a
//! generated configuration, or — only when no mosquitto binary exists — an
//! in-process rumqttd behind a small TCP proxy (so that "killing" and
//! restarting it still drops every connection and refuses new ones).
//!
//! With the environment variable `CI` set, mosquitto is mandatory.
//! `MERKLEKV_TEST_BROKER=rumqttd` forces the fallback (to test it).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::free_port;

/// Where mosquitto may live when it is not on `PATH` (Debian puts it in sbin).
const MOSQUITTO_CANDIDATES: [&str; 3] = [
    "/usr/sbin/mosquitto",
    "/usr/local/sbin/mosquitto",
    "/opt/homebrew/sbin/mosquitto",
];

/// The mosquitto binary, if installed.
pub fn mosquitto_binary() -> Option<PathBuf> {
    if std::env::var("MERKLEKV_TEST_BROKER").is_ok_and(|v| v == "rumqttd") {
        return None;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("mosquitto"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        MOSQUITTO_CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    })
}

/// A running broker on 127.0.0.1.
pub struct Broker {
    /// Its port.
    pub port: u16,
    kind: Kind,
}

enum Kind {
    Mosquitto {
        binary: PathBuf,
        config: PathBuf,
        child: Option<Child>,
        _dir: tempfile::TempDir,
    },
    InProcess(Relay),
}

impl Broker {
    /// Starts a broker on a free port.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts a broker on `port`.
    pub fn start_on(port: u16) -> Self {
        match mosquitto_binary() {
            Some(binary) => {
                let dir = tempfile::tempdir().expect("broker temp dir");
                let config = dir.path().join("mosquitto.conf");
                std::fs::write(&config, mosquitto_config(port)).expect("mosquitto config");
                Self::run_mosquitto(port, binary, config, dir)
            }
            None => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "mosquitto is required in CI (apt-get install mosquitto); \
                     the in-process rumqttd fallback is for machines without it"
                );
                eprintln!("mosquitto not found: using the in-process rumqttd broker");
                let upstream = rumqttd_instance();
                let proxy = Relay::start(port, upstream);
                wait_for_port(port);
                Self {
                    port,
                    kind: Kind::InProcess(proxy),
                }
            }
        }
    }

    /// A mosquitto with a TLS listener (`mqtts://127.0.0.1:<port>`) using
    /// the given PEM files; `None` when mosquitto is not installed.
    pub fn start_tls(cafile: &Path, certfile: &Path, keyfile: &Path) -> Option<Self> {
        let tls = format!(
            "cafile {}\ncertfile {}\nkeyfile {}\n",
            cafile.display(),
            certfile.display(),
            keyfile.display()
        );
        Self::start_mosquitto_with(true, &tls)
    }

    /// A mosquitto that admits only the users of `password_file` (made by
    /// `mosquitto_passwd`); `None` when mosquitto is not installed.
    pub fn start_with_passwords(password_file: &Path) -> Option<Self> {
        let auth = format!("password_file {}\n", password_file.display());
        Self::start_mosquitto_with(false, &auth)
    }

    /// A mosquitto with the test configuration plus `extra` lines.
    fn start_mosquitto_with(anonymous: bool, extra: &str) -> Option<Self> {
        let binary = mosquitto_binary()?;
        let port = free_port();
        let dir = tempfile::tempdir().expect("broker temp dir");
        let config = dir.path().join("mosquitto.conf");
        let base = mosquitto_config(port).replace(
            "allow_anonymous true",
            if anonymous {
                "allow_anonymous true"
            } else {
                "allow_anonymous false"
            },
        );
        std::fs::write(&config, format!("{base}{extra}")).expect("mosquitto config");
        Some(Self::run_mosquitto(port, binary, config, dir))
    }

    /// Starts `binary` with `config` (written in `dir`, kept alive with it).
    fn run_mosquitto(port: u16, binary: PathBuf, config: PathBuf, dir: tempfile::TempDir) -> Self {
        let mut broker = Self {
            port,
            kind: Kind::Mosquitto {
                binary,
                config,
                child: None,
                _dir: dir,
            },
        };
        broker.restart();
        broker
    }

    /// `tcp://127.0.0.1:<port>`, for `MERKLE_KV_MQTT_BROKER_ADDRESS`.
    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// Which broker runs: `"mosquitto"` or `"rumqttd"`.
    pub fn kind(&self) -> &'static str {
        match self.kind {
            Kind::Mosquitto { .. } => "mosquitto",
            Kind::InProcess(_) => "rumqttd",
        }
    }

    /// Kills the broker (SIGKILL for mosquitto): every connection drops,
    /// new ones are refused, retained messages and sessions are lost
    /// (mosquitto runs without persistence).
    pub fn kill(&mut self) {
        match &mut self.kind {
            Kind::Mosquitto { child, .. } => {
                if let Some(mut c) = child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
            Kind::InProcess(proxy) => proxy.stop(),
        }
    }

    /// Starts the broker again on the same port and waits until it accepts.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.port;
        match &mut self.kind {
            Kind::Mosquitto {
                binary,
                config,
                child,
                ..
            } => {
                *child = Some(spawn_mosquitto(binary, config, port));
            }
            Kind::InProcess(proxy) => proxy.resume(),
        }
        wait_for_port(port);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The configuration the tests run mosquitto with.
fn mosquitto_config(port: u16) -> String {
    format!(
        "listener {port} 127.0.0.1\n\
         allow_anonymous true\n\
         persistence false\n\
         max_queued_messages 100000\n\
         max_inflight_messages 1000\n\
         set_tcp_nodelay true\n\
         log_type error\n\
         log_type warning\n"
    )
}

fn spawn_mosquitto(binary: &Path, config: &Path, port: u16) -> Child {
    // The port was just released by a killed broker: retry briefly if the
    // new one cannot bind yet.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut child = Command::new(binary)
            .arg("-c")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn mosquitto");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // A broker that cannot load its configuration (e.g. a TLS
                // key) may accept for a moment before it exits.
                std::thread::sleep(Duration::from_millis(50));
                if let Ok(None) = child.try_wait() {
                    return child;
                }
                break;
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            Instant::now() < deadline,
            "mosquitto did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "broker not accepting on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts an in-process rumqttd on a free port and returns the port. It
/// cannot be stopped: it lives until the test process ends, unreachable once
/// its relay is gone. One per [`Broker`], so tests never share client ids.
fn rumqttd_instance() -> u16 {
    let port = free_port();
    let config = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 10010
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 16777216
    max_inflight_count = 500
    dynamic_filters = true
"#
    );
    let config: rumqttd::Config = toml::from_str(&config).expect("rumqttd config");
    std::thread::spawn(move || {
        let mut broker = rumqttd::Broker::new(config);
        if let Err(e) = broker.start() {
            eprintln!("rumqttd stopped: {e}");
        }
    });
    wait_for_port(port);
    port
}

/// A TCP relay from a loopback port to another that can drop every
/// connection and stop listening: it stands in for a broker crash when the
/// broker runs in-process, and makes a broker unreachable for some nodes
/// only.
pub struct Relay {
    port: u16,
    upstream: u16,
    running: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    /// Relays 127.0.0.1:`port` to 127.0.0.1:`upstream`.
    pub fn start(port: u16, upstream: u16) -> Self {
        let mut proxy = Self {
            port,
            upstream,
            running: Arc::new(AtomicBool::new(false)),
            streams: Arc::new(Mutex::new(Vec::new())),
            acceptor: None,
        };
        proxy.resume();
        proxy
    }

    /// Listens again after [`Relay::stop`].
    pub fn resume(&mut self) {
        if self.acceptor.is_some() {
            return;
        }
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("relay bind");
        listener.set_nonblocking(true).expect("nonblocking");
        self.running.store(true, Ordering::SeqCst);
        let running = self.running.clone();
        let streams = self.streams.clone();
        let upstream = self.upstream;
        self.acceptor = Some(std::thread::spawn(move || {
            while running.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                            continue;
                        };
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        if let Ok(mut list) = streams.lock() {
                            for s in [&client, &server] {
                                if let Ok(c) = s.try_clone() {
                                    list.push(c);
                                }
                            }
                        }
                        pipe(&client, &server);
                        pipe(&server, &client);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }));
    }

    /// Drops every relayed connection and stops listening.
    pub fn stop(&mut self) {
        self.running.store(false, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        if let Ok(mut list) = self.streams.lock() {
            for s in list.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Copies bytes from `from` to `to` on a thread until either side closes.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
