//! Crash safety, resume, operator decisions, signals and run history.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{BIN, Test, interrupt, interrupt_until_it_stops, read, wait_for};

fn run_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(dir.join("state/runs"))
        .map(|e| {
            e.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

fn journal_events(run: &Path) -> Vec<serde_json::Value> {
    read(&run.join("journal.jsonl"))
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn bin(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

const CHAIN: usize = 8;

fn chain_runbook() -> String {
    let mut text = String::from("version: 1\nname: chain\ndefaults: {timeout: 10s}\nsteps:\n");
    for i in 0..CHAIN {
        let dep = if i > 0 {
            format!(", depends_on: [s{}]", i - 1)
        } else {
            String::new()
        };
        text.push_str(&format!(
            "  - {{id: s{i}{dep}, check: {{command: 'grep -qx s{i} done.log'}}, run: 'echo s{i} >> runs.log; sleep 0.04; echo s{i} >> done.log'}}\n"
        ));
    }
    text
}

/// When the kill -9 lands: after a delay (anywhere, start and end
/// included), or once the chain has started its n-th step (always
/// mid-chain, however loaded the machine).
#[derive(Debug, Clone, Copy)]
enum KillAt {
    Delay(u64),
    Started(usize),
}

#[test]
fn kill_9_at_many_points_then_resume_completes_without_redoing_journaled_steps() {
    use KillAt::{Delay, Started};
    let mut mid_chain = 0;
    for at in [
        Delay(15),
        Delay(60),
        Started(2),
        Delay(110),
        Delay(160),
        Started(4),
        Delay(220),
        Delay(280),
        Started(6),
        Delay(350),
        Delay(420),
        Delay(500),
    ] {
        let delay_ms = format!("{at:?}");
        let t = Test::new().runbook(&chain_runbook());
        let dir = t.path().to_path_buf();
        let mut child = Command::new(BIN)
            .current_dir(&dir)
            .args(["run", "runbook.yaml", "--state-dir", "state"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        match at {
            Delay(ms) => std::thread::sleep(Duration::from_millis(ms)),
            Started(n) => {
                let started = Instant::now();
                while read(&dir.join("runs.log")).lines().count() < n {
                    assert!(
                        started.elapsed() < Duration::from_secs(20),
                        "{at:?}: the chain stalled"
                    );
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
        child.kill().unwrap();
        let _ = child.wait();
        // A command the dead controller had started finishes on its own,
        // as it would on a real host.
        std::thread::sleep(Duration::from_millis(150));
        let Some(run) = run_dirs(&dir).pop() else {
            // Killed before the start was journaled: no step can have run.
            assert!(
                !dir.join("runs.log").exists(),
                "delay {delay_ms}: a step ran in an unrecorded run"
            );
            continue;
        };
        let journaled: Vec<String> = journal_events(&run)
            .iter()
            .filter(|e| e["event"] == "step-finished")
            .map(|e| e["step"].as_str().unwrap().to_string())
            .collect();
        if (1..CHAIN).contains(&journaled.len()) {
            mid_chain += 1;
        } else if let Started(n) = at {
            panic!(
                "killed once step {n} had started, yet {} steps were journaled",
                journaled.len()
            );
        }
        // Every step can be journaled and the run still not finished: a
        // kill between the last step and `run-finished` leaves it to resume.
        let finished_before = journal_events(&run)
            .iter()
            .any(|e| e["event"] == "run-finished" && e["outcome"] == "succeeded");
        let resumed = bin(&dir, &["resume", "--state-dir", "state"]);
        if finished_before {
            assert_eq!(
                resumed.status.code(),
                Some(2),
                "delay {delay_ms}: nothing to resume"
            );
        } else {
            assert_eq!(
                resumed.status.code(),
                Some(0),
                "delay {delay_ms}: {}",
                String::from_utf8_lossy(&resumed.stderr)
            );
        }
        let runs = read(&dir.join("runs.log"));
        let done = read(&dir.join("done.log"));
        let mut reran = 0;
        for i in 0..CHAIN {
            let id = format!("s{i}");
            let count = runs.lines().filter(|l| *l == id).count();
            assert!(
                done.lines().any(|l| l == id),
                "delay {delay_ms}: {id} never completed"
            );
            if journaled.contains(&id) {
                assert_eq!(
                    count, 1,
                    "delay {delay_ms}: {id} was journaled done but ran again"
                );
            } else if count > 1 {
                reran += 1;
            }
        }
        assert!(reran <= 1, "delay {delay_ms}: {reran} steps ran twice");
    }
    assert!(mid_chain >= 3, "only {mid_chain} kills landed mid-chain");
}

#[test]
fn sigint_lets_the_running_step_finish_exits_130_and_resume_goes_on() {
    let t = Test::new().runbook(
        "
        version: 1
        name: interrupt
        defaults: {timeout: 20s}
        steps:
          - {id: a, check: {command: 'test -f a.done'}, run: 'echo a >> runs.log; until [ -e go ]; do sleep 0.02; done; touch a.done'}
          - {id: b, depends_on: [a], check: {command: 'test -f b.done'}, run: 'echo b >> runs.log; touch b.done'}
        ",
    );
    let dir = t.path().to_path_buf();
    let mut child = Command::new(BIN)
        .current_dir(&dir)
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&dir.join("runs.log"));
    interrupt(&child);
    let stderr = until_interrupted(&mut child);
    std::fs::write(dir.join("go"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = stderr.join().unwrap();
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(dir.join("a.done").exists(), "the running step finished");
    assert!(!dir.join("b.done").exists(), "nothing new started");
    assert!(stderr.contains("runbook resume "), "{stderr}");
    let run = run_dirs(&dir).pop().unwrap();
    let last = journal_events(&run).pop().unwrap();
    assert_eq!(last["event"], "run-finished");
    assert_eq!(last["outcome"], "interrupted");
    let resumed = bin(&dir, &["resume", "--state-dir", "state"]);
    assert_eq!(resumed.status.code(), Some(0));
    assert_eq!(read(&dir.join("runs.log")), "a\nb\n");
}

#[test]
fn a_second_sigint_kills_running_commands_at_once() {
    let marker = format!("sleep 8{}.5", std::process::id() % 1000);
    let t = Test::new().runbook(&format!(
        "version: 1\nname: hard\nsteps:\n  - {{id: a, check: {{command: 'false'}}, timeout: 60s, run: 'touch started; {marker}'}}\n"
    ));
    let dir = t.path().to_path_buf();
    let mut child = Command::new(BIN)
        .current_dir(&dir)
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&dir.join("started"));
    // It stops before the first Ctrl-C's 20 s grace or the command's 60 s.
    interrupt_until_it_stops(&mut child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    crate::harness::assert_no_process(&marker, "the command survived");
}

#[test]
fn pause_then_confirm_then_resume() {
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: confirm
            steps:
              - {id: power, manual: 'Confirm both feeds.'}
              - {id: restart, depends_on: [power], confirm: true, check: {command: 'false'}, run: 'touch restarted', timeout: 5s}
            ",
        )
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(3)
        .run();
    let dir = t.path();
    let id = run_dirs(dir)[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let wrong = bin(dir, &["confirm", &id, "restart", "--state-dir", "state"]);
    assert_eq!(wrong.status.code(), Some(2), "restart is not waiting yet");
    let ok = bin(
        dir,
        &[
            "confirm",
            &id,
            "power",
            "--operator",
            "alice",
            "--note",
            "NOC: feeds A and B stable",
            "--state-dir",
            "state",
        ],
    );
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let again = bin(dir, &["resume", &id, "--state-dir", "state"]);
    assert_eq!(again.status.code(), Some(3), "restart asks too");
    assert!(!dir.join("restarted").exists());
    assert_eq!(
        bin(dir, &["confirm", &id, "restart", "--state-dir", "state"])
            .status
            .code(),
        Some(0)
    );
    let done = bin(dir, &["resume", &id, "--state-dir", "state"]);
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&done.stdout)
    );
    assert!(dir.join("restarted").exists());
    let events = journal_events(&run_dirs(dir)[0]);
    let confirmation = events
        .iter()
        .find(|e| e["event"] == "confirmation" && e["step"] == "power")
        .unwrap();
    assert_eq!(confirmation["operator"], "alice");
    assert_eq!(confirmation["note"], "NOC: feeds A and B stable");
}

#[test]
fn failure_then_mark_then_resume_lets_dependents_proceed() {
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: mark
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
    let id = run_dirs(dir)[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let no_note = bin(
        dir,
        &["mark", &id, "broken", "done", "--state-dir", "state"],
    );
    assert_eq!(no_note.status.code(), Some(2), "the note is mandatory");
    let marked = bin(
        dir,
        &[
            "mark",
            &id,
            "broken",
            "done",
            "--note",
            "restarted by hand from the console",
            "--state-dir",
            "state",
        ],
    );
    assert_eq!(marked.status.code(), Some(0));
    let resumed = bin(dir, &["resume", "--state-dir", "state"]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stdout)
    );
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("marked      broken"));
    assert!(dir.join("after").exists());
    let runs = bin(dir, &["runs", "--format", "json", "--state-dir", "state"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs[0]["outcome"], "succeeded");
    assert_eq!(runs[0]["runbook"], "mark");
    assert_eq!(
        bin(dir, &["resume", "nope", "--state-dir", "state"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn mark_skipped_lets_dependents_proceed_without_running_the_step() {
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: skip
            defaults: {timeout: 5s, on_failure: pause}
            steps:
              - {id: broken, check: {command: 'false'}, run: 'echo broken >> runs.log; exit 1'}
              - {id: after, depends_on: [broken], check: {command: 'false'}, run: 'touch after'}
            ",
        )
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(3)
        .run();
    let dir = t.path();
    let id = run_dirs(dir)[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let marked = bin(
        dir,
        &[
            "mark",
            &id,
            "broken",
            "skipped",
            "--note",
            "not needed tonight",
            "--operator",
            "bob",
            "--state-dir",
            "state",
        ],
    );
    assert_eq!(marked.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&marked.stdout).contains("skipped by bob"),
        "{}",
        String::from_utf8_lossy(&marked.stdout)
    );
    let resumed = bin(dir, &["resume", "--state-dir", "state"]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stdout)
    );
    assert!(dir.join("after").exists(), "the dependent ran");
    assert_eq!(
        read(&dir.join("runs.log")),
        "broken\n",
        "the skipped step did not run again"
    );
    let events = journal_events(&run_dirs(dir)[0]);
    let mark = events.iter().find(|e| e["event"] == "marked").unwrap();
    assert_eq!(mark["step"], "broken");
    assert_eq!(mark["status"], "skipped");
    assert_eq!(mark["operator"], "bob");
    assert_eq!(mark["note"], "not needed tonight");
}

/// Reads the run's stderr until it says it was interrupted; the returned
/// thread reads the rest.
fn until_interrupted(child: &mut std::process::Child) -> std::thread::JoinHandle<String> {
    use std::io::BufRead as _;
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("interrupted") => break,
            Some(Ok(_)) => {}
            _ => panic!("the run never said it was interrupted"),
        }
    }
    std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"))
}

#[test]
fn sigterm_is_an_interrupt_the_running_step_finishes_and_resume_goes_on() {
    let t = Test::new().runbook(
        "
        version: 1
        name: terminate
        defaults: {timeout: 20s}
        steps:
          - {id: a, check: {command: 'test -f a.done'}, run: 'echo a >> runs.log; until [ -e go ]; do sleep 0.02; done; touch a.done'}
          - {id: b, depends_on: [a], check: {command: 'test -f b.done'}, run: 'echo b >> runs.log; touch b.done'}
        ",
    );
    let dir = t.path().to_path_buf();
    let mut child = Command::new(BIN)
        .current_dir(&dir)
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&dir.join("runs.log"));
    crate::harness::signal(&child, libc::SIGTERM);
    let stderr = until_interrupted(&mut child);
    // The step goes on after the signal was taken: it is let finish.
    std::fs::write(dir.join("go"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = stderr.join().unwrap();
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("runbook resume "), "{stderr}");
    assert!(dir.join("a.done").exists(), "the running step finished");
    assert!(!dir.join("b.done").exists(), "nothing new started");
    let run = run_dirs(&dir).pop().unwrap();
    let last = journal_events(&run).pop().unwrap();
    assert_eq!(last["outcome"], "interrupted");
    let resumed = bin(&dir, &["resume", "--state-dir", "state"]);
    assert_eq!(resumed.status.code(), Some(0));
    assert_eq!(read(&dir.join("runs.log")), "a\nb\n");
}

#[test]
fn a_torn_last_journal_line_is_tolerated() {
    let (_, t) = Test::new()
        .runbook("version: 1\nname: torn\nsteps:\n  - {id: a, manual: 'Look.'}\n  - {id: b, depends_on: [a], check: {command: 'false'}, run: 'touch b', timeout: 5s}\n")
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(3)
        .run();
    let dir = t.path();
    let run = run_dirs(dir).pop().unwrap();
    let mut journal = std::fs::OpenOptions::new()
        .append(true)
        .open(run.join("journal.jsonl"))
        .unwrap();
    std::io::Write::write_all(
        &mut journal,
        br#"{"at":"2026-11-28T00:00:00Z","elapsed_ms":3,"event":"step-sta"#,
    )
    .unwrap();
    let resumed = bin(dir, &["resume", "--yes", "--state-dir", "state"]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(dir.join("b").exists());
}

/// `report` and `resume` find the runbook a run executed by the hash its
/// journal records; a hash that is not hex (a hand-edited or damaged
/// journal) panicked when cut inside a character.
#[test]
fn a_journaled_runbook_hash_that_is_not_hex_is_not_a_panic() {
    let (_, t) = Test::new()
        .runbook("version: 1\nname: hashed\nsteps:\n  - {id: a, manual: 'Look.'}\n")
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(3)
        .run();
    let dir = t.path();
    let run = run_dirs(dir).pop().unwrap();
    let path = run.join("journal.jsonl");
    let journal = read(&path);
    let sha = journal_events(&run)[0]["runbook_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(
        &path,
        journal.replace(&sha, "aaaaaaaaaaaaaaa\u{20ac}/../../x"),
    )
    .unwrap();
    let report = bin(dir, &["report", "--state-dir", "state", "--format", "json"]);
    let stderr = String::from_utf8_lossy(&report.stderr);
    assert_eq!(report.status.code(), Some(0), "{stderr}");
    assert!(String::from_utf8_lossy(&report.stdout).contains("\"hashed\""));
}

#[test]
fn a_second_run_on_the_same_state_dir_is_refused() {
    let t = Test::new().runbook("version: 1\nname: long\nsteps:\n  - {id: a, check: {command: 'false'}, run: 'touch started; sleep 2', timeout: 10s}\n");
    let dir = t.path().to_path_buf();
    let mut first = Command::new(BIN)
        .current_dir(&dir)
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&dir.join("started"));
    let second = bin(&dir, &["run", "runbook.yaml", "--state-dir", "state"]);
    assert_eq!(second.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&second.stderr).contains("another run is active on state"));
    assert!(first.wait().unwrap().success());
}

#[test]
fn resume_after_editing_the_runbook_keeps_done_steps_and_runs_the_new_definition() {
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: edit
            defaults: {timeout: 5s, on_failure: pause}
            steps:
              - {id: a, check: {command: 'false'}, run: 'echo a >> ran'}
              - {id: b, depends_on: [a], check: {command: 'false'}, run: 'echo broken-b >> ran; exit 1'}
              - {id: old, depends_on: [b], check: {command: 'false'}, run: 'echo old >> ran'}
            ",
        )
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(3)
        .run();
    let dir = t.path();
    std::fs::write(
        dir.join("runbook.yaml"),
        "version: 1\nname: edit\ndefaults: {timeout: 5s, on_failure: pause}\nsteps:\n  - {id: a, check: {command: 'false'}, run: 'echo a-changed >> ran'}\n  - {id: b, depends_on: [a], check: {command: 'false'}, run: 'echo fixed-b >> ran'}\n  - {id: new, depends_on: [b], check: {command: 'false'}, run: 'echo new >> ran'}\n",
    )
    .unwrap();
    let resumed = bin(dir, &["resume", "--state-dir", "state"]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("the runbook no longer has `old`"));
    assert_eq!(read(&dir.join("ran")), "a\nbroken-b\nfixed-b\nnew\n");
    let events = journal_events(&run_dirs(dir)[0]);
    let started = events.iter().find(|e| e["event"] == "run-started").unwrap();
    let resumed = events.iter().find(|e| e["event"] == "run-resumed").unwrap();
    assert_ne!(started["runbook_sha256"], resumed["runbook_sha256"]);
    assert_eq!(resumed["removed"], serde_json::json!(["old"]));
}

/// Runs the binary on a pseudo-terminal (util-linux `script`), typing
/// `input`, as an operator at a console would.
fn on_terminal(dir: &Path, args: &str, input: &str) -> std::process::Output {
    let mut child = Command::new("script")
        .current_dir(dir)
        .args(["-qec", &format!("{BIN} {args}"), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) runs the binary on a terminal");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn on_a_terminal_the_operator_confirms_with_a_note_or_declines() {
    let runbook = "version: 1\nname: ask\nsteps:\n  - {id: call, manual: 'Call the NOC.'}\n  - {id: after, depends_on: [call], check: {command: 'false'}, run: 'touch after', timeout: 5s}\n";
    let t = Test::new().runbook(runbook);
    let dir = t.path();
    let declined = on_terminal(dir, "run runbook.yaml --state-dir no", "n\n");
    assert_eq!(
        declined.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&declined.stdout)
    );
    assert!(!dir.join("after").exists());
    let confirmed = on_terminal(
        dir,
        "run runbook.yaml --state-dir yes --operator bob",
        "y\nNOC: feeds stable\n",
    );
    assert_eq!(
        confirmed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&confirmed.stdout)
    );
    assert!(dir.join("after").exists());
    let run = std::fs::read_dir(dir.join("yes/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let events = journal_events(&run);
    let confirmation = events
        .iter()
        .find(|e| e["event"] == "confirmation")
        .unwrap();
    assert_eq!(confirmation["operator"], "bob");
    assert_eq!(confirmation["note"], "NOC: feeds stable");
    assert_eq!(confirmation["automatic"], false);
}

/// `resume` without an id guesses only when the guess is safe: with
/// unfinished runs of two runbooks it lists them and asks for an id.
#[test]
fn resume_without_an_id_refuses_to_guess_between_runbooks() {
    let failing = |name: &str| {
        format!(
            "version: 1\nname: {name}\nsteps:\n  - {{id: fix, check: {{command: 'test -f {name}.fixed'}}, run: 'exit 1', timeout: 5s}}\n"
        )
    };
    let t = Test::new()
        .file("network.yaml", &failing("network"))
        .file("records.yaml", &failing("records"));
    let dir = t.path();
    for runbook in ["network.yaml", "records.yaml"] {
        let out = bin(dir, &["run", runbook, "--state-dir", "state"]);
        assert_eq!(out.status.code(), Some(1));
    }
    // Two runs in one second sort by their random suffix: find each by name.
    let id_of = |runbook: &str| {
        run_dirs(dir)
            .into_iter()
            .find(|d| journal_events(d)[0]["runbook"] == runbook)
            .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
            .unwrap()
    };
    let ids = [id_of("network"), id_of("records")];
    let out = bin(dir, &["resume", "--state-dir", "state"]);
    assert_eq!(out.status.code(), Some(2));
    let mut said = String::from_utf8_lossy(&out.stderr).into_owned();
    // Ids and start times differ from run to run.
    for (i, id) in ids.iter().enumerate() {
        said = said.replace(id, &format!("RUN{i}"));
    }
    let said = regex::Regex::new(r"started [0-9T:.Z-]+")
        .unwrap()
        .replace_all(&said, "started AT");
    insta::assert_snapshot!(said);
    assert_eq!(run_dirs(dir).len(), 2, "nothing was resumed");

    // With the id it goes on; once `records` is fixed and done, `network`
    // is the only unfinished run, and is resumed without an id.
    std::fs::write(dir.join("records.fixed"), "").unwrap();
    let out = bin(dir, &["resume", &ids[1], "--state-dir", "state"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.join("network.fixed"), "").unwrap();
    let out = bin(dir, &["resume", "--state-dir", "state"]);
    assert_eq!(out.status.code(), Some(0));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!(
            "resuming run {} of `network` (failed, started ",
            ids[0]
        )) && said.contains("): the latest unfinished run"),
        "{said}"
    );
}
