#!/usr/bin/env bash
# Benchmark (issue 9, item 6): independent steps on ONE SSH host run at the
# same time. Runs chains of 2 x `sleep 1` on a single loopback SSH host of
# the reference lab (../shared/bench/lab-up.sh, N=1) and prints the makespan
# (best of 5 wall times, process start and login included) against the
# critical path (2 s). Target: makespan <= 1.05 x critical path.
#   bench/one-host.sh            3 and 8 chains
#   CHAINS="3 20" bench/one-host.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=${BENCH:-/tmp/runbook-bench}
LAB=${LAB:-/tmp/drlab-onehost}
PORT=${PORT:-2299}
. bench/common.sh
bench_copy
[ -n "${NO_BUILD:-}" ] || cargo build --release -q
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/runbook}
LAB=$LAB N=1 PORT=$PORT "$BENCH/lab-up.sh" >/dev/null
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/inventory.yaml" <<YAML
version: 1
hosts:
  h01: {address: 127.0.0.11, port: $PORT, user: $(id -un), identity_file: $LAB/id_ed25519, known_hosts: $LAB/known_hosts}
YAML
for chains in ${CHAINS:-3 8}; do
  {
    echo "version: 1"
    echo "name: one-host-$chains"
    echo "defaults: {timeout: 30s}"
    echo "steps:"
    for c in $(seq 1 "$chains"); do
      echo "  - {id: c$c-1, targets: [h01], run: sleep 1}"
      echo "  - {id: c$c-2, depends_on: [c$c-1], targets: [h01], run: sleep 1}"
    done
  } > "$WORK/chains-$chains.yaml"
  out=$(python3 bench/measure.py "$chains-chains" 5 "$BIN" run "$WORK/chains-$chains.yaml" \
    -i "$WORK/inventory.yaml" --state-dir "$WORK/state" -q)
  best=$(echo "$out" | awk '{print $3}')
  echo "$out   critical path 2000 ms   makespan/critical path $(awk -v b="$best" 'BEGIN {printf "%.3f", b / 2000}')"
done
