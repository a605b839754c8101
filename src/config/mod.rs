//! Node configuration.
//!
//! A node needs no configuration file at all: [`Config::default`] is a
//! standalone node on loopback. A TOML file (sections `[network]`, `[mqtt]`,
//! `[anti_entropy]`, `[storage]`, `[logging]`, `[cluster]`, `[security]`, plus the top-level `node_id`
//! and `description`) overrides the defaults, and `MERKLE_KV_<SECTION>_<KEY>`
//! environment variables override the file, e.g. `MERKLE_KV_NETWORK_BIND_PORT=8080`,
//! `MERKLE_KV_NODE_ID=n1` or `MERKLE_KV_ANTI_ENTROPY_PEER_LIST=a:7380,b:7380`.
//!
//! Loading is strict: an unknown key (in the file or in a `MERKLE_KV_*`
//! variable) is an error that names the key and suggests the nearest valid
//! one, a value of the wrong type names the key and the expected form, and
//! [`Config::validate`] names the offending key and the reason. Keys kept for
//! compatibility with the seed configuration but without effect are accepted
//! and reported in [`LoadedConfig::warnings`].
//!
//! See `docs/configuration.md` for the reference of every key.

mod cluster;
mod load;
mod security;
mod validate;

#[cfg(test)]
mod tests;

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use cluster::{ClusterConfig, Consistency, MAX_REPLICATION_FACTOR};
pub use load::{ENV_PREFIX, RESERVED_ENV_VARS};
pub use security::{Role, SecurityConfig, UserConfig};
pub use validate::is_node_id;

/// The whole configuration of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Unique name of this node (default `"node1"`). Stamped on every version
    /// this node creates, used as MQTT client id and data directory name.
    pub node_id: String,
    /// Free text describing the node (default `""`); informational only.
    pub description: String,
    /// Listeners: client port, sync port, metrics port and connection limits.
    pub network: NetworkConfig,
    /// MQTT replication (the write hot path between replicas).
    pub mqtt: MqttConfig,
    /// Merkle-tree anti-entropy over gRPC (repairs whatever MQTT missed).
    pub anti_entropy: AntiEntropyConfig,
    /// Durable storage.
    pub storage: StorageConfig,
    /// Diagnostics output.
    pub logging: LoggingConfig,
    /// Placement and consistency of the partitioned cluster.
    pub cluster: ClusterConfig,
    /// Who may use the client port (passwords, users, protected mode).
    pub security: SecurityConfig,
}

/// `[network]`: listeners and connection limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// IP address or hostname the listeners bind to (default `"127.0.0.1"`).
    pub bind_address: String,
    /// Client port: MerkleKV text protocol and RESP2 (default 7379).
    pub bind_port: u16,
    /// gRPC anti-entropy port (default 7380).
    pub sync_port: u16,
    /// Prometheus `/metrics` port (default 9379); 0 disables the endpoint.
    pub metrics_port: u16,
    /// Address peers are told to dial; `""` (default) means `bind_address`.
    pub advertise_address: String,
    /// Maximum simultaneous client connections (default 10000).
    pub max_connections: usize,
    /// Maximum simultaneous client connections from one IP address
    /// (default 0 = no cap).
    pub max_connections_per_ip: usize,
    /// Cap on one client request line in bytes (default 1 MiB, minimum 1024).
    pub max_line_bytes: usize,
    /// MiB all clients together may hold in unfinished requests and unsent
    /// replies before the largest holders are disconnected (default 1024;
    /// 0 = no cap).
    pub max_client_memory_mb: u64,
    /// Close client connections idle this long; 0 (default) never closes them.
    /// Otherwise at least 60.
    pub idle_timeout_seconds: u64,
    /// Close a client that has not taken any of its pending replies for
    /// this long (it stopped reading); default 60, 0 = never.
    pub reply_timeout_seconds: u64,
    /// Seed key, accepted for compatibility; has no effect (default 30).
    pub connection_timeout: u64,
    /// Threads that serve client connections, gRPC and replication (the
    /// async runtime's workers); 0 (default) means one per CPU this process
    /// may use, minus one, and at least one. See [`Config::worker_threads`].
    pub worker_threads: usize,
    /// Microseconds of polling for the next request that each client read
    /// pays for, so a runtime worker need not sleep between requests
    /// (default 20; credit adds up to ten reads' worth); 0 lets it sleep as
    /// soon as it is idle. At most 100,000.
    pub idle_poll_us: u64,
}

