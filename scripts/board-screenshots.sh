#!/usr/bin/env bash
# Screenshots of the board (docs/images/board.png and status.png) during a
# rehearsal of the example runbook on the simulator: the run pauses at each
# manual step (no terminal, no --yes); an operator of the night shift
# confirms a few, a second operator takes over, and the board is shot while
# the run waits for the next one, so the pages show phases done, a step
# waiting with its instructions, decisions and forecasts. Needs chromium,
# curl and python3, and root (the simulation listens on ports below 1024).
#   scripts/board-screenshots.sh [OUT_DIR]     (default docs/images)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/images}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cargo build -q
BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/runbook"
WORK=$(mktemp -d)
export RUNBOOK_SIM_STATE="$WORK/sim" PATH="$PWD/inventory/sim/bin:$PATH"
BOARD=
cleanup() {
  [ -z "$BOARD" ] || kill "$BOARD" 2>/dev/null || true
  inventory/sim/bin/sim reset >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
rb() { "$BIN" "$@" --state-dir "$WORK/state"; }
set +e
rb run runbooks/datacenter-power-loss.yaml -i inventory/simulated.yaml -q \
  --operator "A. Martin (night)" >/dev/null 2>&1
set -e
RUN=$(rb runs --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
waiting() {
  rb report "$RUN" --format json | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(" ".join(s["id"] for s in r["steps"] if s["outcome"] == "waiting"))'
}
# Confirm the manual steps up to the communications phase, then leave the
# next one waiting: that is the state the board is shot in.
for round in 1 2 3 4 5 6 7 8; do
  steps=$(waiting)
  [ -n "$steps" ] || break
  operator="A. Martin (night)"
  [ "$round" -le 1 ] || operator="L. Diallo (day)"
  for step in $steps; do
    case "$step" in
      links-confirmed) break 2 ;;
    esac
    rb confirm "$RUN" "$step" --operator "$operator" --note "checked on site" >/dev/null
  done
  set +e
  rb resume "$RUN" -q --operator "$operator" >/dev/null 2>&1
  set -e
done
PORT=$((20000 + RANDOM % 20000))
rb board "$RUN" --listen "127.0.0.1:$PORT" >/dev/null 2>&1 &
BOARD=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/api/run" >/dev/null && break; sleep 0.2; done
shot() {
  chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$WORK/chromium" \
    --window-size="$2" --screenshot="$OUT/$1.png" "http://127.0.0.1:$PORT$3" >/dev/null 2>&1 || true
  [ -s "$OUT/$1.png" ] || { echo "board-screenshots: no screenshot of $3" >&2; exit 1; }
  echo "$OUT/$1.png"
}
shot board 1280,1900 /
shot status 420,900 /status
