//! One (step, host) pair: `when` -> `check` -> `run` (with retries and
//! timeout) -> `verify` (polled). Emits an event for every action and
//! returns the host's outcome; it never touches run state.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use minijinja::Value;
use tokio::sync::mpsc::UnboundedSender;

use super::context::{self, Secrets};
use super::probe::{ProbeResult, describe_exit, probe};
use super::transport::{Exit, Job, MAX_CAPTURE, Output, Transport, new_tag};
use crate::events::{Action, EventKind, HostOutcome};
use crate::model::{Host, Probe, Runbook};
use crate::redact::{Redactor, printable};

/// Everything a worker needs, shared by all workers of a run.
pub struct Shared {
    pub runbook: Arc<Runbook>,
    pub transport: Arc<dyn Transport>,
    pub secrets: Secrets,
    pub redactor: Redactor,
    /// `runs/RUN_ID/logs`, or `None` when nothing is recorded.
    pub logs: Option<PathBuf>,
    pub events: UnboundedSender<EventKind>,
}

pub struct HostResult {
    pub outcome: HostOutcome,
}

struct Worker<'a> {
    shared: &'a Shared,
    step: usize,
    host: &'a Host,
    context: Value,
    /// Journaled in `host-started`; every command of this step on this
    /// host carries it.
    tag: String,
}

const TAIL_LINES: usize = 10;

pub async fn run_host(shared: &Shared, step: usize, host: &Host) -> HostResult {
    let started = Instant::now();
    let tag = new_tag();
    let _ = shared.events.send(EventKind::HostStarted {
        step: shared.runbook.steps[step].id.clone(),
        host: host.name.clone(),
        tag: Some(tag.clone()),
    });
    let worker = Worker {
        shared,
        step,
        host,
        context: context::for_host(host, &shared.runbook.vars, &shared.secrets),
        tag,
    };
    let (outcome, message, stderr) = worker.run().await;
    let s = &shared.runbook.steps[step];
    // What a host printed reaches the operator's terminal: never as escape
    // sequences.
    let stderr_tail = stderr
        .map(|bytes| tail(&printable(&shared.redactor.redact_bytes(&bytes))))
        .unwrap_or_default();
    let _ = shared.events.send(EventKind::HostFinished {
        step: s.id.clone(),
        host: host.name.clone(),
        outcome,
        duration_ms: millis(started.elapsed()),
        message: message.map(|m| printable(&shared.redactor.redact(&m))),
        stderr_tail,
    });
    HostResult { outcome }
}

/// `name` as one file name inside the logs folder. Validation already
/// refuses names that could leave it; this holds even if one got through:
/// anything outside `[A-Za-z0-9_:-]`, and `.` at the start, becomes `%XX`
/// (so `%` too, keeping distinct names distinct).
fn file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-') || (b == b'.' && i > 0) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn tail(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..]
        .iter()
        .map(|l| (*l).to_string())
        .collect()
}

#[must_use]
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

type Finish = (HostOutcome, Option<String>, Option<Vec<u8>>);

