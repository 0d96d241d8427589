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

/// The runbook's dependencies, step to step, and its one phase edge.
const STEP_EDGES: [(&str, &str); 3] = [("db", "app"), ("power", "dns"), ("power", "switches")];

fn plan(format: &str) -> String {
    let (out, _) = Test::new()
        .runbook(RUNBOOK)
        .args(["plan", "runbook.yaml", "--format", format])
        .run();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn dot_and_mermaid_draw_every_edge() {
    let dot = plan("dot");
    assert!(dot.starts_with("digraph \"branches\" {"));
    assert!(dot.contains("subgraph \"cluster_net\""));
    let mut edges: Vec<String> = dot
        .lines()
        .filter(|l| l.contains(" -> "))
        .map(|l| l.trim().to_string())
        .collect();
    edges.sort();
    let mut expected: Vec<String> = STEP_EDGES
        .iter()
        .map(|(a, b)| format!("\"{a}\" -> \"{b}\";"))
        .collect();
    // A phase edge runs between the clusters, drawn from a member of each.
    expected.push(
        "\"power\" -> \"db\" [style=dashed ltail=\"cluster_net\" lhead=\"cluster_apps\"];".into(),
    );
    expected.sort();
    assert_eq!(edges, expected, "{dot}");

    let mermaid = plan("mermaid");
    assert!(mermaid.starts_with("flowchart LR\n"));
    // Node ids to names: `s0["power"]`, `subgraph p0["net"]`.
    let names: std::collections::HashMap<&str, &str> = mermaid
        .lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches("subgraph ");
            let (id, rest) = l.split_once("[\"")?;
            Some((id, rest.strip_suffix("\"]")?))
        })
        .collect();
    let mut edges: Vec<(String, &str, String)> = mermaid
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (from, arrow, to) = (parts.next()?, parts.next()?, parts.next()?);
            matches!(arrow, "-->" | "-.->")
                .then(|| (names[from].to_string(), arrow, names[to].to_string()))
        })
        .collect();
    edges.sort();
    let mut expected: Vec<(String, &str, String)> = STEP_EDGES
        .iter()
        .map(|(a, b)| ((*a).to_string(), "-->", (*b).to_string()))
        .collect();
    expected.push(("net".into(), "-.->", "apps".into()));
    expected.sort();
    assert_eq!(edges, expected, "{mermaid}");

    let json: serde_json::Value = serde_json::from_str(&plan("json")).unwrap();
    let mut edges: Vec<(String, String)> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            let id = s["id"].as_str().unwrap().to_string();
            s["depends_on"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |d| (d.as_str().unwrap().to_string(), id.clone()))
        })
        .collect();
    edges.sort();
    let expected: Vec<(String, String)> = STEP_EDGES
        .iter()
        .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
        .collect();
    assert_eq!(edges, expected);
    assert_eq!(json["phases"][1]["depends_on"], serde_json::json!(["net"]));
    assert_eq!(json["phases"][0]["depends_on"], serde_json::json!([]));
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

/// Runs the binary in `dir` (shared state dir and files between commands).
fn bin_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(crate::harness::BIN)
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUNBOOK_STATE_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A rehearsal on other hosts (the simulator) says nothing about how long
/// production takes: only runs on the same inventory replace estimates,
/// and the plan says which durations came from where.
#[test]
fn measured_durations_count_only_for_the_inventory_they_were_measured_on() {
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: timed
            steps:
              - {id: restore, targets: [db], check: {command: 'test -f restored'}, run: 'touch restored', estimate: 2h}
              - {id: confirm, depends_on: [restore], manual: Look., estimate: 10m}
            ",
        )
        .file(
            "rehearsal.yaml",
            "version: 1\nhosts:\n  db: {transport: local}\n",
        )
        .file(
            "production.yaml",
            "version: 1\nhosts:\n  db: {transport: local, vars: {site: prod}}\n",
        )
        .args(["run", "runbook.yaml", "-i", "rehearsal.yaml", "--yes", "--state-dir", "state"])
        .run();
    let dir = t.path();
    let text = |inventory: &str| {
        let out = bin_in(
            dir,
            &[
                "plan",
                "runbook.yaml",
                "-i",
                inventory,
                "--state-dir",
                "state",
            ],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    insta::assert_snapshot!(text("production.yaml"));
    let rehearsal = text("rehearsal.yaml");
    let run_id = crate::harness::run_id(&t);
    assert!(
        rehearsal.contains(&format!(
            "measured durations of 1 run on this inventory (latest {run_id}) replace the runbook's estimates; by estimates alone the critical path is 2h10m\n"
        )),
        "{rehearsal}"
    );
    assert!(
        rehearsal.contains("restore  [-] on db  (est 2h, measured "),
        "{rehearsal}"
    );
    assert!(!rehearsal.contains("critical path 2h10m"), "{rehearsal}");

    let json = |inventory: &str| -> serde_json::Value {
        let out = bin_in(
            dir,
            &[
                "plan",
                "runbook.yaml",
                "-i",
                inventory,
                "--state-dir",
                "state",
                "--format",
                "json",
            ],
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let production = json("production.yaml");
    assert_eq!(production["critical_path_secs"], 7800.0);
    assert_eq!(production["critical_path_estimate_secs"], 7800.0);
    assert_eq!(production["steps"][0]["expected_from"], "estimate");
    assert_eq!(
        production["steps"][0]["measured_secs"],
        serde_json::Value::Null
    );
    assert_eq!(production["history"]["runs"], serde_json::json!([]));
    assert_eq!(production["history"]["other_inventory_runs"], 1);
    let other = production["history"]["other_inventories"][0]
        .as_str()
        .unwrap();
    assert!(other.ends_with("/rehearsal.yaml"), "{other}");
    let rehearsal = json("rehearsal.yaml");
    let restore = &rehearsal["steps"][0];
    assert_eq!(restore["expected_from"], "history");
    assert_eq!(restore["estimate_secs"], 7200.0);
    assert_eq!(restore["measured_runs"], 1);
    assert_eq!(restore["measured_secs"], restore["expected_secs"]);
    assert!(restore["measured_secs"].as_f64().unwrap() < 7200.0);
    assert_eq!(rehearsal["critical_path_estimate_secs"], 7800.0);
    assert_eq!(rehearsal["history"]["runs"], serde_json::json!([run_id]));
    assert_eq!(rehearsal["history"]["other_inventory_runs"], 0);
}
