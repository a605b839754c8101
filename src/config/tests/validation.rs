//! Config::validate rules.

use super::*;

#[test]
fn default_config_is_valid() {
    assert!(Config::default().validate().is_ok());
}

#[test]
fn each_validation_rule_rejects_and_names_the_key() {
    type Change = fn(&mut Config);
    let cases: Vec<(&str, Change)> = vec![
        ("node_id", |c| c.node_id.clear()),
        ("node_id", |c| c.node_id = "node 1".into()),
        ("node_id", |c| c.node_id = "../etc".into()),
        ("node_id", |c| c.node_id = "x".repeat(65)),
        ("network.bind_address", |c| {
            c.network.bind_address = "".into()
        }),
        ("network.bind_address", |c| {
            c.network.bind_address = "not a host".into()
        }),
        ("network.bind_address", |c| {
            c.network.bind_address = "-bad.example".into()
        }),
        ("network.bind_address", |c| {
            c.network.bind_address = "127.0.0.1:7379".into()
        }),
        ("network.advertise_address", |c| {
            c.network.advertise_address = "a b".into()
        }),
        ("network.advertise_address", |c| {
            c.network.advertise_address = "0.0.0.0".into()
        }),
        ("network.bind_port", |c| c.network.bind_port = 0),
        ("network.sync_port", |c| c.network.sync_port = 0),
        ("network.sync_port", |c| {
            c.network.sync_port = c.network.bind_port
        }),
        ("network.metrics_port", |c| {
            c.network.metrics_port = c.network.bind_port
        }),
        ("network.metrics_port", |c| {
            c.network.metrics_port = c.network.sync_port
        }),
        ("network.max_connections", |c| c.network.max_connections = 0),
        ("network.max_line_bytes", |c| {
            c.network.max_line_bytes = 1023
        }),
        ("network.idle_timeout_seconds", |c| {
            c.network.idle_timeout_seconds = 1
        }),
        ("network.idle_timeout_seconds", |c| {
            c.network.idle_timeout_seconds = 59
        }),
        ("network.worker_threads", |c| {
            c.network.worker_threads = 1025
        }),
        ("network.idle_poll_us", |c| c.network.idle_poll_us = 100_001),
        ("mqtt.broker_address", |c| {
            c.mqtt.broker_address = "localhost".into()
        }),
        ("mqtt.broker_address", |c| {
            c.mqtt.broker_address = "mqtt://localhost:1883".into()
        }),
        ("mqtt.broker_address", |c| {
            c.mqtt.broker_address = "tcp://localhost".into()
        }),
        ("mqtt.broker_address", |c| {
            c.mqtt.broker_address = "tcp://localhost:0".into()
        }),
        ("mqtt.broker_address", |c| {
            c.mqtt.broker_address = "localhost:99999".into()
        }),
        ("mqtt.broker_address", |c| {
            c.mqtt.broker_address = "tcp://bad host:1883".into()
        }),
        ("mqtt.broker_address", |c| {
            c.mqtt.broker_address = "::1:1883".into()
        }),
        ("mqtt.enabled", |c| c.mqtt.enabled = Some(true)),
        ("mqtt.topic_prefix", |c| c.mqtt.topic_prefix.clear()),
        ("mqtt.topic_prefix", |c| c.mqtt.topic_prefix = "kv/#".into()),
        ("mqtt.topic_prefix", |c| {
            c.mqtt.topic_prefix = "kv/+/x".into()
        }),
        ("mqtt.topic_prefix", |c| c.mqtt.topic_prefix = "kv/".into()),
        ("mqtt.client_id", |c| c.mqtt.client_id = "a\nb".into()),
        ("mqtt.password", |c| c.mqtt.password = Some("secret".into())),
        ("mqtt.keep_alive", |c| c.mqtt.keep_alive = 65_536),
        ("mqtt.queue_size", |c| c.mqtt.queue_size = 0),
        ("mqtt.max_packet_bytes", |c| {
            c.mqtt.max_packet_bytes = c.network.max_line_bytes
        }),
        ("mqtt.max_packet_bytes", |c| {
            c.mqtt.max_packet_bytes = 300 << 20
        }),
        ("mqtt.max_batch_bytes", |c| c.mqtt.max_batch_bytes = 0),
        ("mqtt.max_batch_bytes", |c| {
            c.mqtt.max_batch_bytes = c.mqtt.max_packet_bytes + 1
        }),
        ("anti_entropy.interval_seconds", |c| {
            c.anti_entropy.interval_seconds = 0
        }),
        ("anti_entropy.peer_discovery_interval", |c| {
            c.anti_entropy.peer_discovery_interval = 0
        }),
        ("anti_entropy.max_concurrent_syncs", |c| {
            c.anti_entropy.max_concurrent_syncs = 0
        }),
        ("anti_entropy.timeout_seconds", |c| {
            c.anti_entropy.timeout_seconds = 0
        }),
        ("anti_entropy.tree_fanout", |c| {
            c.anti_entropy.tree_fanout = 0
        }),
        ("anti_entropy.tree_fanout", |c| {
            c.anti_entropy.tree_fanout = 1
        }),
        ("anti_entropy.tree_fanout", |c| {
            c.anti_entropy.tree_fanout = 12
        }),
        ("anti_entropy.tree_fanout", |c| {
            c.anti_entropy.tree_fanout = 512
        }),
        ("anti_entropy.tree_depth", |c| c.anti_entropy.tree_depth = 0),
        ("anti_entropy.tree_depth", |c| c.anti_entropy.tree_depth = 9),
        ("anti_entropy.tree_depth", |c| {
            c.anti_entropy.tree_fanout = 16;
            c.anti_entropy.tree_depth = 7; // 2^28 leaves
        }),
        ("anti_entropy.tree_depth", |c| {
            c.anti_entropy.tree_fanout = 256;
            c.anti_entropy.tree_depth = 4; // 2^32 leaves
        }),
        ("anti_entropy.peer_list[0]", |c| {
            c.anti_entropy.peer_list = vec!["nohost".into()]
        }),
        ("anti_entropy.peer_list[0]", |c| {
            c.anti_entropy.peer_list = vec!["a:0".into()]
        }),
        ("anti_entropy.peer_list[1]", |c| {
            c.anti_entropy.peer_list = vec!["a:7380".into(), "bad host:7380".into()]
        }),
        ("anti_entropy.peer_list[1]", |c| {
            c.anti_entropy.peer_list = vec!["a:7380".into(), "A:7380".into()]
        }),
        ("anti_entropy.peer_list[0]", |c| {
            c.anti_entropy.peer_list = vec!["127.0.0.1:7380".into()]
        }),
        ("storage.engine", |c| c.storage.engine = "rocksdb".into()),
        ("storage.tombstone_grace_seconds", |c| {
            c.storage.tombstone_grace_seconds = 29
        }),
        ("logging.level", |c| c.logging.level = "verbose".into()),
        ("logging.level", |c| c.logging.level = "INFO".into()),
    ];
    for (key, change) in cases {
        let e = invalid_after(change);
        assert_invalid(&e, key);
    }
}

