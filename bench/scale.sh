#!/usr/bin/env bash
# Benchmark (issue 9, item 7): runbook at scale, against pyinfra.
#   bench/scale.sh [N]          N loopback hosts (default 1000; bench/scale-lab.sh)
# 1. a runbook of 5 dependent trivial steps on all N hosts, default --forks,
#    paired (A B A B ...) with pyinfra's 5-op deploy (../shared/bench
#    wl/pyinfra.sh, `--parallel N`: every host at once, as its anchors do at
#    50), RUNS pairs after a warm-up pair, through the lab's bench.sh/timeit.py;
# 2. the controller's most threads and open files during one run;
# 3. `runbook status` over the N hosts (one probe each).
# Both tools get the hard open-files limit as their soft one (`ulimit -n`),
# which runbook also sets itself. The lab is taken down at the end.
# Figures: terminal and $BENCH/results/scale-N-*.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${1:-1000}
RUNS=${RUNS:-5}
BENCH=${BENCH:-/tmp/bench}
export LAB=${LAB:-/tmp/drlab-scale}
. bench/common.sh
bench_copy
[ -n "${NO_BUILD:-}" ] || cargo build --release -q
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/runbook}
bench_tools
ulimit -n "$(ulimit -Hn)"
trap '"$ROOT/bench/scale-lab.sh" down' EXIT
N=$N bench/scale-lab.sh up
WORK=$LAB/runbook
rm -rf "$WORK"; mkdir -p "$WORK"
five_steps "$WORK/five.yaml" 60s
cat > "$WORK/status.yaml" <<'YAML'
version: 1
name: probe
steps:
  - {id: up, targets: [lab], run: "true", check: {command: "true"}}
YAML
RUN="$BIN run $WORK/five.yaml -i $LAB/inventory.yaml --state-dir $WORK/state -q"
STATUS="$BIN status $WORK/status.yaml -i $LAB/inventory.yaml"
limit=$(( 120 + N * RUNS ))   # hang guard for the whole timed call, seconds
cd "$BENCH"
./bench.sh "scale-$N-runbook-vs-pyinfra5" -n "$RUNS" --warmup 1 --timeout "$limit" \
  --vs "wl/pyinfra.sh $N five_tasks.py" -- $RUN

# One more run, sampled: the most threads and open files it held.
$RUN > /dev/null 2>&1 &
pid=$!
threads=0 files=0
while kill -0 "$pid" 2>/dev/null; do
  t=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  f=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
  [ "${t:-0}" -le "$threads" ] || threads=$t
  [ "$f" -le "$files" ] || files=$f
  sleep 0.1
done
rc=0; wait "$pid" || rc=$?
echo "scale-$N resources: most threads $threads, most open files $files (soft limit $(ulimit -n)), exit $rc" \
  | tee "results/scale-$N-resources.txt"

./bench.sh "scale-$N-status" -n 3 --warmup 1 --timeout "$limit" -- $STATUS
