#!/usr/bin/env bash
# Benchmark (issue 3) on the reference lab of ../shared/bench: 50 loopback SSH
# hosts. Times, side by side in paired calls (A B A B ...):
#   1. a runbook of 5 dependent trivial steps on all 50 hosts
#      vs Ansible (playbook, forks 50, ControlPersist), pyinfra (5 ops) and
#      plain ssh over ControlMaster (5 rounds);
#   2. a DAG of 3 branches of 2 `sleep 1` steps vs its 2 s critical path.
# Needs the lab's tools (a Python venv with ansible-core and pyinfra); the
# first call installs them. Figures go to the terminal and to
# $BENCH/results/*.txt.
#   bench/lab.sh            everything
#   bench/lab.sh quick      our runs and plain ssh only (no Ansible, no pyinfra)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=${BENCH:-/tmp/runbook-bench}
LAB=${LAB:-/tmp/drlab}
export LAB
. bench/common.sh
bench_copy
cargo build --release -q
BIN=$ROOT/target/release/runbook
"$BENCH/lab-up.sh"
[ "${1:-}" = quick ] || bench_tools
export PATH="$BENCH/.venv/bin:$PATH"
WORK=$BENCH/runbook
mkdir -p "$WORK"
{
  echo "version: 1"
  echo "defaults: {port: 2222, user: $(id -un), identity_file: $LAB/id_ed25519, known_hosts: $LAB/known_hosts}"
  echo "hosts:"
  for i in $(seq 1 50); do printf '  h%02d: {address: 127.0.0.%d}\n' "$i" $((10 + i)); done
  echo "groups:"
  printf '  lab: {hosts: [%s]}\n' "$(seq -f 'h%02g' 1 50 | paste -sd, -)"
} > "$WORK/inventory.yaml"
five_steps "$WORK/five.yaml" 30s
cat > "$WORK/dag.yaml" <<'YAML'
version: 1
name: dag
defaults: {timeout: 30s}
steps:
  - {id: a1, run: sleep 1}
  - {id: a2, depends_on: [a1], run: sleep 1}
  - {id: b1, run: sleep 1}
  - {id: b2, depends_on: [b1], run: sleep 1}
  - {id: c1, run: sleep 1}
  - {id: c2, depends_on: [c1], run: sleep 1}
YAML
RUN="$BIN run $WORK/five.yaml -i $WORK/inventory.yaml --forks 50 --state-dir $WORK/state -q"
DAG="$BIN run $WORK/dag.yaml --state-dir $WORK/state -q"
cd "$BENCH"
./bench.sh runbook-vs-ssh-seq5cp -n 5 --vs 'wl/ssh-seq5.sh 5 cp' -- $RUN
./bench.sh runbook-dag-vs-shell -n 5 --vs 'wl/dag-shell.sh' -- $DAG
if [ "${1:-}" != quick ]; then
  ./bench.sh runbook-vs-pyinfra5 -n 5 --vs 'wl/pyinfra.sh 50 five_tasks.py' -- $RUN
  ./bench.sh runbook-vs-ansible5 -n 3 --warmup 1 --timeout 900 --vs 'wl/ansible-play.sh five-tasks.yml 50 cp' -- $RUN
fi
