#!/usr/bin/env python3
"""Figures of the partitioned cluster (docs/benchmarks.md, issue 14).

  python3 benches/cluster_figures.py forwarding   # forwarded vs local GET
  python3 benches/cluster_figures.py memory       # per-node memory, 1M keys

Uses target/release/merklekv (MERKLEKV_BIN overrides). Nodes run on loopback
ports 21000+ with persistence off; everything is stopped at the end.
"""
import json, os, socket, subprocess, sys, tempfile, time

BIN = os.environ.get("MERKLEKV_BIN", "target/release/merklekv")


def start(i, n, rf, extra=None):
    env = {
        "PATH": os.environ["PATH"],
        "RUST_LOG": "warn",
        "MERKLE_KV_NODE_ID": f"b{i}",
        "MERKLE_KV_NETWORK_BIND_PORT": str(21000 + i),
        "MERKLE_KV_NETWORK_SYNC_PORT": str(21100 + i),
        "MERKLE_KV_NETWORK_METRICS_PORT": "0",
        "MERKLE_KV_STORAGE_PERSISTENCE": "false",
        "MERKLE_KV_ANTI_ENTROPY_ENABLED": "false",
    }
    if rf:
        peers = ",".join(f"127.0.0.1:{21100 + j}" for j in range(n) if j != i)
        env.update({
            "MERKLE_KV_CLUSTER_REPLICATION_FACTOR": str(rf),
            "MERKLE_KV_ANTI_ENTROPY_PEER_LIST": peers,
            "MERKLE_KV_CLUSTER_HEARTBEAT_INTERVAL_MS": "200",
        })
    env.update(extra or {})
    p = subprocess.Popen([BIN], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in p.stdout:
        if line.startswith("merklekv ready"):
            break
    return p


def wait_ring(n):
    for _ in range(100):
        out = subprocess.run([BIN, "cluster", "status", "--node", "127.0.0.1:21100", "--json"],
                             capture_output=True, text=True).stdout
        try:
            s = json.loads(out)
            if len(s["members"]) == n and all(m["up"] for m in s["members"]):
                return
        except (ValueError, KeyError):
            pass
        time.sleep(0.2)
    sys.exit("ring did not converge")


def cmd(port, line):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(line.encode() + b"\r\n")
        return s.makefile().readline().strip()


def bench(port, workload, extra=()):
    out = subprocess.run([BIN, "bench", "--port", str(port), "--workload", workload, "--quiet",
                          "--json", *extra], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def cpu_seconds(p):
    """User + system CPU time of process `p` so far."""
    with open(f"/proc/{p.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss(p):
    with open(f"/proc/{p.pid}/statm") as f:
        return int(f.read().split()[1]) * 4096


def forwarding():
    requests = 800000
    args = ["--clients", "50", "--pipeline", "16", "--requests", str(requests), "--keyspace", "1"]
    nodes = [start(i, 2, 1, {"MERKLE_KV_CLUSTER_READ_CONSISTENCY": "one"}) for i in range(2)]
    solo = start(5, 1, 0)
    try:
        wait_ring(2)
        print(cmd(21000, "SET key:0 " + "v" * 100), cmd(21005, "SET key:0 " + "v" * 100))
        owner = 0 if cmd(21000, "DBSIZE") == "DBSIZE 1" else 1
        cases = {
            "standalone (full replica)": (21005, [solo]),
            "cluster, owner (local read)": (21000 + owner, nodes),
            "cluster, non-owner (forwarded)": (21000 + (1 - owner), nodes),
        }
        results = {k: [] for k in cases}
        p99 = {k: [] for k in cases}
        cpu = {k: [] for k in cases}
        for _ in range(3):
            for name, (port, servers) in cases.items():
                before = sum(cpu_seconds(p) for p in servers)
                report = bench(port, "get", args)
                used = sum(cpu_seconds(p) for p in servers) - before
                if report["errors"]:
                    sys.exit(f"{name}: {report['errors']} errors")
                results[name].append(report["ops_per_sec"])
                p99[name].append(report["p99_ms"])
                cpu[name].append(used * 1e6 / requests)
        med = lambda xs: sorted(xs)[len(xs) // 2]
        for name in cases:
            print(f"{name:32} GET ops/s {[round(x) for x in results[name]]} median {med(results[name]):.0f}"
                  f" | p99 ms {med(p99[name]):.2f} | server CPU us/GET (all nodes) "
                  f"{[round(x, 2) for x in cpu[name]]} median {med(cpu[name]):.2f}")
        local, fwd = "cluster, owner (local read)", "cluster, non-owner (forwarded)"
        print(f"forwarded / local: throughput {med(results[fwd]) / med(results[local]):.2f}, "
              f"server CPU per GET {med(cpu[fwd]) / med(cpu[local]):.2f}x")
    finally:
        for p in nodes + [solo]:
            p.kill()


def load(ports, keys):
    socks = [socket.create_connection(("127.0.0.1", p)) for p in ports]
    files = [s.makefile("rb") for s in socks]
    value = "v" * 100
    batch = 1000
    for start_key in range(0, keys, batch):
        i = (start_key // batch) % len(socks)
        lines = "".join(f"SET key:{k:07d} {value}\r\n" for k in range(start_key, min(keys, start_key + batch)))
        socks[i].sendall(lines.encode())
        for _ in range(min(batch, keys - start_key)):
            if files[i].readline().strip() != b"OK":
                sys.exit("SET failed")
    for s in socks:
        s.close()


def memory():
    keys = int(os.environ.get("KEYS", "1000000"))
    solo = start(9, 1, 0)
    try:
        base = rss(solo)
        t = time.time()
        load([21009], keys)
        print(f"full replica: {keys} keys loaded in {time.time() - t:.1f}s; RSS {rss(solo) / 2**20:.0f} MiB "
              f"(empty {base / 2**20:.0f} MiB)")
        full = rss(solo)
    finally:
        solo.kill()
    nodes = [start(i, 5, 3) for i in range(5)]
    try:
        wait_ring(5)
        t = time.time()
        load([21000 + i for i in range(5)], keys)
        took = time.time() - t
        sizes = [rss(p) for p in nodes]
        counts = [cmd(21000 + i, "DBSIZE") for i in range(5)]
        print(f"5 nodes RF 3: loaded in {took:.1f}s; per-node RSS MiB {[round(s / 2**20) for s in sizes]}; {counts}")
        mean = sum(sizes) / len(sizes)
        print(f"per-node memory vs full replica: mean {mean / full:.2f}x, max {max(sizes) / full:.2f}x")
    finally:
        for p in nodes:
            p.kill()


if __name__ == "__main__":
    {"forwarding": forwarding, "memory": memory}[sys.argv[1]]()
