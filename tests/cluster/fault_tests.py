#!/usr/bin/env python3
"""Runs the cluster fault scenarios (tests/cluster/faults.py), each against
its own `docker compose` project, and prints one line per scenario, the
measured figures, and a closing "cluster: N passed, N failed" line.

Usage: python3 tests/cluster/fault_tests.py [--only NAME[,NAME...]]
                                            [--results PATH] [--log-dir DIR]
Images come from MERKLEKV_IMAGE and MOSQUITTO_IMAGE (tests/cluster/run.sh
builds them with images.sh). Exit status 0 only when every scenario passed.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from compose import ROOT, Cluster, cleanup_stale, compose_command  # noqa: E402
from faults import SCENARIOS  # noqa: E402


def interrupted(signum, _frame):
    # Turn SIGTERM into an exception so every Cluster is torn down.
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--results", default=os.path.join(ROOT, "target", "cluster", "results.json"))
    parser.add_argument("--log-dir", default=os.path.join(ROOT, "target", "cluster", "logs"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, interrupted)

    wanted = [n for n in args.only.split(",") if n]
    unknown = set(wanted) - {name for name, _ in SCENARIOS}
    if unknown:
        parser.error(f"unknown scenario(s): {sorted(unknown)}")
    scenarios = [(n, f) for n, f in SCENARIOS if not wanted or n in wanted]

    compose = compose_command()
    cleanup_stale(compose)
    images = {
        "MERKLEKV_IMAGE": os.environ.get("MERKLEKV_IMAGE", "merklekv:latest"),
        "MOSQUITTO_IMAGE": os.environ.get("MOSQUITTO_IMAGE", "merklekv-mosquitto:offline"),
    }
    # Compose would try to pull a missing image; fail here instead.
    for image in images.values():
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode:
            print(f"cluster: image {image} is not present (build it with tests/cluster/images.sh)")
            return 1
    print(f"cluster: compose command `{' '.join(compose)}`, images {images}")
    run_id = f"{os.getpid()}"
    results, passed, failed = {}, 0, 0
    for name, scenario in scenarios:
        project = f"mkvct{run_id}-{name.replace('_', '-')}"
        started = time.time()
        print(f"cluster: {name} ... (project {project})", flush=True)
        try:
            with Cluster(project, compose, args.log_dir, images) as cluster:
                figures = scenario(cluster)
            status = "ok"
            passed += 1
        except KeyboardInterrupt:
            print(f"cluster: {name} interrupted; cleaned up")
            raise
        except Exception as error:  # noqa: BLE001 - report every failure and go on
            figures = {"error": f"{type(error).__name__}: {error}"}
            traceback.print_exc()
            status = "FAILED"
            failed += 1
        figures["seconds"] = round(time.time() - started, 1)
        results[name] = {"status": status, **figures}
        print(f"cluster: {name} {status} in {figures['seconds']} s")
        for key, value in figures.items():
            if key == "history":
                print(f"    history: {value}")
            elif key not in ("seconds",):
                print(f"    {key}: {value}")
        sys.stdout.flush()

    os.makedirs(os.path.dirname(args.results), exist_ok=True)
    with open(args.results, "w") as f:
        json.dump(results, f, indent=2)
    print(f"cluster: figures written to {args.results}")
    print(f"cluster: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as stop:
        print(f"cluster: interrupted ({stop})")
        sys.exit(130)
