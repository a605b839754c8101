"""The cluster scenarios: replication, docker kill, network partition (short
and long), broker restart, a node joining. Each runs against a fresh compose
project, injects its fault, heals it, measures the time from healing to equal
Merkle roots on every node, and judges the final state with the history
checker. Each returns a dict of figures; a failed expectation raises
AssertionError (or ClusterError / NotConverged). See docs/operations.md."""

import os
import time

from convergence import (NotConverged, differing_keys, dump_one, dump_states, grpc_roots,
                         wait_converged)
from history import History
from load import WriteLoad
from metrics import MQTT_APPLIED, delta, healing_figures, snapshot, wait_broker_connected

# Seconds a scenario waits for equal roots (CLUSTER_CONVERGE_TIMEOUT overrides).
CONVERGE_TIMEOUT = float(os.environ.get("CLUSTER_CONVERGE_TIMEOUT", "120"))


def check_converged(cluster, history, prefix, healed_at, figures, metrics_before=None):
    """Waits for equal roots, confirms them over gRPC, checks the history.
    With a metrics snapshot taken at healing, also reports how many entries
    anti-entropy and MQTT delivered until convergence."""
    converged_at, root, _polls = wait_converged(cluster, CONVERGE_TIMEOUT)
    figures["heal_seconds"] = round(converged_at - healed_at, 2)
    if metrics_before is not None:
        figures.update(healing_figures(metrics_before, snapshot(cluster)))
    figures["root"] = root[:16]
    grpc = grpc_roots(cluster)
    if grpc is None:
        figures["root_check"] = "HASH on the client port (grpcurl not installed)"
    else:
        distinct = set(grpc.values())
        assert len(distinct) == 1, f"gRPC GetRoot roots differ: {grpc}"
        figures["root_check"] = "HASH and grpcurl MerkleSync/GetRoot"
        figures["entries_in_tree"] = distinct.pop()[1]
    with cluster.client("node1") as client:
        figures["keys"] = client.dbsize()
    states = dump_states(cluster, prefix)
    verdict = history.check(states, prefix)
    figures["history"] = verdict.summary()
    figures["writes_acknowledged"] = len(history.acknowledged())
    assert verdict.ok, "history check failed: " + verdict.summary()
    return figures


def sequential_sets(history, client, node, items):
    for key, value in items:
        assert history.set(client, node, key, value), f"SET {key} through {node} not acknowledged"


# -- 1. replication -----------------------------------------------------------

def replication(cluster):
    """Write through node1, read through node3; equal roots everywhere."""
    history, prefix = History(), "repl:"
    keys = [f"{prefix}{i}" for i in range(1000)]
    before = snapshot(cluster)
    with cluster.client("node1") as c1:
        sequential_sets(history, c1, "node1", [(k, f"v1-{k}") for k in keys])
        sequential_sets(history, c1, "node1", [(k, f"v2-{k}") for k in keys[:100]])
        for key in keys[900:]:
            assert history.delete(c1, "node1", key) == "ok", f"DEL {key} not acknowledged"
    last_ack = time.time()
    expected = {k: f"v2-{k}" for k in keys[:100]}
    expected.update({k: f"v1-{k}" for k in keys[100:900]})
    deadline = last_ack + CONVERGE_TIMEOUT
    while True:
        seen = dump_one(cluster, "node3", prefix)
        if seen == expected:
            break
        if time.time() > deadline:
            missing = differing_keys(seen, expected)
            raise NotConverged(f"node3 differs from what node1 acknowledged on {len(missing)} keys, "
                               f"e.g. {sorted(missing)[:5]}")
        time.sleep(0.05)
    visible_after = time.time() - last_ack
    # The hot path carried it, not a periodic anti-entropy round (every 5 s):
    # node3 applied (nearly) every write from MQTT. A round that happens to
    # run mid-write may pull a few keys first, whose MQTT copy is then a no-op.
    applied = delta({"node3": before["node3"]}, {"node3": snapshot(cluster)["node3"]},
                    MQTT_APPLIED)
    if applied < 0.9 * len(history.writes):
        raise NotConverged(f"node3 applied only {applied} of {len(history.writes)} writes "
                           "from MQTT: replication did not carry them")
    figures = {
        "writes": len(history.writes),
        "visible_on_node3_seconds": round(visible_after, 2),
        "applied_from_mqtt_on_node3": applied,
    }
    return check_converged(cluster, history, prefix, last_ack, figures)


