#!/usr/bin/env bash
# Cluster fault tests: three MerkleKV nodes and Mosquitto under docker compose
# (docker-compose.yml), faults injected with docker kill / docker network
# disconnect / docker stop, convergence and the write history checked.
#
#   bash tests/cluster/run.sh [--only replication,kill_node2,partition_node3,broker_restart]
#
# Without a Docker engine it prints "skipped: no docker engine" and exits 0.
# Otherwise it builds the release binary if missing, builds the images
# offline (tests/cluster/images.sh; set MERKLEKV_SKIP_IMAGES=1 to use
# existing MERKLEKV_IMAGE / MOSQUITTO_IMAGE instead), runs the scenarios
# (tests/cluster/fault_tests.py), then the five-node partitioned cluster
# (tests/cluster/partitioned.py), and exits non-zero when any fails.
# Figures: target/cluster/results.json; compose logs of failed scenarios:
# target/cluster/logs/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONDONTWRITEBYTECODE=1

# The history checker's own unit tests need no Docker.
python3 -m unittest discover -s tests/cluster -p 'test_*.py'

if ! command -v docker >/dev/null 2>&1 || ! timeout 30 docker info >/dev/null 2>&1; then
  echo "cluster fault tests skipped: no docker engine"
  exit 0
fi
if ! docker compose version >/dev/null 2>&1 && ! docker-compose version >/dev/null 2>&1; then
  echo "cluster fault tests: a Docker engine answers but neither 'docker compose' nor 'docker-compose' is installed" >&2
  exit 1
fi
command -v python3 >/dev/null 2>&1 || { echo "cluster fault tests: python3 is required" >&2; exit 1; }

export MERKLEKV_IMAGE="${MERKLEKV_IMAGE:-merklekv:latest}"
if [ "${MERKLEKV_SKIP_IMAGES:-0}" = "1" ]; then
  export MOSQUITTO_IMAGE="${MOSQUITTO_IMAGE:-eclipse-mosquitto:2}"
  echo "== cluster: using existing images $MERKLEKV_IMAGE and $MOSQUITTO_IMAGE"
else
  export MOSQUITTO_IMAGE="${MOSQUITTO_IMAGE:-merklekv-mosquitto:offline}"
  echo "== cluster: building images offline (tests/cluster/images.sh)"
  start=$(date +%s)
  bash tests/cluster/images.sh
  echo "== cluster: images ready in $(( $(date +%s) - start )) s"
fi

# Bounded: the fault scenarios stop (and clean up) after 20 minutes, the
# partitioned cluster (docker-compose.partitioned.yml) after 5.
status=0
timeout --signal=TERM --kill-after=60 1200 python3 tests/cluster/fault_tests.py "$@" || status=$?
if [ "$#" -eq 0 ]; then
  timeout --signal=TERM --kill-after=60 300 python3 tests/cluster/partitioned.py || status=$?
fi
exit "$status"
