//! `become`: commands and `command` probes through sudo, against the real
//! sshd, logging in as the non-root accounts `scripts/test.sh` creates.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::harness::run_dir;
use crate::harness::{RUN, Test, assert_no_process, interrupt_until_it_stops, read, wait_for};
use crate::processes::all_command_lines;
use crate::sshd::{RB_PW_PASSWORD, Sshd, require_user};

/// What a step's command printed on a host (its log without the headers).
fn printed(t: &Test, step: &str, host: &str) -> Vec<String> {
    read(&run_dir(t).join(format!("logs/{step}/{host}.stdout")))
        .lines()
        .filter(|l| !l.starts_with("=== "))
        .map(str::to_string)
        .collect()
}

/// Every file under `dir`, as text.
fn all_files(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(all_files(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap_or_default();
            found.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    found
}

#[test]
fn become_runs_commands_and_probes_through_sudo_as_root_or_the_step_user() {
    require_user("rb-nopw");
    require_user("rb-pw");
    let sshd = Sshd::start(&["127.0.0.2"]);
    let (_, t) = Test::new()
        .inventory(&format!(
            "version: 1\ndefaults: {{become: true}}\nhosts:\n  a: {}\n",
            sshd.host_as("127.0.0.2", "rb-nopw", "")
        ))
        .runbook(
            r#"
            version: 1
            name: sudo
            defaults: {timeout: 30s}
            steps:
              - id: as-root
                targets: [a]
                run: id -un
                verify: {command: 'test "$(id -un)" = root'}
              - id: as-other
                targets: [a]
                become_user: rb-pw
                run: id -un
                verify: {command: 'test "$(id -un)" = rb-pw'}
              - id: as-login
                targets: [a]
                become: false
                run: id -un
                verify: {command: 'test "$(id -un)" = rb-nopw'}
            "#,
        )
        .args(RUN)
        .stdout_contains("ok         as-root")
        .stdout_contains("ok         as-other")
        .stdout_contains("ok         as-login")
        .run();
    assert_eq!(printed(&t, "as-root", "a"), ["root"]);
    assert_eq!(printed(&t, "as-other", "a"), ["rb-pw"]);
    assert_eq!(printed(&t, "as-login", "a"), ["rb-nopw"]);
}

#[test]
fn a_become_password_reaches_sudo_and_nothing_else() {
    require_user("rb-pw");
    let sshd = Sshd::start(&["127.0.0.2"]);
    let started = sshd.path("started");
    let t = Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host_as(
                "127.0.0.2",
                "rb-pw",
                ", become: true, become_password: '{{ secret.SUDO_PW }}'"
            )
        ))
        .runbook(&format!(
            r#"
            version: 1
            name: sudo-password
            steps:
              - id: s
                targets: [a]
                timeout: 30s
                check: {{command: 'test "$(id -un)" = nobody'}}
                run: 'id -un; touch {started}; sleep 2'
                verify: {{command: 'test "$(id -un)" = root'}}
            "#,
            started = started.display()
        ))
        .env("RUNBOOK_SECRET_SUDO_PW", RB_PW_PASSWORD)
        .args(RUN);
    // Sampled over the whole run: sudo's password check comes and goes.
    let done = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let watcher = {
        let (done, seen) = (Arc::clone(&done), Arc::clone(&seen));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let lines = all_command_lines();
                let mut seen = seen.lock().unwrap();
                seen.extend(
                    lines
                        .lines()
                        .filter(|l| l.contains(RB_PW_PASSWORD))
                        .map(str::to_string),
                );
            }
        })
    };
    let child = t
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&started);
    let out = child.wait_with_output().unwrap();
    done.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("ok         s"), "{stdout}");
    let seen = seen.lock().unwrap();
    assert!(
        seen.is_empty(),
        "the password is in a command line: {seen:?}"
    );
    assert_eq!(printed(&t, "s", "a"), ["root"]);
    let report = t
        .command()
        .args(["report", "--state-dir", "state"])
        .output()
        .unwrap();
    let mut everything = all_files(&t.path().join("state"));
    everything.push(("stdout".into(), stdout.to_string()));
    everything.push(("stderr".into(), String::from_utf8_lossy(&out.stderr).into()));
    everything.push((
        "report".into(),
        String::from_utf8_lossy(&report.stdout).into(),
    ));
    assert!(everything.len() > 4, "the run recorded nothing");
    for (name, text) in everything {
        assert!(!text.contains(RB_PW_PASSWORD), "the password is in {name}");
    }
}

