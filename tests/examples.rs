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

fn hospital_plan() -> serde_json::Value {
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
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn hospital_runbook_has_the_recovery_shape_the_issue_asks_for() {
    let plan = hospital_plan();
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
            "crisis",
            "power-network",
            "platform",
            "identity-infra",
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
    // Issue 11: the second edition's order. Cooling before any server;
    // storage checked before it is mounted; identity and time before
    // logins; databases recovered before the application VMs start;
    // queued HL7 messages replayed once their receivers are up; the
    // incident closes only with the wristband printers and the
    // declaration to the authorities done.
    assert!(wave("datacenter-cooling") < wave("core-switches"));
    assert!(wave("storage-consistency") < wave("storage-array"));
    assert!(wave("vms-infrastructure") < wave("vms-data"));
    assert!(wave("ntp") < wave("directory"));
    assert!(wave("directory") < wave("records-app"));
    assert!(wave("records-db-recovery") < wave("vms-applications"));
    assert!(wave("vms-applications") < wave("records-app"));
    assert!(wave("central-monitoring") < wave("vms-applications"));
    for receiver in ["records-app", "lab-results-portal", "radiology-worklists"] {
        assert!(wave(receiver) < wave("hl7-replay"), "{receiver}");
    }
    let closing = steps.iter().find(|s| s["id"] == "incident-closed").unwrap();
    for needed in [
        "wristband-printers",
        "declare-incident",
        "paper-records-reentry",
    ] {
        assert!(
            closing["depends_on"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d == needed),
            "{needed}"
        );
    }
    // End-to-end checks from a hospital site for each core service.
    for site_check in [
        "site-dns",
        "site-directory",
        "site-email",
        "site-telephony",
        "site-records",
        "site-imaging",
        "site-lab",
        "site-eprescribing",
        "site-emergency",
        "site-hl7",
    ] {
        let step = steps.iter().find(|s| s["id"] == site_check).unwrap();
        assert_eq!(
            step["hosts"],
            serde_json::json!(["site-north-gw"]),
            "{site_check}"
        );
    }
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
    let steps = hospital_plan()["steps"].as_array().unwrap().len();
    assert!(steps >= 60, "{steps} steps");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout)
            .matches("] start ")
            .count(),
        steps
    );
}

/// The simulated hospital of `inventory/simulated.yaml`: its state folder,
/// and the right to its listeners' loopback addresses (fixed in the
/// inventory, so one test at a time), given back with `sim reset` (which
/// stops them).
struct Sim {
    dir: tempfile::TempDir,
    _turn: crate::harness::HospitalAddresses,
}

impl Sim {
    fn new() -> Self {
        let turn = crate::harness::hospital_addresses();
        // Another simulation's listeners (the README's, left running)
        // would answer this one's probes.
        if let Ok(mut relay) = std::net::TcpStream::connect(("127.100.4.25", 25)) {
            let _ = relay.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let mut banner = [0u8; 200];
            let n = std::io::Read::read(&mut relay, &mut banner).unwrap_or(0);
            panic!(
                "a simulation already listens on 127.100.4.25:25 ({}): stop it with `RUNBOOK_SIM_STATE=ITS_FOLDER inventory/sim/bin/sim reset`",
                String::from_utf8_lossy(&banner[..n]).trim_end()
            );
        }
        Self {
            dir: tempfile::tempdir().unwrap(),
            _turn: turn,
        }
    }

    fn state(&self) -> String {
        self.dir.path().join("sim").display().to_string()
    }

