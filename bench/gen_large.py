#!/usr/bin/env python3
"""Writes a runbook of N steps over an inventory of H hosts, for the
validate + plan benchmark. Steps form layered chains with phases, templates
reading host and runbook vars, and targets mixing hosts and groups.
With a fourth argument `chain`, the steps form one dependency chain (each
depends on the one before) and none has a probe, so every step also carries
a warning: the shape that made `validate` quadratic."""
import random
import sys

steps, hosts, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
chain = sys.argv[4:] == ["chain"]
random.seed(7)
groups = 50
with open(f"{out}/inventory.yaml", "w") as f:
    f.write("version: 1\ndefaults: {user: ops, vars: {tier: 2}}\nhosts:\n")
    for h in range(hosts):
        f.write(f"  h{h}: {{address: 10.{h // 250}.{h % 250}.1, vars: {{service: svc{h % 7}}}}}\n")
    f.write("groups:\n")
    for g in range(groups):
        members = ", ".join(f"h{h}" for h in range(g, hosts, groups))
        f.write(f"  g{g}: {{hosts: [{members}]}}\n")
phases = 10
with open(f"{out}/runbook.yaml", "w") as f:
    f.write("version: 1\nname: large\nvars: {port: 8443}\ndefaults: {timeout: 5m, retries: 1}\nphases:\n")
    for p in range(phases):
        dep = f", depends_on: [p{p - 1}]" if p else ""
        f.write(f"  - {{id: p{p}, rto: {p + 1}h{dep}}}\n")
    f.write("steps:\n")
    per_phase = steps // phases
    for s in range(steps):
        p = min(s // per_phase, phases - 1)
        first = p * per_phase
        deps = sorted({random.randrange(first, s) for _ in range(2)}) if s - first > 2 else []
        if chain:
            deps = [s - 1] if s else []
        dep = f"    depends_on: [{', '.join(f's{d}' for d in deps)}]\n" if deps else ""
        target = f"g{s % groups}" if s % 3 else f"h{s % hosts}"
        if chain:
            f.write(
                f"  - id: s{s}\n    phase: p{p}\n{dep}    targets: [{target}]\n"
                f"    run: systemctl restart {{{{ host.vars.service }}}} --label s{s}\n"
            )
            continue
        f.write(
            f"  - id: s{s}\n    phase: p{p}\n{dep}    targets: [{target}]\n"
            f"    check: {{command: 'systemctl is-active --quiet {{{{ host.vars.service }}}}'}}\n"
            f"    run: systemctl restart {{{{ host.vars.service }}}} --port {{{{ vars.port }}}} --label s{s}\n"
            f"    verify: {{command: 'curl -fsS http://{{{{ host.address }}}}:{{{{ vars.port }}}}/', attempts: 3}}\n"
            f"    estimate: {1 + s % 9}m\n"
        )