impl Worker<'_> {
    fn step(&self) -> &crate::model::Step {
        &self.shared.runbook.steps[self.step]
    }

    async fn run(&self) -> Finish {
        let step = self.step();
        let templates = &self.shared.runbook.templates;
        if let Some(when) = step.when {
            let verdict = templates
                .render(when, &self.context)
                .and_then(|r| context::truth(&r));
            match verdict {
                Ok(true) => {}
                Ok(false) => return (HostOutcome::Skipped, Some("`when` is false".into()), None),
                Err(e) => return (HostOutcome::Failed, Some(format!("`when`: {e}")), None),
            }
        }
        let mut last_check = None;
        if let Some(check) = &step.check {
            let result = self.probe(check, Action::Check, 1).await;
            if result.passed {
                return (HostOutcome::AlreadyOk, None, None);
            }
            last_check = Some(result);
        }
        let Some(run) = step.run else {
            if let Some(verify) = &step.verify {
                return match self.poll(verify).await {
                    Ok(()) => (HostOutcome::Ok, None, None),
                    Err(r) => (
                        HostOutcome::Failed,
                        Some(format!("verify failed: {}", r.0)),
                        r.1,
                    ),
                };
            }
            if let Some(check) = last_check {
                return (
                    HostOutcome::Failed,
                    Some(format!(
                        "check failed: {}",
                        check.detail.unwrap_or_default()
                    )),
                    check.output.map(|o| o.stderr),
                );
            }
            return (HostOutcome::Ok, None, None);
        };
        let command = match templates.render(run, &self.context) {
            Ok(c) => c,
            Err(e) => return (HostOutcome::Failed, Some(format!("`run`: {e}")), None),
        };
        let attempts = step.retries + 1;
        let mut last: Finish = (HostOutcome::Failed, None, None);
        for attempt in 1..=attempts {
            if attempt > 1 && self.shared.transport.is_real() {
                tokio::time::sleep(step.retry_delay.std()).await;
            }
            let timeout = step.timeout.map(crate::model::Duration::std);
            let job = Job {
                command: &command,
                timeout,
                tag: &self.tag,
            };
            let output = self.shared.transport.exec(self.host, job).await;
            let output = match output {
                Ok(o) => o,
                Err(e) => {
                    self.action(
                        Action::Run,
                        attempt,
                        &command,
                        false,
                        None,
                        Some(e.to_string()),
                        Duration::ZERO,
                    );
                    last = (HostOutcome::Failed, Some(e.to_string()), None);
                    continue;
                }
            };
            self.log(Action::Run, attempt, &command, &output);
            let ok = output.exit.success();
            let detail = (!ok).then(|| describe_exit(&output.exit));
            self.action(
                Action::Run,
                attempt,
                &command,
                ok,
                Some(&output.exit),
                detail.clone(),
                output.duration,
            );
            if !ok {
                let outcome = if output.exit == Exit::TimedOut {
                    HostOutcome::TimedOut
                } else {
                    HostOutcome::Failed
                };
                last = (
                    outcome,
                    detail.map(|d| format!("run failed: {d}")),
                    Some(output.stderr),
                );
                continue;
            }
            let Some(verify) = &step.verify else {
                return (HostOutcome::Ok, None, None);
            };
            match self.poll(verify).await {
                Ok(()) => return (HostOutcome::Ok, None, None),
                Err((detail, stderr)) => {
                    last = (
                        HostOutcome::Failed,
                        Some(format!("verify failed: {detail}")),
                        stderr.or(Some(output.stderr)),
                    );
                }
            }
        }
        last
    }

    /// Polls a probe until it passes or its attempts run out.
    async fn poll(&self, verify: &Probe) -> Result<(), (String, Option<Vec<u8>>)> {
        let mut last = None;
        for attempt in 1..=verify.attempts {
            if attempt > 1 && self.shared.transport.is_real() {
                tokio::time::sleep(verify.interval.std()).await;
            }
            let result = self.probe(verify, Action::Verify, attempt).await;
            if result.passed {
                return Ok(());
            }
            last = Some(result);
        }
        let last = last.map(|r| (r.detail.unwrap_or_default(), r.output.map(|o| o.stderr)));
        Err(last.unwrap_or_default())
    }

    async fn probe(&self, p: &Probe, action: Action, attempt: u32) -> ProbeResult {
        let shared = self.shared;
        let mut result = probe(
            p,
            self.host,
            &self.context,
            &shared.runbook.templates,
            shared.transport.as_ref(),
            &self.tag,
        )
        .await;
        if !shared.transport.is_real() {
            // A rehearsal shows the path that does the work: a check in
            // front of a `run` does not pass (so the run is shown), a pure
            // verification and every verify do.
            result.passed = action == Action::Verify || self.step().run.is_none();
            result.detail = Some("dry-run".into());
        }
        if let Some(output) = &result.output {
            self.log(action, attempt, &result.what, output);
        }
        let exit = result.output.as_ref().map(|o| o.exit.clone());
        result.what = shared.redactor.redact(&result.what);
        self.action(
            action,
            attempt,
            &result.what,
            result.passed,
            exit.as_ref(),
            result.detail.clone(),
            result.duration,
        );
        result
    }

    #[expect(clippy::too_many_arguments, reason = "one event, one call")]
    fn action(
        &self,
        action: Action,
        attempt: u32,
        command: &str,
        passed: bool,
        exit: Option<&Exit>,
        detail: Option<String>,
        duration: Duration,
    ) {
        let r = &self.shared.redactor;
        let _ = self.shared.events.send(EventKind::Action {
            step: self.step().id.clone(),
            host: self.host.name.clone(),
            action,
            attempt,
            command: r.redact(command),
            passed,
            exit_code: match exit {
                Some(Exit::Code(c)) => Some(*c),
                _ => None,
            },
            signal: match exit {
                Some(Exit::Signal(s)) => Some(s.clone()),
                _ => None,
            },
            timed_out: matches!(exit, Some(Exit::TimedOut)),
            duration_ms: millis(duration),
            detail: detail.map(|d| r.redact(&d)),
        });
    }

    /// Appends a command's output to `logs/STEP/HOST.stdout|stderr`.
    fn log(&self, action: Action, attempt: u32, command: &str, output: &Output) {
        let Some(dir) = &self.shared.logs else {
            return;
        };
        let dir = dir.join(file_name(&self.step().id));
        if crate::state::create_dirs(&dir).is_err() {
            return;
        }
        let r = &self.shared.redactor;
        let header = format!(
            "=== {} attempt {attempt}: {} ({}, {}ms)\n",
            action.label(),
            r.redact(command),
            describe_exit(&output.exit),
            output.duration.as_millis()
        );
        let streams = [
            ("stdout", &output.stdout, output.stdout_dropped),
            ("stderr", &output.stderr, output.stderr_dropped),
        ];
        for (ext, bytes, dropped) in streams {
            let path = dir.join(format!("{}.{ext}", file_name(&self.host.name)));
            if let Ok(mut file) = crate::state::append_file(&path) {
                let _ = file.write_all(header.as_bytes());
                if dropped > 0 {
                    let _ = writeln!(
                        file,
                        "[truncated: the first {dropped} bytes of {ext} were dropped; its last {} MiB follow]",
                        MAX_CAPTURE / (1024 * 1024)
                    );
                }
                let _ = file.write_all(r.redact_bytes(bytes).as_bytes());
                if !bytes.ends_with(b"\n") && !bytes.is_empty() {
                    let _ = file.write_all(b"\n");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn no_name_leaves_the_logs_folder() {
        for name in [
            "../../tmp/x",
            "..",
            ".",
            "a/b",
            "",
            "x\0y",
            "\u{1b}[31m",
            "%2F",
        ] {
            let f = file_name(name);
            assert!(
                !f.contains('/') && !f.starts_with('.') && !f.chars().any(char::is_control),
                "{name:?} -> {f:?}"
            );
        }
        assert_eq!(file_name("web-1.example.com"), "web-1.example.com");
        assert_eq!(file_name("2001:db8::1"), "2001:db8::1");
        assert_ne!(file_name("a/b"), file_name("a%2Fb"));
    }
}
