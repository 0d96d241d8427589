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
