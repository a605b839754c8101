"""Helpers shared by the server benchmark scripts in benches/: free
loopback ports, waiting for a server, reading a process's CPU time and RSS,
and starting a MerkleKV node with MQTT and anti-entropy off."""

import os
import random
import socket
import string
import subprocess
import time


def value_pool(size=100, count=1000):
    """`count` reproducible random alphanumeric values of `size` bytes (the
    values the memory and load benchmarks write)."""
    rnd = random.Random(1)
    alphabet = string.ascii_letters + string.digits
    return ["".join(rnd.choice(alphabet) for _ in range(size)).encode() for _ in range(count)]


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ping(port, timeout=30.0):
    """Waits until the server on `port` answers a RESP PING (MerkleKV or Redis)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not answer PING within {timeout} s")


def cpu_seconds(pid):
    """User + system CPU time of a process so far, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid):
    """Resident set size of a process, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def node_env(port, env=None, **settings):
    """The environment of a MerkleKV node on client port `port` (sync port
    free, MQTT, anti-entropy and the metrics endpoint off, RUST_LOG=warn);
    `settings` gives `MERKLE_KV_*` overrides (e.g. STORAGE_PERSISTENCE="false"),
    `env` any other variables (e.g. RUST_LOG)."""
    full_env = dict(os.environ)
    full_env.update({
        "MERKLE_KV_NETWORK_BIND_PORT": str(port),
        "MERKLE_KV_NETWORK_SYNC_PORT": str(free_port()),
        "MERKLE_KV_NETWORK_METRICS_PORT": "0",
        "MERKLE_KV_MQTT_ENABLED": "false",
        "MERKLE_KV_ANTI_ENTROPY_ENABLED": "false",
        "RUST_LOG": "warn",
    })
    full_env.update({f"MERKLE_KV_{k}": str(v) for k, v in settings.items()})
    full_env.update(env or {})
    return full_env


def pinned(cpus, argv):
    """`argv` run under `taskset -c cpus` (e.g. "1"), or unchanged when
    `cpus` is None."""
    return (["taskset", "-c", cpus] if cpus else []) + list(argv)


def start_redis(cpus=None):
    """Starts `redis-server --save "" --appendonly no` on a free loopback
    port, confined to the CPU list `cpus` if given. Returns (process, port)
    once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        pinned(cpus, ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                      "--save", "", "--appendonly", "no", "--loglevel", "warning"]),
        stdout=subprocess.DEVNULL)
    wait_ping(port)
    return proc, port


def start_node(binary, env=None, cpus=None, **settings):
    """Starts a MerkleKV node on free ports with the environment of
    `node_env`, confined to the CPU list `cpus` if given (taskset syntax).
    Returns (process, client port) once it answers."""
    port = free_port()
    full_env = node_env(port, env, **settings)
    proc = subprocess.Popen(pinned(cpus, [binary]), env=full_env, stdout=subprocess.DEVNULL)
    wait_ping(port)
    return proc, port
