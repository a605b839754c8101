//! MERKLE_KV_* environment overrides.

use super::*;

#[test]
fn env_overrides_nested_key_over_file() {
    let file = "node_id = \"file-node\"\n[network]\nbind_port = 8000\nsync_port = 8001\n";
    let c = ok(Config::from_sources(
        Some((file, NAME)),
        env(&[
            ("MERKLE_KV_NETWORK_BIND_PORT", "8080"),
            ("MERKLE_KV_NODE_ID", "n1"),
            ("PATH", "/usr/bin"),
            ("MERKLE_KV_CONFIG", "/etc/ignored.toml"),
        ]),
    ))
    .config;
    assert_eq!(c.network.bind_port, 8080);
    assert_eq!(c.network.sync_port, 8001);
    assert_eq!(c.node_id, "n1");
}

#[test]
fn env_overrides_anti_entropy_keys() {
    let c = ok(load_env(&[
        ("MERKLE_KV_ANTI_ENTROPY_INTERVAL_SECONDS", "7"),
        ("MERKLE_KV_ANTI_ENTROPY_ENABLED", "false"),
        ("MERKLE_KV_ANTI_ENTROPY_MODE", "full"),
        ("MERKLE_KV_ANTI_ENTROPY_TREE_FANOUT", "4"),
    ]))
    .config;
    assert_eq!(c.anti_entropy.interval_seconds, 7);
    assert!(!c.anti_entropy.enabled);
    assert_eq!(c.anti_entropy.mode, SyncMode::Full);
    assert_eq!(c.anti_entropy.tree_fanout, 4);
}

#[test]
fn env_list_is_comma_separated() {
    let c = ok(load_env(&[(
        "MERKLE_KV_ANTI_ENTROPY_PEER_LIST",
        "a:7380, b:7380 ,,c.example:7480",
    )]))
    .config;
    assert_eq!(
        c.anti_entropy.peer_list,
        ["a:7380", "b:7380", "c.example:7480"]
    );

    let file = "[anti_entropy]\npeer_list = [\"x:1\"]\n";
    let c = ok(Config::from_sources(
        Some((file, NAME)),
        env(&[("MERKLE_KV_ANTI_ENTROPY_PEER_LIST", "")]),
    ))
    .config;
    assert!(c.anti_entropy.peer_list.is_empty());
}

#[test]
fn env_booleans_strings_and_options() {
    let c = ok(load_env(&[
        ("MERKLE_KV_MQTT_CLEAN_SESSION", "FALSE"),
        ("MERKLE_KV_MQTT_ENABLED", "true"),
        ("MERKLE_KV_MQTT_BROKER_ADDRESS", "tcp://127.0.0.1:1883"),
        ("MERKLE_KV_MQTT_USERNAME", "user"),
        ("MERKLE_KV_MQTT_PASSWORD", "p,w d"),
        ("MERKLE_KV_STORAGE_FSYNC", "never"),
        ("MERKLE_KV_LOGGING_FORMAT", "json"),
        ("MERKLE_KV_DESCRIPTION", "from env"),
    ]))
    .config;
    assert!(!c.mqtt.clean_session);
    assert_eq!(c.mqtt.enabled, Some(true));
    assert!(c.mqtt_enabled());
    assert_eq!(c.mqtt.username.as_deref(), Some("user"));
    assert_eq!(c.mqtt.password.as_deref(), Some("p,w d"));
    assert_eq!(c.storage.fsync, FsyncPolicy::Never);
    assert_eq!(c.logging.format, LogFormat::Json);
    assert_eq!(c.description, "from env");
}

#[test]
fn later_env_entries_win() {
    let c = ok(load_env(&[
        ("MERKLE_KV_NETWORK_BIND_PORT", "8000"),
        ("MERKLE_KV_NETWORK_BIND_PORT", "8100"),
    ]))
    .config;
    assert_eq!(c.network.bind_port, 8100);
}

