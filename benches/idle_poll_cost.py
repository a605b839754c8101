#!/usr/bin/env python3
"""What idle polling costs: a node's CPU under a light, paced load, with
`network.idle_poll_us` at its default (20), at 200 and at 0, next to
redis-server.

For each request rate, one connection sends RESP `SET key:N <100 bytes>`
at that pace (one request, wait for the reply, sleep until the next slot)
for `--seconds`, against each server in turn; the script reads each
server's CPU time from /proc before and after and prints the CPU used as a
share of one core, with the rate actually reached.

    cargo build --release
    python3 benches/idle_poll_cost.py target/release/merklekv --rates 100,1000,5000
"""

import argparse
import os
import socket
import tempfile
import time

from bench_util import cpu_seconds, start_node, start_redis


def paced_sets(port, rate, seconds):
    """Sends SETs at `rate` per second for `seconds`; returns requests sent."""
    value = b"x" * 100
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.perf_counter()
        sent = 0
        while True:
            slot = start + sent / rate
            now = time.perf_counter()
            if now - start >= seconds:
                return sent
            if slot > now:
                time.sleep(slot - now)
            key = b"key:%d" % (sent % 100_000)
            s.sendall(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n" % (len(key), key, value))
            reply = s.recv(64)
            if not reply.startswith(b"+OK"):
                raise RuntimeError(f"unexpected reply {reply!r}")
            sent += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--rates", default="100,1000,5000")
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as data_root:
        servers = []
        variants = (("idle_poll_us=20 (default)", "20"), ("idle_poll_us=200", "200"),
                    ("idle_poll_us=0", "0"))
        for label, credit in variants:
            proc, port = start_node(a.binary, STORAGE_PERSISTENCE="false",
                                    NETWORK_IDLE_POLL_US=credit,
                                    STORAGE_DATA_DIR=os.path.join(data_root, credit))
            servers.append((label, port, proc))
        redis, redis_port = start_redis()
        servers.append(("redis-server", redis_port, redis))
        try:
            print("| requests/s asked | server | requests/s reached | server CPU, % of one core |")
            print("|---:|---|---:|---:|")
            for rate in (int(r) for r in a.rates.split(",")):
                for label, port, proc in servers:
                    before = cpu_seconds(proc.pid)
                    t0 = time.perf_counter()
                    sent = paced_sets(port, rate, a.seconds)
                    elapsed = time.perf_counter() - t0
                    # Let a last polling window end inside the measurement.
                    time.sleep(0.05)
                    used = cpu_seconds(proc.pid) - before
                    print(f"| {rate:,} | {label} | {sent / elapsed:,.0f} | "
                          f"{100 * used / elapsed:.1f} |")
        finally:
            for _, _, proc in servers:
                proc.kill()


if __name__ == "__main__":
    main()