/// `[mqtt]`: replication through an MQTT broker.
///
/// Its `Debug` output shows `password` as `"<redacted>"` so that logging
/// the configuration does not leak the secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// `None` (default): enabled iff `broker_address` is non-empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `tcp://host:port`, `mqtts://host:port` or `host:port`; `""` (default)
    /// runs standalone without a broker.
    pub broker_address: String,
    /// Topic prefix; changes are published on `{topic_prefix}/updates`
    /// (default `"merkle_kv"`).
    pub topic_prefix: String,
    /// MQTT client id; `""` (default) means `node_id`.
    pub client_id: String,
    /// Broker user name (default none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Broker password (default none); requires `username`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// MQTT keep-alive in seconds (default 30; 0 disables; at most 65535).
    pub keep_alive: u64,
    /// MQTT clean session flag (default true).
    pub clean_session: bool,
    /// Changes buffered between the write path and the publisher (default 65536).
    pub queue_size: usize,
    /// Target size of one published batch in bytes (default 262144).
    pub max_batch_bytes: usize,
    /// MQTT maximum packet size in bytes (default 4 MiB); must exceed
    /// `network.max_line_bytes`.
    pub max_packet_bytes: usize,
}

/// `[anti_entropy]`: periodic replica repair over gRPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AntiEntropyConfig {
    /// Run anti-entropy rounds (default true).
    pub enabled: bool,
    /// Merkle descent or full state exchange (default [`SyncMode::Merkle`]).
    pub mode: SyncMode,
    /// Seconds between rounds with each peer (default 30, at least 1).
    pub interval_seconds: u64,
    /// Seconds between presence-based peer discovery rounds (default 600, at least 1).
    pub peer_discovery_interval: u64,
    /// Peers synchronised at the same time (default 2, at least 1).
    pub max_concurrent_syncs: usize,
    /// Static peers as `"host:port"` sync addresses (default empty).
    pub peer_list: Vec<String>,
    /// Children per Merkle node: a power of two in 2..=256 (default 16).
    pub tree_fanout: u32,
    /// Merkle tree depth in 1..=8 with `fanout^depth <= 2^24` (default 4).
    pub tree_depth: u32,
    /// Per-RPC timeout in seconds (default 10, at least 1).
    pub timeout_seconds: u64,
}

/// `[storage]`: durability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Keep data on disk (default true). The seed's `persistence_enabled` is
    /// accepted as an alias.
    #[serde(alias = "persistence_enabled")]
    pub persistence: bool,
    /// Data directory; `""` (default) means `./data/<node_id>`.
    pub data_dir: String,
    /// When writes are flushed to disk (default [`FsyncPolicy::Everysec`]).
    pub fsync: FsyncPolicy,
    /// Memory budget in MiB; 0 (default) is unlimited.
    pub memory_limit_mb: u64,
    /// Size in MiB at which a change-log segment is sealed and folded into
    /// the engine (default 64, 1..=4096). Larger: fewer engine writes for
    /// keys written often, a longer replay after a crash.
    pub log_segment_mb: u64,
    /// Seconds a tombstone is kept before garbage collection (default 86400).
    pub tombstone_grace_seconds: u64,
    /// Remote clocks further ahead than this many milliseconds do not drag
    /// the local clock (default 60000).
    pub max_clock_skew_ms: u64,
    /// Storage engine (default `"fjall"`). The seed's `"rwlock"`, `"kv"` and
    /// `"sled"` are accepted with a warning and replaced by `"fjall"`.
    pub engine: String,
    /// Seed key, accepted; has no effect yet (default 0).
    pub backup_interval_hours: u64,
    /// At start-up, write entries recovered from disk whose version lies
    /// beyond the clock's bound again with a fresh version, instead of
    /// leaving them out (default false; `--restamp-future-versions`).
    pub restamp_future_versions: bool,
}

/// `[logging]`: diagnostics output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// One of `trace`, `debug`, `info` (default), `warn`, `error`.
    pub level: String,
    /// Line format (default [`LogFormat::Text`]).
    pub format: LogFormat,
    /// `""` (default) logs to stderr; otherwise lines are appended to this file.
    pub file_path: String,
}

/// How anti-entropy compares two replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Descend the Merkle trees and exchange only differing leaves.
    #[default]
    Merkle,
    /// Exchange the full state (seed-compatible baseline).
    Full,
}

/// When acknowledged writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// Before the reply (group commit): a write survives `kill -9`.
    Always,
    /// About once a second: at most ~1 s of writes lost on a crash.
    #[default]
    Everysec,
    /// Left to the operating system.
    Never,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("enabled", &self.enabled)
            .field("broker_address", &self.broker_address)
            .field("topic_prefix", &self.topic_prefix)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("keep_alive", &self.keep_alive)
            .field("clean_session", &self.clean_session)
            .field("queue_size", &self.queue_size)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .field("max_packet_bytes", &self.max_packet_bytes)
            .finish()
    }
}

impl SyncMode {
    /// The configuration spelling (`"merkle"` or `"full"`).
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Merkle => "merkle",
            SyncMode::Full => "full",
        }
    }
}

