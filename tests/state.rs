//! The state directory under adversity: a full disk, torn journal lines,
//! `--var` across `resume`, and who may own or write it.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{BIN, Test};

fn bin(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env_remove("RUNBOOK_STATE_DIR")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn expect(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
}

fn only_run(state: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(state.join("runs"))
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

/// Every line of the journal is a whole event.
fn assert_whole_lines(journal: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(journal).unwrap();
    assert!(text.ends_with('\n'), "{text}");
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("line {} is not an event ({e}): {line}", i + 1))
        })
        .collect()
}

/// A small tmpfs mounted (as root) for the test, detached on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(at: &Path, size: &str) -> Self {
        use std::ffi::CString;
        std::fs::create_dir_all(at).unwrap();
        let target = CString::new(at.as_os_str().as_encoded_bytes()).unwrap();
        let options = CString::new(format!("size={size},mode=0700")).unwrap();
        // SAFETY: valid NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                options.as_ptr().cast(),
            )
        };
        assert_eq!(
            rc,
            0,
            "mounting a tmpfs needs root: {}",
            std::io::Error::last_os_error()
        );
        Self(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let target = std::ffi::CString::new(self.0.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: as in `mount`.
        unsafe {
            libc::umount2(target.as_ptr(), libc::MNT_DETACH);
        }
    }
}

#[test]
fn a_full_disk_ends_the_run_clearly_and_resume_goes_on_once_space_is_freed() {
    // `big` journals a command longer than a page, which cannot fit in what
    // `fill` left of the disk.
    let long = "x".repeat(8192);
    let t = Test::new().runbook(&format!(
        "
        version: 1
        name: full
        defaults: {{timeout: 30s}}
        steps:
          - {{id: fill, check: {{command: 'test -f filled'}}, run: 'cat /dev/zero > state/filler; touch filled'}}
          - {{id: big, depends_on: [fill], check: {{command: 'test -f big'}}, run: 'touch big # {long}'}}
          - {{id: after, depends_on: [big], check: {{command: 'test -f after'}}, run: 'touch after'}}
        "
    ));
    let dir = t.path();
    let state = dir.join("state");
    let _mount = Tmpfs::mount(&state, "256k");

    let run = bin(dir, &["run", "runbook.yaml", "--state-dir", "state"]);
    expect(&run, 1);
    let err = stderr(&run);
    assert!(
        err.contains("the journal could not be written, so the run stopped"),
        "{err}"
    );
    assert!(err.contains("No space left on device"), "{err}");
    let run_dir = only_run(&state);
    let id = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        err.contains(&format!(
            "continue with: runbook resume {id} --state-dir state"
        )),
        "{err}"
    );
    assert!(dir.join("filled").exists());
    assert!(!dir.join("after").exists());
    assert_whole_lines(&run_dir.join("journal.jsonl"));

    std::fs::remove_file(state.join("filler")).unwrap();
    expect(&bin(dir, &["resume", "--state-dir", "state"]), 0);
    assert!(dir.join("after").exists());
    let events = assert_whole_lines(&run_dir.join("journal.jsonl"));
    assert_eq!(events.last().unwrap()["outcome"], "succeeded");
    let runs = bin(dir, &["runs", "--state-dir", "state"]);
    expect(&runs, 0);
    assert!(String::from_utf8_lossy(&runs.stdout).contains("succeeded"));
    expect(&bin(dir, &["report", &id, "--state-dir", "state"]), 0);
}

/// A run paused on a manual step, with a torn event appended by hand.
fn paused_run_with_a_torn_tail() -> (Test, PathBuf) {
    let (_, t) = Test::new()
        .runbook("version: 1\nname: torn\nsteps:\n  - {id: a, manual: 'Look.'}\n  - {id: b, depends_on: [a], check: {command: 'test -f b'}, run: 'touch b', timeout: 5s}\n")
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(3)
        .run();
    let run = only_run(&t.path().join("state"));
    let mut journal = std::fs::OpenOptions::new()
        .append(true)
        .open(run.join("journal.jsonl"))
        .unwrap();
    std::io::Write::write_all(
        &mut journal,
        br#"{"at":"2026-11-28T00:00:00Z","elapsed_ms":3,"event":"step-sta"#,
    )
    .unwrap();
    (t, run)
}

