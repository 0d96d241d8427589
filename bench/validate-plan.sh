#!/usr/bin/env bash
# Benchmark: validate + plan of a generated 5,000-step runbook over 1,000
# hosts. Prints wall time and peak RSS of each command (best of 5).
# Target (issue 2): under 200 ms and 100 MiB each.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
BIN=target/release/runbook
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
python3 bench/gen_large.py "${STEPS:-5000}" "${HOSTS:-1000}" "$DIR"
echo "runbook: $(wc -c <"$DIR/runbook.yaml") bytes, inventory: $(wc -c <"$DIR/inventory.yaml") bytes"
python3 bench/measure.py validate 5 "$BIN" validate "$DIR/runbook.yaml" -i "$DIR/inventory.yaml"
python3 bench/measure.py plan 5 "$BIN" plan "$DIR/runbook.yaml" -i "$DIR/inventory.yaml" --format json