# -- 2. docker kill node2 during a write load -----------------------------------

def kill_node(cluster):
    history, prefix = History(), "kill:"
    targets = {n: cluster.client_address(n) for n in ("node1", "node2", "node3")}
    load = WriteLoad(history, targets, prefix, keyspace=3000, rate_per_writer=150).start()
    time.sleep(4)
    killed_at = time.time()
    cluster.kill("node2")
    time.sleep(6)
    load.stop()
    down_keys = history.keys_acked_between(killed_at, time.time())
    before = snapshot(cluster)
    restarted_at = time.time()
    cluster.start("node2")
    answering_at = cluster.wait_answering("node2", 60)
    figures = {
        "writes_unknown": load.total("unknown"),
        "keys_written_while_down": len(down_keys),
        "node2_answering_seconds": round(answering_at - restarted_at, 2),
    }
    return check_converged(cluster, history, prefix, restarted_at, figures, before)


# -- 3. partition node3, conflicting writes on both sides -------------------------

def partition(cluster, hold_seconds=0.0):
    """hold_seconds: keep the partition at least this long. A short one
    leaves node3's MQTT connection open (TCP retransmits once the network is
    back); one longer than 1.5 x mqtt.keep_alive (15 s here) makes the broker
    and node3 drop the session, so healing goes through reconnect +
    anti-entropy."""
    history, prefix = History(), "part:"
    seeds = [(f"{prefix}{i}", f"seed-{i}") for i in range(300)]
    with cluster.client("node1") as c1:
        sequential_sets(history, c1, "node1", seeds)
    wait_converged(cluster, CONVERGE_TIMEOUT)

    network, island = cluster.partition("node3")
    partitioned_at = time.time()
    c1, c2, c3 = cluster.client("node1"), cluster.client("node2"), cluster.client("node3")
    try:
        # Phase A, then phase B more than a second later: B wins every conflict.
        for i in range(0, 100):      # node3 first, node1 later: node1 wins
            assert history.set(c3, "node3", f"{prefix}{i}", f"n3a-{i}")
        for i in range(100, 200):    # node1 first, node3 later: node3 wins
            assert history.set(c1, "node1", f"{prefix}{i}", f"n1a-{i}")
        for i in range(200, 220):    # node1 writes, node3 deletes later: deleted
            assert history.set(c1, "node1", f"{prefix}{i}", f"n1a-{i}")
        for i in range(220, 240):    # node3 deletes, node2 writes later: value
            assert history.delete(c3, "node3", f"{prefix}{i}") == "ok"
        for i in range(240, 260):    # node3 writes, node2 deletes later: deleted
            assert history.set(c3, "node3", f"{prefix}{i}", f"n3a-{i}")
        for i in range(50):          # keys only one side knows
            assert history.set(c3, "node3", f"{prefix}only3-{i}", f"n3-{i}")
            assert history.set(c1, "node1", f"{prefix}only1-{i}", f"n1-{i}")
        time.sleep(1.1)
        for i in range(0, 100):
            assert history.set(c1, "node1", f"{prefix}{i}", f"n1b-{i}")
        for i in range(100, 200):
            assert history.set(c3, "node3", f"{prefix}{i}", f"n3b-{i}")
        for i in range(200, 220):
            assert history.delete(c3, "node3", f"{prefix}{i}") == "ok"
        for i in range(220, 240):
            assert history.set(c2, "node2", f"{prefix}{i}", f"n2b-{i}")
        for i in range(240, 260):
            assert history.delete(c2, "node2", f"{prefix}{i}") == "ok"
        # The partition must hold: node3 still has its own value of key 0
        # and node1 has not seen node3's keys.
        time.sleep(1.5)
        assert c3.get(f"{prefix}0") == "n3a-0", "node3 received writes through the partition"
        assert c1.get(f"{prefix}only3-0") is None, "node1 received node3's writes through the partition"
    finally:
        for c in (c1, c2, c3):
            c.close()
    side1, side3 = dump_one(cluster, "node1", prefix), dump_one(cluster, "node3", prefix)
    differences = differing_keys(side1, side3)
    time.sleep(max(0.0, partitioned_at + hold_seconds - time.time()))
    before = snapshot(cluster)
    healed_at = cluster.heal("node3", network, island)
    figures = {
        "partition_seconds": round(healed_at - partitioned_at, 1),
        "writes": len(history.writes),
        "differing_keys_at_heal": len(differences),
    }
    return check_converged(cluster, history, prefix, healed_at, figures, before)


