"""Reads the nodes' Prometheus endpoints (metrics port, /metrics) to tell
which mechanism healed a fault: entries merged by anti-entropy
(merklekv_sync_*) versus changes applied from MQTT (merklekv_replication_*)."""

import time
import urllib.request

# Entries merged through anti-entropy: pulled by a node's own rounds plus
# pushed to it by a peer's rounds (each counted once, on the receiving node).
AE_MERGED = ("merklekv_sync_keys_pulled_total", "merklekv_sync_pushed_to_us_total")
MQTT_APPLIED = ("merklekv_replication_changes_applied_total",)
AE_ROUNDS_REPAIRED = ('merklekv_sync_rounds_total{result="repaired"}',)


def scrape(port, timeout=2.0):
    """{series: value} of one endpoint; series keep their labels. None when
    the node does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
            text = r.read().decode("utf-8", "replace")
    except OSError:
        return None
    series = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            series[name] = float(value)
        except ValueError:
            continue
    return series


def snapshot(cluster):
    return {node: scrape(cluster.ports[node]["metrics"]) for node in cluster.nodes}


def delta(before, after, names):
    """Sum over nodes of the increase of the given counters. A node that was
    down before (None) or restarted (counter went backwards) counts from 0."""
    total = 0.0
    for node in after:
        now = after.get(node) or {}
        then = before.get(node) or {}
        for name in names:
            a, b = now.get(name, 0.0), then.get(name, 0.0)
            total += a - b if a >= b else a
    return int(total)


def healing_figures(before, after):
    return {
        "entries_merged_by_anti_entropy": delta(before, after, AE_MERGED),
        "anti_entropy_rounds_that_repaired": delta(before, after, AE_ROUNDS_REPAIRED),
        "changes_applied_from_mqtt": delta(before, after, MQTT_APPLIED),
    }


def wait_broker_connected(cluster, timeout):
    """Waits until every node reports merklekv_replication_broker_connected 1;
    returns the time, or None on timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        snap = snapshot(cluster)
        if all(s and s.get("merklekv_replication_broker_connected") == 1.0 for s in snap.values()):
            return time.time()
        time.sleep(0.05)
    return None
