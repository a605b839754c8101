#!/usr/bin/env python3
"""Memory a node holds for hostile clients (issue 19, part 4).

    python3 benches/client_memory.py [--bin target/release/merklekv] [--env K=V ...]

Starts a node (persistence, MQTT and anti-entropy off), reads its RSS, then
opens C connections that each send an unfinished RESP array of `$0`
elements (about 6 MB each, never completed) and C more that each send an
unfinished 1 MB text line, reads the RSS again, closes every connection and
reads it once more after 2 s. Prints one line per stage and how many of
the hostile connections the node closed.
"""
import argparse, os, socket, subprocess, sys, time

sys.path.insert(0, os.path.dirname(__file__))
from bench_util import free_port  # noqa: E402


def rss_mb(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def closed(sock):
    sock.setblocking(False)
    try:
        data = sock.recv(4096)
        return data == b"" or b"ERR" in data
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/merklekv")
    ap.add_argument("--arrays", type=int, default=4)
    ap.add_argument("--lines", type=int, default=100)
    ap.add_argument("--env", action="append", default=[])
    a = ap.parse_args()
    port, sync = free_port(), free_port()
    env = dict(os.environ, MERKLE_KV_NETWORK_BIND_PORT=str(port),
               MERKLE_KV_NETWORK_SYNC_PORT=str(sync), MERKLE_KV_NETWORK_METRICS_PORT="0",
               MERKLE_KV_MQTT_ENABLED="false", MERKLE_KV_ANTI_ENTROPY_ENABLED="false",
               MERKLE_KV_STORAGE_PERSISTENCE="false", RUST_LOG="warn")
    for kv in a.env:
        k, v = kv.split("=", 1)
        env[k] = v
    node = subprocess.Popen([a.bin], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        print(f"idle: {rss_mb(node.pid):.1f} MB")
        socks = []
        element = b"$0\r\n\r\n"
        for _ in range(a.arrays):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"*1048576\r\n")
            for _ in range(15):
                try:
                    s.sendall(element * 65536)
                except OSError:
                    break
            socks.append(s)
        for _ in range(a.lines):
            s = socket.create_connection(("127.0.0.1", port))
            try:
                s.sendall(b"SET k " + b"x" * (1 << 20))
            except OSError:
                pass
            socks.append(s)
        time.sleep(1.0)
        held = rss_mb(node.pid)
        dropped = sum(closed(s) for s in socks)
        print(f"with {a.arrays} unfinished $0 arrays (~6 MB each) and {a.lines} unfinished 1 MB "
              f"lines: {held:.1f} MB; the node closed {dropped} of {len(socks)} connections")
        for s in socks:
            s.close()
        time.sleep(2.0)
        print(f"2 s after they closed: {rss_mb(node.pid):.1f} MB")
    finally:
        node.terminate()
        node.wait()


if __name__ == "__main__":
    main()
