//! Reading TOML files.

use super::*;

const FULL: &str = r#"
node_id = "alpha-1"
description = "first node"

[network]
bind_address = "0.0.0.0"
bind_port = 8001
sync_port = 8002
metrics_port = 0
advertise_address = "alpha.internal"
max_connections = 50
max_line_bytes = 4096
idle_timeout_seconds = 300

[mqtt]
enabled = true
broker_address = "mqtts://broker.internal:8883"
topic_prefix = "kv/prod"
client_id = "alpha-client"
username = "kv"
password = "secret"
keep_alive = 15
clean_session = false
queue_size = 1024
max_batch_bytes = 65536
max_packet_bytes = 1048576

[anti_entropy]
enabled = false
mode = "full"
interval_seconds = 5
peer_discovery_interval = 120
max_concurrent_syncs = 4
peer_list = ["beta.internal:8002", "10.0.0.3:8002", "[fd00::4]:8002"]
tree_fanout = 256
tree_depth = 3
timeout_seconds = 3

[storage]
persistence = false
data_dir = "/srv/kv"
fsync = "always"
memory_limit_mb = 512
tombstone_grace_seconds = 3600
max_clock_skew_ms = 1000
engine = "fjall"

[logging]
level = "debug"
format = "json"
file_path = "/var/log/kv.log"
"#;

#[test]
fn file_sets_every_section() {
    let loaded = ok(load_toml(FULL));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.node_id, "alpha-1");
    assert_eq!(c.description, "first node");
    let n = &c.network;
    assert_eq!(
        (
            n.bind_address.as_str(),
            n.bind_port,
            n.sync_port,
            n.metrics_port
        ),
        ("0.0.0.0", 8001, 8002, 0)
    );
    assert_eq!(n.advertise_address, "alpha.internal");
    assert_eq!((n.max_connections, n.max_line_bytes), (50, 4096));
    assert_eq!(n.idle_timeout_seconds, 300);
    assert_eq!(n.connection_timeout, 30);
    let m = &c.mqtt;
    assert_eq!(m.enabled, Some(true));
    assert_eq!(m.broker_address, "mqtts://broker.internal:8883");
    assert_eq!(m.topic_prefix, "kv/prod");
    assert_eq!(m.client_id, "alpha-client");
    assert_eq!(m.username.as_deref(), Some("kv"));
    assert_eq!(m.password.as_deref(), Some("secret"));
    assert_eq!((m.keep_alive, m.clean_session), (15, false));
    assert_eq!(
        (m.queue_size, m.max_batch_bytes, m.max_packet_bytes),
        (1024, 65536, 1_048_576)
    );
    let a = &c.anti_entropy;
    assert!(!a.enabled);
    assert_eq!(a.mode, SyncMode::Full);
    assert_eq!(
        (
            a.interval_seconds,
            a.peer_discovery_interval,
            a.max_concurrent_syncs
        ),
        (5, 120, 4)
    );
    assert_eq!(
        a.peer_list,
        ["beta.internal:8002", "10.0.0.3:8002", "[fd00::4]:8002"]
    );
    assert_eq!(
        (a.tree_fanout, a.tree_depth, a.timeout_seconds),
        (256, 3, 3)
    );
    let s = &c.storage;
    assert!(!s.persistence);
    assert_eq!(s.data_dir, "/srv/kv");
    assert_eq!(s.fsync, FsyncPolicy::Always);
    assert_eq!((s.memory_limit_mb, s.tombstone_grace_seconds), (512, 3600));
    assert_eq!(s.max_clock_skew_ms, 1000);
    assert_eq!(s.engine, "fjall");
    assert_eq!(c.logging.level, "debug");
    assert_eq!(c.logging.format, LogFormat::Json);
    assert_eq!(c.logging.file_path, "/var/log/kv.log");
    assert_eq!(c.mqtt_client_id(), "alpha-client");
    assert_eq!(c.data_dir(), PathBuf::from("/srv/kv"));
}

#[test]
fn partial_file_keeps_other_defaults() {
    let c = ok(load_toml("[network]\nbind_port = 9000\n")).config;
    assert_eq!(c.network.bind_port, 9000);
    let mut want = Config::default();
    want.network.bind_port = 9000;
    assert_eq!(c, want);
}

#[test]
fn empty_file_is_the_default() {
    assert_eq!(ok(load_toml("")).config, Config::default());
    assert_eq!(ok(load_toml("# comment only\n")).config, Config::default());
}

#[test]
fn load_reads_a_file_and_reports_missing_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("node.toml");
    std::fs::write(&path, "node_id = \"from-file\"\n").expect("write");
    let has_node_id_env = std::env::var_os("MERKLE_KV_NODE_ID").is_some();
    if !has_node_id_env {
        assert_eq!(ok(Config::load(Some(&path))).config.node_id, "from-file");
    }

    let missing = dir.path().join("missing.toml");
    let e = err(Config::load(Some(&missing)));
    assert!(matches!(e, ConfigError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("missing.toml"), "{e}");
}

#[test]
fn malformed_toml_is_a_parse_error_naming_the_file() {
    let e = err(load_toml("[network\nbind_port = 1"));
    assert!(matches!(e, ConfigError::Parse { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(NAME), "{msg}");
    assert!(msg.contains("line 1"), "{msg}");
}

#[test]
fn storage_persistence_enabled_alias() {
    let c = ok(load_toml("[storage]\npersistence_enabled = false\n")).config;
    assert!(!c.storage.persistence);
    let c = ok(load_env(&[(
        "MERKLE_KV_STORAGE_PERSISTENCE_ENABLED",
        "false",
    )]))
    .config;
    assert!(!c.storage.persistence);
    // Direct serde use honours the alias too.
    let direct: Config =
        toml::from_str("[storage]\npersistence_enabled = false\n").expect("deserializes");
    assert!(!direct.storage.persistence);

    let e = err(load_toml(
        "[storage]\npersistence = true\npersistence_enabled = false\n",
    ));
    assert_invalid(&e, "storage.persistence_enabled");
}
