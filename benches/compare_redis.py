#!/usr/bin/env python3
"""Side-by-side client-path benchmark: MerkleKV against redis-server.

Starts, on free loopback ports, one `redis-server --save "" --appendonly no`
and one MerkleKV node (persistence, MQTT and anti-entropy off), then drives
both in the same run, interleaved round by round:

* `redis-benchmark -t set,get -n N -r 100000 -d 100` at `-c 50 -P 1`,
  `-c 50 -P 16` and `-c 1 -P 1` (ops/s, p50, p99 of each);
* `merklekv bench` with the same settings, over our text protocol against
  MerkleKV and over RESP against both servers;
* memory: RSS growth per key after loading 1,000,000 keys of 100 bytes
  through `redis-cli --pipe`, on fresh servers.

Prints Markdown tables of medians and ours/Redis ratios, and writes every
raw figure as JSON (`--out`). Every load is bounded by its request count.

    cargo build --release
    python3 benches/compare_redis.py --rounds 3 --out target/compare_redis.json
"""

import argparse
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench_util import pinned, rss_bytes, start_node, start_redis, value_pool

SETTINGS = [
    # (label, clients, pipeline, requests per test)
    ("-c 50 -P 1", 50, 1, 300_000),
    ("-c 50 -P 16", 50, 16, 2_000_000),
    ("-c 1 -P 1", 1, 1, 100_000),
]


class Servers:
    """One redis-server and one MerkleKV node, killed on exit."""

    def __init__(self, binary, cpus=None):
        self.redis, self.redis_port = start_redis(cpus)
        self.ours, self.ours_port = start_node(binary, cpus=cpus, STORAGE_PERSISTENCE="false")

    def ports(self):
        return {"redis": self.redis_port, "merklekv": self.ours_port}

    def pids(self):
        return {"redis": self.redis.pid, "merklekv": self.ours.pid}

    def close(self):
        for p in (self.redis, self.ours):
            p.terminate()
        for p in (self.redis, self.ours):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def redis_benchmark(port, clients, pipeline, requests, cpus=None):
    out = subprocess.run(
        pinned(cpus, ["redis-benchmark", "-p", str(port), "-t", "set,get", "-n", str(requests),
                      "-r", "100000", "-d", "100", "-c", str(clients), "-P", str(pipeline),
                      "--csv"]),
        capture_output=True, text=True, timeout=600, check=True).stdout
    rows = {}
    for row in csv.DictReader(io.StringIO(out)):
        rows[row["test"]] = {
            "ops": float(row["rps"]),
            "p50": float(row["p50_latency_ms"]),
            "p99": float(row["p99_latency_ms"]),
        }
    return rows


def merklekv_bench(binary, port, protocol, workload, clients, pipeline, requests, cpus=None):
    out = subprocess.run(
        pinned(cpus, [binary, "bench", "--port", str(port), "--protocol", protocol,
                      "--workload", workload, "--clients", str(clients),
                      "--pipeline", str(pipeline), "--requests", str(requests),
                      "--keyspace", "100000", "--value-size", "100", "--json", "--quiet"]),
        capture_output=True, text=True, timeout=600, check=True).stdout
    r = json.loads(out)
    if r["errors"]:
        raise RuntimeError(f"merklekv bench saw {r['errors']} error replies")
    return {"ops": r["ops_per_sec"], "p50": r["p50_ms"], "p99": r["p99_ms"]}


def write_load_file(path, keys):
    pool = value_pool()
    with open(path, "wb") as f:
        for i in range(keys):
            key = b"key:%012d" % i
            f.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n"
                    % (len(key), key, pool[i % len(pool)]))


def memory_per_key(binary, keys):
    with tempfile.TemporaryDirectory() as tmp:
        load = os.path.join(tmp, "load.resp")
        write_load_file(load, keys)
        servers = Servers(binary)
        try:
            result = {}
            for name, port in servers.ports().items():
                pid = servers.pids()[name]
                before = rss_bytes(pid)
                with open(load, "rb") as f:
                    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], stdin=f,
                                   stdout=subprocess.DEVNULL, timeout=600, check=True)
                time.sleep(1.0)
                after = rss_bytes(pid)
                size = subprocess.run(["redis-cli", "-p", str(port), "dbsize"],
                                      capture_output=True, text=True, check=True).stdout
                result[name] = {
                    "keys": int(size.strip()),
                    "rss_before": before,
                    "rss_after": after,
                    "bytes_per_key": (after - before) / keys,
                }
            return result
        finally:
            servers.close()


