//! A black-box builder: write files into a temp dir, run the binary, assert
//! exact output. Every mismatch is reported before the test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_runbook");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Removes the common indentation, so tests can indent YAML with the code.
pub fn unindent(text: &str) -> String {
    if text.trim().is_empty() {
        return String::new();
    }
    let text = text.strip_prefix('\n').unwrap_or(text).trim_end();
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|l| {
            if l.len() >= indent {
                &l[indent..]
            } else {
                l.trim_start()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

pub struct Test {
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    status: Option<i32>,
    stdout: Option<String>,
    stderr: Option<String>,
    stdout_contains: Vec<String>,
    stderr_contains: Vec<String>,
}

impl Test {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            args: Vec::new(),
            env: Vec::new(),
            status: Some(0),
            stdout: None,
            stderr: None,
            stdout_contains: Vec::new(),
            stderr_contains: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(self, name: &str, text: &str) -> Self {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, unindent(text)).expect("write");
        self
    }

    pub fn runbook(self, text: &str) -> Self {
        self.file("runbook.yaml", text)
    }

    pub fn inventory(self, text: &str) -> Self {
        self.file("inventory.yaml", text)
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn status(mut self, code: i32) -> Self {
        self.status = Some(code);
        self
    }

    pub fn stdout(mut self, text: &str) -> Self {
        self.stdout = Some(unindent(text));
        self
    }

    pub fn stderr(mut self, text: &str) -> Self {
        self.stderr = Some(unindent(text));
        self
    }

    pub fn stdout_contains(mut self, text: &str) -> Self {
        self.stdout_contains.push(text.into());
        self
    }

    pub fn stderr_contains(mut self, text: &str) -> Self {
        self.stderr_contains.push(text.into());
        self
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir.path())
            .args(&self.args)
            .env_remove("RUST_LOG")
            .env_remove("RUNBOOK_STATE_DIR")
            // Never the machine's own ~/.ssh/config or known hosts.
            .env("HOME", self.dir.path())
            .env("NO_COLOR", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs and checks; returns the output and the test (its temp dir lives on).
    pub fn run(self) -> (Output, Self) {
        let output = self.command().output().expect("run binary");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        let mut failures = Vec::new();
        if let Some(code) = self.status
            && output.status.code() != Some(code)
        {
            failures.push(format!(
                "status: expected {code}, got {:?}",
                output.status.code()
            ));
        }
        if let Some(expected) = &self.stdout
            && *expected != stdout
        {
            failures.push(format!("stdout: expected\n{expected}"));
        }
        if let Some(expected) = &self.stderr
            && *expected != stderr
        {
            failures.push(format!("stderr: expected\n{expected}"));
        }
        for s in &self.stdout_contains {
            if !stdout.contains(s.as_str()) {
                failures.push(format!("stdout does not contain {s:?}"));
            }
        }
        for s in &self.stderr_contains {
            if !stderr.contains(s.as_str()) {
                failures.push(format!("stderr does not contain {s:?}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{}\n--- args: {:?}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}",
            failures.join("\n"),
            self.args
        );
        (output, self)
    }
}

/// Waits (10 s at most) until `path` exists: a step has reached a point.
pub fn wait_for(path: &Path) {
    let started = std::time::Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Sends `signal` to a child process.
pub fn signal(child: &std::process::Child, signal: i32) {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Presses Ctrl-C once.
pub fn interrupt(child: &std::process::Child) {
    signal(child, libc::SIGINT);
}

/// Presses Ctrl-C again and again until the run stops, as an operator in
/// a hurry would. Two signals sent close together can arrive as one, so a
/// fixed count would test the machine's load, not the second Ctrl-C.
/// Gives up after 15 s, less than the 20 s the first Ctrl-C would wait.
pub fn interrupt_until_it_stops(child: &mut std::process::Child) {
    let started = std::time::Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "repeated Ctrl-C did not stop the run"
        );
        interrupt(child);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Fails unless no process's command line contains `marker`: nothing the
/// run started was left behind.
pub fn assert_no_process(marker: &str, what: &str) {
    let left = std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .expect("pgrep (procps)");
    assert!(
        left.stdout.is_empty(),
        "{what}: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// `run` with the test's runbook and inventory, journaling under `state/`.
pub const RUN: [&str; 6] = [
    "run",
    "runbook.yaml",
    "-i",
    "inventory.yaml",
    "--state-dir",
    "state",
];

/// A file's text; empty when it does not exist (yet).
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The right to the hospital's loopback addresses (127.100.0.0/14, fixed in
/// `inventory/simulated.yaml`), where the simulation's listeners and the
/// lab's daemons both bind: one test at a time on the machine, whichever
/// checkout runs it, held until dropped.
pub struct HospitalAddresses(#[allow(dead_code)] std::fs::File);

pub fn hospital_addresses() -> HospitalAddresses {
    use std::os::fd::AsRawFd as _;
    let path = std::env::temp_dir().join("runbook-tests-hospital-addresses.lock");
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // SAFETY: flock on a descriptor this function owns; released on close.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(locked, 0, "flock {}", path.display());
    HospitalAddresses(file)
}

/// The latest run's folder under the test's state dir.
pub fn run_dir(t: &Test) -> PathBuf {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(t.path().join("state/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    runs.sort();
    runs.pop().expect("a run directory")
}

/// The latest run's id (its folder's name) under the test's state dir.
pub fn run_id(t: &Test) -> String {
    run_dir(t)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}
