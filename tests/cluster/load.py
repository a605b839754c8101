"""A paced write load (SET and DEL) through chosen nodes, recorded in a History.

One thread per node, one connection each, one request at a time (so every
write has a clear send and reply time). A writer whose node is down (killed
container, refused connection) records the write in flight as "unknown" and
keeps retrying the connection until the load stops. Bounded: each writer
stops at `stop()` or after `max_seconds`, whichever comes first.
"""

import random
import threading
import time

from kvclient import KvClient

RECONNECT_DELAY = 0.2


class WriteLoad:
    def __init__(self, history, targets, key_prefix, keyspace=2000, rate_per_writer=200,
                 delete_percent=15, max_seconds=120, seed=7):
        """targets: {node_name: (host, port)}."""
        self.history = history
        self.targets = targets
        self.key_prefix = key_prefix
        self.keyspace = keyspace
        self.interval = 1.0 / rate_per_writer
        self.delete_percent = delete_percent
        self.max_seconds = max_seconds
        self.seed = seed
        self._stop = threading.Event()
        self._threads = []
        self.counts = {node: {"ok": 0, "noop": 0, "unknown": 0} for node in targets}

    def start(self):
        for index, node in enumerate(sorted(self.targets)):
            thread = threading.Thread(
                target=self._run, args=(node, random.Random(self.seed * 100 + index)),
                name=f"load-{node}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        return self

    def total(self, outcome="ok"):
        return sum(c[outcome] for c in self.counts.values())

    def _connect(self, node):
        """A connection whose node answered PING, or None. (Docker's port
        proxy accepts connections even while the container is dead; a PING
        first keeps such attempts out of the history.)"""
        host, port = self.targets[node]
        client = None
        try:
            client = KvClient(host, port, timeout=2.0)
            if client.command("PING") == "PONG":
                return client
        except (OSError, ConnectionError):
            pass
        if client is not None:
            client.close()
        return None

    def _run(self, node, rng):
        deadline = time.time() + self.max_seconds
        client = None
        seq = 0
        next_at = time.time()
        while not self._stop.is_set() and time.time() < deadline:
            if client is None:
                client = self._connect(node)
                if client is None:
                    self._stop.wait(RECONNECT_DELAY)
                    continue
            pause = next_at - time.time()
            if pause > 0:
                self._stop.wait(pause)
            next_at = max(next_at + self.interval, time.time() - 1.0)
            key = f"{self.key_prefix}{rng.randrange(self.keyspace)}"
            seq += 1
            try:
                if rng.randrange(100) < self.delete_percent:
                    outcome = self.history.delete(client, node, key)
                else:
                    acked = self.history.set(client, node, key, f"{node}-{seq}")
                    outcome = "ok" if acked else "unknown"
                self.counts[node][outcome] += 1
            except (OSError, ConnectionError):
                self.counts[node]["unknown"] += 1
                client.close()
                client = None
        if client is not None:
            client.close()
