//! MQTT replication between real `merklekv` processes through a real
//! broker (mosquitto; rumqttd in-process only where mosquitto is absent).
//! Broker faults and late joiners are in `replication_faults.rs`.

mod common;
mod replication_support;

use std::time::Duration;

use common::broker::Broker;
use common::{wait_until, NodeProcess, NodeSpec};
use prost::Message as _;
use replication_support::*;

const REPLICATED: Duration = Duration::from_secs(10);

#[test]
fn every_write_command_reaches_the_other_nodes() {
    let broker = Broker::start();
    let nodes = three_nodes(&broker, &unique_prefix("commands"));
    wait_connected(&nodes, 3);
    let mut c = nodes[0].client();
    assert_eq!(c.cmd("SET user:1 alice  smith"), "OK\r\n");
    assert_eq!(c.cmd("SET gone soon"), "OK\r\n");
    assert_eq!(c.cmd("DEL gone"), "DELETED\r\n");
    assert_eq!(c.cmd("INC counter 5"), "VALUE 5\r\n");
    assert_eq!(c.cmd("DEC counter 2"), "VALUE 3\r\n");
    assert_eq!(c.cmd("SET s mid"), "OK\r\n");
    assert_eq!(c.cmd("APPEND s _end"), "VALUE mid_end\r\n");
    assert_eq!(c.cmd("PREPEND s start_"), "VALUE start_mid_end\r\n");
    assert_eq!(c.cmd("MSET a 1 b 2 c 3"), "OK\r\n");
    let expected = [
        ("user:1", Some("alice  smith")),
        ("gone", None),
        ("counter", Some("3")),
        ("s", Some("start_mid_end")),
        ("a", Some("1")),
        ("b", Some("2")),
        ("c", Some("3")),
    ];
    for node in &nodes[1..] {
        for (key, value) in expected {
            assert!(
                wait_value(node, key, value, REPLICATED),
                "{key} did not become {value:?} on {}",
                node.spec.node_id
            );
        }
    }
    // Tombstones replicate too: the roots (which count them) agree.
    assert_converges(&nodes, REPLICATED);

    // The other direction, from the last node.
    let mut c3 = nodes[2].client();
    assert_eq!(c3.cmd("INC counter"), "VALUE 4\r\n");
    assert!(wait_value(&nodes[0], "counter", Some("4"), REPLICATED));

    // FLUSH leaves every replica empty.
    assert_eq!(nodes[1].client().cmd("FLUSH"), "OK\r\n");
    for node in &nodes {
        assert!(
            wait_until(REPLICATED, || dbsize(node) == 0),
            "{} still has {} keys after FLUSH",
            node.spec.node_id,
            dbsize(node)
        );
    }
    assert_converges(&nodes, REPLICATED);
}

