//! Defaults, derived accessors, the schema and error formatting.

use super::*;

#[test]
fn defaults_with_no_file_and_no_env() {
    let loaded = ok(load_env(&[]));
    assert_eq!(loaded.config, Config::default());
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

    let c = &loaded.config;
    assert_eq!(c.node_id, "node1");
    assert_eq!(c.description, "");
    assert_eq!(c.network.bind_address, "127.0.0.1");
    assert_eq!(c.network.bind_port, 7379);
    assert_eq!(c.network.sync_port, 7380);
    assert_eq!(c.network.metrics_port, 9379);
    assert_eq!(c.network.advertise_address, "");
    assert_eq!(c.network.max_connections, 10_000);
    assert_eq!(c.network.max_line_bytes, 1_048_576);
    assert_eq!(c.network.idle_timeout_seconds, 0);
    assert_eq!(c.network.connection_timeout, 30);
    assert_eq!(c.network.worker_threads, 0);
    assert_eq!(c.network.idle_poll_us, 20);
    assert_eq!(c.mqtt.enabled, None);
    assert_eq!(c.mqtt.broker_address, "");
    assert_eq!(c.mqtt.topic_prefix, "merkle_kv");
    assert_eq!(c.mqtt.client_id, "");
    assert_eq!(c.mqtt.username, None);
    assert_eq!(c.mqtt.password, None);
    assert_eq!(c.mqtt.keep_alive, 30);
    assert!(c.mqtt.clean_session);
    assert_eq!(c.mqtt.queue_size, 65_536);
    assert_eq!(c.mqtt.max_batch_bytes, 262_144);
    assert_eq!(c.mqtt.max_packet_bytes, 4_194_304);
    assert!(c.anti_entropy.enabled);
    assert_eq!(c.anti_entropy.mode, SyncMode::Merkle);
    assert_eq!(c.anti_entropy.interval_seconds, 30);
    assert_eq!(c.anti_entropy.peer_discovery_interval, 600);
    assert_eq!(c.anti_entropy.max_concurrent_syncs, 2);
    assert!(c.anti_entropy.peer_list.is_empty());
    assert_eq!(c.anti_entropy.tree_fanout, 16);
    assert_eq!(c.anti_entropy.tree_depth, 4);
    assert_eq!(c.anti_entropy.timeout_seconds, 10);
    assert!(c.storage.persistence);
    assert_eq!(c.storage.data_dir, "");
    assert_eq!(c.storage.fsync, FsyncPolicy::Everysec);
    assert_eq!(c.storage.memory_limit_mb, 0);
    assert_eq!(c.storage.tombstone_grace_seconds, 86_400);
    assert_eq!(c.storage.max_clock_skew_ms, 60_000);
    assert_eq!(c.storage.engine, "fjall");
    assert_eq!(c.storage.backup_interval_hours, 0);
    assert_eq!(c.logging.level, "info");
    assert_eq!(c.logging.format, LogFormat::Text);
    assert_eq!(c.logging.file_path, "");
}

#[test]
fn load_without_path_uses_defaults_plus_process_env() {
    // The test process does not set MERKLE_KV_* variables for configuration.
    let has_config_env = std::env::vars_os().any(|(k, _)| {
        k.to_str()
            .is_some_and(|k| k.starts_with(ENV_PREFIX) && !RESERVED_ENV_VARS.contains(&k))
    });
    if !has_config_env {
        assert_eq!(ok(Config::load(None)).config, Config::default());
    }
}

#[test]
fn derived_accessors() {
    let mut c = Config::default();
    assert_eq!(c.data_dir(), PathBuf::from("./data/node1"));
    assert!(!c.mqtt_enabled());
    assert_eq!(c.mqtt_client_id(), "node1");
    assert_eq!(c.client_listen_addr(), "127.0.0.1:7379");
    assert_eq!(c.sync_listen_addr(), "127.0.0.1:7380");
    assert_eq!(c.metrics_listen_addr().as_deref(), Some("127.0.0.1:9379"));
    assert_eq!(c.advertised_host(), "127.0.0.1");
    assert_eq!(c.advertised_sync_addr(), "127.0.0.1:7380");
    assert_eq!(c.mqtt_broker(), None);

    c.storage.data_dir = "/var/lib/merklekv".into();
    c.mqtt.broker_address = "mqtts://broker.example:8883".into();
    c.mqtt.client_id = "kv-a".into();
    c.network.bind_address = "::1".into();
    c.network.metrics_port = 0;
    c.network.advertise_address = "kv-a.example".into();
    assert_eq!(c.data_dir(), PathBuf::from("/var/lib/merklekv"));
    assert!(c.mqtt_enabled());
    assert_eq!(c.mqtt_client_id(), "kv-a");
    assert_eq!(c.client_listen_addr(), "[::1]:7379");
    assert_eq!(c.sync_listen_addr(), "[::1]:7380");
    assert_eq!(c.metrics_listen_addr(), None);
    assert_eq!(c.advertised_host(), "kv-a.example");
    assert_eq!(c.advertised_sync_addr(), "kv-a.example:7380");
    assert_eq!(
        c.mqtt_broker(),
        Some(BrokerAddress {
            host: "broker.example".into(),
            port: 8883,
            tls: true
        })
    );

    c.mqtt.enabled = Some(false);
    assert!(!c.mqtt_enabled());
    c.mqtt.broker_address.clear();
    c.mqtt.enabled = None;
    assert!(!c.mqtt_enabled());
}

