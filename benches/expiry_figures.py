#!/usr/bin/env python3
"""Figures for keys with a time to live (docs/benchmarks.md, "Keys with a
time to live").

    cargo build --release
    python3 benches/expiry_figures.py memory --bin base=/tmp/base/merklekv \\
        --bin ours=target/release/merklekv
    python3 benches/expiry_figures.py sweep --bin target/release/merklekv

memory: RSS growth per key after loading 1,000,000 keys of 100 bytes
        through `redis-cli --pipe`, with no key and with 10 % of the keys
        given a deadline (`SET k v EX 100000`), for each binary and for
        redis-server.
sweep:  1,000,000 keys loaded with one shared deadline (`PXAT`); a
        redis-benchmark GET run (-c 50 -P 1) well before the deadline and
        one started at the deadline, while the active expiry cycle turns
        all of them into tombstones; p99 of each, how long the cycle took
        and the node's CPU over it. `--bin redis` runs the same against
        redis-server (its active expiry deletes the keys).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from bench_util import cpu_seconds, rss_bytes, start_node, start_redis, value_pool


def load_file(path, keys, ttl_every=0, pxat=None):
    """SETs of keys key:%012d with 100-byte values; every `ttl_every`-th key
    (0: none) with `EX 100000`, or every key with `PXAT pxat`."""
    pool = value_pool()
    with open(path, "wb") as f:
        for i in range(keys):
            key = b"key:%012d" % i
            value = pool[i % len(pool)]
            if pxat is not None:
                at = str(pxat).encode()
                f.write(b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n$4\r\nPXAT\r\n$%d\r\n%s\r\n"
                        % (len(key), key, value, len(at), at))
            elif ttl_every and i % ttl_every == 0:
                f.write(b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n$2\r\nEX\r\n$6\r\n100000\r\n"
                        % (len(key), key, value))
            else:
                f.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n" % (len(key), key, value))


def pipe(port, path):
    with open(path, "rb") as f:
        subprocess.run(["redis-cli", "-p", str(port), "--pipe"], stdin=f,
                       stdout=subprocess.DEVNULL, timeout=900, check=True)


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                          text=True, check=True).stdout.strip()


def memory(args):
    keys = args.keys
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for share, every in (("0 %", 0), ("10 %", 10)):
            files[share] = os.path.join(tmp, f"load{every}.resp")
            load_file(files[share], keys, ttl_every=every)
        servers = [(label, lambda b=binary: start_node(b, STORAGE_PERSISTENCE="false"))
                   for label, binary in
                   (spec.split("=", 1) for spec in args.bin)]
        servers.append(("redis", lambda: start_redis()))
        print(f"| server | keys with a deadline | RSS growth per key (bytes) | with / without |")
        print("|---|---|---:|---:|")
        for label, start in servers:
            per_key = {}
            for share, path in files.items():
                proc, port = start()
                try:
                    before = rss_bytes(proc.pid)
                    try:
                        pipe(port, path)
                    except subprocess.CalledProcessError:
                        continue  # a build without expiry refuses `EX`
                    time.sleep(1.0)
                    after = rss_bytes(proc.pid)
                    assert int(cli(port, "dbsize")) == keys
                    per_key[share] = (after - before) / keys
                finally:
                    proc.kill()
                    proc.wait()
            for share, value in per_key.items():
                ratio = value / per_key["0 %"]
                print(f"| {label} | {share} | {value:.1f} | {ratio:.3f}× |")
            sys.stdout.flush()


def p99_of(csv_text):
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    row = [line for line in csv_text.splitlines() if line.startswith('"GET')][0]
    fields = [f.strip('"') for f in row.split(",")]
    return float(fields[1]), float(fields[6]), float(fields[7])


def get_run(port, requests):
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "get", "-c", "50", "-P", "1",
                          "-n", str(requests), "-r", "1000000", "--csv"],
                         capture_output=True, text=True, check=True).stdout
    return p99_of(out)


def sweep(args):
    keys = args.keys
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "load.resp")
        if args.bin == "redis":
            proc, port = start_redis()
        else:
            extra = dict(kv.split("=", 1) for kv in args.env)
            proc, port = start_node(args.bin, env=extra or None, STORAGE_PERSISTENCE="false")
        try:
            deadline_ms = int(time.time() * 1000) + args.lead_seconds * 1000
            load_file(path, keys, pxat=deadline_ms)
            pipe(port, path)
            assert int(cli(port, "dbsize")) == keys
            before = get_run(port, args.requests)
            wait = deadline_ms / 1000 - time.time()
            assert wait > 0, "the load took longer than --lead-seconds"
            time.sleep(wait)
            cpu0 = cpu_seconds(proc.pid)
            t0 = time.time()
            during = get_run(port, args.requests)
            while int(cli(port, "dbsize")) > 0 if args.bin == "redis" else \
                    int(cli(port, "info").split("db_expires:")[1].split()[0]) > 0:
                time.sleep(0.05)
            took = time.time() - t0
            cpu = cpu_seconds(proc.pid) - cpu0
            print(f"| run | GET ops/s | p99 ms | max ms |")
            print("|---|---:|---:|---:|")
            print(f"| before the deadline | {before[0]:,.0f} | {before[1]:.3f} | {before[2]:.3f} |")
            print(f"| at the deadline, cycle running | {during[0]:,.0f} | {during[1]:.3f} | {during[2]:.3f} |")
            print(f"\np99 during / before: {during[1] / before[1]:.2f}×; "
                  f"{keys:,} keys expired in {took:.1f} s after the deadline "
                  f"(node CPU {cpu:.1f} s over that time, GETs included); "
                  f"dbsize after: {cli(port, 'dbsize')}")
        finally:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    m = sub.add_parser("memory")
    m.add_argument("--bin", action="append", required=True, help="LABEL=BINARY")
    m.add_argument("--keys", type=int, default=1_000_000)
    # Nodes run in memory (persistence off), as in compare_redis.py.
    s = sub.add_parser("sweep")
    s.add_argument("--bin", required=True, help="a merklekv binary, or `redis`")
    s.add_argument("--keys", type=int, default=1_000_000)
    s.add_argument("--requests", type=int, default=300_000)
    s.add_argument("--lead-seconds", type=int, default=40)
    s.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="an extra environment variable for the node (repeatable)")
    args = ap.parse_args()
    memory(args) if args.what == "memory" else sweep(args)


if __name__ == "__main__":
    main()