#[test]
fn concurrent_writes_on_three_nodes_end_identical() {
    let broker = Broker::start();
    let nodes = three_nodes(&broker, &unique_prefix("concurrent"));
    wait_connected(&nodes, 3);
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    let writers: Vec<_> = ports
        .into_iter()
        .enumerate()
        .map(|(n, port)| {
            std::thread::spawn(move || {
                let mut c = common::Client::connect(port);
                for i in 0..400u32 {
                    let key = format!("key{}", i % 40);
                    assert_eq!(c.cmd(&format!("SET {key} n{n}-{i}")), "OK\r\n");
                    if i % 7 == 0 {
                        let reply = c.cmd(&format!("DEL key{}", (i + 3) % 40));
                        assert!(
                            reply == "DELETED\r\n" || reply == "NOT_FOUND\r\n",
                            "{reply}"
                        );
                    }
                    if i % 5 == 0 {
                        assert!(c.cmd(&format!("INC ctr{}", i % 4)).starts_with("VALUE "));
                    }
                    if i % 3 == 0 {
                        assert!(c
                            .cmd(&format!("APPEND log{} {n}", (i / 3) % 3))
                            .starts_with("VALUE "));
                    }
                    if i % 50 == 0 {
                        assert_eq!(c.cmd(&format!("MSET m{n} {i} shared {n}")), "OK\r\n");
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    assert_converges(&nodes, Duration::from_secs(20));
    // Same contents, key by key.
    let contents = |node: &NodeProcess| {
        let mut c = node.client();
        let header = c.cmd("SCAN");
        let n: usize = header
            .trim()
            .trim_start_matches("KEYS ")
            .parse()
            .expect("SCAN count");
        let keys: Vec<String> = (0..n).map(|_| c.line().trim().to_owned()).collect();
        keys.iter()
            .map(|k| (k.clone(), get(&mut c, k)))
            .collect::<Vec<_>>()
    };
    let first = contents(&nodes[0]);
    assert!(!first.is_empty());
    for node in &nodes[1..] {
        assert_eq!(contents(node), first, "{} differs", node.spec.node_id);
    }
}

#[test]
fn a_one_mebibyte_value_replicates() {
    let broker = Broker::start();
    let prefix = unique_prefix("big");
    // Default limits: a 1 MiB value is the largest a client may send.
    let nodes = [
        NodeProcess::start(spec("n1", &broker.url(), &prefix)),
        NodeProcess::start(spec("n2", &broker.url(), &prefix)),
    ];
    wait_connected(&nodes, 2);
    let value: String = (0..(1usize << 20))
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut c = nodes[0].client();
    assert_eq!(c.cmd(&format!("SET big {value}")), "OK\r\n");
    let mut c2 = nodes[1].client();
    let arrived = wait_until(REPLICATED, || {
        get(&mut c2, "big").is_some_and(|v| v.len() == value.len())
    });
    assert!(arrived, "the 1 MiB value did not replicate");
    assert_eq!(get(&mut c2, "big").as_deref(), Some(value.as_str()));
    assert_converges(&nodes, REPLICATED);
}

#[test]
fn garbage_on_the_topics_changes_nothing_and_is_counted() {
    let broker = Broker::start();
    let prefix = unique_prefix("garbage");
    let nodes = [
        NodeProcess::start(spec("n1", &broker.url(), &prefix)),
        NodeProcess::start(spec("n2", &broker.url(), &prefix)),
    ];
    wait_connected(&nodes, 2);
    assert_eq!(nodes[0].client().cmd("MSET a 1 b 2"), "OK\r\n");
    assert!(wait_value(&nodes[1], "b", Some("2"), REPLICATED));
    let roots: Vec<String> = nodes.iter().map(hash).collect();

    let tombstone_with_value = merklekv::proto::ChangeBatch {
        origin_node: "evil".into(),
        origin_node_num: 1,
        changes: vec![merklekv::proto::Entry {
            expires_at_unix_ms: 0,
            key: b"a".to_vec(),
            value: b"x".to_vec(),
            tombstone: true,
            version: Some(merklekv::proto::Version {
                hlc: u64::MAX,
                node: 1,
            }),
        }],
    }
    .encode_to_vec();
    let garbage: Vec<Vec<u8>> = vec![
        b"not protobuf at all".to_vec(),
        Vec::new(),
        b"\x0a\x05n".to_vec(),
        tombstone_with_value,
        (0..1000u32)
            .map(|i| (i * 7919 % 251) as u8 | 0x07)
            .collect(),
    ];
    mqtt_publish(&broker, &format!("{prefix}/updates"), &garbage);
    mqtt_publish(
        &broker,
        &format!("{prefix}/presence/evil"),
        &[b"\xff junk".to_vec()],
    );

    let undecodable = "merklekv_replication_messages_undecodable_total";
    for node in &nodes {
        assert!(
            wait_until(REPLICATED, || metric(node, undecodable) >= 6.0),
            "{} counted {} undecodable messages",
            node.spec.node_id,
            metric(node, undecodable)
        );
    }
    let after: Vec<String> = nodes.iter().map(hash).collect();
    assert_eq!(after, roots, "garbage changed a replica");
    for node in &nodes {
        assert_eq!(metric(node, undecodable), 6.0);
        assert_eq!(dbsize(node), 2);
    }
    // Both nodes still replicate.
    assert_eq!(nodes[1].client().cmd("SET after garbage"), "OK\r\n");
    assert!(wait_value(&nodes[0], "after", Some("garbage"), REPLICATED));
}

#[test]
fn replicate_disable_enable_and_status() {
    let broker = Broker::start();
    let nodes = three_nodes(&broker, &unique_prefix("control"));
    wait_connected(&nodes, 3);
    let mut c1 = nodes[0].client();
    let mut c2 = nodes[1].client();
    let status = c1.cmd("REPLICATE status");
    assert!(status.contains("peers=n2,n3"), "{status}");

    assert_eq!(c2.cmd("REPLICATE disable"), "OK\r\n");
    assert_eq!(c2.cmd("REPLICATE status"), "REPLICATION disabled\r\n");
    assert_eq!(c2.cmd("REPLICATE disable"), "OK\r\n");
    // n2 said goodbye: its presence is gone from the others' view.
    assert!(wait_until(REPLICATED, || c1
        .cmd("REPLICATE status")
        .starts_with(
            "REPLICATION enabled 2 nodes broker=connected peers=n3 "
        )));

    // Nothing flows to or from the disabled node.
    assert_eq!(c1.cmd("SET while_off 1"), "OK\r\n");
    assert!(wait_value(&nodes[2], "while_off", Some("1"), REPLICATED));
    assert_eq!(c2.cmd("SET from_off 2"), "OK\r\n");
    assert_eq!(nodes[2].client().cmd("SET probe 3"), "OK\r\n");
    assert!(wait_value(&nodes[0], "probe", Some("3"), REPLICATED));
    assert_eq!(get(&mut c2, "while_off"), None);
    assert_eq!(get(&mut c1, "from_off"), None);

    // Enabling twice starts one client.
    assert_eq!(c2.cmd("REPLICATE enable"), "OK\r\n");
    assert_eq!(c2.cmd("REPLICATE enable"), "OK\r\n");
    wait_connected(&nodes, 3);
    assert_eq!(c2.cmd("SET back_on 4"), "OK\r\n");
    assert!(wait_value(&nodes[0], "back_on", Some("4"), REPLICATED));
    assert_eq!(c1.cmd("SET to_n2 5"), "OK\r\n");
    assert!(wait_value(&nodes[1], "to_n2", Some("5"), REPLICATED));
    // Two clients with one client id would keep taking the session from
    // each other: the connection stays up instead.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        metric(&nodes[1], "merklekv_replication_connection_errors_total"),
        0.0
    );
    assert_eq!(
        metric(&nodes[1], "merklekv_replication_broker_connected"),
        1.0
    );
    assert!(c2
        .cmd("REPLICATE status")
        .starts_with("REPLICATION enabled 3 nodes broker=connected"));
}

#[test]
fn a_node_without_broker_runs_standalone_and_says_so_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("node.log");
    let node = NodeProcess::start(
        NodeSpec::new("solo")
            .env("RUST_LOG", "info")
            .env("MERKLE_KV_LOGGING_FILE_PATH", log.display()),
    );
    let mut c = node.client();
    assert_eq!(c.cmd("SET k v"), "OK\r\n");
    assert_eq!(c.cmd("REPLICATE status"), "REPLICATION disabled\r\n");
    // The switch round-trips, saying why nothing replicates.
    assert_eq!(c.cmd("REPLICATE enable"), "OK\r\n");
    assert_eq!(
        c.cmd("REPLICATE status"),
        "REPLICATION enabled 1 nodes (no broker configured)\r\n"
    );
    assert_eq!(c.cmd("REPLICATE disable"), "OK\r\n");
    assert_eq!(c.cmd("REPLICATE status"), "REPLICATION disabled\r\n");
    let text = std::fs::read_to_string(&log).expect("log file");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("replication")).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("replication disabled: no MQTT broker configured"));
}

#[test]
fn a_second_process_with_the_same_node_id_is_reported() {
    let broker = Broker::start();
    let prefix = unique_prefix("duplicate");
    let dir = tempfile::tempdir().expect("tempdir");
    let logged = |name: &str| {
        let log = dir.path().join(name);
        let spec =
            spec("twin", &broker.url(), &prefix).env("MERKLE_KV_LOGGING_FILE_PATH", log.display());
        (spec, log)
    };
    let (spec1, log1) = logged("first.log");
    let first = NodeProcess::start(spec1);
    wait_connected(std::slice::from_ref(&first), 1);
    let (spec2, log2) = logged("second.log");
    let second = NodeProcess::start(spec2);
    let reported =
        |n: &NodeProcess| metric(n, "merklekv_replication_duplicate_node_id_total") >= 1.0;
    assert!(
        wait_until(REPLICATED, || reported(&first) || reported(&second)),
        "neither process noticed the duplicate node id"
    );
    let loud = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("ERROR") && l.contains("DUPLICATE NODE ID"))
    };
    // The counter goes up just before the line is written: wait for the
    // line itself.
    assert!(
        wait_until(REPLICATED, || loud(&log1) || loud(&log2)),
        "no loud log line"
    );
}

