//! `runbook plan` in every format.

use crate::harness::Test;

const RUNBOOK: &str = "
    version: 1
    name: branches
    phases:
      - {id: net, rto: 30m}
      - {id: apps, depends_on: [net], rto: 1h}
    steps:
      - {id: power, phase: net, manual: Check power., estimate: 10m}
      - {id: switches, phase: net, depends_on: [power], targets: [web], check: {command: 'true'}, estimate: 5m}
      - {id: dns, phase: net, depends_on: [power], check: {command: 'true'}, estimate: 15m}
      - {id: db, phase: apps, check: {command: 'true'}, estimate: 40m}
      - {id: app, phase: apps, depends_on: [db], check: {command: 'true'}, estimate: 10m}
      - {id: web, phase: apps, check: {command: 'true'}, estimate: 5m}
";

const INVENTORY: &str = "
    version: 1
    hosts:
      w1: {transport: local}
      w2: {transport: local}
    groups:
      web: {hosts: [w1, w2]}
";

#[test]
fn text_plan_shows_waves_hosts_critical_path_and_rto_risk() {
    Test::new()
        .runbook(RUNBOOK)
        .inventory(INVENTORY)
        .args(["plan", "runbook.yaml", "-i", "inventory.yaml"])
        .stdout(
            "
            runbook `branches`
            6 steps in 4 waves; critical path 1h15m (4 steps)

            wave 1
              power     [net] manual on controller  (est 10m)

            wave 2
              switches  [net] on w1, w2  (est 5m)
              dns       [net] on controller  (est 15m)

            wave 3
              db        [apps] on controller  (est 40m)
              web       [apps] on controller  (est 5m)

            wave 4
              app       [apps] on controller  (est 10m)

            critical path (1h15m):
              power -> dns -> db -> app

            phases:
              net   rto    30m  forecast    25m  within RTO
              apps  rto     1h  forecast  1h15m  RTO at risk
            ",
        )
        .run();
}

#[test]
fn json_plan_has_the_documented_shape() {
    let (output, _) = Test::new()
        .runbook(RUNBOOK)
        .inventory(INVENTORY)
        .args([
            "plan",
            "runbook.yaml",
            "-i",
            "inventory.yaml",
            "--format",
            "json",
        ])
        .run();
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        plan["critical_path"],
        serde_json::json!(["power", "dns", "db", "app"])
    );
    assert_eq!(plan["critical_path_secs"], 4500.0);
    assert_eq!(
        plan["waves"][1],
        serde_json::json!({"wave": 2, "steps": ["switches", "dns"]})
    );
    assert_eq!(plan["steps"][1]["hosts"], serde_json::json!(["w1", "w2"]));
    assert_eq!(plan["phases"][1]["at_risk"], true);
    assert_eq!(plan["phases"][0]["at_risk"], false);
}

#[test]
fn dot_and_mermaid_draw_every_edge() {
    let (dot, _) = Test::new()
        .runbook(RUNBOOK)
        .args(["plan", "runbook.yaml", "--format", "dot"])
        .run();
    let dot = String::from_utf8(dot.stdout).unwrap();
    assert!(dot.starts_with("digraph \"branches\" {"));
    assert!(dot.contains("\"db\" -> \"app\";"));
    assert!(dot.contains("subgraph \"cluster_net\""));
    let (mermaid, _) = Test::new()
        .runbook(RUNBOOK)
        .args(["plan", "runbook.yaml", "--format", "mermaid"])
        .run();
    let mermaid = String::from_utf8(mermaid.stdout).unwrap();
    assert!(mermaid.starts_with("flowchart LR\n"));
    assert!(mermaid.contains("  s3 --> s4\n"));
    assert!(mermaid.contains("  p0 -.-> p1\n"));
}

#[test]
fn plan_of_an_invalid_runbook_exits_2() {
    Test::new()
        .runbook("version: 1\nname: x\nsteps: [{id: a, depends_on: [b], check: {command: 'true'}}]")
        .args(["plan", "runbook.yaml"])
        .status(2)
        .stderr_contains("error: unknown step `b`")
        .run();
}
