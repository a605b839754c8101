//! Seed-compatible configurations and the shipped configs/*.toml.

use super::*;

const SEED: &str = r#"
# MerkleKV seed example configuration
node_id = "node1"
description = "Example MerkleKV node"

[network]
bind_address = "127.0.0.1"
bind_port = 7379
max_connections = 1000
connection_timeout = 30

[mqtt]
broker_address = "localhost:1883"
topic_prefix = "merkle_kv"
client_id = "node1"
keep_alive = 60
clean_session = true
username = "merkle"
password = "secret"

[anti_entropy]
enabled = true
interval_seconds = 60
peer_discovery_interval = 300
max_concurrent_syncs = 3
peer_list = ["node2:7380", "node3:7380"]

[storage]
memory_limit_mb = 1024
persistence_enabled = true
backup_interval_hours = 24
engine = "rwlock"

[logging]
level = "info"
format = "text"
file_path = ""
"#;

#[test]
fn seed_example_config_loads_with_warnings() {
    let loaded = ok(load_toml(SEED));
    let c = &loaded.config;
    assert_eq!(c.node_id, "node1");
    assert_eq!(c.description, "Example MerkleKV node");
    assert_eq!(c.network.max_connections, 1000);
    assert_eq!(c.network.connection_timeout, 30);
    assert_eq!(c.mqtt.keep_alive, 60);
    assert_eq!(c.mqtt.username.as_deref(), Some("merkle"));
    assert!(c.mqtt_enabled());
    assert_eq!(c.anti_entropy.interval_seconds, 60);
    assert_eq!(c.anti_entropy.peer_discovery_interval, 300);
    assert_eq!(c.anti_entropy.max_concurrent_syncs, 3);
    assert_eq!(c.anti_entropy.peer_list, ["node2:7380", "node3:7380"]);
    assert_eq!(c.storage.memory_limit_mb, 1024);
    assert!(c.storage.persistence);
    assert_eq!(c.storage.backup_interval_hours, 24);
    assert_eq!(
        c.storage.engine, "fjall",
        "seed engine is replaced by fjall"
    );

    let w = &loaded.warnings;
    assert_eq!(w.len(), 3, "{w:#?}");
    let has = |needle: &str, also: &str| {
        w.iter()
            .any(|line| line.contains(needle) && line.contains(also))
    };
    assert!(has("network.connection_timeout", "has no effect"), "{w:#?}");
    assert!(
        has("storage.backup_interval_hours", "has no effect yet"),
        "{w:#?}"
    );
    assert!(has("storage.engine", "fjall is used"), "{w:#?}");
    assert!(w.iter().all(|line| line.contains(NAME)), "{w:#?}");
}

#[test]
fn backup_interval_zero_does_not_warn_but_wildcard_bind_does() {
    let loaded = ok(load_toml("[storage]\nbackup_interval_hours = 0\n"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

    let loaded = ok(load_env(&[("MERKLE_KV_NETWORK_BIND_ADDRESS", "0.0.0.0")]));
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].contains("network.advertise_address"));
    let loaded = ok(load_env(&[
        ("MERKLE_KV_NETWORK_BIND_ADDRESS", "0.0.0.0"),
        ("MERKLE_KV_NETWORK_ADVERTISE_ADDRESS", "kv1"),
    ]));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

// ---------------------------------------------------------------- shipped files

#[test]
fn shipped_configs_parse_and_validate() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut loaded = std::collections::BTreeMap::new();
    for name in ["example.toml", "node1.toml", "node2.toml", "node3.toml"] {
        let path = dir.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        let result = Config::from_sources(Some((&text, name)), Vec::new());
        loaded.insert(name, ok(result));
    }

    // example.toml documents every key with its default value.
    let example = &loaded["example.toml"];
    assert_eq!(example.config, Config::default());
    let text = std::fs::read_to_string(dir.join("example.toml")).unwrap_or_default();
    for key in schema().keys.keys() {
        let leaf = key.rsplit('.').next().unwrap_or(key);
        assert!(
            text.contains(&format!("{leaf} =")),
            "example.toml does not mention {key}"
        );
    }

    // The three nodes form one local cluster.
    let nodes: Vec<&Config> = ["node1.toml", "node2.toml", "node3.toml"]
        .iter()
        .map(|n| &loaded[n].config)
        .collect();
    for (i, c) in nodes.iter().enumerate() {
        let n = i + 1;
        let offset = 100 * i as u16;
        assert_eq!(c.node_id, format!("node{n}"));
        assert_eq!(c.network.bind_port, 7379 + offset);
        assert_eq!(c.network.sync_port, 7380 + offset);
        assert_eq!(c.network.metrics_port, 9379 + offset);
        assert_eq!(c.data_dir(), PathBuf::from(format!("./data/node{n}")));
        assert_eq!(c.mqtt.broker_address, "tcp://127.0.0.1:1883");
        assert!(c.mqtt_enabled());
        assert_eq!(c.anti_entropy.interval_seconds, 10);
        let mut want: Vec<String> = nodes
            .iter()
            .filter(|other| other.node_id != c.node_id)
            .map(|other| other.advertised_sync_addr())
            .collect();
        want.sort();
        let mut peers = c.anti_entropy.peer_list.clone();
        peers.sort();
        assert_eq!(peers, want, "{}", c.node_id);
        assert!(loaded[format!("node{n}.toml").as_str()].warnings.is_empty());
    }
}

#[test]
fn configuration_reference_documents_every_key() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    for section in &schema().sections {
        assert!(
            text.contains(&format!("### `[{section}]`")),
            "docs/configuration.md has no [{section}] table"
        );
    }
    for key in schema().keys.keys() {
        let leaf = key.rsplit('.').next().unwrap_or(key);
        assert!(
            text.contains(&format!("| `{leaf}` |")),
            "docs/configuration.md does not document {key}"
        );
    }
}
