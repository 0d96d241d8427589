//! The runbooks and inventories shipped in the repository.

use crate::harness::{Test, repo};

#[test]
fn shipped_runbooks_validate_cleanly_against_both_inventories() {
    for inventory in ["inventory/hospital.yaml", "inventory/simulated.yaml"] {
        let root = repo();
        Test::new()
            .args(["validate", "--strict"])
            .args([root.join("runbooks"), root.join(inventory)].map(|p| p.display().to_string()))
            .args(["-i".to_string(), root.join(inventory).display().to_string()])
            .stdout("valid: 2 files checked, 0 errors, 0 warnings")
            .stderr("")
            .run();
    }
}

#[test]
fn hospital_runbook_has_the_recovery_shape_the_issue_asks_for() {
    let root = repo();
    let (output, _) = Test::new()
        .args(["plan", "--format", "json", "-i"])
        .args(
            [
                root.join("inventory/hospital.yaml"),
                root.join("runbooks/datacenter-power-loss.yaml"),
            ]
            .map(|p| p.display().to_string()),
        )
        .run();
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let steps = plan["steps"].as_array().unwrap();
    assert!(steps.len() >= 25, "{} steps", steps.len());
    let phases: Vec<&str> = plan["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "power-network",
            "datacenter-links",
            "communications",
            "core-medical",
            "admin-apps"
        ]
    );
    assert!(
        plan["phases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["rto_secs"].is_number())
    );
    assert!(steps.iter().any(|s| s["manual"] == true));
    assert!(steps.iter().all(|s| s["estimate_secs"].is_number()));
    let wave = |id: &str| {
        steps.iter().find(|s| s["id"] == id).unwrap()["wave"]
            .as_u64()
            .unwrap()
    };
    assert!(wave("core-switches") < wave("vpn-hospitals"));
    assert!(wave("vpn-hospitals") < wave("records-db"));
    assert!(wave("records-db") < wave("billing"));
}

#[test]
fn hospital_runbook_rehearses_end_to_end_in_a_dry_run() {
    let root = repo();
    let (output, t) = Test::new()
        .args(["run", "--dry-run", "-i"])
        .args(
            [
                root.join("inventory/hospital.yaml"),
                root.join("runbooks/datacenter-power-loss.yaml"),
            ]
            .map(|p| p.display().to_string()),
        )
        .stdout_contains("would ask an operator to confirm confirm-power")
        .stdout_contains("pr-app-1: run: systemctl restart dpi-app")
        .stdout_contains("finished: succeeded")
        .run();
    assert!(!t.path().join(".runbook").exists());
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .matches("] start ")
            .count()
            == 30
    );
}

/// After a successful run of a shipped example against the simulator,
/// `status` must agree that everything is up: a probe that nothing in the
/// runbook makes pass would tell the operator a restored service is down.
#[test]
fn status_after_a_successful_run_of_each_example_is_all_up() {
    let root = repo();
    let sim = root.join("inventory/sim/bin");
    let path = format!(
        "{}:{}",
        sim.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let inventory = root.join("inventory/simulated.yaml").display().to_string();
    let mut examples: Vec<_> = std::fs::read_dir(root.join("runbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    examples.sort();
    assert!(!examples.is_empty());
    for runbook in examples {
        let runbook = runbook.display().to_string();
        // The simulated hosts' state outlives the run for `status` to probe.
        let (_, ran) = Test::new()
            .env("PATH", &path)
            .args([
                "run",
                &runbook,
                "-i",
                &inventory,
                "--yes",
                "--state-dir",
                "state",
            ])
            .env("RUNBOOK_SIM_STATE", "sim")
            .stdout_contains("finished: succeeded")
            .run();
        let sim_state = ran.path().join("sim").display().to_string();
        let (output, _) = Test::new()
            .env("PATH", &path)
            .env("RUNBOOK_SIM_STATE", &sim_state)
            .args(["status", &runbook, "-i", &inventory])
            .run();
        let board = String::from_utf8_lossy(&output.stdout);
        for line in board
            .lines()
            .filter(|l| l.contains("DOWN") || l.contains("unknown:"))
        {
            assert!(
                line.ends_with("unknown: manual step"),
                "{runbook}: `{line}` after a successful run:\n{board}"
            );
        }
        assert!(board.contains(" up, 0 down, "), "{runbook}:\n{board}");
    }
}

/// The README's "first runbook", as printed there: it validates, runs,
/// finds everything already done the second time, and `status` is all up.
#[test]
fn the_readme_first_runbook_works_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme
        .find("```yaml\n# first.yaml\n")
        .expect("the README shows first.yaml");
    let body = &readme[start + "```yaml\n".len()..];
    let yaml = &body[..body.find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    // Its own folder instead of /tmp/first-runbook, so that runs in
    // parallel do not meet.
    let work = dir.path().join("work");
    let yaml = yaml.replace("/tmp/first-runbook", &work.display().to_string());
    std::fs::write(dir.path().join("first.yaml"), yaml).unwrap();
    let runbook = |args: &[&str]| {
        std::process::Command::new(crate::harness::BIN)
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let validated = runbook(&["validate", "first.yaml"]);
    assert_eq!(validated.status.code(), Some(0), "{}", text(&validated));
    let first = runbook(&["run", "first.yaml"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(work.join("app.conf").exists());
    let second = runbook(&["run", "first.yaml"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let summary = text(&second);
    for step in ["workdir", "config", "smoke-test"] {
        assert!(
            summary
                .lines()
                .any(|l| l.contains("already-ok") && l.split_whitespace().any(|w| w == step)),
            "{step} is not already-ok the second time:\n{summary}"
        );
    }
    let status = runbook(&["status", "first.yaml"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    assert!(text(&status).contains("3 up, 0 down"), "{}", text(&status));
}