impl FsyncPolicy {
    /// The configuration spelling (`"always"`, `"everysec"` or `"never"`).
    pub fn as_str(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Everysec => "everysec",
            FsyncPolicy::Never => "never",
        }
    }
}

impl LogFormat {
    /// The configuration spelling (`"text"` or `"json"`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Why a configuration could not be loaded or is not valid.
///
/// Every variant names what is wrong and where it came from: a file path,
/// `environment variable MERKLE_KV_...`, or `the configuration` for errors
/// found by [`Config::validate`] on a value not traced to a source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error("cannot parse {path}: {message}")]
    Parse {
        /// Name of the file (or of the text source).
        path: String,
        /// The TOML parser's message, with line and column.
        message: String,
    },
    /// A key (or `MERKLE_KV_*` variable) that does not exist.
    #[error("unknown key '{key}' in {source_name}{}", did_you_mean(.suggestion))]
    UnknownKey {
        /// Dotted key path, or the environment variable name.
        key: String,
        /// The nearest valid key, in the same spelling as `key`.
        suggestion: Option<String>,
        /// Where the key was found.
        source_name: String,
    },
    /// A value of the wrong TOML type.
    #[error("wrong type for '{key}' in {source_name}: expected {expected}, found {found}")]
    InvalidType {
        /// Dotted key path.
        key: String,
        /// The expected form, e.g. `an integer`.
        expected: String,
        /// What was given.
        found: String,
        /// Where the value came from.
        source_name: String,
    },
    /// A value of the right type that is not acceptable.
    #[error("invalid value for '{key}' in {source_name}: {reason}")]
    InvalidValue {
        /// Dotted key path (list elements as `key[index]`).
        key: String,
        /// Why the value is rejected.
        reason: String,
        /// Where the value came from.
        source_name: String,
    },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean '{s}'?)"),
        None => String::new(),
    }
}

/// A loaded, validated configuration plus the non-fatal findings.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    /// The effective configuration.
    pub config: Config,
    /// One line per accepted key that has no effect (or a suspicious
    /// combination); the caller logs them at startup.
    pub warnings: Vec<String>,
}

/// An MQTT broker address parsed from `mqtt.broker_address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `true` for `mqtts://` (MQTT over TLS).
    pub tls: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: "node1".to_owned(),
            description: String::new(),
            network: NetworkConfig::default(),
            mqtt: MqttConfig::default(),
            anti_entropy: AntiEntropyConfig::default(),
            storage: StorageConfig::default(),
            logging: LoggingConfig::default(),
            cluster: ClusterConfig::default(),
            security: SecurityConfig::default(),
        }
    }
}

/// Default `network.idle_poll_us`: on the 2-core machine of
/// docs/benchmarks.md this kept the gains of polling at `-c 50 -P 1` for
/// an eighth of the extra CPU a 200 µs window cost at 5,000 requests a
/// second (10 % of a core against 84 %).
pub const DEFAULT_IDLE_POLL_US: u64 = 20;

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            bind_address: "127.0.0.1".to_owned(),
            bind_port: 7379,
            sync_port: 7380,
            metrics_port: 9379,
            advertise_address: String::new(),
            max_connections: 10_000,
            max_connections_per_ip: 0,
            max_line_bytes: 1 << 20,
            max_client_memory_mb: 1024,
            idle_timeout_seconds: 0,
            reply_timeout_seconds: 60,
            connection_timeout: 30,
            worker_threads: 0,
            idle_poll_us: DEFAULT_IDLE_POLL_US,
        }
    }
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            enabled: None,
            broker_address: String::new(),
            topic_prefix: "merkle_kv".to_owned(),
            client_id: String::new(),
            username: None,
            password: None,
            keep_alive: 30,
            clean_session: true,
            queue_size: 65_536,
            max_batch_bytes: 262_144,
            max_packet_bytes: 4 << 20,
        }
    }
}

impl Default for AntiEntropyConfig {
    fn default() -> Self {
        AntiEntropyConfig {
            enabled: true,
            mode: SyncMode::Merkle,
            interval_seconds: 30,
            peer_discovery_interval: 600,
            max_concurrent_syncs: 2,
            peer_list: Vec::new(),
            tree_fanout: 16,
            tree_depth: 4,
            timeout_seconds: 10,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            persistence: true,
            data_dir: String::new(),
            fsync: FsyncPolicy::Everysec,
            memory_limit_mb: 0,
            log_segment_mb: 64,
            tombstone_grace_seconds: 86_400,
            max_clock_skew_ms: 60_000,
            restamp_future_versions: false,
            engine: "fjall".to_owned(),
            backup_interval_hours: 0,
        }
    }
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".to_owned(),
            format: LogFormat::Text,
            file_path: String::new(),
        }
    }
}

