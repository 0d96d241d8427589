#!/usr/bin/env bash
# Benchmark (issue 12, item 1): the board must not slow the run. Runs 10
# chains of 20 `sleep 0.05` steps (local transport, ~1,300 journal events)
# with `--board`, without viewers and with 200 SSE clients on /events,
# paired (each round runs both, alternating which goes first, so that the
# machine's load weighs on both alike), and prints two makespans for each:
#   wall:    from the moment the first chain step is released (a gate step
#            waits for the clients) to the end of the process (so it counts
#            the board's stop);
#   journal: from the gate's `step-finished` to `run-finished`.
# Target: with 200 clients <= 1.05 x without.
#
# The clients are one process holding 200 connections (python3, reading and
# discarding), not 200 `curl` processes: on a 2-core machine, 200 processes
# each woken for every batch compete with the run for the CPU, which
# measures the clients, not the board (CLIENT=curl still runs them so).
#   bench/board-load.sh                 release build
#   BIN=target/debug/runbook RUNS=3 bench/board-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then cargo build --release -q; BIN=$PWD/target/release/runbook; fi
BIN=$(realpath "$BIN")
RUNS=${RUNS:-5}
CLIENTS=${CLIENTS:-200}
CLIENT=${CLIENT:-python}
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
cat > "$WORK/sse.py" <<'PY'
# N connections to /events, read and discarded until the server ends them.
import selectors, socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sel = selectors.DefaultSelector()
for _ in range(n):
    s = socket.create_connection((host, port))
    s.sendall(f"GET /events HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
while sel.get_map():
    for key, _ in sel.select():
        try:
            data = key.fileobj.recv(1 << 16)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        if not data:
            sel.unregister(key.fileobj)
            key.fileobj.close()
PY

# One run; prints "WALL_MS JOURNAL_MS". $1: how many SSE clients.
one() {
  local clients=$1 dir
  dir=$(mktemp -d -p "$WORK")
  cp "$WORK/runbook.yaml" "$dir/"
  cd "$dir"
  # The end is taken as the run's process exits, not when this shell gets
  # to it (it may be busy reaping 200 `curl`s).
  ("$BIN" run runbook.yaml --state-dir state -q --board 127.0.0.1:0 2> err; date +%s%N > end) &
  local run=$!
  local url=""
  until url=$(grep -o 'http://[^ ]*' err 2>/dev/null | head -1) && [ -n "$url" ]; do sleep 0.05; done
  local port=${url##*:}
  port=${port%/}
  if [ "$clients" -gt 0 ]; then
    if [ "$CLIENT" = curl ]; then
      for _ in $(seq 1 "$clients"); do curl -sN "${url}events" > /dev/null 2>&1 & done
    else
      python3 "$WORK/sse.py" 127.0.0.1 "$port" "$clients" &
    fi
    # Every client connected: 200 of them take a moment to start.
    until [ "$(ss -Htn state established "( dport = :$port )" 2>/dev/null | wc -l)" -ge "$clients" ]; do sleep 0.1; done
  fi
  local start end
  start=$(date +%s%N)
  : > go
  wait "$run"
  end=$(cat end)
  local journal
  journal=$(python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
gate = next(e["elapsed_ms"] for e in ev if e["event"] == "step-finished" and e["step"] == "gate")
print(next(e["elapsed_ms"] for e in ev if e["event"] == "run-finished") - gate)' state/runs/*/journal.jsonl)
  wait
  cd "$WORK"
  echo "$(( (end - start) / 1000000 )) $journal"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: > "$WORK/without"
: > "$WORK/with"
for i in $(seq 1 "$RUNS"); do
  if [ $((i % 2)) -eq 1 ]; then
    one 0 >> "$WORK/without"; one "$CLIENTS" >> "$WORK/with"
  else
    one "$CLIENTS" >> "$WORK/with"; one 0 >> "$WORK/without"
  fi
done
[ -n "${VERBOSE:-}" ] && paste "$WORK/without" "$WORK/with" >&2
w0=$(cut -d' ' -f1 "$WORK/without" | median); j0=$(cut -d' ' -f2 "$WORK/without" | median)
w1=$(cut -d' ' -f1 "$WORK/with" | median); j1=$(cut -d' ' -f2 "$WORK/with" | median)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $CLIENTS clients: $CLIENT; median of $RUNS paired runs"
echo "makespan without viewers:      wall ${w0} ms, journal ${j0} ms"
echo "makespan with $CLIENTS SSE clients: wall ${w1} ms, journal ${j1} ms"
awk -v a="$w0" -v b="$w1" -v c="$j0" -v d="$j1" \
  'BEGIN {printf "ratio: wall %.3f, journal %.3f (target <= 1.05)\n", b / a, d / c}'
