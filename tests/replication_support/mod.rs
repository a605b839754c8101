//! Helpers shared by the replication tests: clusters on one broker,
//! metrics scraping, Merkle-root comparison, raw MQTT publishing.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::broker::Broker;
use crate::common::{free_port, wait_until, Client, NodeProcess, NodeSpec};

/// A topic prefix no other test uses (tests share nothing but may share a
/// broker).
pub fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("mkvtest/{test}-{}-{nanos}", std::process::id())
}

/// A node replicating through `broker` under `prefix` (anti-entropy off).
pub fn spec(id: &str, broker_url: &str, prefix: &str) -> NodeSpec {
    NodeSpec::new(id)
        .env("MERKLE_KV_MQTT_BROKER_ADDRESS", broker_url)
        .env("MERKLE_KV_MQTT_TOPIC_PREFIX", prefix)
}

/// Ports of one node, chosen before start so peers can list each other.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// Client port.
    pub client: u16,
    /// Sync port.
    pub sync: u16,
    /// Metrics port.
    pub metrics: u16,
}

impl Ports {
    /// Three free ports.
    pub fn free() -> Self {
        Self {
            client: free_port(),
            sync: free_port(),
            metrics: free_port(),
        }
    }
}

/// Starts `specs` with anti-entropy on (1 s rounds), each listing every
/// other node as a static peer.
pub fn start_with_anti_entropy(specs: Vec<NodeSpec>) -> Vec<NodeProcess> {
    start_with_anti_entropy_every(specs, 1)
}

/// As [`start_with_anti_entropy`], with periodic rounds every
/// `interval_seconds` (a large value leaves only the rounds that MQTT
/// reconnects and `SYNC` trigger).
pub fn start_with_anti_entropy_every(
    specs: Vec<NodeSpec>,
    interval_seconds: u64,
) -> Vec<NodeProcess> {
    let ports: Vec<Ports> = specs.iter().map(|_| Ports::free()).collect();
    specs
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            let peers: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| format!("127.0.0.1:{}", p.sync))
                .collect();
            let spec = anti_entropy(spec)
                .env("MERKLE_KV_ANTI_ENTROPY_INTERVAL_SECONDS", interval_seconds)
                .env("MERKLE_KV_ANTI_ENTROPY_PEER_LIST", peers.join(","));
            let p = ports[i];
            NodeProcess::start_with_ports(spec, p.client, p.sync, p.metrics)
        })
        .collect()
}

/// Turns anti-entropy on with 1 s rounds.
pub fn anti_entropy(spec: NodeSpec) -> NodeSpec {
    spec.env("MERKLE_KV_ANTI_ENTROPY_ENABLED", "true")
        .env("MERKLE_KV_ANTI_ENTROPY_INTERVAL_SECONDS", "1")
}

/// Three nodes `n1..n3` on `broker` under `prefix`, anti-entropy off.
pub fn three_nodes(broker: &Broker, prefix: &str) -> Vec<NodeProcess> {
    ["n1", "n2", "n3"]
        .iter()
        .map(|id| NodeProcess::start(spec(id, &broker.url(), prefix)))
        .collect()
}

/// Waits until every node reports a broker connection and `expected` live
/// nodes (presence), so that nothing written afterwards is missed.
pub fn wait_connected(nodes: &[NodeProcess], expected: usize) {
    for node in nodes {
        let mut c = node.client();
        let want = format!("REPLICATION enabled {expected} nodes broker=connected");
        let ok = wait_until(Duration::from_secs(20), || {
            c.cmd("REPLICATE status").starts_with(&want)
        });
        assert!(
            ok,
            "node {} never reported `{want}`: {}",
            node.spec.node_id,
            c.cmd("REPLICATE status")
        );
    }
}

/// The node's `HASH` reply (its Merkle root).
pub fn hash(node: &NodeProcess) -> String {
    node.client().cmd("HASH")
}

/// Whether every node has the same Merkle root.
pub fn roots_equal(nodes: &[NodeProcess]) -> bool {
    let first = hash(&nodes[0]);
    nodes[1..].iter().all(|n| hash(n) == first)
}

/// Waits (up to `timeout`) for equal roots; panics with every root if not.
pub fn assert_converges(nodes: &[NodeProcess], timeout: Duration) {
    if !wait_until(timeout, || roots_equal(nodes)) {
        let roots: Vec<String> = nodes
            .iter()
            .map(|n| format!("{}: {} keys {}", n.spec.node_id, dbsize(n), hash(n).trim()))
            .collect();
        panic!("replicas did not converge within {timeout:?}: {roots:?}");
    }
}

/// `DBSIZE` as a number.
pub fn dbsize(node: &NodeProcess) -> u64 {
    node.client()
        .cmd("DBSIZE")
        .trim()
        .strip_prefix("DBSIZE ")
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// The value of `key` (`None` when absent).
pub fn get(client: &mut Client, key: &str) -> Option<String> {
    let reply = client.cmd(&format!("GET {key}"));
    reply
        .strip_suffix("\r\n")
        .and_then(|r| r.strip_prefix("VALUE "))
        .map(str::to_owned)
}

/// Waits until `key` has `value` on `node`.
pub fn wait_value(node: &NodeProcess, key: &str, value: Option<&str>, timeout: Duration) -> bool {
    let mut c = node.client();
    wait_until(timeout, || get(&mut c, key).as_deref() == value)
}

/// The node's Prometheus text.
pub fn scrape(node: &NodeProcess) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", node.metrics_port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

/// The value of the sample named exactly `name` (labels included, e.g.
/// `merklekv_replication_changes_dropped_total{reason="queue_full"}`).
pub fn metric(node: &NodeProcess, name: &str) -> f64 {
    scrape(node)
        .lines()
        .find_map(|line| {
            let (sample, value) = line.rsplit_once(' ')?;
            (sample == name).then(|| value.parse().ok())?
        })
        .unwrap_or(f64::NAN)
}

/// Publishes raw payloads on `topic` with QoS 1 and waits for the broker's
/// acknowledgements.
pub fn mqtt_publish(broker: &Broker, topic: &str, payloads: &[Vec<u8>]) {
    use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
    let mut options = MqttOptions::new(
        format!("test-publisher-{}", std::process::id()),
        "127.0.0.1",
        broker.port,
    );
    options.set_max_packet_size(8 << 20, 8 << 20);
    let (client, mut connection) = Client::new(options, payloads.len() + 4);
    for p in payloads {
        client
            .publish(topic, QoS::AtLeastOnce, false, p.clone())
            .expect("queue publish");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut acked = 0;
    while acked < payloads.len() {
        assert!(Instant::now() < deadline, "broker did not acknowledge");
        if let Ok(Ok(Event::Incoming(Packet::PubAck(_)))) =
            connection.recv_timeout(Duration::from_millis(200))
        {
            acked += 1;
        }
    }
    let _ = client.disconnect();
    let _ = connection.recv_timeout(Duration::from_millis(200));
}
