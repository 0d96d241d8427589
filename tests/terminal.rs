//! The operator's terminal: prompts on a real pseudo-terminal, a hang-up,
//! and output to a pipe closed early.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{BIN, Test, wait_for};

/// The binary on a pseudo-terminal (util-linux `script`): what it draws,
/// and a keyboard.
struct Console {
    child: Child,
    keys: ChildStdin,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Console {
    fn start(dir: &Path, args: &str) -> Self {
        let mut child = Command::new("script")
            .current_dir(dir)
            // `exec`: the binary itself gets the terminal's signals.
            .args(["-qec", &format!("exec {BIN} {args}"), "/dev/null"])
            .env_remove("CI")
            .env_remove("RUST_LOG")
            .env("TERM", "xterm")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("`script` (util-linux) runs the binary on a terminal");
        let keys = child.stdin.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self {
            child,
            keys,
            screen,
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// What was drawn after the last `marker`; waits (30 s at most) for it.
    fn after(&self, marker: &str) -> String {
        until(&format!("{marker:?} on the screen"), || {
            let screen = self.screen();
            screen
                .rfind(marker)
                .map(|at| screen[at + marker.len()..].to_string())
        })
    }

    fn type_keys(&mut self, keys: &str) {
        self.keys.write_all(keys.as_bytes()).unwrap();
        self.keys.flush().unwrap();
    }

    fn exit_code(mut self) -> Option<i32> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("the run did not end; screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Polls `check` until it gives a value; 30 s is only a guard against a hang.
fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never happened: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn journal(dir: &Path) -> Vec<serde_json::Value> {
    let runs: Vec<PathBuf> = std::fs::read_dir(dir.join("state/runs"))
        .map(|e| e.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    runs.iter()
        .filter_map(|r| std::fs::read_to_string(r.join("journal.jsonl")).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn has(events: &[serde_json::Value], event: &str, step: &str) -> bool {
    events
        .iter()
        .any(|e| e["event"] == event && e["step"] == step)
}

fn resume(dir: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(["resume", "--state-dir", "state"])
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn while_a_prompt_waits_other_branches_go_on_nothing_draws_over_it_and_ctrl_c_ends_the_run() {
    let t = Test::new().runbook(
        "
        version: 1
        name: ask
        steps:
          - {id: call, manual: 'Call the NOC.'}
          - {id: after, depends_on: [call], check: {command: 'false'}, run: 'touch after', timeout: 5s}
          - {id: other, check: {command: 'false'}, timeout: 60s, run: 'while [ ! -f go ]; do sleep 0.05; done; touch other'}
        ",
    );
    let dir = t.path();
    let mut console = Console::start(dir, "run runbook.yaml --state-dir state --operator bob");
    console.after("Confirm done? [y/N] ");
    // The independent branch finishes while the question is open.
    std::fs::write(dir.join("go"), "").unwrap();
    wait_for(&dir.join("other"));
    until("`other` finished in the journal", || {
        has(&journal(dir), "step-finished", "other").then_some(())
    });
    // Its line and the bars' redraws wait for the answer (ten redraws a
    // second would otherwise have come by now).
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(console.after("Confirm done? [y/N] "), "");
    console.type_keys("y\n");
    console.after("Note (optional): ");
    console.type_keys("NOC is");
    until("the typed note echoed", || {
        (console.after("Note (optional): ") == "NOC is").then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        console.after("Note (optional): "),
        "NOC is",
        "only what the operator typed is on the prompt's line"
    );
    console.type_keys("\x03");
    let screen_after = Arc::clone(&console.screen);
    assert_eq!(console.exit_code(), Some(130));
    let screen = String::from_utf8_lossy(&screen_after.lock().unwrap()).into_owned();
    let after_prompt = &screen[screen.rfind("Note (optional): ").unwrap()..];
    assert!(after_prompt.contains("other"), "held lines print: {screen}");
    assert!(after_prompt.contains("runbook resume"), "{screen}");
    assert!(!screen.contains("panicked"), "{screen}");

    let events = journal(dir);
    assert!(!has(&events, "confirmation", "call"), "not confirmed");
    assert!(!has(&events, "step-finished", "call"));
    assert!(!has(&events, "step-started", "after"));
    let last = events.last().unwrap();
    assert_eq!(last["event"], "run-finished");
    assert_eq!(last["outcome"], "interrupted");

    let resumed = resume(dir, &["--yes"]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(dir.join("after").exists());
}

#[test]
fn a_hangup_is_an_interruption_journaled_and_output_to_the_dead_terminal_is_dropped() {
    let t = Test::new().runbook(
        "
        version: 1
        name: hangup
        steps:
          - {id: slow, check: {command: 'test -f slow.done'}, timeout: 60s, run: 'touch started; while [ ! -f go ]; do sleep 0.05; done; echo finishing; touch slow.done'}
          - {id: next, depends_on: [slow], check: {command: 'false'}, run: 'touch next', timeout: 5s}
        ",
    );
    let dir = t.path();
    let mut console = Console::start(dir, "run runbook.yaml --state-dir state");
    wait_for(&dir.join("started"));
    let runbook = until("the binary under `script`", || {
        let children = Command::new("pgrep")
            .args(["-P", &console.child.id().to_string()])
            .output()
            .expect("pgrep (procps)");
        String::from_utf8_lossy(&children.stdout)
            .trim()
            .parse::<i32>()
            .ok()
    });
    // The operator's SSH session closes: the terminal hangs up (SIGHUP),
    // and every later write to it fails.
    console.child.kill().unwrap();
    console.child.wait().unwrap();
    std::fs::write(dir.join("go"), "").unwrap();
    until("the run to end", || {
        // SAFETY: signal 0 only asks whether the process exists.
        (unsafe { libc::kill(runbook, 0) } != 0).then_some(())
    });
    let events = journal(dir);
    assert!(
        has(&events, "step-finished", "slow"),
        "the running step finished"
    );
    assert!(!has(&events, "step-started", "next"), "nothing new started");
    assert_eq!(events.last().unwrap()["outcome"], "interrupted");
    let resumed = resume(dir, &[]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(dir.join("next").exists());
}

/// Runs with stdout a pipe whose reader has already gone, as after
/// `| head -1` has read its line.
fn closed_stdout(t: &Test, args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    t.command()
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_stdout_ends_every_command_quietly_with_its_own_exit_code() {
    let t = Test::new()
        .runbook(
            "
            version: 1
            name: pipe
            steps:
              - {id: a, check: {command: 'false'}, run: 'echo a; touch a', timeout: 5s}
              - {id: b, depends_on: [a], check: {command: 'false'}, run: 'touch b', timeout: 5s}
            ",
        )
        .file("bad.yaml", "version: 1\nname: bad\nsteps: []\nbogus: 1\n");
    let dir = t.path();
    let cases: &[(&[&str], i32)] = &[
        (&["run", "runbook.yaml", "--state-dir", "state"], 0),
        (&["validate", "runbook.yaml"], 0),
        (&["validate", "bad.yaml"], 2),
        (&["plan", "runbook.yaml"], 0),
        (&["runs", "--state-dir", "state"], 0),
        (&["report", "--state-dir", "state"], 0),
        (&["schema"], 0),
        (&["run", "runbook.yaml", "--dry-run"], 0),
    ];
    for (args, code) in cases {
        let out = closed_stdout(&t, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
    assert!(dir.join("b").exists(), "the run went on to the end");
}
