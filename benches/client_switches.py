#!/usr/bin/env python3
"""How much the server disturbs the load generator: redis-benchmark's own
CPU time and context switches per request, against redis-server and a
MerkleKV node, side by side.

Starts both servers on free loopback ports (MerkleKV with MQTT, anti-entropy
and persistence off), loads 100,000 keys into each, then for each round and
server runs

    perf stat -x, -e context-switches,cpu-migrations,task-clock,\\
        syscalls:sys_enter_epoll_wait \\
        redis-benchmark -p PORT -t set|get -n N -r 100000 -d 100 -c 50 -P 1 --csv

and prints one line per run: ops/s, the server's CPU µs per request (from
/proc), redis-benchmark's task-clock µs, epoll_wait calls and context
switches per request. Needs `perf` (Debian's linux-perf; software events
and syscall tracepoints are enough). Every run is bounded by N.

    cargo build --release
    python3 benches/client_switches.py target/release/merklekv --rounds 3
    python3 benches/client_switches.py target/release/merklekv --env MERKLE_KV_NETWORK_WORKER_THREADS=2
"""

import argparse
import subprocess

from bench_util import cpu_seconds, free_port, pinned, start_node, wait_ping

EVENTS = "context-switches,cpu-migrations,task-clock,syscalls:sys_enter_epoll_wait"


def perf_counts(stderr):
    """Event name -> value from `perf stat -x,` output."""
    counts = {}
    for line in stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 3:
            try:
                counts[fields[2].split(":")[-1]] = float(fields[0])
            except ValueError:
                pass  # "<not counted>" / "<not supported>"
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-n", type=int, default=200_000)
    ap.add_argument("--env", action="append", default=[], help="VAR=VALUE for the node")
    ap.add_argument("--server-cpus", default=None, help="taskset CPU list for both servers")
    ap.add_argument("--client-cpus", default=None, help="taskset CPU list for redis-benchmark")
    a = ap.parse_args()
    extra = dict(kv.split("=", 1) for kv in a.env)

    redis_port = free_port()
    redis = subprocess.Popen(
        pinned(a.server_cpus, ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no"]),
        stdout=subprocess.DEVNULL)
    ours, ours_port = start_node(a.binary, env=extra, cpus=a.server_cpus,
                                 STORAGE_PERSISTENCE="false")
    wait_ping(redis_port)
    servers = [("redis", redis_port, redis), ("merklekv", ours_port, ours)]
    try:
        for _, port, _ in servers:
            subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-n", "100000",
                            "-r", "100000", "-d", "100", "-q"], capture_output=True, timeout=300)
        for rnd in range(a.rounds):
            for name, port, proc in servers:
                for test in ("set", "get"):
                    before = cpu_seconds(proc.pid)
                    run = subprocess.run(
                        ["perf", "stat", "-x,", "-e", EVENTS]
                        + pinned(a.client_cpus, [
                            "redis-benchmark", "-p", str(port), "-t", test, "-n", str(a.n),
                            "-r", "100000", "-d", "100", "-c", "50", "-P", "1", "--csv"]),
                        capture_output=True, text=True, timeout=600, check=True)
                    server_us = (cpu_seconds(proc.pid) - before) / a.n * 1e6
                    ops = float(run.stdout.strip().splitlines()[-1].split(",")[1].strip('"'))
                    c = perf_counts(run.stderr)
                    print(f"round {rnd + 1} {name:8} {test}: {ops:9,.0f} ops/s, "
                          f"server {server_us:5.2f} µs/req, "
                          f"client {c.get('task-clock', 0) * 1000 / a.n:5.2f} µs/req, "
                          f"epoll_wait {c.get('sys_enter_epoll_wait', 0) / a.n:.3f}/req, "
                          f"switches {c.get('context-switches', 0) / a.n:.3f}/req, "
                          f"migrations {c.get('cpu-migrations', 0):.0f}", flush=True)
    finally:
        for _, _, proc in servers:
            proc.kill()


if __name__ == "__main__":
    main()