#[test]
fn sudo_asking_for_a_password_nobody_gave_fails_at_once_naming_become_password() {
    require_user("rb-pw");
    let sshd = Sshd::start(&["127.0.0.2"]);
    let ran = sshd.path("ran");
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host_as("127.0.0.2", "rb-pw", ", become: true")
        ))
        .runbook(&format!(
            "version: 1\nname: no-password\nsteps:\n  - {{id: s, targets: [a], timeout: 600s, check: {{command: 'false'}}, run: 'touch {}'}}\n",
            ran.display()
        ))
        .args(RUN)
        .status(1)
        .stdout_contains("failed     s @ a: sudo on `a` cannot run commands as `root`: it asks `rb-pw` for a password and no `become_password` is set (sudo: a password is required)")
        .run();
    assert!(!ran.exists(), "the command ran without sudo");
}

#[test]
fn a_wrong_become_password_fails_at_once() {
    require_user("rb-pw");
    let sshd = Sshd::start(&["127.0.0.2"]);
    let ran = sshd.path("ran");
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host_as(
                "127.0.0.2",
                "rb-pw",
                ", become: true, become_password: '{{ secret.SUDO_PW }}'"
            )
        ))
        .runbook(&format!(
            "version: 1\nname: wrong-password\nsteps:\n  - {{id: s, targets: [a], timeout: 600s, check: {{command: 'false'}}, run: 'touch {}'}}\n",
            ran.display()
        ))
        .env("RUNBOOK_SECRET_SUDO_PW", "not-the-password")
        .args(RUN)
        .status(1)
        .stdout_contains("failed     s @ a: sudo on `a` cannot run commands as `root`: it refused the `become_password` of `rb-pw`")
        .run();
    assert!(!ran.exists(), "the command ran");
}

/// The command ignores SIGTERM (as a stuck daemon may): only a SIGKILL sent
/// as the become user ends it, which the login user cannot send.
#[test]
fn a_timeout_kills_the_whole_tree_started_through_sudo() {
    require_user("rb-pw");
    let sshd = Sshd::start(&["127.0.0.2"]);
    let marker = format!("sleep 8{}.25", std::process::id() % 1000);
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host_as(
                "127.0.0.2",
                "rb-pw",
                ", become: true, become_password: '{{ secret.SUDO_PW }}'"
            )
        ))
        .runbook(&format!(
            "
            version: 1
            name: sudo-hang
            steps:
              - id: hang
                targets: [a]
                timeout: 2s
                check: {{command: 'false'}}
                run: 'trap \"\" TERM; {marker} & {marker}; wait'
            "
        ))
        .env("RUNBOOK_SECRET_SUDO_PW", RB_PW_PASSWORD)
        .args(RUN)
        .status(1)
        .stdout_contains("timed-out  hang")
        .run();
    assert_no_process(&marker, "orphaned processes started through sudo");
}

/// As above, SIGTERM is ignored.
#[test]
fn interrupting_a_run_kills_what_it_started_through_sudo() {
    require_user("rb-pw");
    let sshd = Sshd::start(&["127.0.0.2"]);
    let marker = format!("sleep 9{}.75", std::process::id() % 1000);
    let started = sshd.path("started");
    let t = Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host_as(
                "127.0.0.2",
                "rb-pw",
                ", become: true, become_password: '{{ secret.SUDO_PW }}'"
            )
        ))
        .runbook(&format!(
            "version: 1\nname: sudo-interrupt\nsteps:\n  - {{id: s, targets: [a], timeout: 60s, check: {{command: 'false'}}, run: 'trap \"\" TERM; touch {}; {marker} & {marker}; wait'}}\n",
            started.display()
        ))
        .env("RUNBOOK_SECRET_SUDO_PW", RB_PW_PASSWORD);
    let mut child = t
        .command()
        .args(RUN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&started);
    interrupt_until_it_stops(&mut child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert_no_process(&marker, "processes started through sudo survived");
}

#[test]
fn a_become_password_written_as_a_value_is_refused_where_it_is_written() {
    Test::new()
        .inventory(
            "
            version: 1
            defaults:
              become: true
              become_password: hunter2
            hosts:
              a: {address: 10.0.0.1}
            ",
        )
        .runbook(
            "
            version: 1
            name: literal
            steps:
              - id: s
                targets: [a]
                check: {command: 'true'}
                become_password: 'pw-{{ secret.X }}'
            ",
        )
        .args(["validate", "runbook.yaml", "-i", "inventory.yaml"])
        .status(2)
        .stderr_contains("error: `become_password` must be a secret reference such as `{{ secret.NAME }}`, not a value\n  --> inventory.yaml:4:20")
        .stderr_contains("error: `become_password` must be a secret reference such as `{{ secret.NAME }}`, not a value\n  --> runbook.yaml:7:22")
        .run();
}