def median_of(runs, key):
    return statistics.median(r[key] for r in runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="target/release/merklekv")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--memory-keys", type=int, default=1_000_000)
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply every request count (e.g. 0.1 for a quick run)")
    ap.add_argument("--out", default="target/compare_redis.json")
    ap.add_argument("--server-cpus", default=None,
                    help="taskset CPU list for both servers (e.g. 1); default: unpinned")
    ap.add_argument("--client-cpus", default=None,
                    help="taskset CPU list for the load generators (e.g. 0); default: unpinned")
    args = ap.parse_args()

    raw = {"redis-benchmark": {}, "merklekv bench": {}, "memory": None}
    servers = Servers(args.binary, args.server_cpus)
    try:
        ports = servers.ports()
        for rnd in range(args.rounds):
            # Alternate who goes first so neither always runs on a warmer machine.
            order = ["redis", "merklekv"] if rnd % 2 == 0 else ["merklekv", "redis"]
            for label, c, p, n in SETTINGS:
                n = max(1000, int(n * args.scale))
                for server in order:
                    rows = redis_benchmark(ports[server], c, p, n, args.client_cpus)
                    for test, fig in rows.items():
                        raw["redis-benchmark"].setdefault(f"{label}|{test}|{server}", []).append(fig)
                    print(f"round {rnd + 1} redis-benchmark {label} {server}: "
                          + ", ".join(f"{t} {f['ops']:.0f}/s" for t, f in rows.items()),
                          file=sys.stderr)
                for workload in ("set", "get"):
                    for server, proto in [("merklekv", "text"), ("merklekv", "resp"), ("redis", "resp")]:
                        fig = merklekv_bench(args.binary, ports[server], proto, workload, c, p, n,
                                             args.client_cpus)
                        raw["merklekv bench"].setdefault(
                            f"{label}|{workload.upper()}|{server}|{proto}", []).append(fig)
                        print(f"round {rnd + 1} merklekv bench {label} {workload} {server}/{proto}: "
                              f"{fig['ops']:.0f}/s", file=sys.stderr)
    finally:
        servers.close()

    if args.memory_keys > 0:
        raw["memory"] = memory_per_key(args.binary, args.memory_keys)

    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(raw, f, indent=1)

    rb = raw["redis-benchmark"]
    print(f"\nredis-benchmark, median of {args.rounds} (ops/s, p50 ms, p99 ms)\n")
    print("| setting | test | Redis ops/s | MerkleKV ops/s | ratio | Redis p50 / p99 | MerkleKV p50 / p99 |")
    print("|---|---|---:|---:|---:|---|---|")
    for label, _, _, _ in SETTINGS:
        for test in ("SET", "GET"):
            r, o = rb[f"{label}|{test}|redis"], rb[f"{label}|{test}|merklekv"]
            ro, oo = median_of(r, "ops"), median_of(o, "ops")
            print(f"| `{label}` | {test} | {ro:,.0f} | {oo:,.0f} | **{oo / ro:.2f}** | "
                  f"{median_of(r, 'p50'):.3f} / {median_of(r, 'p99'):.3f} | "
                  f"{median_of(o, 'p50'):.3f} / {median_of(o, 'p99'):.3f} |")

    mb = raw["merklekv bench"]
    print(f"\nmerklekv bench, median of {args.rounds} (ops/s; p50 / p99 ms)\n")
    print("| setting | test | MerkleKV text | MerkleKV RESP | Redis RESP | text / Redis |")
    print("|---|---|---:|---:|---:|---:|")
    for label, _, _, _ in SETTINGS:
        for test in ("SET", "GET"):
            t = mb[f"{label}|{test}|merklekv|text"]
            r = mb[f"{label}|{test}|merklekv|resp"]
            x = mb[f"{label}|{test}|redis|resp"]
            cell = lambda runs: (f"{median_of(runs, 'ops'):,.0f} "
                                 f"({median_of(runs, 'p50'):.3f} / {median_of(runs, 'p99'):.3f})")
            print(f"| `{label}` | {test} | {cell(t)} | {cell(r)} | {cell(x)} | "
                  f"**{median_of(t, 'ops') / median_of(x, 'ops'):.2f}** |")

    if raw["memory"]:
        m = raw["memory"]
        print(f"\nmemory after loading {args.memory_keys:,} keys of 100 bytes\n")
        print("| server | keys | RSS before | RSS after | bytes/key |")
        print("|---|---:|---:|---:|---:|")
        for name in ("redis", "merklekv"):
            e = m[name]
            print(f"| {name} | {e['keys']:,} | {e['rss_before'] / 2**20:.1f} MiB | "
                  f"{e['rss_after'] / 2**20:.1f} MiB | {e['bytes_per_key']:.0f} |")
        print(f"\nratio MerkleKV / Redis: "
              f"{m['merklekv']['bytes_per_key'] / m['redis']['bytes_per_key']:.2f}")


if __name__ == "__main__":
    main()
