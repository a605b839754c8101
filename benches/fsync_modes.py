#!/usr/bin/env python3
"""SET throughput per durability mode, side by side in one run.

Starts four release nodes on free loopback ports — persistence off, and
`storage.fsync` = never / everysec / always on fresh data directories — with
MQTT and anti-entropy off, then drives each in turn (interleaved, who goes
first rotates per round) with

    redis-benchmark -p PORT -t set -c 50 -n N -r 100000 -d 100 --csv

and reads each node's CPU time per SET from /proc/PID/stat. Prints a
Markdown table of SET/s per round, the ratio to the in-memory node of the
same round, and the medians, then how many change-log segments each
persistent node folded into its engine during the run (with the default
64 MiB segments, a run of N SETs of 100 bytes writes about N x 150 bytes of
log; pass --requests 1500000 or more to include checkpoints in the figures).
Every load is bounded by its request count.

    cargo build --release
    python3 benches/fsync_modes.py --rounds 3
"""

import argparse
import csv
import io
import os
import statistics
import subprocess
import sys
import tempfile

import urllib.request

from bench_util import cpu_seconds, free_port, start_node

MODES = ["off", "never", "everysec", "always"]


def start_mode(binary, mode, data_dir, metrics_port):
    if mode == "off":
        return start_node(binary, NODE_ID=f"bench-{mode}", STORAGE_PERSISTENCE="false")
    return start_node(binary, NODE_ID=f"bench-{mode}", STORAGE_PERSISTENCE="true",
                      STORAGE_FSYNC=mode, STORAGE_DATA_DIR=data_dir,
                      NETWORK_METRICS_PORT=metrics_port)


def checkpoints(metrics_port):
    """The node's count of change-log segments folded into its engine."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                  timeout=10).read().decode()
    for line in body.splitlines():
        if line.startswith("merklekv_storage_checkpoints_total "):
            return int(float(line.split()[1]))
    return 0


def set_rate(port, requests):
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", "set", "-c", "50", "-n", str(requests),
         "-r", "100000", "-d", "100", "--csv"],
        capture_output=True, text=True, timeout=600, check=True).stdout
    row = next(csv.DictReader(io.StringIO(out)))
    return float(row["rps"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="target/release/merklekv")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=300_000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        nodes = {}
        metrics_ports = {m: free_port() for m in MODES}
        folded = {}
        try:
            for mode in MODES:
                nodes[mode] = start_mode(args.binary, mode, os.path.join(tmp, mode),
                                         metrics_ports[mode])
            rates = {m: [] for m in MODES}
            cpu_us = {m: [] for m in MODES}
            for rnd in range(args.rounds):
                order = MODES[rnd % len(MODES):] + MODES[:rnd % len(MODES)]
                for mode in order:
                    proc, port = nodes[mode]
                    before = cpu_seconds(proc.pid)
                    rate = set_rate(port, args.requests)
                    used = cpu_seconds(proc.pid) - before
                    rates[mode].append(rate)
                    cpu_us[mode].append(used * 1e6 / args.requests)
                    print(f"round {rnd + 1} {mode}: {rate:,.0f} SET/s, "
                          f"{used * 1e6 / args.requests:.1f} us CPU/SET", file=sys.stderr)
            folded = {m: checkpoints(metrics_ports[m]) for m in MODES if m != "off"}
        finally:
            for proc, _ in nodes.values():
                proc.terminate()
            for proc, _ in nodes.values():
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    print("| mode | " + " | ".join(f"round {r + 1}" for r in range(args.rounds))
          + " | ratio to in-memory (per round) | median ratio | node CPU µs / SET |")
    print("|---|" + "---:|" * args.rounds + "---|---:|---|")
    for mode in MODES:
        ratios = [r / base for r, base in zip(rates[mode], rates["off"])]
        print(f"| {mode} | " + " | ".join(f"{r:,.0f}/s" for r in rates[mode])
              + " | " + " / ".join(f"{x:.2f}" for x in ratios)
              + f" | **{statistics.median(ratios):.2f}** | "
              + f"{min(cpu_us[mode]):.1f}–{max(cpu_us[mode]):.1f} |")
    print()
    print("Change-log segments folded into the engine during the run: "
          + ", ".join(f"{m} {n}" for m, n in folded.items()))


if __name__ == "__main__":
    main()