#[test]
fn appending_after_a_torn_last_line_cuts_it_off_so_runs_and_report_keep_working() {
    let (t, run) = paused_run_with_a_torn_tail();
    let dir = t.path();
    let id = run.file_name().unwrap().to_string_lossy().into_owned();
    expect(
        &bin(
            dir,
            &[
                "confirm",
                &id,
                "a",
                "--note",
                "seen",
                "--state-dir",
                "state",
            ],
        ),
        0,
    );
    expect(&bin(dir, &["resume", "--state-dir", "state"]), 0);
    assert!(dir.join("b").exists());
    let events = assert_whole_lines(&run.join("journal.jsonl"));
    assert!(events.iter().any(|e| e["event"] == "confirmation"));
    assert!(events.iter().any(|e| e["event"] == "run-resumed"));
    expect(&bin(dir, &["runs", "--state-dir", "state"]), 0);
    expect(&bin(dir, &["report", &id, "--state-dir", "state"]), 0);
}

#[test]
fn a_journal_broken_mid_file_by_an_older_version_is_read_with_a_warning_naming_the_line() {
    let (t, run) = paused_run_with_a_torn_tail();
    let dir = t.path();
    let journal = run.join("journal.jsonl");
    // What an older version left: its next append went straight after the
    // torn line (that event is lost with it), the following ones on lines
    // of their own.
    let torn_at = std::fs::read_to_string(&journal).unwrap().lines().count();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    std::io::Write::write_all(
        &mut file,
        concat!(
            r#"{"at":"2026-11-28T00:00:01Z","elapsed_ms":0,"event":"run-resumed","operator":"x","runbook_sha256":"","inventory_sha256":null,"removed":[],"outstanding":[]}"#,
            "\n",
            r#"{"at":"2026-11-28T00:00:02Z","elapsed_ms":0,"event":"marked","step":"a","status":"done","operator":"x","note":"by hand"}"#,
            "\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let runs = bin(dir, &["runs", "--state-dir", "state"]);
    expect(&runs, 0);
    assert!(
        stderr(&runs).contains(&format!("journal.jsonl:{torn_at}: skipping a torn")),
        "{}",
        stderr(&runs)
    );
    let report = bin(dir, &["report", "--state-dir", "state"]);
    expect(&report, 0);
    assert!(String::from_utf8_lossy(&report.stdout).contains("by hand"));
    // The event after the torn line counts: `a` is marked done.
    expect(&bin(dir, &["resume", "--state-dir", "state"]), 0);
    assert!(dir.join("b").exists());
}

#[test]
fn resume_applies_the_runs_var_overrides_and_journals_its_own() {
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: failover
            vars: {site: primary, tier: gold}
            defaults: {timeout: 5s, on_failure: pause}
            steps:
              - {id: one, check: {command: 'false'}, run: 'test -f go'}
              - {id: two, depends_on: [one], check: {command: 'false'}, run: 'echo {{ vars.site }} {{ vars.tier }} >> sites; test -f go2'}
              - {id: three, depends_on: [two], check: {command: 'false'}, run: 'echo {{ vars.site }} {{ vars.tier }} >> sites'}
            ",
        )
        .args(["run", "runbook.yaml", "--var", "site=dr-b", "--state-dir", "state"])
        .status(3)
        .run();
    let dir = t.path();
    std::fs::write(dir.join("go"), "").unwrap();
    let first = bin(dir, &["resume", "--state-dir", "state"]);
    expect(&first, 3);
    assert!(stderr(&first).contains("note: with the run's --var site=dr-b"));
    std::fs::write(dir.join("go2"), "").unwrap();
    expect(
        &bin(
            dir,
            &["resume", "--var", "tier=silver", "--state-dir", "state"],
        ),
        0,
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("sites")).unwrap(),
        "dr-b gold\ndr-b silver\ndr-b silver\n"
    );
    let events = assert_whole_lines(&only_run(&dir.join("state")).join("journal.jsonl"));
    let started = events.iter().find(|e| e["event"] == "run-started").unwrap();
    assert_eq!(started["vars"], serde_json::json!({"site": "dr-b"}));
    let resumed: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "run-resumed")
        .collect();
    assert_eq!(resumed.len(), 2);
    assert!(resumed[0].get("vars").is_none());
    assert_eq!(resumed[1]["vars"], serde_json::json!({"tier": "silver"}));
}

