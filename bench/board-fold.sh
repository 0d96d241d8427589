#!/usr/bin/env bash
# Benchmark: what one more journal event costs `runbook board` on a large run.
# Runs STEPS `run: "true"` steps on each of HOSTS local hosts (--forks 50;
# 130 x 50 is about 20,000 journal events), in 10 phases with RTOs and
# SERVICES services (5), then serves the run with `runbook board` (which
# follows its journal) and, ROUNDS times, appends one event (a `handed-off`
# line, as `runbook handoff` writes) and prints:
#   rebuild: the time of the first `curl /api/run` that shows the new event
#            (the board folds it, builds its page and serializes it);
#   again:   the same page asked for again at once (served as built);
#   cpu:     the board process's CPU time per appended event (reading the
#            journal, folding, building, serializing), from /proc.
#   bench/board-fold.sh                              release build
#   BIN=/tmp/runbook-before SERVICES=0 bench/board-fold.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then
  cargo build --release -q --bin runbook
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/runbook
fi
BIN=$(realpath "$BIN")
STEPS=${STEPS:-130}
HOSTS=${HOSTS:-50}
ROUNDS=${ROUNDS:-10}
SERVICES=${SERVICES:-5}
PORT=${PORT:-18731}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
{
  echo "version: 1"
  echo "hosts:"
  for h in $(seq 1 "$HOSTS"); do echo "  h$h: {transport: local}"; done
  echo "groups:"
  echo "  fleet: {hosts: [$(seq -s, -f 'h%g' 1 "$HOSTS")]}"
} > "$WORK/inventory.yaml"
{
  echo "version: 1"
  echo "name: board-fold"
  echo "phases:"
  for p in $(seq 0 9); do echo "  - {id: p$p, rto: $((p + 1))h}"; done
  if [ "$SERVICES" -gt 0 ]; then
    echo "services:"
    for v in $(seq 1 "$SERVICES"); do echo "  - {id: svc$v, ready_when: [s$((STEPS - v))]}"; done
  fi
  echo "steps:"
  for s in $(seq 0 $((STEPS - 1))); do
    echo "  - {id: s$s, phase: p$((s * 10 / STEPS)), targets: [fleet], run: 'true', estimate: 1m}"
  done
} > "$WORK/runbook.yaml"
"$BIN" run "$WORK/runbook.yaml" -i "$WORK/inventory.yaml" --forks 50 --state-dir "$WORK/state" -q \
  >/dev/null
RUN=$(ls "$WORK/state/runs")
JOURNAL=$WORK/state/runs/$RUN/journal.jsonl
"$BIN" board "$RUN" --state-dir "$WORK/state" --listen "127.0.0.1:$PORT" 2>/dev/null &
BOARD=$!
URL=http://127.0.0.1:$PORT/api/run
events() { curl -s "$URL" | grep -m1 -o '"events": [0-9]*' | grep -o '[0-9]*$' || true; }
until [ -n "$(events)" ]; do sleep 0.2; done
have=$(events)
echo "journal: $have events ($(du -k "$JOURNAL" | cut -f1) KiB); board pid $BOARD"
cpu() { awk '{print $14 + $15}' "/proc/$BOARD/stat"; }
ticks=$(getconf CLK_TCK)
before=$(cpu)
times=()
cached=()
for i in $(seq 1 "$ROUNDS"); do
  at=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
  echo "{\"at\": \"$at\", \"elapsed_ms\": 0, \"event\": \"handed-off\", \"operator\": \"bench$i\"}" \
    >> "$JOURNAL"
  want=$((have + i))
  while :; do
    out=$(curl -s -o "$WORK/api.json" -w '%{time_total}' "$URL")
    got=$(grep -m1 -o '"events": [0-9]*' "$WORK/api.json" | grep -o '[0-9]*$')
    if [ "$got" = "$want" ]; then
      times+=("$out")
      # The same page again, built already: what serving it alone costs.
      cached+=("$(curl -s -o /dev/null -w '%{time_total}' "$URL")")
      break
    fi
    sleep 0.05
  done
done
after=$(cpu)
stats() {
  sort -n | awk -v what="$1" '{ v[NR] = $1 * 1000 }
    END { printf "%s: median %.1f ms, min %.1f ms, max %.1f ms (%d rounds)\n", what, v[int((NR + 1) / 2)], v[1], v[NR], NR }'
}
printf '%s\n' "${times[@]}" | stats "rebuild after one more event (curl /api/run)"
printf '%s\n' "${cached[@]}" | stats "the same page again, no rebuild (curl /api/run)"
awk -v cpu=$((after - before)) -v t="$ticks" -v n="$ROUNDS" 'BEGIN {
  printf "board CPU per appended event (follow + fold + build + JSON, polls included): %.1f ms\n", cpu * 1000 / t / n }'