#[test]
fn validation_accepts_boundary_values() {
    valid_after(|c| c.network.idle_timeout_seconds = 60);
    valid_after(|c| c.network.worker_threads = 1024);
    valid_after(|c| c.network.worker_threads = 1);
    valid_after(|c| c.network.idle_poll_us = 0);
    valid_after(|c| c.network.idle_poll_us = 100_000);
    valid_after(|c| c.network.max_line_bytes = 1024);
    valid_after(|c| c.network.metrics_port = 0);
    valid_after(|c| c.network.bind_port = 65_535);
    valid_after(|c| c.network.bind_address = "::".into());
    valid_after(|c| c.network.bind_address = "localhost".into());
    valid_after(|c| c.network.bind_address = "kv-1.example.com".into());
    valid_after(|c| c.mqtt.broker_address = "localhost:1883".into());
    valid_after(|c| c.mqtt.broker_address = "tcp://10.0.0.1:1883".into());
    valid_after(|c| c.mqtt.broker_address = "mqtts://[::1]:8883".into());
    valid_after(|c| c.mqtt.enabled = Some(false));
    valid_after(|c| c.mqtt.keep_alive = 0);
    valid_after(|c| {
        c.mqtt.username = Some("u".into());
        c.mqtt.password = Some("p".into());
    });
    valid_after(|c| c.mqtt.username = Some("u".into()));
    valid_after(|c| {
        c.anti_entropy.tree_fanout = 2;
        c.anti_entropy.tree_depth = 8;
    });
    valid_after(|c| {
        c.anti_entropy.tree_fanout = 256;
        c.anti_entropy.tree_depth = 3;
    });
    valid_after(|c| {
        c.anti_entropy.tree_fanout = 64;
        c.anti_entropy.tree_depth = 4;
    });
    valid_after(|c| c.anti_entropy.peer_list = vec!["127.0.0.1:7480".into()]);
    valid_after(|c| {
        c.anti_entropy.enabled = false;
        c.storage.tombstone_grace_seconds = 0;
    });
    valid_after(|c| c.storage.engine = "sled".into());
    valid_after(|c| c.logging.level = "trace".into());
    valid_after(|c| c.node_id = "Node_1.eu-west".into());
}

#[test]
fn validation_error_names_file_as_source() {
    let e = err(load_toml("[anti_entropy]\ntree_fanout = 10\n"));
    assert_invalid(&e, "anti_entropy.tree_fanout");
    assert!(e.to_string().contains(NAME), "{e}");
    assert!(e.to_string().contains("power of two"), "{e}");
}