    fn path() -> String {
        format!(
            "{}:{}",
            repo().join("inventory/sim/bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    fn reset(&self) -> std::process::Output {
        std::process::Command::new(repo().join("inventory/sim/bin/sim"))
            .arg("reset")
            .env("RUNBOOK_SIM_STATE", self.state())
            .output()
            .unwrap()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.reset();
    }
}

/// After a successful run of a shipped example against the simulator,
/// `status` must agree that everything is up: a probe that nothing in the
/// runbook makes pass would tell the operator a restored service is down.
#[test]
fn status_after_a_successful_run_of_each_example_is_all_up() {
    let root = repo();
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
        let sim = Sim::new();
        Test::new()
            .env("PATH", &Sim::path())
            .env("RUNBOOK_SIM_STATE", &sim.state())
            .args([
                "run",
                &runbook,
                "-i",
                &inventory,
                "--yes",
                "--state-dir",
                "state",
            ])
            .stdout_contains("finished: succeeded")
            .run();
        let (output, _) = Test::new()
            .env("PATH", &Sim::path())
            .env("RUNBOOK_SIM_STATE", &sim.state())
            .args(["status", &runbook, "-i", &inventory])
            .run();
        let board = String::from_utf8_lossy(&output.stdout);
        // Manual steps have nothing to probe; the simulation serves no
        // TLS, and its inventory says so (`when` false).
        for line in board
            .lines()
            .filter(|l| l.contains("DOWN") || l.contains("unknown:"))
        {
            assert!(
                line.ends_with("unknown: manual step")
                    || line.ends_with("unknown: `when` is false"),
                "{runbook}: `{line}` after a successful run:\n{board}"
            );
        }
        assert!(board.contains(" up, 0 down, "), "{runbook}:\n{board}");
    }
}

/// Each step's outcome in a run's summary, as printed.
fn outcomes(stdout: &str) -> Vec<(String, String)> {
    const OUTCOMES: [&str; 8] = [
        "ok",
        "already-ok",
        "skipped",
        "failed",
        "timed-out",
        "blocked",
        "confirmed",
        "marked",
    ];
    stdout
        .lines()
        .filter(|l| l.starts_with("    "))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let outcome = words.next()?;
            let step = words.next()?;
            OUTCOMES
                .contains(&outcome)
                .then(|| (outcome.to_string(), step.to_string()))
        })
        .collect()
}

/// The README's first command, for real: the whole hospital runbook on
/// the simulated hosts, whose services answer the network probes (DNS,
/// SMTP, SIP, HTTP, HL7, from the controller and `via` the site host)
/// from real listeners on loopback; the second run finds every step done.
#[test]
fn the_readme_first_command_restores_the_simulated_hospital_then_finds_it_restored() {
    let root = repo();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains(
        "PATH=\"$PWD/inventory/sim/bin:$PATH\" cargo run --release -- run runbooks/datacenter-power-loss.yaml -i inventory/simulated.yaml --yes"
    ));
    let sim = Sim::new();
    let file = |path: &str| root.join(path).display().to_string();
    let run = || {
        let (output, _) = Test::new()
            .env("PATH", &Sim::path())
            .env("RUNBOOK_SIM_STATE", &sim.state())
            .args([
                "run",
                &file("runbooks/datacenter-power-loss.yaml"),
                "-i",
                &file("inventory/simulated.yaml"),
                "--yes",
                "--state-dir",
                &sim.dir.path().join("journal").display().to_string(),
            ])
            .stdout_contains("finished: succeeded")
            .run();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let first = outcomes(&run());
    assert!(first.len() >= 60, "{first:?}");
    // The simulated services start down: the restoring steps ran.
    for step in [
        "dc-dns",
        "directory",
        "mail-relay",
        "telephony",
        "integration-engine",
        "records-app",
        "hl7-replay",
        "wristband-printers",
    ] {
        assert!(
            first.contains(&("ok".to_string(), step.to_string())),
            "{step}: {first:?}"
        );
    }
    // A listener the simulation started is a real server on loopback.
    let mut smtp = std::net::TcpStream::connect(("127.100.4.25", 25)).unwrap();
    let mut banner = [0u8; 3];
    std::io::Read::read_exact(&mut smtp, &mut banner).unwrap();
    assert_eq!(&banner, b"220");
    drop(smtp);
    let second = outcomes(&run());
    assert_eq!(second.len(), first.len());
    for (outcome, step) in &second {
        let manual = outcome == "confirmed";
        // The simulation serves no TLS: its inventory's portals are http.
        let no_tls = outcome == "skipped" && step == "portal-certificates";
        assert!(
            outcome == "already-ok" || manual || no_tls,
            "{step} is {outcome} the second time: {second:?}"
        );
    }
    // `sim reset` stops the listeners.
    let reset = sim.reset();
    assert!(reset.status.success(), "{reset:?}");
    assert!(std::net::TcpStream::connect(("127.100.4.25", 25)).is_err());
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
