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
use super::probe::{ProbeJob, ProbeResult, describe_exit};
use super::transport::{Become, Exit, Job, MAX_CAPTURE, Output, Transport, new_tag};
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
    r#become: Option<Become>,
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
        r#become: Become::of(host, &shared.runbook.steps[step], &shared.secrets),
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

pub use crate::events::millis;

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
            return self.without_run(last_check).await;
        };
        let command = match templates.render(run, &self.context) {
            Ok(c) => c,
            Err(e) => return (HostOutcome::Failed, Some(format!("`run`: {e}")), None),
        };
        let mut last: Finish = (HostOutcome::Failed, None, None);
        for attempt in 1..=step.retries + 1 {
            if attempt > 1 {
                tokio::time::sleep(step.retry_delay.std()).await;
            }
            match self.attempt(&command, attempt).await {
                Ok(()) => return (HostOutcome::Ok, None, None),
                Err(failed) => last = failed,
            }
        }
        last
    }

    /// A step with nothing to run: its `verify` decides, or else the check
    /// that did not pass.
    async fn without_run(&self, last_check: Option<ProbeResult>) -> Finish {
        if let Some(verify) = &self.step().verify {
            return match self.poll(verify).await {
                Ok(()) => (HostOutcome::Ok, None, None),
                Err(r) => (
                    HostOutcome::Failed,
                    Some(format!("verify failed: {}", r.0)),
                    r.1,
                ),
            };
        }
        match last_check {
            Some(check) => (
                HostOutcome::Failed,
                Some(format!(
                    "check failed: {}",
                    check.detail.unwrap_or_default()
                )),
                check.output.map(|o| o.stderr),
            ),
            None => (HostOutcome::Ok, None, None),
        }
    }

    /// One attempt of `run`, then its `verify`; how it failed otherwise.
    async fn attempt(&self, command: &str, attempt: u32) -> Result<(), Finish> {
        let step = self.step();
        let job = Job {
            command,
            timeout: step.timeout.map(crate::model::Duration::std),
            tag: &self.tag,
            r#become: self.r#become.as_ref(),
        };
        let output = match self.shared.transport.exec(self.host, job).await {
            Ok(o) => o,
            Err(e) => {
                self.action(
                    Action::Run,
                    attempt,
                    command,
                    false,
                    None,
                    Some(e.to_string()),
                    Duration::ZERO,
                );
                return Err((HostOutcome::Failed, Some(e.to_string()), None));
            }
        };
        self.log(Action::Run, attempt, command, &output).await;
        let ok = output.exit.success();
        let detail = (!ok).then(|| describe_exit(&output.exit));
        self.action(
            Action::Run,
            attempt,
            command,
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
            return Err((
                outcome,
                detail.map(|d| format!("run failed: {d}")),
                Some(output.stderr),
            ));
        }
        let Some(verify) = &step.verify else {
            return Ok(());
        };
        self.poll(verify).await.map_err(|(detail, stderr)| {
            (
                HostOutcome::Failed,
                Some(format!("verify failed: {detail}")),
                stderr.or(Some(output.stderr)),
            )
        })
    }

    /// Polls a probe until it passes or its attempts run out.
    async fn poll(&self, verify: &Probe) -> Result<(), (String, Option<Vec<u8>>)> {
        let mut last = None;
        for attempt in 1..=verify.attempts {
            if attempt > 1 {
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
        let job = ProbeJob {
            probe: p,
            context: &self.context,
            templates: &shared.runbook.templates,
            tag: &self.tag,
            before_run: action == Action::Check && self.step().run.is_some(),
            r#become: self.r#become.as_ref(),
        };
        let mut result = shared.transport.probe(self.host, job).await;
        if let Some(output) = &result.output {
            self.log(action, attempt, &result.what, output).await;
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

    /// Appends a command's output to `logs/STEP/HOST.stdout|stderr`, on a
    /// blocking thread: a slow disk must not hold up the other workers'
    /// tasks. Awaited, so that a log is written before its action is told.
    async fn log(&self, action: Action, attempt: u32, command: &str, output: &Output) {
        let Some(dir) = &self.shared.logs else {
            return;
        };
        let dir = dir.join(file_name(&self.step().id));
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
        let files: Vec<(PathBuf, Vec<u8>)> = streams
            .into_iter()
            .map(|(ext, bytes, dropped)| {
                let mut text = header.clone().into_bytes();
                if dropped > 0 {
                    let _ = writeln!(
                        text,
                        "[truncated: the first {dropped} bytes of {ext} were dropped; its last {} MiB follow]",
                        MAX_CAPTURE / (1024 * 1024)
                    );
                }
                text.extend_from_slice(r.redact_bytes(bytes).as_bytes());
                if !bytes.ends_with(b"\n") && !bytes.is_empty() {
                    text.push(b'\n');
                }
                (dir.join(format!("{}.{ext}", file_name(&self.host.name))), text)
            })
            .collect();
        let _ = tokio::task::spawn_blocking(move || {
            if crate::state::create_dirs(&dir).is_err() {
                return;
            }
            for (path, text) in files {
                if let Ok(mut file) = crate::state::append_file(&path) {
                    let _ = file.write_all(&text);
                }
            }
        })
        .await;
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
