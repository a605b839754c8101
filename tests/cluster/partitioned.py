"""The five-node partitioned cluster of docker-compose.partitioned.yml
(replication_factor 3, quorum reads and writes) under docker compose: the
ring converges, 2,000 writes through every node land on exactly three nodes
each and read back through any node, and with one node killed quorum
writes and reads keep succeeding. Run by tests/cluster/run.sh after the
fault scenarios, on the same images. Figures: target/cluster/partitioned.json.
"""

import json
import os
import sys
import time

from compose import ClusterError, compose_command, free_ports, port_taken, run
from kvclient import KvClient

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILE = os.path.join(ROOT, "docker-compose.partitioned.yml")
NODES = [f"node{i}" for i in range(1, 6)]
KEYS = 2000


class Partitioned:
    def __init__(self):
        self.compose = compose_command()
        self.project = f"mkvpart{os.getpid()}"
        self.env = None
        self.ports = {}

    def _run(self, *args, check=True, timeout=300):
        return run(self.compose + ["-f", FILE, "-p", self.project] + list(args),
                   env=self.env, check=check, timeout=timeout)

    def up(self):
        for attempt in range(3):
            ports = free_ports(3 * len(NODES))
            env = dict(os.environ)
            env["MERKLEKV_PUBLISH_ADDRESS"] = "127.0.0.1"
            for i, node in enumerate(NODES, 1):
                client, sync, metrics = ports.pop(), ports.pop(), ports.pop()
                self.ports[node] = client
                env[f"MERKLEKV_PNODE{i}_CLIENT_PORT"] = str(client)
                env[f"MERKLEKV_PNODE{i}_SYNC_PORT"] = str(sync)
                env[f"MERKLEKV_PNODE{i}_METRICS_PORT"] = str(metrics)
            self.env = env
            done = self._run("up", "-d", check=False)
            if done.returncode == 0:
                return
            if port_taken(done.stderr) and attempt < 2:
                self._run("down", "-v", "--remove-orphans", check=False)
                continue
            raise ClusterError(f"compose up failed: {done.stderr.strip()[-2000:]}")

    def down(self, failed):
        if self.env is None:
            return
        if failed:
            logs = self._run("logs", "--no-color", "--timestamps", check=False, timeout=120)
            path = os.path.join(ROOT, "target", "cluster", "logs", f"{self.project}.log")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(logs.stdout + logs.stderr)
            print(f"    compose logs saved to {path}")
        self._run("down", "-v", "--remove-orphans", "-t", "10", check=False)

    def status(self, via="node1"):
        """`merklekv cluster status --json` run inside a node's container."""
        done = self._run("exec", "-T", via, "/usr/local/bin/merklekv", "cluster", "status",
                         "--node", f"{via}:7380", "--json", check=False, timeout=60)
        try:
            return json.loads(done.stdout)
        except ValueError:
            return None

    def client(self, node):
        return KvClient("127.0.0.1", self.ports[node], timeout=5.0)


def wait(what, timeout, check):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return time.time()
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def converged(cluster, up):
    state = cluster.status()
    return (state is not None and len(state["members"]) == len(NODES)
            and sum(m["up"] for m in state["members"]) == up)


def scenario(cluster, figures):
    started = time.time()
    cluster.up()
    wait("the ring of five", 120, lambda: converged(cluster, 5))
    figures["ring_converged_seconds"] = round(time.time() - started, 1)
    keys = [f"part:{i}" for i in range(KEYS)]
    for n, node in enumerate(NODES):
        with cluster.client(node) as c:
            chunk = keys[n::len(NODES)]
            replies = c.pipeline([f"SET {k} v-{k}" for k in chunk])
            assert replies == ["OK"] * len(chunk), f"SET through {node}: {set(replies)}"
    # A quorum reply can come before the third replica applied the write.
    counts = {}
    deadline = time.time() + 30
    while True:
        for node in NODES:
            with cluster.client(node) as c:
                counts[node] = int(c.command("DBSIZE").split()[1])
        if sum(counts.values()) == 3 * KEYS or time.time() > deadline:
            break
        time.sleep(0.2)
    figures["keys_per_node"] = counts
    assert sum(counts.values()) == 3 * KEYS, f"{counts} do not sum to 3 x {KEYS}"
    for node in NODES:
        assert 0.4 * KEYS <= counts[node] <= 0.8 * KEYS, f"{node} holds {counts[node]}"
    with cluster.client("node5") as c:
        replies = c.pipeline([f"GET {k}" for k in keys])
    assert replies == [f"VALUE v-{k}" for k in keys], "a key did not read back through node5"

    run(["docker", "kill", f"{cluster.project}_node2_1"], check=False)
    run(["docker", "kill", f"{cluster.project}-node2-1"], check=False)
    killed = time.time()
    wait("node2 seen down", 60, lambda: converged(cluster, 4))
    figures["down_detected_seconds"] = round(time.time() - killed, 1)
    with cluster.client("node1") as c:
        replies = c.pipeline([f"SET {k} w-{k}" for k in keys[:500]])
        assert replies == ["OK"] * 500, f"quorum writes with node2 down: {set(replies)}"
    with cluster.client("node3") as c:
        replies = c.pipeline([f"GET {k}" for k in keys[:500]])
        assert replies == [f"VALUE w-{k}" for k in keys[:500]], "quorum reads with node2 down"
    figures["ok"] = True


def main():
    cluster = Partitioned()
    figures = {}
    failed = True
    try:
        scenario(cluster, figures)
        failed = False
    except (AssertionError, ClusterError) as e:
        print(f"FAIL partitioned: {e}")
    finally:
        cluster.down(failed)
    out = os.path.join(ROOT, "target", "cluster", "partitioned.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(figures, f, indent=2)
    print(("ok" if not failed else "FAILED") + f" partitioned: {json.dumps(figures)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
