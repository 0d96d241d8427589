#!/usr/bin/env bash
# Renders the HTML report of a run in Debian's headless Chromium: writes a
# screenshot and fails if the page logged any console message (errors
# included) or could not be rendered. Installs chromium when missing.
#   scripts/render-report.sh [OUT_DIR]
# Uses the fixture run of tests/fixtures/report (one failed step, one
# blocked, a confirmation) so the picture shows every kind of row.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-target/report-render}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
cargo build -q
STATE=$(mktemp -d)
trap 'rm -rf "$STATE"' EXIT
mkdir -p "$STATE/runs/20261128T100000Z-abcd"
cp tests/fixtures/report/journal.jsonl tests/fixtures/report/runbook.yaml "$STATE/runs/20261128T100000Z-abcd/"
target/debug/runbook report --state-dir "$STATE" --format html -o "$OUT/report.html"
rm -f "$OUT/report.png"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$STATE/chromium" --enable-logging=stderr --v=0 \
  --window-size=1200,1500 --screenshot="$OUT/report.png" "file://$OUT/report.html" \
  2> "$OUT/chromium.log" >/dev/null || true
if [ ! -s "$OUT/report.png" ]; then
  echo "render-report: no screenshot; see $OUT/chromium.log" >&2
  exit 1
fi
if grep -i "CONSOLE" "$OUT/chromium.log"; then
  echo "render-report: the page logged console messages (above)" >&2
  exit 1
fi
echo "render-report: $OUT/report.png ($(stat -c %s "$OUT/report.png") bytes), no console messages"
