# Sourced by the bench scripts (after `cd` to the repository, with ROOT and
# BENCH set): the writable copy of ../shared/bench they time with, its
# Python tools, and the workload they all compare.

# $BENCH: a writable copy of the shared lab, its timer and its workloads.
bench_copy() {
  if [ ! -d "$BENCH" ]; then cp -r "$ROOT/../shared/bench" "$BENCH"; chmod -R u+w "$BENCH"; fi
}

# The tools compared with (pyinfra, ansible-core), in $BENCH/.venv.
bench_tools() {
  if [ ! -x "$BENCH/.venv/bin/pyinfra" ]; then
    python3 -m venv "$BENCH/.venv"
    "$BENCH/.venv/bin/pip" install -q -r "$BENCH/requirements.txt"
  fi
}

# five_steps FILE TIMEOUT: 5 dependent trivial steps on every host of group
# `lab`, the runbook twin of the lab's 5-op pyinfra deploy.
five_steps() {
  cat > "$1" <<YAML
version: 1
name: five-steps
defaults: {timeout: $2}
steps:
  - {id: s1, targets: [lab], run: "true"}
  - {id: s2, depends_on: [s1], targets: [lab], run: "true"}
  - {id: s3, depends_on: [s2], targets: [lab], run: "true"}
  - {id: s4, depends_on: [s3], targets: [lab], run: "true"}
  - {id: s5, depends_on: [s4], targets: [lab], run: "true"}
YAML
}