#[test]
fn a_secret_value_given_as_a_var_is_refused_and_never_journaled() {
    let (out, t) = Test::new()
        .runbook(
            "
            version: 1
            name: s
            vars: {user: app}
            steps:
              - {id: a, check: {command: 'false'}, run: 'echo {{ vars.user }} {{ secret.pw }} > out', timeout: 5s}
            ",
        )
        .args(["run", "runbook.yaml", "--var", "user=hunter2", "--state-dir", "state"])
        .env("RUNBOOK_SECRET_pw", "hunter2")
        .status(2)
        .stderr_contains("`--var user` holds the value of the secret `pw`")
        .run();
    drop(out);
    let dir = t.path();
    assert!(!dir.join("out").exists());
    let journaled = std::fs::read_dir(dir.join("state/runs"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(journaled, 0);
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o777
}

#[test]
fn the_state_dir_is_created_0700_and_its_files_0600() {
    let (_, t) = Test::new()
        .runbook("version: 1\nname: p\nsteps:\n  - {id: a, check: {command: 'false'}, run: 'echo out', timeout: 5s}\n")
        .args(["run", "runbook.yaml", "--state-dir", "deep/state"])
        .run();
    let state = t.path().join("deep/state");
    let run = only_run(&state);
    for dir in [
        state.clone(),
        state.join("runs"),
        run.clone(),
        run.join("logs"),
        run.join("logs/a"),
    ] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    for file in [
        state.join("lock"),
        run.join("journal.jsonl"),
        run.join("runbook.yaml"),
        run.join("logs/a/controller.stdout"),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

/// A finished run whose state dir a test then tampers with.
fn finished_run() -> Test {
    Test::new()
        .runbook("version: 1\nname: p\nsteps:\n  - {id: a, manual: 'Look.'}\n")
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(3)
        .run()
        .1
}

#[test]
fn a_state_dir_or_runs_writable_by_others_is_refused() {
    for (sub, mode) in [("", 0o777), ("", 0o770), ("runs", 0o757)] {
        let t = finished_run();
        let dir = t.path();
        let target = dir.join("state").join(sub);
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).unwrap();
        let shown = if sub.is_empty() {
            "state"
        } else {
            "state/runs"
        };
        let expected = format!(
            "error: refusing to use {shown}: it is writable by other users (mode {mode:03o}), who could rewrite journals; `chmod 700` it"
        );
        for args in [
            &["resume", "--yes", "--state-dir", "state"][..],
            &["run", "runbook.yaml", "--state-dir", "state"],
            &["runs", "--state-dir", "state"],
            &["report", "--state-dir", "state"],
        ] {
            let out = bin(dir, args);
            expect(&out, 2);
            assert!(
                stderr(&out).contains(&expected),
                "{args:?}: {}",
                stderr(&out)
            );
        }
    }
}

#[test]
fn a_state_dir_owned_by_another_user_is_refused() {
    let t = finished_run();
    let dir = t.path();
    let state = dir.join("state");
    std::os::unix::fs::chown(&state, Some(65534), None).unwrap();
    let out = bin(dir, &["resume", "--yes", "--state-dir", "state"]);
    expect(&out, 2);
    // SAFETY: no preconditions.
    let me = unsafe { libc::geteuid() };
    assert!(
        stderr(&out).contains(&format!(
            "error: refusing to use state: it is owned by uid 65534, not by uid {me} who runs this"
        )),
        "{}",
        stderr(&out)
    );
    // A link to a directory of another user is refused the same way.
    std::os::unix::fs::chown(&state, Some(me), None).unwrap();
    std::fs::create_dir(dir.join("theirs")).unwrap();
    std::os::unix::fs::chown(dir.join("theirs"), Some(65534), None).unwrap();
    std::os::unix::fs::symlink("theirs", dir.join("link")).unwrap();
    let out = bin(dir, &["run", "runbook.yaml", "--state-dir", "link"]);
    expect(&out, 2);
    assert!(
        stderr(&out).contains("refusing to use link: it is owned by uid 65534"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("theirs/lock").exists());
}

#[test]
fn symbolic_links_inside_the_state_dir_are_never_followed() {
    let t = finished_run();
    let dir = t.path();
    let state = dir.join("state");
    let run = only_run(&state);
    let id = run.file_name().unwrap().to_string_lossy().into_owned();
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();

    // The journal: `resume` and `confirm` would append to the victim.
    let journal = run.join("journal.jsonl");
    std::fs::rename(&journal, dir.join("journal.jsonl")).unwrap();
    std::os::unix::fs::symlink(&victim, &journal).unwrap();
    for args in [
        &["resume", "--yes", "--state-dir", "state"][..],
        &["confirm", &id, "a", "--state-dir", "state"],
        &["report", &id, "--state-dir", "state"],
    ] {
        let out = bin(dir, args);
        expect(&out, 2);
        assert!(
            stderr(&out).contains(&format!(
                "refusing to use {}: it is a symbolic link, and links inside a state dir are never followed",
                Path::new("state/runs").join(&id).join("journal.jsonl").display()
            )),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    std::fs::remove_file(&journal).unwrap();
    std::fs::rename(dir.join("journal.jsonl"), &journal).unwrap();

    // The lock.
    std::fs::remove_file(state.join("lock")).unwrap();
    std::os::unix::fs::symlink(&victim, state.join("lock")).unwrap();
    let out = bin(dir, &["resume", "--yes", "--state-dir", "state"]);
    expect(&out, 2);
    assert!(stderr(&out).contains("refusing to use state/lock: it is a symbolic link"));
    std::fs::remove_file(state.join("lock")).unwrap();

    // A run directory, and `runs/` itself.
    std::os::unix::fs::symlink(&run, state.join("runs/other")).unwrap();
    let out = bin(dir, &["report", "other", "--state-dir", "state"]);
    expect(&out, 2);
    assert!(stderr(&out).contains("refusing to use state/runs/other: it is a symbolic link"));
    std::fs::remove_file(state.join("runs/other")).unwrap();
    std::fs::rename(state.join("runs"), dir.join("runs")).unwrap();
    std::os::unix::fs::symlink(dir.join("runs"), state.join("runs")).unwrap();
    let out = bin(dir, &["resume", "--yes", "--state-dir", "state"]);
    expect(&out, 2);
    assert!(stderr(&out).contains("refusing to use state/runs: it is a symbolic link"));

    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[test]
fn a_run_id_cannot_name_a_path_outside_runs() {
    let t = finished_run();
    let dir = t.path();
    let run = only_run(&dir.join("state"));
    std::fs::create_dir(dir.join("elsewhere")).unwrap();
    std::fs::copy(
        run.join("journal.jsonl"),
        dir.join("elsewhere/journal.jsonl"),
    )
    .unwrap();
    for id in ["../../elsewhere", ".."] {
        let out = bin(dir, &["report", id, "--state-dir", "state"]);
        expect(&out, 2);
        assert!(
            stderr(&out).contains(&format!("unknown run id `{id}`")),
            "{}",
            stderr(&out)
        );
    }
}
