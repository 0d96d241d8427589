#!/usr/bin/env bash
# Benchmark: validate + plan of a generated 5,000-step runbook over 1,000
# hosts. Prints wall time and peak RSS of each command (best of 5).
# Target (issue 2): under 200 ms and 100 MiB each.
# Then the chain shape (one dependency chain, a warning on every step) at
# CHAIN and 4 x CHAIN steps: validation must stay linear, the larger taking
# at most 4 times as long.
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
for n in "${CHAIN:-5000}" "$((4 * ${CHAIN:-5000}))"; do
  mkdir -p "$DIR/chain$n"
  python3 bench/gen_large.py "$n" "${HOSTS:-1000}" "$DIR/chain$n" chain
  echo "chain of $n steps: $(wc -c <"$DIR/chain$n/runbook.yaml") bytes"
  python3 bench/measure.py validate 5 "$BIN" validate "$DIR/chain$n/runbook.yaml" -i "$DIR/chain$n/inventory.yaml"
  python3 bench/measure.py plan 5 "$BIN" plan "$DIR/chain$n/runbook.yaml" -i "$DIR/chain$n/inventory.yaml" --format json
done
