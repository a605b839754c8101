//! Partitioned-cluster harness: a ring of real node processes on loopback,
//! and gRPC looks at what each one holds.

use std::time::Duration;

use super::{free_port, wait_until, Client, NodeProcess, NodeSpec};
use merklekv::proto;
use merklekv::proto::cluster_client::ClusterClient;
use merklekv::proto::replica_client::ReplicaClient;

/// Ports and ids of a cluster to start.
pub struct Plan {
    /// Node ids, p1…pN.
    pub ids: Vec<String>,
    /// Per node: (client, sync, metrics) ports.
    pub ports: Vec<(u16, u16, u16)>, // (client, sync, metrics)
}

impl Plan {
    pub fn new(n: usize) -> Self {
        Self {
            ids: (1..=n).map(|i| format!("p{i}")).collect(),
            ports: (0..n)
                .map(|_| (free_port(), free_port(), free_port()))
                .collect(),
        }
    }

    /// Node `i` with every other node as a seed.
    pub fn spec(&self, i: usize, rf: usize) -> NodeSpec {
        let peers: Vec<String> = self
            .ports
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, (_, sync, _))| format!("127.0.0.1:{sync}"))
            .collect();
        NodeSpec::new(&self.ids[i])
            .env("MERKLE_KV_ANTI_ENTROPY_PEER_LIST", peers.join(","))
            .env("MERKLE_KV_CLUSTER_REPLICATION_FACTOR", rf)
            .env("MERKLE_KV_CLUSTER_HEARTBEAT_INTERVAL_MS", 100)
            .env("MERKLE_KV_CLUSTER_FAILURE_TIMEOUT_MS", 1000)
            .env("MERKLE_KV_CLUSTER_REQUEST_TIMEOUT_MS", 1000)
    }

    pub fn start(&self, i: usize, spec: NodeSpec) -> NodeProcess {
        let (port, sync, metrics) = self.ports[i];
        NodeProcess::start_with_ports(spec, port, sync, metrics)
    }
}

/// Replies without their line ends.
pub trait Ask {
    fn ask(&mut self, cmd: &str) -> String;
    fn reply(&mut self) -> String;
}

impl Ask for Client {
    fn ask(&mut self, cmd: &str) -> String {
        self.cmd(cmd).trim_end().to_owned()
    }
    fn reply(&mut self) -> String {
        self.line().trim_end().to_owned()
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// What node `sync` says about the ring.
pub fn ring_state(rt: &tokio::runtime::Runtime, sync: u16) -> Option<proto::GetRingStateResponse> {
    rt.block_on(async {
        let mut c = ClusterClient::connect(format!("http://127.0.0.1:{sync}"))
            .await
            .ok()?;
        Some(
            c.get_ring_state(proto::GetRingStateRequest {})
                .await
                .ok()?
                .into_inner(),
        )
    })
}

/// Waits until every node in `syncs` sees `members` members, all up, at
/// one ring version.
pub fn wait_for_ring(rt: &tokio::runtime::Runtime, syncs: &[u16], members: usize) {
    let converged = wait_until(Duration::from_secs(20), || {
        let states: Vec<_> = syncs.iter().map(|s| ring_state(rt, *s)).collect();
        let versions: Vec<u64> = states
            .iter()
            .flatten()
            .filter_map(|s| s.ring.as_ref().map(|r| r.version))
            .collect();
        states.iter().all(|s| {
            s.as_ref()
                .is_some_and(|s| s.members.len() == members && s.members.iter().all(|m| m.up))
        }) && versions.windows(2).all(|w| w[0] == w[1])
    });
    assert!(converged, "the ring did not converge on {members} members");
}

/// Waits (up to 10 s) until node `sync` sees exactly `up` members up,
/// this node included.
pub fn wait_until_up(rt: &tokio::runtime::Runtime, sync: u16, up: usize) -> bool {
    wait_until(Duration::from_secs(10), || {
        ring_state(rt, sync).is_some_and(|s| s.members.iter().filter(|m| m.up).count() == up)
    })
}

/// What node `sync` holds in its own store for `keys` (Replica/Read: an
/// entry without a version = nothing).
pub fn local_entries<K: AsRef<[u8]>>(
    rt: &tokio::runtime::Runtime,
    sync: u16,
    keys: &[K],
) -> Vec<proto::Entry> {
    rt.block_on(async {
        let mut c = ReplicaClient::connect(format!("http://127.0.0.1:{sync}"))
            .await
            .expect("connect");
        let mut entries = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(2000) {
            let answer = c
                .read(proto::ReadRequest {
                    keys: chunk.iter().map(|k| k.as_ref().to_vec()).collect(),
                })
                .await
                .expect("read")
                .into_inner();
            entries.extend(answer.entries);
        }
        entries
    })
}

/// The keys among `keys` that node `sync` holds in its own store.
pub fn held_locally(rt: &tokio::runtime::Runtime, sync: u16, keys: &[String]) -> Vec<bool> {
    local_entries(rt, sync, keys)
        .iter()
        .map(|e| e.version.is_some())
        .collect()
}

/// A cluster of `n` nodes at replication factor `rf`, ring converged.
pub struct Started {
    /// Ids and ports.
    pub plan: Plan,
    /// The running nodes, in plan order.
    pub nodes: Vec<NodeProcess>,
    /// A runtime for gRPC calls.
    pub rt: tokio::runtime::Runtime,
    /// Every node's sync port, in node order.
    pub syncs: Vec<u16>,
}

pub fn start_cluster(n: usize, rf: usize) -> Started {
    start_cluster_with(n, rf, &[])
}

/// [`start_cluster`] with extra `MERKLE_KV_*` variables on every node.
pub fn start_cluster_with(n: usize, rf: usize, env: &[(&str, &str)]) -> Started {
    let plan = Plan::new(n);
    let nodes = (0..n)
        .map(|i| {
            let spec = env
                .iter()
                .fold(plan.spec(i, rf), |spec, (k, v)| spec.env(k, v));
            plan.start(i, spec)
        })
        .collect();
    let rt = runtime();
    let syncs: Vec<u16> = plan.ports.iter().map(|p| p.1).collect();
    wait_for_ring(&rt, &syncs, n);
    Started {
        plan,
        nodes,
        rt,
        syncs,
    }
}

/// Sends `sig` (`-STOP`, `-CONT`) to a node process.
pub fn signal(node: &NodeProcess, sig: &str) {
    let done = std::process::Command::new("kill")
        .args([sig, &node.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(done.success());
}

/// A version a little ahead of every node's clock, as if written by a node
/// that is not in the cluster.
pub fn version_by_hand() -> proto::Version {
    proto::Version {
        hlc: merklekv::clock::from_physical_ms(merklekv::clock::wall_clock_ms() + 10),
        node: merklekv::store::node_number("by-hand"),
    }
}

/// Merges `entries` into the stores of the nodes at `syncs` directly
/// (`Replica/Apply`), as a coordinator would; none may be refused.
pub fn apply_by_hand(rt: &tokio::runtime::Runtime, syncs: &[u16], entries: &[proto::Entry]) {
    for sync in syncs {
        rt.block_on(async {
            let mut c = ReplicaClient::connect(format!("http://127.0.0.1:{sync}"))
                .await
                .expect("connect");
            let answer = c
                .apply(proto::ApplyRequest {
                    entries: entries.to_vec(),
                })
                .await
                .expect("apply")
                .into_inner();
            assert!(
                answer.refused.is_empty(),
                "{sync} refused {:?}",
                answer.refused
            );
        });
    }
}