# -- 4. broker stop and restart during a write load ------------------------------

def broker_restart(cluster):
    history, prefix = History(), "broker:"
    targets = {n: cluster.client_address(n) for n in ("node1", "node2", "node3")}
    load = WriteLoad(history, targets, prefix, keyspace=3000, rate_per_writer=150).start()
    time.sleep(4)
    at_stop = snapshot(cluster)
    stopped_at = time.time()
    cluster.stop("mosquitto", timeout=5)
    time.sleep(6)
    at_restart = snapshot(cluster)
    restarted_at = time.time()
    cluster.start("mosquitto")
    outage_keys = history.keys_acked_between(stopped_at, restarted_at)
    reconnected_at = wait_broker_connected(cluster, 60)
    assert reconnected_at is not None, "nodes did not reconnect to the broker within 60 s"
    time.sleep(max(0.0, restarted_at + 3 - time.time()))
    load.stop()
    load_stopped_at = time.time()
    during = healing_figures(at_stop, at_restart)
    figures = {
        "writes_unknown": load.total("unknown"),
        "keys_written_during_outage": len(outage_keys),
        "outage_entries_merged_by_anti_entropy": during["entries_merged_by_anti_entropy"],
        "all_nodes_reconnected_seconds": round(reconnected_at - restarted_at, 2),
        "load_after_restart_seconds": round(load_stopped_at - restarted_at, 2),
    }
    check_converged(cluster, history, prefix, restarted_at, figures, at_restart)
    figures["converged_after_load_stopped_seconds"] = round(
        max(0.0, figures["heal_seconds"] - (load_stopped_at - restarted_at)), 2)
    # Replication through the broker works again: a fresh write on node1 is
    # visible on node3 (a lag well below the anti-entropy interval of 5 s
    # means it came over MQTT, not from an anti-entropy round).
    with cluster.client("node1") as c1, cluster.client("node3") as c3:
        assert c1.set("broker-after:probe", "after-restart") == "OK"
        written = time.time()
        while c3.get("broker-after:probe") != "after-restart":
            if time.time() - written > CONVERGE_TIMEOUT:
                raise NotConverged("a write after the broker restart never reached node3")
            time.sleep(0.005)
        figures["replication_lag_after_restart_seconds"] = round(time.time() - written, 3)
    return figures


# -- 5. a fourth node joins a loaded cluster ------------------------------------

def add_node(cluster):
    """node4 starts empty with node1 as its only configured peer; the others
    learn of it from its MQTT presence. Time until all four roots agree."""
    history, prefix = History(), "join:"
    with cluster.client("node1") as c1, cluster.client("node2") as c2:
        for i in range(3000):
            client, node = (c1, "node1") if i % 2 == 0 else (c2, "node2")
            assert history.set(client, node, f"{prefix}{i}", f"{node}-{i}")
    wait_converged(cluster, CONVERGE_TIMEOUT)
    before = snapshot(cluster)
    started_at = cluster.add_node4()
    answering_at = cluster.wait_answering("node4", 90)
    figures = {
        "keys_to_copy": 3000,
        "node4_answering_seconds": round(answering_at - started_at, 2),
    }
    return check_converged(cluster, history, prefix, started_at, figures, before)


SCENARIOS = [
    ("replication", replication),
    ("kill_node2", kill_node),
    ("partition_node3", partition),
    ("partition_node3_long", lambda cluster: partition(cluster, hold_seconds=25)),
    ("broker_restart", broker_restart),
    ("add_node4", add_node),
]
