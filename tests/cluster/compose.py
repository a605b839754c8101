"""One docker compose project (docker-compose.yml at the repository root)
under a unique project name, with host ports chosen free on 127.0.0.1.

Used as a context manager: `up` on entry; on exit (also after a failure or
an interrupt) the logs are saved when something failed, any network the test
created is removed, and `down -v` removes containers, the project network and
the named volumes.
"""

import json
import os
import random
import socket
import subprocess
import time

from kvclient import KvClient

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPOSE_FILE = os.path.join(ROOT, "docker-compose.yml")
NODE4_FILE = os.path.join(ROOT, "tests", "cluster", "compose.node4.yml")
NODES = ("node1", "node2", "node3")
PORT_VARS = {
    "node1": ("MERKLEKV_NODE1_CLIENT_PORT", "MERKLEKV_NODE1_SYNC_PORT", "MERKLEKV_NODE1_METRICS_PORT"),
    "node2": ("MERKLEKV_NODE2_CLIENT_PORT", "MERKLEKV_NODE2_SYNC_PORT", "MERKLEKV_NODE2_METRICS_PORT"),
    "node3": ("MERKLEKV_NODE3_CLIENT_PORT", "MERKLEKV_NODE3_SYNC_PORT", "MERKLEKV_NODE3_METRICS_PORT"),
}


class ClusterError(Exception):
    pass


