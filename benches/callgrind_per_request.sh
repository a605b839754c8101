#!/usr/bin/env bash
# User-space instructions per request, counted by callgrind: repeatable on a
# shared, noisy machine where wall-clock figures swing by tens of percent.
#
#   benches/callgrind_per_request.sh merklekv|redis set|get [extra MERKLE_KV_* env...]
#
# Starts the server under `valgrind --tool=callgrind` on a free port (MQTT,
# anti-entropy and persistence off unless overridden, e.g.
# MERKLE_KV_STORAGE_PERSISTENCE=true MERKLE_KV_STORAGE_FSYNC=everysec
# MERKLE_KV_STORAGE_DATA_DIR=/tmp/x), loads 100,000 keys of 100 bytes,
# zeroes the counters, runs N requests (default 20,000) with
# `redis-benchmark -c 50 -P ${P:-1} -r 100000 -d 100`, dumps, and prints the
# instruction total over N. Every thread of the server is counted (tokio
# workers, the group-commit thread); the kernel is not.
# Needs valgrind, redis-benchmark and redis-cli, and `cargo build --release`
# (MERKLEKV_BIN=path measures another build).
set -euo pipefail
server=$1; test=$2; shift 2
n=${N:-20000}
free_port() { python3 -c 'import sys; sys.path.insert(0, "benches"); from bench_util import free_port; print(free_port())'; }
port=$(free_port)
sync_port=$(free_port)
out=$(mktemp -d)/callgrind.out
# AUTH_PASSWORD=pw: the node requires it (security.password) and the
# clients log in with it.
auth=()
password_env=()
if [ -n "${AUTH_PASSWORD:-}" ]; then
  auth=(-a "$AUTH_PASSWORD")
  password_env=(MERKLE_KV_SECURITY_PASSWORD="$AUTH_PASSWORD")
fi
if [ "$server" = redis ]; then
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    redis-server --port "$port" --save "" --appendonly no >/dev/null 2>&1 &
else
  env MERKLE_KV_NETWORK_BIND_PORT="$port" MERKLE_KV_NETWORK_SYNC_PORT="$sync_port" \
    MERKLE_KV_NETWORK_METRICS_PORT=0 MERKLE_KV_MQTT_ENABLED=false \
    MERKLE_KV_ANTI_ENTROPY_ENABLED=false MERKLE_KV_STORAGE_PERSISTENCE=false \
    RUST_LOG=warn "${password_env[@]}" "$@" \
    valgrind --tool=callgrind --callgrind-out-file="$out" "${MERKLEKV_BIN:-target/release/merklekv}" >/dev/null 2>&1 &
fi
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 200); do redis-cli -p "$port" "${auth[@]}" --no-auth-warning ping 2>/dev/null | grep -q PONG 2>&1 && break; sleep 0.3; done
timeout 600 redis-benchmark -p "$port" "${auth[@]}" -t set -c 50 -n 100000 -r 100000 -d 100 -q >/dev/null
callgrind_control -z "$pid" >/dev/null 2>&1
timeout 600 redis-benchmark -p "$port" "${auth[@]}" -t "$test" -c 50 -P "${P:-1}" -n "$n" -r 100000 -d 100 -q >/dev/null
callgrind_control -d "$pid" >/dev/null 2>&1
sleep 1
total=$(grep -a "^summary:\|^totals:" "$out.1" | head -1 | awk '{print $2}')
echo "$server $test: $((total / n)) instructions per request ($out.1; callgrind_annotate it for the breakdown)"
