//! `RunEvent`: the executor's only output. Reporters and the journal
//! subscribe to it; nothing else learns what happened during a run.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Journal format version, written in `run-started`.
pub const JOURNAL_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunEvent {
    /// RFC 3339 wall-clock time.
    pub at: String,
    /// Milliseconds since the run started.
    pub elapsed_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl RunEvent {
    /// `kind` as it happened `elapsed` after its run started at `start`;
    /// an event written outside the run (a decision, a hand-off) is
    /// stamped now, with no elapsed time.
    #[must_use]
    pub fn stamped(kind: EventKind, start: std::time::SystemTime, elapsed: Duration) -> Self {
        Self {
            at: humantime::format_rfc3339_millis(start + elapsed).to_string(),
            elapsed_ms: millis(elapsed),
            kind,
        }
    }
}

/// A duration in whole milliseconds, as events and reports count them.
#[must_use]
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostOutcome {
    Ok,
    AlreadyOk,
    Skipped,
    Failed,
    TimedOut,
    Blocked,
    Confirmed,
    Marked,
}

impl HostOutcome {
    /// Whether dependents may proceed.
    #[must_use]
    pub const fn is_success(self) -> bool {
        matches!(
            self,
            Self::Ok | Self::AlreadyOk | Self::Skipped | Self::Confirmed | Self::Marked
        )
    }

    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::AlreadyOk => "already-ok",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::TimedOut => "timed-out",
            Self::Blocked => "blocked",
            Self::Confirmed => "confirmed",
            Self::Marked => "marked",
        }
    }
}

/// Step outcomes use the same words as host outcomes.
pub type StepOutcome = HostOutcome;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOutcome {
    Succeeded,
    Failed,
    Paused,
    Interrupted,
}

impl RunOutcome {
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Paused => "paused",
            Self::Interrupted => "interrupted",
        }
    }
}

/// Why a step waits for an operator. The journal keeps the sentence
/// (`run-paused`'s `reason`); readers tell a confirmation from a failure by
/// the step's state, never by the words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseReason {
    /// Manual or `confirm: true`, and nobody can answer here.
    NeedsConfirmation,
    /// The operator at the prompt did not confirm.
    NotConfirmed,
    /// The step failed under `on_failure: pause`.
    StepFailed,
}

impl PauseReason {
    #[must_use]
    pub const fn needs_confirmation(self) -> bool {
        !matches!(self, Self::StepFailed)
    }

    /// The sentence journaled and shown for step `step`.
    #[must_use]
    pub fn sentence(self, step: &str) -> String {
        match self {
            Self::NeedsConfirmation => format!("step `{step}` needs an operator's confirmation"),
            Self::NotConfirmed => format!("the operator did not confirm step `{step}`"),
            Self::StepFailed => "the step failed and its policy is `pause`".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MarkStatus {
    Done,
    Skipped,
}

impl MarkStatus {
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    When,
    Check,
    Run,
    Verify,
}

impl Action {
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::When => "when",
            Self::Check => "check",
            Self::Run => "run",
            Self::Verify => "verify",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    RunStarted {
        version: u32,
        run_id: String,
        runbook: String,
        runbook_sha256: String,
        inventory_sha256: Option<String>,
        operator: String,
        dry_run: bool,
        steps: Vec<String>,
        /// Where the runbook and inventory were read from, so that `resume`
        /// picks up an edited runbook.
        #[serde(default)]
        runbook_path: String,
        #[serde(default)]
        inventory_path: Option<String>,
        /// `--var` overrides, applied again by `resume`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        vars: BTreeMap<String, serde_json::Value>,
    },
    /// `resume` continued the run, possibly with an edited runbook.
    RunResumed {
        operator: String,
        runbook_sha256: String,
        inventory_sha256: Option<String>,
        /// Steps of the journal that the runbook no longer has.
        removed: Vec<String>,
        /// Steps not finished before, now run with their current definition.
        outstanding: Vec<String>,
        /// `--var` overrides given to this `resume`; they win over earlier ones.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        vars: BTreeMap<String, serde_json::Value>,
    },
    /// An operator recorded a step as fixed or skipped by hand.
    Marked {
        step: String,
        status: MarkStatus,
        operator: String,
        note: String,
    },
    StepStarted {
        step: String,
        hosts: Vec<String>,
    },
    HostStarted {
        step: String,
        host: String,
        /// Carried (as `runbook-TAG`) by the command line of every command
        /// run for this step on this host, so that `resume` can ask the
        /// host whether one still runs after the controller died.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    /// A command, or a probe attempt, finished on a host.
    Action {
        step: String,
        host: String,
        action: Action,
        attempt: u32,
        /// The rendered command or probe, secrets masked.
        command: String,
        passed: bool,
        exit_code: Option<i32>,
        signal: Option<String>,
        timed_out: bool,
        duration_ms: u64,
        detail: Option<String>,
    },
    HostFinished {
        step: String,
        host: String,
        outcome: HostOutcome,
        duration_ms: u64,
        message: Option<String>,
        stderr_tail: Vec<String>,
    },
    StepFinished {
        step: String,
        outcome: StepOutcome,
        duration_ms: u64,
    },
    /// A step not run because a step it depends on failed.
    StepBlocked {
        step: String,
        by: String,
    },
    Confirmation {
        step: String,
        operator: String,
        note: Option<String>,
        automatic: bool,
    },
    RunPaused {
        step: String,
        reason: String,
    },
    RunFinished {
        outcome: RunOutcome,
    },
    /// `runbook handoff`: an operator handed the run over to the next
    /// shift; the next hand-off summarises what happened since.
    HandedOff {
        operator: String,
    },
    /// A webhook (`notify`, numbered from 1, never its URL) took a
    /// notification.
    NotificationSent {
        notification: crate::model::NotifyEvent,
        webhook: usize,
        format: crate::model::NotifyFormat,
        /// The phase, step or service it is about.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        about: Option<String>,
        attempts: u32,
    },
    /// A notification given up on: its retries ran out, or the run ended.
    NotificationFailed {
        notification: crate::model::NotifyEvent,
        webhook: usize,
        format: crate::model::NotifyFormat,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        about: Option<String>,
        attempts: u32,
        reason: String,
    },
}

impl EventKind {
    /// Whether it tells about a notification rather than the recovery: such
    /// events may follow `run-finished`, and take no part in the run's times.
    #[must_use]
    pub const fn is_notification(&self) -> bool {
        matches!(
            self,
            Self::NotificationSent { .. } | Self::NotificationFailed { .. }
        )
    }

    /// Whether it is written beside the run rather than by it (a
    /// notification, a hand-off): it takes no part in the run's times.
    #[must_use]
    pub const fn takes_no_run_time(&self) -> bool {
        self.is_notification() || matches!(self, Self::HandedOff { .. })
    }
}