impl Config {
    /// Loads the file at `path` (if any), applies the `MERKLE_KV_*` variables
    /// of the process environment, and validates the result.
    pub fn load(path: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
        let text = match path {
            Some(p) => Some(
                std::fs::read_to_string(p).map_err(|source| ConfigError::Io {
                    path: p.to_path_buf(),
                    source,
                })?,
            ),
            None => None,
        };
        let name = path.map(|p| p.display().to_string());
        let env = load::process_env()?;
        let file = text.as_deref().zip(name.as_deref());
        Config::from_sources(file, env)
    }

    /// The testable core of [`Config::load`]: `toml_text` is `(text, name)`
    /// where `name` (usually the file path) appears in messages; `env` is a
    /// set of environment variables (only `MERKLE_KV_*` ones are looked at,
    /// later entries win).
    pub fn from_sources(
        toml_text: Option<(&str, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<LoadedConfig, ConfigError> {
        load::from_sources(toml_text, env)
    }

    /// Checks every rule that serde's types cannot express; the error names
    /// the key and the reason.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::validate(self)
    }

    /// The data directory: `storage.data_dir`, or `./data/<node_id>` when empty.
    pub fn data_dir(&self) -> PathBuf {
        if self.storage.data_dir.is_empty() {
            PathBuf::from("./data").join(&self.node_id)
        } else {
            PathBuf::from(&self.storage.data_dir)
        }
    }

    /// Whether MQTT replication runs: `mqtt.enabled`, or when unset, whether
    /// a broker address is configured.
    pub fn mqtt_enabled(&self) -> bool {
        self.mqtt
            .enabled
            .unwrap_or(!self.mqtt.broker_address.is_empty())
    }

    /// The MQTT client id: `mqtt.client_id`, or `node_id` when empty.
    pub fn mqtt_client_id(&self) -> &str {
        if self.mqtt.client_id.is_empty() {
            &self.node_id
        } else {
            &self.mqtt.client_id
        }
    }

    /// The parsed `mqtt.broker_address`, or `None` when it is empty or
    /// malformed (a validated configuration is never malformed).
    pub fn mqtt_broker(&self) -> Option<BrokerAddress> {
        validate::parse_broker(&self.mqtt.broker_address).ok()
    }

    /// The number of runtime worker threads to start: `network.worker_threads`
    /// if set, else one per CPU available to this process (its affinity mask
    /// and cgroup quota, as `taskset` or a container limit set them) minus
    /// one, and at least one. The CPU left over serves the kernel's network
    /// stack, the node's own threads (log write-behind, fsync, checkpoints)
    /// and whatever shares the machine: on the 2-core machine of
    /// `docs/benchmarks.md` one worker matched or beat two on every workload
    /// measured except pipelined SETs, where runs split.
    pub fn worker_threads(&self) -> usize {
        match self.network.worker_threads {
            0 => default_worker_threads(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            ),
            n => n,
        }
    }

    /// `bind_address:bind_port`, the client listener (IPv6 in brackets).
    pub fn client_listen_addr(&self) -> String {
        join_host_port(&self.network.bind_address, self.network.bind_port)
    }

    /// `bind_address:sync_port`, the gRPC anti-entropy listener.
    pub fn sync_listen_addr(&self) -> String {
        join_host_port(&self.network.bind_address, self.network.sync_port)
    }

    /// `bind_address:metrics_port`, or `None` when metrics are disabled.
    pub fn metrics_listen_addr(&self) -> Option<String> {
        (self.network.metrics_port != 0)
            .then(|| join_host_port(&self.network.bind_address, self.network.metrics_port))
    }

    /// The host peers are told to dial: `advertise_address`, or
    /// `bind_address` when empty.
    pub fn advertised_host(&self) -> &str {
        if self.network.advertise_address.is_empty() {
            &self.network.bind_address
        } else {
            &self.network.advertise_address
        }
    }

    /// `advertised_host:sync_port`, the sync address peers should dial.
    pub fn advertised_sync_addr(&self) -> String {
        join_host_port(self.advertised_host(), self.network.sync_port)
    }

    /// The address peers are told to dial for a listener bound at `bound`
    /// (`ip:port`): the advertised host with the bound port; `""` when
    /// `bound` is not a socket address (a disabled listener).
    pub fn advertised_addr(&self, bound: &str) -> String {
        match bound.parse::<std::net::SocketAddr>() {
            Ok(addr) => join_host_port(self.advertised_host(), addr.port()),
            Err(_) => String::new(),
        }
    }
}

/// `host:port`, with IPv6 literals in brackets.
fn join_host_port(host: &str, port: u16) -> String {
    if host.parse::<Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The default worker count for a process that may use `cpus` CPUs: all but
/// one, and at least one.
pub fn default_worker_threads(cpus: usize) -> usize {
    cpus.saturating_sub(1).max(1)
}
