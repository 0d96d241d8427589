#!/usr/bin/env bash
# Renders HTML reports in Debian's headless Chromium: writes screenshots and
# fails if a page logged any console message (errors included) or could not
# be rendered. Installs chromium when missing. Two reports:
#   report.png   the fixture run of tests/fixtures/report (one failed step,
#                one blocked, a confirmation): every kind of row;
#   example.png  a real run of the README's example on the simulator.
#   scripts/render-report.sh [OUT_DIR]
# tests/tools.rs checks a real run's report in Chromium too (layout
# measured by the browser); this script is for looking at it.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-target/report-render}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
cargo build -q
BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/runbook"
STATE=$(mktemp -d)
trap 'rm -rf "$STATE"' EXIT
mkdir -p "$STATE/runs/20261128T100000Z-abcd"
cp tests/fixtures/report/journal.jsonl tests/fixtures/report/runbook.yaml "$STATE/runs/20261128T100000Z-abcd/"
"$BIN" report --state-dir "$STATE" --format html -o "$OUT/report.html"
PATH="$PWD/inventory/sim/bin:$PATH" RUNBOOK_SIM_STATE="$STATE/sim" "$BIN" run \
  runbooks/datacenter-power-loss.yaml -i inventory/simulated.yaml --yes -q --state-dir "$STATE/example"
"$BIN" report --state-dir "$STATE/example" --format html -o "$OUT/example.html"

shot() {
  rm -f "$OUT/$1.png"
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$STATE/chromium" --enable-logging=stderr --v=0 \
    --window-size=1200,"$2" --screenshot="$OUT/$1.png" "file://$OUT/$1.html" \
    2> "$OUT/$1.chromium.log" >/dev/null || true
  if [ ! -s "$OUT/$1.png" ]; then
    echo "render-report: no screenshot of $1; see $OUT/$1.chromium.log" >&2
    exit 1
  fi
  if grep -i "CONSOLE" "$OUT/$1.chromium.log"; then
    echo "render-report: $1.html logged console messages (above)" >&2
    exit 1
  fi
  echo "render-report: $OUT/$1.png ($(stat -c %s "$OUT/$1.png") bytes), no console messages"
}
shot report 1500
shot example 2600