#[test]
fn stopping_nodes_publish_what_is_queued_and_leave_the_presence_list() {
    let broker = Broker::start();
    let nodes = three_nodes(&broker, &unique_prefix("leave"));
    wait_connected(&nodes, 3);
    let Ok([mut n1, n2, mut n3]) = <[NodeProcess; 3]>::try_from(nodes) else {
        panic!("three nodes");
    };
    // Writes right before a graceful stop still reach the others.
    let mut c = n1.client();
    let pairs: Vec<String> = (0..2000).map(|i| format!("k{i} {i}")).collect();
    for chunk in pairs.chunks(100) {
        assert_eq!(c.cmd(&format!("MSET {}", chunk.join(" "))), "OK\r\n");
    }
    assert_eq!(c.cmd("SHUTDOWN"), "OK\r\n");
    assert_eq!(n1.terminate(), Some(0));
    assert!(
        wait_until(REPLICATED, || dbsize(&n2) == 2000),
        "n2 has {} of 2000 keys",
        dbsize(&n2)
    );
    // A graceful stop clears the presence at once...
    let mut c2 = n2.client();
    assert!(wait_until(REPLICATED, || c2
        .cmd("REPLICATE status")
        .starts_with(
            "REPLICATION enabled 2 nodes broker=connected peers=n3 "
        )));
    // ...and so does the last will of a killed node.
    n3.kill();
    assert!(wait_until(REPLICATED, || c2
        .cmd("REPLICATE status")
        .starts_with(
            "REPLICATION enabled 1 nodes broker=connected peers=- "
        )));
}
