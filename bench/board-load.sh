#!/usr/bin/env bash
# Benchmark (issue 12, item 1): the board must not slow the run. Runs 10
# chains of 20 `sleep 0.05` steps (local transport, ~1,300 journal events)
# with `--board`, without viewers and with 200 SSE clients (`curl -N` on
# /events) connected, and prints the makespans (median of RUNS; from the
# moment the first step is released to the end of the process).
# Target: with 200 clients <= 1.05 x without.
#   bench/board-load.sh                 release build
#   BIN=target/debug/runbook RUNS=3 bench/board-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then cargo build --release -q; BIN=$PWD/target/release/runbook; fi
BIN=$(realpath "$BIN")
RUNS=${RUNS:-5}
CLIENTS=${CLIENTS:-200}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
{
  echo "version: 1"
  echo "name: board-load"
  echo "steps:"
  echo "  - {id: gate, run: 'until [ -e go ]; do sleep 0.01; done'}"
  for c in $(seq 1 10); do
    prev=gate
    for s in $(seq 1 20); do
      echo "  - {id: c$c-s$s, depends_on: [$prev], run: 'sleep 0.05'}"
      prev=c$c-s$s
    done
  done
} > "$WORK/runbook.yaml"

# One run; prints its makespan in ms. $1: how many SSE clients.
one() {
  local clients=$1 dir
  dir=$(mktemp -d -p "$WORK")
  cp "$WORK/runbook.yaml" "$dir/"
  cd "$dir"
  "$BIN" run runbook.yaml --state-dir state -q --board 127.0.0.1:0 2> err &
  local run=$!
  local url=""
  until url=$(grep -o 'http://[^ ]*' err 2>/dev/null | head -1) && [ -n "$url" ]; do sleep 0.05; done
  for _ in $(seq 1 "$clients"); do
    curl -sN "${url}events" > /dev/null 2>&1 &
  done
  local port=${url##*:}
  port=${port%/}
  if [ "$clients" -gt 0 ]; then
    # Every client connected: the board counts them as viewers only once
    # their stream is open, and 200 of them take a moment to start.
    until [ "$(ss -Htn state established "( dport = :$port )" 2>/dev/null | sed 's/.*://' | wc -l)" -ge "$clients" ]; do sleep 0.1; done
  fi
  local start end
  start=$(date +%s%N)
  : > go
  wait "$run"
  end=$(date +%s%N)
  cd "$WORK"
  echo $(( (end - start) / 1000000 ))
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

without=$(for _ in $(seq 1 "$RUNS"); do one 0; done | median)
with=$(for _ in $(seq 1 "$RUNS"); do one "$CLIENTS"; done | median)
echo "makespan without viewers:      ${without} ms (median of $RUNS)"
echo "makespan with $CLIENTS SSE clients: ${with} ms (median of $RUNS)"
awk -v a="$without" -v b="$with" 'BEGIN {printf "ratio: %.3f (target <= 1.05)\n", b / a}'