#[test]
fn unknown_env_var_is_an_error_with_suggestion() {
    let e = err(load_env(&[("MERKLE_KV_NETWORK_BIND_PROT", "1")]));
    match &e {
        ConfigError::UnknownKey {
            key, suggestion, ..
        } => {
            assert_eq!(key, "MERKLE_KV_NETWORK_BIND_PROT");
            assert_eq!(suggestion.as_deref(), Some("MERKLE_KV_NETWORK_BIND_PORT"));
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("MERKLE_KV_NETWORK_BIND_PROT"), "{msg}");
    assert!(
        msg.contains("did you mean 'MERKLE_KV_NETWORK_BIND_PORT'"),
        "{msg}"
    );

    let suggest = |var: &str| match err(load_env(&[(var, "1")])) {
        ConfigError::UnknownKey { suggestion, .. } => suggestion,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        suggest("MERKLE_KV_ANTIENTROPY_INTERVAL_SECONDS").as_deref(),
        Some("MERKLE_KV_ANTI_ENTROPY_INTERVAL_SECONDS")
    );
    assert_eq!(
        suggest("MERKLE_KV_BIND_PORT").as_deref(),
        Some("MERKLE_KV_NETWORK_BIND_PORT")
    );
    assert_eq!(
        suggest("MERKLE_KV_NETWORK_PEER_LIST").as_deref(),
        Some("MERKLE_KV_ANTI_ENTROPY_PEER_LIST")
    );
    assert_eq!(suggest("MERKLE_KV_WHATEVER"), None);
}

#[test]
fn env_wrong_type_names_key_and_variable() {
    let e = err(load_env(&[("MERKLE_KV_NETWORK_BIND_PORT", "eighty")]));
    match &e {
        ConfigError::InvalidType {
            key, source_name, ..
        } => {
            assert_eq!(key, "network.bind_port");
            assert!(source_name.contains("MERKLE_KV_NETWORK_BIND_PORT"));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("expected an integer"), "{e}");

    let e = err(load_env(&[("MERKLE_KV_ANTI_ENTROPY_ENABLED", "yes")]));
    assert!(
        matches!(&e, ConfigError::InvalidType { key, .. } if key == "anti_entropy.enabled"),
        "{e:?}"
    );
    assert!(e.to_string().contains("true or false"), "{e}");
}

#[test]
fn env_out_of_range_port_names_key() {
    let e = err(load_env(&[("MERKLE_KV_NETWORK_BIND_PORT", "70000")]));
    assert_invalid(&e, "network.bind_port");
    let msg = e.to_string();
    // The range said is the one validation accepts: a client port of 0 is
    // refused, a metrics port of 0 disables metrics.
    assert!(msg.contains("a port from 1 to 65535"), "{msg}");
    assert!(msg.contains("MERKLE_KV_NETWORK_BIND_PORT"), "{msg}");
    let zero = err(load_env(&[("MERKLE_KV_NETWORK_BIND_PORT", "0")]));
    assert!(zero.to_string().contains("1..=65535"), "{zero}");
    let metrics = err(load_env(&[("MERKLE_KV_NETWORK_METRICS_PORT", "70000")]));
    assert!(
        metrics.to_string().contains("or 0 to disable metrics"),
        "{metrics}"
    );

    let e = err(load_env(&[("MERKLE_KV_STORAGE_MEMORY_LIMIT_MB", "-5")]));
    assert_invalid(&e, "storage.memory_limit_mb");
    assert!(e.to_string().contains("non-negative"), "{e}");
}

#[test]
fn validation_errors_name_the_env_var_that_set_the_value() {
    let e = err(load_env(&[("MERKLE_KV_NETWORK_BIND_PORT", "0")]));
    assert_invalid(&e, "network.bind_port");
    assert!(e.to_string().contains("MERKLE_KV_NETWORK_BIND_PORT"), "{e}");
}

#[test]
fn float_keys_take_decimals_from_files_and_env_and_refuse_the_rest() {
    let c = ok(load_env(&[(
        "MERKLE_KV_CLUSTER_READ_REPAIR_CHANCE",
        "0.25",
    )]))
    .config;
    assert_eq!(c.cluster.read_repair_chance, 0.25);
    let file = "[cluster]\nread_repair_chance = 0.5\n";
    let c = ok(Config::from_sources(Some((file, NAME)), env(&[]))).config;
    assert_eq!(c.cluster.read_repair_chance, 0.5);

    let e = err(load_env(&[(
        "MERKLE_KV_CLUSTER_READ_REPAIR_CHANCE",
        "often",
    )]));
    assert!(
        e.to_string().contains("a number with a decimal point"),
        "{e}"
    );
    let e = err(Config::from_sources(
        Some(("[cluster]\nread_repair_chance = 1\n", NAME)),
        env(&[]),
    ));
    assert!(e.to_string().contains("the integer 1"), "{e}");
    for bad in ["1.5", "-0.1", "NaN"] {
        let e = err(load_env(&[("MERKLE_KV_CLUSTER_READ_REPAIR_CHANCE", bad)]));
        assert!(
            e.to_string().contains("cluster.read_repair_chance"),
            "{bad}: {e}"
        );
    }
}
