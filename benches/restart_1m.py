#!/usr/bin/env python3
"""Restart time and disk per key with 1,000,000 keys of 100 bytes.

Starts a release node (persistence on, `fsync = everysec` unless --fsync,
MQTT and anti-entropy off) on a fresh data directory, loads 1,000,000
distinct 16-byte keys with 100 random alphanumeric bytes each as pipelined
RESP SETs, then:

1. `kill -9` right after the load, restart: the change log is replayed;
2. SIGTERM (shutdown folds the log into the engine), disk usage;
3. restart after the clean shutdown: the engine alone is read.

For each start it reports the wall time from process start to the
`merklekv ready` line and the node's own `recovered … in …` line; the
Merkle root (`HASH`) must be the same after every restart. Every load is
bounded by its key count.

    cargo build --release
    python3 benches/restart_1m.py
"""

import argparse
import os
import random
import re
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time

from bench_util import free_port, node_env


def start(binary, data_dir, port, fsync):
    env = node_env(port, {"RUST_LOG": "info", "NO_COLOR": "1"},
                   STORAGE_PERSISTENCE="true", STORAGE_FSYNC=fsync,
                   STORAGE_DATA_DIR=data_dir)
    started = time.monotonic()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    recovered = None
    for line in proc.stdout:
        if " keys (" in line and "recovered" in line and recovered is None:
            recovered = line.strip()
        if line.startswith("merklekv ready"):
            break
    else:
        raise RuntimeError("node exited during start-up")
    ready = time.monotonic() - started
    lines = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    return proc, ready, recovered, lines


def resp(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        out.append(f"${len(a)}\r\n".encode() + a + b"\r\n")
    return b"".join(out)


def load(port, keys, rng):
    alphabet = (string.ascii_letters + string.digits).encode()
    # Values are 100-byte windows at random offsets of a random pool.
    pool = bytes(rng.choice(alphabet) for _ in range(1 << 20))
    with socket.create_connection(("127.0.0.1", port)) as s:
        chunk = 10_000
        for base in range(0, keys, chunk):
            n = min(chunk, keys - base)
            offsets = [rng.randrange(len(pool) - 100) for _ in range(n)]
            req = b"".join(
                resp(b"SET", f"key:{base + i:012d}".encode(), pool[o:o + 100])
                for i, o in zip(range(n), offsets))
            s.sendall(req)
            want = b"+OK\r\n" * n
            got = b""
            while len(got) < len(want):
                data = s.recv(1 << 20)
                if not data:
                    raise RuntimeError("connection closed during the load")
                got += data
            if got != want:
                raise RuntimeError(f"unexpected replies: {got[:80]!r}")


def command(port, *args):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(resp(*[a.encode() for a in args]))
        return s.recv(4096).decode().strip()


def du(path):
    apparent = int(subprocess.run(["du", "-sb", path], capture_output=True, text=True,
                                  check=True).stdout.split()[0])
    allocated = int(subprocess.run(["du", "-s", "--block-size=1", path], capture_output=True,
                                   text=True, check=True).stdout.split()[0])
    return apparent, allocated


def timing(recovered):
    m = re.search(r"in ([0-9.]+) s \((.*?)\)", recovered or "")
    return f"{m.group(1)} s ({m.group(2)})" if m else recovered


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="target/release/merklekv")
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--fsync", default="everysec")
    args = ap.parse_args()
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = os.path.join(tmp, "data")
        port = free_port()
        proc, ready, _, _ = start(args.binary, data_dir, port, args.fsync)
        t0 = time.monotonic()
        load(port, args.keys, rng)
        print(f"loaded {args.keys:,} keys in {time.monotonic() - t0:.1f} s")
        root = command(port, "HASH")
        log_bytes = du(os.path.join(data_dir, "log"))[0]
        print(f"change log right after the load: {log_bytes:,} bytes")
        proc.send_signal(signal.SIGKILL)
        proc.wait()

        proc, ready, recovered, _ = start(args.binary, data_dir, port, args.fsync)
        print(f"after kill -9: ready in {ready:.2f} s; logged recovery {timing(recovered)}")
        assert command(port, "HASH") == root, "root differs after kill -9"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        print(f"SIGTERM to exit (log folded, memtable written): {time.monotonic() - t0:.2f} s")
        apparent, allocated = du(data_dir)
        tables = du(os.path.join(data_dir, "engine", "keyspaces"))[0]
        print(f"disk after a clean shutdown: {apparent:,} bytes apparent "
              f"({apparent / args.keys:.0f}/key), {allocated:,} allocated "
              f"({allocated / args.keys:.0f}/key); keyspaces (tables) {tables:,} "
              f"({tables / args.keys:.0f}/key)")

        for run in range(2):
            proc, ready, recovered, _ = start(args.binary, data_dir, port, args.fsync)
            print(f"clean restart {run + 1}: ready in {ready:.2f} s; logged recovery "
                  f"{timing(recovered)}")
            assert command(port, "HASH") == root, "root differs after a clean restart"
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
    print("HASH equal before and after every restart")
    return 0


if __name__ == "__main__":
    sys.exit(main())