#[test]
fn schema_lists_every_key_including_optional_ones() {
    let s = schema();
    assert_eq!(
        s.sections.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "anti_entropy",
            "cluster",
            "logging",
            "mqtt",
            "network",
            "security",
            "storage"
        ]
    );
    for key in [
        "mqtt.enabled",
        "mqtt.username",
        "mqtt.password",
        "node_id",
        "description",
    ] {
        assert!(s.keys.contains_key(key), "{key} missing");
    }
    assert_eq!(s.keys.len(), 2 + 14 + 11 + 11 + 10 + 3 + 9 + 3);
    // Every key (and the alias) has its own environment variable name.
    assert_eq!(s.env_names.len(), s.keys.len() + 1);
    assert_eq!(
        env_name("anti_entropy.peer_list"),
        "MERKLE_KV_ANTI_ENTROPY_PEER_LIST"
    );
}

#[test]
fn serialized_config_round_trips() {
    let mut c = Config::default();
    c.mqtt.username = Some("u".into());
    c.mqtt.password = Some("p".into());
    c.mqtt.enabled = Some(false);
    c.anti_entropy.peer_list = vec!["a:1".into()];
    c.storage.fsync = FsyncPolicy::Always;
    let text = toml::to_string(&c).expect("serializes");
    assert_eq!(ok(load_toml(&text)).config, c);
    let default_text = toml::to_string(&Config::default()).expect("serializes");
    assert_eq!(ok(load_toml(&default_text)).config, Config::default());
}

#[test]
fn error_messages_read_well() {
    let e = ConfigError::UnknownKey {
        key: "x".into(),
        suggestion: None,
        source_name: "f.toml".into(),
    };
    assert_eq!(e.to_string(), "unknown key 'x' in f.toml");
    let e = ConfigError::InvalidValue {
        key: "network.bind_port".into(),
        reason: "port 0 is not allowed; use 1..=65535".into(),
        source_name: "f.toml".into(),
    };
    assert_eq!(
        e.to_string(),
        "invalid value for 'network.bind_port' in f.toml: port 0 is not allowed; use 1..=65535"
    );
}

#[test]
fn debug_output_redacts_the_mqtt_password() {
    let mut c = Config::default();
    c.mqtt.username = Some("kv-user".into());
    c.mqtt.password = Some("hunter2-secret".into());
    let shown = format!("{c:?}");
    assert!(!shown.contains("hunter2-secret"), "{shown}");
    assert!(
        shown.contains("<redacted>") && shown.contains("kv-user"),
        "{shown}"
    );
    assert!(shown.contains("max_packet_bytes: 4194304"), "{shown}");
}

#[test]
fn worker_threads_default_leaves_one_cpu_and_keeps_one_worker() {
    assert_eq!(default_worker_threads(0), 1);
    assert_eq!(default_worker_threads(1), 1);
    assert_eq!(default_worker_threads(2), 1);
    assert_eq!(default_worker_threads(8), 7);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(
        Config::default().worker_threads(),
        default_worker_threads(cpus)
    );
    let mut c = Config::default();
    c.network.worker_threads = 5;
    assert_eq!(c.worker_threads(), 5);
}

#[test]
fn cluster_settings_are_checked() {
    let mut c = Config::default();
    assert!(!c.cluster.is_partitioned());
    c.cluster.replication_factor = 3;
    assert!(c.validate().is_ok());
    c.cluster.replication_factor = 17;
    let e = c.validate().expect_err("rf 17").to_string();
    assert!(e.contains("cluster.replication_factor"), "{e}");
    c.cluster.replication_factor = 3;
    c.cluster.failure_timeout_ms = c.cluster.heartbeat_interval_ms;
    let e = c.validate().expect_err("timeout").to_string();
    assert!(e.contains("cluster.failure_timeout_ms"), "{e}");
    c.cluster.failure_timeout_ms = 3000;
    c.cluster.vnodes = 0;
    let e = c.validate().expect_err("vnodes").to_string();
    assert!(e.contains("cluster.vnodes"), "{e}");
}
