#!/usr/bin/env python3
"""How much the server disturbs the load generator: redis-benchmark's own
CPU time, system calls and context switches per request, against
redis-server and a MerkleKV node, side by side, and the same counts for
each server (perf attached to its pid while the run lasts).

Starts both servers on free loopback ports (MerkleKV with MQTT, anti-entropy
and persistence off), loads 100,000 keys into each, then for each round and
server attaches `perf stat -p PID` (context switches and syscall
tracepoints) to the server and runs

    perf stat -x, -e context-switches,cpu-migrations,task-clock,\
        syscalls:sys_enter_{read,recvfrom,write,sendto,writev,epoll_wait} \
        redis-benchmark -p PORT -t set|get -n N -r 100000 -d 100 -c 50 -P 1 --csv

It prints two lines per run: ops/s, the server's CPU µs per request (from
/proc), redis-benchmark's task-clock µs, context switches per request and
CPU migrations; then, for the load generator and for the server, the socket
system calls and epoll_waits per request (plus the server's context
switches). It ends with the per-round and median ours/Redis ops/s ratios.
The tracepoints add their own overhead to both sides alike, so the ops/s
and µs here run a little below an untraced run. Needs `perf` (Debian's
linux-perf; software events and syscall tracepoints are enough). Every run
is bounded by N.

    cargo build --release
    python3 benches/client_switches.py target/release/merklekv --rounds 3
    python3 benches/client_switches.py target/release/merklekv --env MERKLE_KV_NETWORK_WORKER_THREADS=2
"""

import argparse
import statistics
import subprocess
import time

from bench_util import cpu_seconds, pinned, start_node, start_redis

EVENTS = "context-switches,cpu-migrations,task-clock"
SYSCALLS = ["read", "recvfrom", "write", "sendto", "writev", "epoll_wait"]
SYSCALL_EVENTS = ",".join(f"syscalls:sys_enter_{c}" for c in SYSCALLS)


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


def per_request(counts, n):
    """The non-zero socket system calls and epoll_waits of `counts`, per request."""
    return " ".join(f"{c} {counts[f'sys_enter_{c}'] / n:.3f}" for c in SYSCALLS
                    if counts.get(f"sys_enter_{c}", 0) > 0)


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

    redis, redis_port = start_redis(a.server_cpus)
    ours, ours_port = start_node(a.binary, env=extra, cpus=a.server_cpus,
                                 STORAGE_PERSISTENCE="false")
    servers = [("redis", redis_port, redis), ("merklekv", ours_port, ours)]
    ops_by = {}
    try:
        for _, port, _ in servers:
            subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-n", "100000",
                            "-r", "100000", "-d", "100", "-q"], capture_output=True, timeout=300)
        for rnd in range(a.rounds):
            for name, port, proc in servers:
                for test in ("set", "get"):
                    server_perf = subprocess.Popen(
                        ["perf", "stat", "-x,", "-e", f"context-switches,{SYSCALL_EVENTS}",
                         "-p", str(proc.pid)],
                        stderr=subprocess.PIPE, text=True)
                    time.sleep(0.3)  # let perf attach before the load starts
                    before = cpu_seconds(proc.pid)
                    run = subprocess.run(
                        ["perf", "stat", "-x,", "-e", f"{EVENTS},{SYSCALL_EVENTS}"]
                        + pinned(a.client_cpus, [
                            "redis-benchmark", "-p", str(port), "-t", test, "-n", str(a.n),
                            "-r", "100000", "-d", "100", "-c", "50", "-P", "1", "--csv"]),
                        capture_output=True, text=True, timeout=600, check=True)
                    server_us = (cpu_seconds(proc.pid) - before) / a.n * 1e6
                    server_perf.send_signal(2)  # SIGINT: perf prints and exits
                    sc = perf_counts(server_perf.communicate(timeout=30)[1])
                    ops = float(run.stdout.strip().splitlines()[-1].split(",")[1].strip('"'))
                    c = perf_counts(run.stderr)
                    print(f"round {rnd + 1} {name:8} {test}: {ops:9,.0f} ops/s, "
                          f"server {server_us:5.2f} µs/req, "
                          f"client {c.get('task-clock', 0) * 1000 / a.n:5.2f} µs/req, "
                          f"switches {c.get('context-switches', 0) / a.n:.3f}/req, "
                          f"migrations {c.get('cpu-migrations', 0):.0f}", flush=True)
                    print(f"    syscalls/req  client: {per_request(c, a.n)}\n"
                          f"    syscalls/req  server: {per_request(sc, a.n)}, "
                          f"switches {sc.get('context-switches', 0) / a.n:.3f}", flush=True)
                    ops_by.setdefault((name, test), []).append(ops)
        for test in ("set", "get"):
            ratios = [o / r for o, r in zip(ops_by[("merklekv", test)], ops_by[("redis", test)])]
            print(f"{test}: ours/Redis ops/s per round "
                  f"{' '.join(f'{x:.2f}' for x in ratios)}, median {statistics.median(ratios):.2f}")
    finally:
        for _, _, proc in servers:
            proc.kill()


if __name__ == "__main__":
    main()
