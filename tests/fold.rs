//! What readers of one journal say about a run: the report after an edited
//! resume, one duration everywhere, who acted, caveats, ordering of runs and
//! a broken journal among good ones.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{BIN, Test, interrupt_until_it_stops, wait_for};

fn bin(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn only_run(dir: &Path) -> String {
    let ids: Vec<String> = std::fs::read_dir(dir.join("state/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].clone()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

const BEFORE: &str = "
    version: 1
    name: edit
    defaults: {timeout: 5s, on_failure: pause}
    steps:
      - {id: a, title: 'A as it ran', check: {command: 'false'}, run: 'echo a >> ran'}
      - {id: b, depends_on: [a], check: {command: 'false'}, run: 'exit 1'}
      - {id: old, depends_on: [b], check: {command: 'false'}, run: 'echo old >> ran'}
    ";

const AFTER: &str = "version: 1\nname: edit\ndefaults: {timeout: 5s, on_failure: pause}\nsteps:\n  - {id: a, title: 'A edited', check: {command: 'false'}, run: 'echo a-changed >> ran'}\n  - {id: new, depends_on: [a], check: {command: 'false'}, run: 'echo new >> ran'}\n";

#[test]
fn report_after_an_edited_resume_renders_each_step_as_it_ran_and_flags_the_edited_done_step() {
    let (_, t) = Test::new()
        .runbook(BEFORE)
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(3)
        .run();
    let dir = t.path();
    std::fs::write(dir.join("runbook.yaml"), AFTER).unwrap();
    let resumed = bin(dir, &["resume", "--state-dir", "state"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    assert!(
        text(&resumed.stderr).contains(
            "warning: step `a` finished before its definition changed; it is not run again"
        ),
        "{}",
        text(&resumed.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("ran")).unwrap(),
        "a\nnew\n"
    );

    let report = json(&bin(
        dir,
        &["report", "--format", "json", "--state-dir", "state"],
    ));
    let steps = report["steps"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    // `b` ran (and failed) under the first version and is gone from the
    // second; `new` ran under the second; `old` never ran in either.
    assert_eq!(ids, ["a", "b", "new"]);
    assert_eq!(steps[0]["title"], "A as it ran");
    assert_eq!(steps[0]["definition_changed"], true);
    assert_eq!(steps[1]["outcome"], "failed");
    assert_eq!(steps[2]["outcome"], "ok");
    assert_eq!(steps[2]["definition_changed"], false);
    assert_ne!(steps[0]["runbook_sha256"], steps[2]["runbook_sha256"]);
    assert_eq!(report["outcome"], "succeeded");

    let md = text(&bin(dir, &["report", "--state-dir", "state"]).stdout);
    assert!(
        md.contains("| `a` | - | ok (definition changed since it ran) |"),
        "{md}"
    );
    assert!(md.contains("| wall clock | "), "{md}");
}

#[test]
fn one_run_has_one_duration_in_the_summary_runs_and_the_report_and_everyone_who_acted() {
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: pause
            steps:
              - {id: first, check: {command: 'false'}, run: 'sleep 0.3', timeout: 5s}
              - {id: power, depends_on: [first], manual: 'Confirm both feeds.'}
              - {id: after, depends_on: [power], check: {command: 'false'}, run: 'sleep 0.2', timeout: 5s}
            ",
        )
        .args([
            "run",
            "runbook.yaml",
            "--state-dir",
            "state",
            "--operator",
            "alice",
        ])
        .status(3)
        .run();
    let dir = t.path();
    let id = only_run(dir);
    let confirmed = bin(
        dir,
        &[
            "confirm",
            &id,
            "power",
            "--operator",
            "bob",
            "--state-dir",
            "state",
        ],
    );
    assert!(confirmed.status.success(), "{}", text(&confirmed.stderr));
    let resumed = bin(
        dir,
        &["resume", &id, "--operator", "carol", "--state-dir", "state"],
    );
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    let summary = text(&resumed.stdout);
    let line = summary
        .lines()
        .find(|l| l.starts_with("summary: succeeded after "))
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(
        line.contains("(wall clock ") && line.contains("paused in between"),
        "{line}"
    );
    let summary_duration = line["summary: succeeded after ".len()..]
        .split(' ')
        .next()
        .unwrap();
    assert_ne!(summary_duration, "0.0s", "{line}");

    let runs = json(&bin(
        dir,
        &["runs", "--format", "json", "--state-dir", "state"],
    ));
    let report = json(&bin(
        dir,
        &["report", "--format", "json", "--state-dir", "state"],
    ));
    assert_eq!(runs[0]["duration_secs"], report["duration_secs"]);
    assert!(report["duration_secs"].as_f64().unwrap() >= 0.5, "{report}");
    assert!(report["wall_clock_secs"].as_f64() >= report["duration_secs"].as_f64());
    let table = text(&bin(dir, &["runs", "--state-dir", "state"]).stdout);
    let row = table.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        row.split_whitespace().any(|w| w == summary_duration),
        "runs says {row:?}, the summary {summary_duration}"
    );
    assert_eq!(runs[0]["operator"], "alice,bob,carol");
    assert!(row.contains("alice,bob,carol"), "{row}");
    assert_eq!(
        report["operators"],
        serde_json::json!(["alice", "bob", "carol"])
    );
}

#[test]
fn a_step_skipped_by_hand_is_a_caveat_on_success() {
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: skip
            defaults: {timeout: 5s, on_failure: pause}
            steps:
              - {id: broken, check: {command: 'false'}, run: 'exit 1'}
              - {id: after, depends_on: [broken], check: {command: 'false'}, run: 'touch after'}
            ",
        )
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(3)
        .run();
    let dir = t.path();
    let id = only_run(dir);
    let marked = bin(
        dir,
        &[
            "mark",
            &id,
            "broken",
            "skipped",
            "--note",
            "not tonight",
            "--state-dir",
            "state",
        ],
    );
    assert!(marked.status.success(), "{}", text(&marked.stderr));
    let resumed = bin(dir, &["resume", "--state-dir", "state"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    assert!(
        text(&resumed.stdout).contains("summary: succeeded, 1 step skipped by hand after "),
        "{}",
        text(&resumed.stdout)
    );
    let table = text(&bin(dir, &["runs", "--state-dir", "state"]).stdout);
    assert!(
        table.contains("succeeded, 1 step skipped by hand"),
        "{table}"
    );
    let report = json(&bin(
        dir,
        &["report", "--format", "json", "--state-dir", "state"],
    ));
    assert_eq!(report["outcome"], "succeeded");
    assert_eq!(report["skipped_by_hand"], 1);
    let md = text(&bin(dir, &["report", "--state-dir", "state"]).stdout);
    assert!(
        md.contains("| outcome | **succeeded, 1 step skipped by hand** |"),
        "{md}"
    );
}

#[test]
fn a_step_killed_by_a_second_ctrl_c_is_interrupted() {
    let marker = format!("sleep 7{}.5", std::process::id() % 1000);
    let t = Test::new().runbook(&format!(
        "version: 1\nname: hard\nsteps:\n  - {{id: slow, check: {{command: 'false'}}, timeout: 60s, run: 'touch started; {marker}'}}\n  - {{id: next, depends_on: [slow], run: 'true'}}\n"
    ));
    let dir = t.path().to_path_buf();
    let mut child = Command::new(BIN)
        .current_dir(&dir)
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&dir.join("started"));
    interrupt_until_it_stops(&mut child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let summary = text(&out.stdout);
    assert!(summary.contains("    interrupted slow"), "{summary}");
    assert!(summary.contains("    not run     next"), "{summary}");
    let report = json(&bin(
        &dir,
        &["report", "--format", "json", "--state-dir", "state"],
    ));
    assert_eq!(report["steps"][0]["outcome"], "interrupted");
    assert_eq!(report["steps"][0]["hosts"][0]["outcome"], "interrupted");
    assert_eq!(report["steps"][1]["outcome"], "not-run");
}

/// A run directory with a hand-written journal: one step `a`, failed.
fn fake_run(state: &Path, id: &str, at: &str, runbook_path: &Path) {
    let dir = state.join("runs").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let runbook = std::fs::read_to_string(runbook_path).unwrap();
    std::fs::write(dir.join("runbook.yaml"), &runbook).unwrap();
    let started = serde_json::json!({
        "at": at, "elapsed_ms": 0, "event": "run-started", "version": 1, "run_id": id,
        "runbook": "pick", "runbook_sha256": "1111", "inventory_sha256": null,
        "operator": "alice", "dry_run": false, "steps": ["a"],
        "runbook_path": runbook_path.display().to_string(), "inventory_path": null,
    });
    let finished = serde_json::json!({
        "at": at, "elapsed_ms": 10, "event": "run-finished", "outcome": "failed",
    });
    std::fs::write(
        dir.join("journal.jsonl"),
        format!("{started}\n{finished}\n"),
    )
    .unwrap();
}

#[test]
fn runs_started_in_the_same_second_sort_by_start_and_resume_says_which_it_picks() {
    let t = Test::new().runbook(
        "version: 1\nname: pick\nsteps:\n  - {id: a, check: {command: 'false'}, run: 'true', timeout: 5s}\n",
    );
    let dir = t.path();
    let runbook = dir.join("runbook.yaml");
    let state = dir.join("state");
    // The suffix sorts opposite to the start times.
    fake_run(
        &state,
        "20261128T100000Z-ffff",
        "2026-11-28T10:00:00.100Z",
        &runbook,
    );
    fake_run(
        &state,
        "20261128T100000Z-0000",
        "2026-11-28T10:00:00.900Z",
        &runbook,
    );
    let runs = json(&bin(
        dir,
        &["runs", "--format", "json", "--state-dir", "state"],
    ));
    let ids: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["20261128T100000Z-ffff", "20261128T100000Z-0000"]);
    let resumed = bin(dir, &["resume", "--state-dir", "state"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    let said = text(&resumed.stderr);
    assert!(
        said.contains("resuming run 20261128T100000Z-0000")
            && said.contains("the latest unfinished run"),
        "{said}"
    );
    let runs = json(&bin(
        dir,
        &["runs", "--format", "json", "--state-dir", "state"],
    ));
    assert_eq!(runs[1]["outcome"], "succeeded");
    assert_eq!(runs[0]["outcome"], "failed");
}

#[test]
fn one_broken_journal_is_named_and_the_other_runs_are_listed() {
    let t = Test::new().runbook("version: 1\nname: pick\nsteps:\n  - {id: a, run: 'true'}\n");
    let dir = t.path();
    let runbook = dir.join("runbook.yaml");
    let state = dir.join("state");
    fake_run(
        &state,
        "20261128T100000Z-aaaa",
        "2026-11-28T10:00:00.100Z",
        &runbook,
    );
    fake_run(
        &state,
        "20261128T110000Z-bbbb",
        "2026-11-28T11:00:00.100Z",
        &runbook,
    );
    let broken = state.join("runs/20261128T110000Z-bbbb/journal.jsonl");
    let good = std::fs::read_to_string(&broken).unwrap();
    std::fs::write(&broken, format!("{{\"at\": oops\n{good}")).unwrap();
    let out = bin(dir, &["runs", "--state-dir", "state"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("20261128T100000Z-aaaa") && l.ends_with("failed")),
        "{table}"
    );
    assert!(table.contains("20261128T110000Z-bbbb"), "{table}");
    let err = text(&out.stderr);
    assert!(
        err.contains("run 20261128T110000Z-bbbb cannot be read") && err.contains("line 1"),
        "{err}"
    );
    let report = bin(
        dir,
        &["report", "20261128T110000Z-bbbb", "--state-dir", "state"],
    );
    assert_eq!(
        report.status.code(),
        Some(1),
        "a corrupt journal is not bad input"
    );
    assert!(text(&report.stderr).contains("is corrupt at line 1"));
}