def compose_command():
    """`docker compose` (v2 plugin) when it works, else `docker-compose` (v1)."""
    for cmd in (["docker", "compose"], ["docker-compose"]):
        try:
            done = subprocess.run(cmd + ["version"], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return cmd
    raise ClusterError("neither `docker compose` nor `docker-compose` works")


def _listen_port_range():
    """Ports from 10000 up to the start of the kernel's ephemeral range, or
    None when that range starts too low to leave room."""
    low = 10000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            start = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        start = 32768
    return (low, start) if start > low + 1000 else None


def _bindable(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_ports(count):
    """`count` distinct ports free on 127.0.0.1 for Docker to publish.

    Taken from below the ephemeral range (as `free_port` in
    tests/common/mod.rs does): a port from bind(0) is an ephemeral one, which
    any outgoing connection on the machine may take as its source port
    before Docker binds it."""
    span = _listen_port_range()
    if span is None:
        socks = []
        try:
            for _ in range(count):
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                socks.append(s)
            return [s.getsockname()[1] for s in socks]
        finally:
            for s in socks:
                s.close()
    ports = []
    for _ in range(100 * count):
        port = random.randrange(*span)
        if port not in ports and _bindable(port):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise ClusterError(f"no {count} free ports in {span[0]}..{span[1]}")


def port_taken(stderr):
    """Whether `compose up` failed because a host port was taken."""
    text = stderr.lower()
    return "address already in use" in text or "port is already allocated" in text


def run(cmd, env=None, timeout=180, check=True):
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise ClusterError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done


class Cluster:
    def __init__(self, project, compose, log_dir, images):
        self.project = project
        self.compose = compose
        self.log_dir = log_dir
        self.images = images  # {"MERKLEKV_IMAGE": ..., "MOSQUITTO_IMAGE": ...}
        self.extra_networks = []
        self.ports = {}
        self.env = None
        self._containers = {}
        self.nodes = list(NODES)
        self.files = [COMPOSE_FILE]

    # -- lifecycle ---------------------------------------------------------

    def _choose_ports(self):
        ports = free_ports(10)
        env = dict(os.environ)
        env.update(self.images)
        env["MERKLEKV_PUBLISH_ADDRESS"] = "127.0.0.1"
        env["MERKLEKV_MQTT_PORT"] = str(ports.pop())
        for node in NODES:
            client, sync, metrics = ports.pop(), ports.pop(), ports.pop()
            self.ports[node] = {"client": client, "sync": sync, "metrics": metrics}
            for var, port in zip(PORT_VARS[node], (client, sync, metrics)):
                env[var] = str(port)
        self.env = env

    def _compose(self, *args, timeout=180, check=True):
        files = [arg for f in self.files for arg in ("-f", f)]
        cmd = self.compose + files + ["-p", self.project] + list(args)
        return run(cmd, env=self.env, timeout=timeout, check=check)

    def up(self):
        for attempt in range(3):
            self._choose_ports()
            done = self._compose("up", "-d", check=False, timeout=300)
            if done.returncode == 0:
                break
            # A host port taken between choosing and binding: try new ones.
            if port_taken(done.stderr) and attempt < 2:
                self._compose("down", "-v", "--remove-orphans", check=False)
                continue
            raise ClusterError(f"compose up failed: {done.stderr.strip()[-2000:]}")
        self.wait_healthy(NODES, timeout=90)
        return self

    def down(self, save_logs=False):
        if save_logs and self.env is not None:
            self.save_logs()
        for network in self.extra_networks:
            for node in self.nodes:
                run(["docker", "network", "disconnect", "-f", network, self.container(node)],
                    check=False)
            run(["docker", "network", "rm", network], check=False)
        self.extra_networks = []
        if self.env is not None:
            self._compose("down", "-v", "--remove-orphans", "-t", "10", check=False, timeout=300)

    def __enter__(self):
        try:
            return self.up()
        except BaseException:
            self.down(save_logs=True)
            raise

    def __exit__(self, exc_type, exc, tb):
        self.down(save_logs=exc_type is not None)
        return False

    def save_logs(self):
        os.makedirs(self.log_dir, exist_ok=True)
        path = os.path.join(self.log_dir, f"{self.project}.log")
        done = self._compose("logs", "--no-color", "--timestamps", check=False, timeout=120)
        with open(path, "w") as f:
            f.write(done.stdout)
            f.write(done.stderr)
        print(f"    compose logs saved to {path}")

    def add_node4(self):
        """Starts node4 (tests/cluster/compose.node4.yml) next to the running
        cluster; returns the time `up` was issued."""
        self.files.append(NODE4_FILE)
        self.nodes.append("node4")
        for attempt in range(3):
            client, sync, metrics = free_ports(3)
            self.ports["node4"] = {"client": client, "sync": sync, "metrics": metrics}
            self.env.update({"MERKLEKV_NODE4_CLIENT_PORT": str(client),
                             "MERKLEKV_NODE4_SYNC_PORT": str(sync),
                             "MERKLEKV_NODE4_METRICS_PORT": str(metrics)})
            started = time.time()
            done = self._compose("up", "-d", "node4", check=False, timeout=300)
            if done.returncode == 0:
                return started
            # A host port taken between choosing and binding: try new ones.
            if port_taken(done.stderr) and attempt < 2:
                self._compose("rm", "-f", "-s", "node4", check=False)
                continue
            raise ClusterError(f"compose up node4 failed: {done.stderr.strip()[-2000:]}")

    # -- containers --------------------------------------------------------

    def container(self, service):
        """The container id of a service (stable across stop/start)."""
        if service not in self._containers:
            done = run(["docker", "ps", "-a", "-q",
                        "--filter", f"label=com.docker.compose.project={self.project}",
                        "--filter", f"label=com.docker.compose.service={service}"])
            ids = done.stdout.split()
            if not ids:
                raise ClusterError(f"no container for service {service}")
            self._containers[service] = ids[0]
        return self._containers[service]

    def inspect(self, service):
        return json.loads(run(["docker", "inspect", self.container(service)]).stdout)[0]

    def health(self, service):
        state = self.inspect(service)["State"]
        if not state.get("Running"):
            return "stopped"
        return state.get("Health", {}).get("Status", "none")

    def wait_healthy(self, services, timeout):
        deadline = time.time() + timeout
        pending = list(services)
        while pending:
            pending = [s for s in pending if self.health(s) != "healthy"]
            if not pending:
                return
            if time.time() > deadline:
                raise ClusterError(f"not healthy after {timeout}s: {pending}")
            time.sleep(0.5)

    def wait_answering(self, node, timeout):
        """Waits until the node's client port answers PING; returns the time."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with self.client(node, timeout=1.0) as c:
                    if c.command("PING") == "PONG":
                        return time.time()
            except (OSError, ConnectionError):
                pass
            time.sleep(0.05)
        raise ClusterError(f"{node} does not answer after {timeout}s")

    def kill(self, service):
        run(["docker", "kill", self.container(service)])

    def start(self, service):
        run(["docker", "start", self.container(service)])

    def stop(self, service, timeout=10):
        run(["docker", "stop", "-t", str(timeout), self.container(service)])

    # -- network partition -------------------------------------------------

    def project_network(self, service):
        networks = self.inspect(service)["NetworkSettings"]["Networks"]
        names = [n for n in networks if n.startswith(self.project)]
        if len(names) != 1:
            raise ClusterError(f"{service}: expected one project network, got {list(networks)}")
        return names[0]

    def partition(self, service):
        """Cuts the service off the cluster network. It is attached to a
        network of its own instead, so its published host ports keep
        working (Docker maps them on the container's remaining network) while
        it reaches neither the other nodes nor the broker."""
        network = self.project_network(service)
        island = f"{self.project}_island_{service}"
        run(["docker", "network", "create", island])
        self.extra_networks.append(island)
        cid = self.container(service)
        run(["docker", "network", "connect", island, cid])
        run(["docker", "network", "disconnect", network, cid])
        return network, island

    def heal(self, service, network, island):
        """Reattaches the service to the cluster network under its service
        name (the alias peers dial), then drops the island network. Returns
        the time the cluster network was reattached."""
        cid = self.container(service)
        run(["docker", "network", "connect", "--alias", service, network, cid])
        reconnected_at = time.time()
        run(["docker", "network", "disconnect", island, cid])
        run(["docker", "network", "rm", island])
        self.extra_networks.remove(island)
        return reconnected_at

    # -- clients -----------------------------------------------------------

    def client(self, node, timeout=3.0):
        return KvClient("127.0.0.1", self.ports[node]["client"], timeout=timeout)

    def client_address(self, node):
        return ("127.0.0.1", self.ports[node]["client"])

    def sync_address(self, node):
        return f"127.0.0.1:{self.ports[node]['sync']}"


def cleanup_stale(compose, prefix="mkvct"):
    """Removes compose projects left by an earlier run of these tests that
    died without cleaning up (project name prefix + the pid of a process
    that no longer exists)."""
    done = run(["docker", "ps", "-a", "--format", '{{.Label "com.docker.compose.project"}}'],
               check=False)
    for project in sorted(set(done.stdout.split())):
        if not project.startswith(prefix):
            continue
        pid = project[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and os.path.exists(f"/proc/{pid}"):
            continue
        print(f"cluster: removing stale project {project}")
        run(compose + ["-f", COMPOSE_FILE, "-f", NODE4_FILE, "-p", project, "down", "-v",
                       "--remove-orphans", "-t", "5"], check=False, timeout=300)
        for network in run(["docker", "network", "ls", "-q", "--filter", f"name={project}_island"],
                           check=False).stdout.split():
            run(["docker", "network", "rm", network], check=False)
