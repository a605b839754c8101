#!/usr/bin/env python3
"""Interleaved A/B throughput: several MerkleKV variants and redis-server
side by side, many short rounds, medians of per-round ratios to Redis.

Each variant is LABEL=BINARY[,VAR=VALUE...] (extra environment for that
node, e.g. MERKLE_KV_NETWORK_WORKER_THREADS=2 or MERKLE_KV_STORAGE_PERSISTENCE=true;
with MERKLE_KV_SECURITY_PASSWORD=pw redis-benchmark logs in with `-a pw`);
every node runs with MQTT, anti-entropy and (unless overridden) persistence
off, data in a fresh temporary directory. After a 100,000-key load, each
round drives every server once per test, in a shuffled order, with

    redis-benchmark -p PORT -t TEST -c C -P P -n N -r 100000 -d 100

(plus `--threads T` with --threads T) and reads each server's CPU time
from /proc. Short rounds interleaved this
way cancel most of the drift of a shared machine, which moves absolute
figures by tens of percent within minutes.

    cargo build --release
    python3 benches/ab_interleaved.py --bin ours=target/release/merklekv \\
        --bin two_workers=target/release/merklekv,MERKLE_KV_NETWORK_WORKER_THREADS=2 --rounds 10
"""

import argparse
import csv
import io
import os
import random
import resource
import statistics
import subprocess
import tempfile

from bench_util import cpu_seconds, start_node, start_redis


def start_variant(spec, data_root):
    """Starts the node LABEL=BINARY[,VAR=VALUE...] describes (persistence
    off unless a VAR turns it on); returns (label, client port, process)."""
    label, rest = spec.split("=", 1)
    binary, *overrides = rest.split(",")
    extra = dict(kv.split("=", 1) for kv in overrides)
    proc, port = start_node(binary, env=extra, STORAGE_PERSISTENCE="false",
                            STORAGE_DATA_DIR=os.path.join(data_root, label))
    # A node with a password: redis-benchmark logs in with it (-a).
    PASSWORDS[port] = extra.get("MERKLE_KV_SECURITY_PASSWORD")
    return label, port, proc


PASSWORDS = {}


def auth_args(port):
    password = PASSWORDS.get(port)
    return ["-a", password] if password else []


def children_cpu():
    """User + system CPU seconds of every finished child process so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench(port, test, a):
    """One redis-benchmark run; returns (ops/s, p99 ms)."""
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", test, "-c", str(a.c), "-P", str(a.P),
         "-n", str(a.n), "-r", "100000", "-d", "100", "--csv"] + auth_args(port)
        + (["--threads", str(a.threads)] if a.threads else []),
        capture_output=True, text=True, timeout=300).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    if not rows:
        raise RuntimeError(f"no figure from redis-benchmark on port {port}: {out!r}")
    return float(rows[-1]["rps"]), float(rows[-1]["p99_latency_ms"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", action="append", required=True, help="LABEL=BINARY[,VAR=VALUE...]")
    ap.add_argument("--tests", default="set,get")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("-c", type=int, default=50)
    ap.add_argument("-P", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0,
                    help="redis-benchmark --threads (0: its default, one thread)")
    a = ap.parse_args()
    tests = a.tests.split(",")
    with tempfile.TemporaryDirectory() as data_root:
        servers = [start_variant(spec, data_root) for spec in a.bin]
        redis, redis_port = start_redis()
        servers.append(("redis", redis_port, redis))
        try:
            for _, port, _ in servers:
                subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-n", "100000",
                                "-r", "100000", "-d", "100", "-q"] + auth_args(port),
                               capture_output=True, timeout=300)
            rate = {(s[0], t): [] for s in servers for t in tests}
            p99 = {(s[0], t): [] for s in servers for t in tests}
            client = {(s[0], t): [] for s in servers for t in tests}
            cpu = {(s[0], t): [] for s in servers for t in tests}
            for _ in range(a.rounds):
                for t in tests:
                    for label, port, proc in random.sample(servers, len(servers)):
                        before = cpu_seconds(proc.pid)
                        client_before = children_cpu()
                        ops, tail = bench(port, t, a)
                        client[(label, t)].append((children_cpu() - client_before) / a.n * 1e6)
                        rate[(label, t)].append(ops)
                        p99[(label, t)].append(tail)
                        cpu[(label, t)].append((cpu_seconds(proc.pid) - before) / a.n * 1e6)
            for t in tests:
                threads = f", --threads {a.threads}" if a.threads else ""
                print(f"{t}, -c {a.c} -P {a.P}{threads}, {a.rounds} rounds of {a.n} requests")
                print("| server | median ops/s | median ratio to Redis (per round) | median p99 ms "
                      "| server CPU µs / request (median) | redis-benchmark CPU µs / request (median) |")
                print("|---|---:|---:|---:|---:|---:|")
                for label, _, _ in servers:
                    ratios = [x / y for x, y in zip(rate[(label, t)], rate[("redis", t)])]
                    print(f"| {label} | {statistics.median(rate[(label, t)]):,.0f} | "
                          f"{statistics.median(ratios):.3f} | {statistics.median(p99[(label, t)]):.3f} | "
                          f"{statistics.median(cpu[(label, t)]):.2f} | "
                          f"{statistics.median(client[(label, t)]):.2f} |")
        finally:
            for _, _, proc in servers:
                proc.kill()


if __name__ == "__main__":
    main()
