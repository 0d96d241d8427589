//! A run as people read it afterwards, built from its journal alone: per
//! phase against its RTO, per step and host, confirmations, the timeline.
//! Every report format renders this one structure.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::events::{EventKind, RunEvent};
use crate::journal::{DecisionKind, RunStatus, RunView, Status};
use crate::model::{Runbook, Step};

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub format_version: u32,
    pub run_id: String,
    pub runbook: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub operators: Vec<String>,
    pub start: String,
    pub end: String,
    /// Active time: the run's duration, summed over its resumptions.
    pub duration_secs: f64,
    /// From start to end, pauses between resumptions included.
    pub wall_clock_secs: f64,
    /// The run stopped and went on again: its wall-clock span says
    /// something its active time does not.
    #[serde(skip)]
    pub resumed: bool,
    /// `succeeded`, `failed`, `paused`, `interrupted` or `unfinished`.
    pub outcome: RunStatus,
    /// Steps an operator marked `skipped` instead of running them.
    pub skipped_by_hand: usize,
    pub phases: Vec<PhaseReport>,
    /// Each service: available, being restored (with a forecast) or not
    /// started, as of the journal's last event.
    pub services: Vec<super::services::ServiceReport>,
    pub steps: Vec<StepReport>,
    pub confirmations: Vec<Decision>,
    pub marks: Vec<Decision>,
    pub timeline: Vec<TimelineEntry>,
}

impl RunReport {
    /// Every failed or timed-out (step, host), in step order.
    #[must_use]
    pub fn failures(&self) -> Vec<(&StepReport, &HostReport)> {
        self.steps
            .iter()
            .flat_map(|s| s.hosts.iter().map(move |h| (s, h)))
            .filter(|(_, h)| h.outcome.is_failure())
            .collect()
    }

    /// The outcome with its caveat: `succeeded, 1 step skipped by hand`.
    #[must_use]
    pub fn verdict(&self) -> String {
        match self.skipped_by_hand {
            0 => self.outcome.label().to_string(),
            n => format!(
                "{}, {} skipped by hand",
                self.outcome.label(),
                crate::diagnostic::count(n, "step")
            ),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PhaseReport {
    pub id: String,
    pub title: Option<String>,
    /// Seconds from the start of the run.
    pub start_secs: Option<f64>,
    pub end_secs: Option<f64>,
    pub duration_secs: Option<f64>,
    pub rto_secs: Option<f64>,
    /// Whether the phase was done within its RTO; `None` without an RTO or
    /// when it is not done.
    pub rto_met: Option<bool>,
    pub done: bool,
}

#[derive(Debug, Serialize)]
pub struct StepReport {
    pub id: String,
    pub title: Option<String>,
    pub phase: Option<String>,
    /// A step outcome, or `not-run` / `running` / `waiting` / `interrupted`.
    pub outcome: Status,
    pub start_secs: Option<f64>,
    pub end_secs: Option<f64>,
    pub duration_secs: Option<f64>,
    pub blocked_by: Option<String>,
    /// SHA-256 of the runbook whose definition of the step ran (or was
    /// decided); a resumption may have run an edited runbook.
    pub runbook_sha256: Option<String>,
    /// It finished under a definition that the runbook has changed since.
    pub definition_changed: bool,
    /// A manual step's instructions (secrets not filled in).
    pub instructions: Option<String>,
    pub hosts: Vec<HostReport>,
}

#[derive(Debug, Serialize)]
pub struct HostReport {
    pub host: String,
    pub outcome: Status,
    pub attempts: u32,
    pub duration_secs: f64,
    pub exit_code: Option<i32>,
    pub message: Option<String>,
    pub stderr_tail: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Decision {
    pub step: String,
    pub at: String,
    pub operator: String,
    /// `confirmed`, `confirmed (--yes)`, `done` or `skipped`.
    pub decision: DecisionKind,
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TimelineEntry {
    pub at: String,
    pub offset_secs: f64,
    pub text: String,
}

/// A runbook the run executed, by its hash.
pub struct Executed {
    pub sha256: String,
    pub runbook: Runbook,
    /// Its steps as written, to tell an edited step.
    pub definitions: BTreeMap<String, serde_json::Value>,
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// The latest runbook the run executed.
#[must_use]
pub fn latest<'a>(view: &RunView, executed: &'a [Executed]) -> Option<&'a Executed> {
    view.latest_version
        .and_then(|i| executed.iter().find(|e| e.sha256 == view.versions[i]))
        .or(executed.last())
}

/// Steps as they ran: the latest runbook's steps, each with the definition
/// it ran under, and the steps of earlier versions that ran and were
/// removed since, after the step they followed. Steps that never ran in a
/// version that no longer has them are not part of the run.
fn steps_as_run<'a>(
    view: &RunView,
    executed: &'a [Executed],
) -> Vec<(&'a Step, &'a Runbook, bool)> {
    let Some(last) = latest(view, executed) else {
        return Vec::new();
    };
    let definition = |step: &'a Step, owner: &'a Executed| match ran_under(view, executed, &step.id)
    {
        Some((s, e)) => {
            let changed =
                crate::journal::versions::changed(&e.definitions, &last.definitions, &step.id);
            (s, &e.runbook, changed)
        }
        None => (step, &owner.runbook, false),
    };
    let mut out: Vec<(&Step, &Runbook, bool)> = last
        .runbook
        .steps
        .iter()
        .map(|s| definition(s, last))
        .collect();
    for e in executed.iter().rev() {
        let mut after: Option<usize> = None;
        for step in &e.runbook.steps {
            if let Some(i) = out.iter().position(|(s, _, _)| s.id == step.id) {
                after = Some(i);
                continue;
            }
            if view
                .step(&step.id)
                .is_none_or(|s| s.status == Status::NotRun)
            {
                continue;
            }
            let at = after.map_or(0, |i| i + 1);
            out.insert(at, definition(step, e));
            after = Some(at);
        }
    }
    out
}

/// The definition of step `id` that ran, and the runbook it belongs to.
fn ran_under<'a>(
    view: &RunView,
    executed: &'a [Executed],
    id: &str,
) -> Option<(&'a Step, &'a Executed)> {
    let e = view
        .version_of_step(id)
        .and_then(|sha| executed.iter().find(|e| e.sha256 == sha))?;
    e.runbook.steps.iter().find(|s| s.id == id).map(|s| (s, e))
}

/// `state_dir` holds the rehearsals whose timings forecast the services.
#[must_use]
pub fn build(
    run_id: &str,
    executed: &[Executed],
    view: &RunView,
    events: &[RunEvent],
    state_dir: &std::path::Path,
) -> RunReport {
    let services = latest(view, executed).map_or_else(Vec::new, |e| {
        super::services::of_run(&e.runbook, view, state_dir)
    });
    with_services(run_id, executed, view, events, services)
}

/// The report with `services` as given (the board forecasts them as of
/// now, from durations it read once).
#[must_use]
pub fn with_services(
    run_id: &str,
    executed: &[Executed],
    view: &RunView,
    events: &[RunEvent],
    services: Vec<super::services::ServiceReport>,
) -> RunReport {
    let steps: Vec<StepReport> = steps_as_run(view, executed)
        .into_iter()
        .map(|(step, runbook, changed)| step_report(view, step, runbook, changed))
        .collect();
    let runbook = latest(view, executed).map(|e| &e.runbook);
    let phases = runbook
        .map(|r| r.phases.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|p| phase_report(p, &steps))
        .collect();
    RunReport {
        format_version: 1,
        run_id: run_id.to_string(),
        runbook: runbook.map_or_else(|| view.runbook.clone(), |r| r.name.clone()),
        title: runbook.and_then(|r| r.title.clone()),
        description: runbook.and_then(|r| r.description.clone()),
        operators: view.operators.clone(),
        start: view.start.clone(),
        end: view.end.clone(),
        duration_secs: secs(view.active_ms()),
        wall_clock_secs: secs(view.wall_ms),
        resumed: view.was_resumed(),
        outcome: view.status,
        skipped_by_hand: view.skipped_by_hand(),
        phases,
        services,
        steps,
        confirmations: decisions(view, true),
        marks: decisions(view, false),
        timeline: timeline(events),
    }
}

/// A step as the fold saw it, under the definition that ran.
fn step_report(view: &RunView, step: &Step, runbook: &Runbook, changed: bool) -> StepReport {
    let seen = view.step(&step.id);
    StepReport {
        id: step.id.clone(),
        title: step.title.clone(),
        phase: step.phase.map(|p| runbook.phases[p].id.clone()),
        outcome: seen.map_or(Status::NotRun, |s| s.status),
        start_secs: seen.and_then(|s| s.start_ms).map(secs),
        end_secs: seen.and_then(|s| s.end_ms).map(secs),
        duration_secs: seen.and_then(|s| s.duration_ms).map(secs),
        blocked_by: seen.and_then(|s| s.blocked_by.clone()),
        runbook_sha256: view.version_of_step(&step.id).map(str::to_string),
        definition_changed: changed,
        instructions: super::lines::instructions(runbook, step, None),
        hosts: seen.map(host_reports).unwrap_or_default(),
    }
}

/// A step's hosts, by name.
fn host_reports(step: &crate::journal::StepView) -> Vec<HostReport> {
    let mut hosts: Vec<HostReport> = step
        .hosts
        .iter()
        .map(|h| HostReport {
            host: h.host.clone(),
            outcome: h.status,
            attempts: h.attempts,
            duration_secs: secs(h.duration_ms),
            exit_code: h.exit_code,
            message: h.message.clone(),
            stderr_tail: h.stderr_tail.clone(),
        })
        .collect();
    hosts.sort_by(|a, b| a.host.cmp(&b.host));
    hosts
}

/// A phase against its RTO: it ends when its last step does, once all of
/// them succeeded.
fn phase_report(p: &crate::model::Phase, steps: &[StepReport]) -> PhaseReport {
    let mine: Vec<&StepReport> = steps
        .iter()
        .filter(|s| s.phase.as_deref() == Some(&p.id))
        .collect();
    let done = !mine.is_empty() && mine.iter().all(|s| s.outcome.is_success());
    let start_secs = mine.iter().filter_map(|s| s.start_secs).reduce(f64::min);
    let end_secs = if done {
        mine.iter().filter_map(|s| s.end_secs).reduce(f64::max)
    } else {
        None
    };
    let rto_secs = p.rto.map(|r| r.std().as_secs_f64());
    PhaseReport {
        id: p.id.clone(),
        title: p.title.clone(),
        start_secs,
        end_secs,
        duration_secs: start_secs.zip(end_secs).map(|(a, b)| b - a),
        rto_secs,
        rto_met: rto_secs.zip(end_secs).map(|(rto, end)| end <= rto),
        done,
    }
}

/// Confirmations, or else marks, in the order they were made.
fn decisions(view: &RunView, confirmations: bool) -> Vec<Decision> {
    view.decisions
        .iter()
        .filter(|d| matches!(d.kind, DecisionKind::Confirmed { .. }) == confirmations)
        .map(|d| Decision {
            step: d.step.clone(),
            at: d.at.clone(),
            operator: d.operator.clone(),
            decision: d.kind,
            note: d.note.clone(),
        })
        .collect()
}

/// One line per event people care about, at its offset from the start.
fn timeline(events: &[RunEvent]) -> Vec<TimelineEntry> {
    let parse = |t: &str| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok();
    let start = events.first().and_then(|e| parse(&e.at));
    let offset = |at: &str| {
        start
            .zip(parse(at))
            .and_then(|(s, t)| t.duration_since(s).ok())
            .map_or(0.0, |d| d.as_secs_f64())
    };
    events
        .iter()
        .filter_map(|e| {
            let text = match &e.kind {
                EventKind::RunStarted {
                    operator, runbook, ..
                } => format!("run of `{runbook}` started by {operator}"),
                EventKind::RunResumed {
                    operator, removed, ..
                } => {
                    let removed = if removed.is_empty() {
                        String::new()
                    } else {
                        format!(" (removed: {})", removed.join(", "))
                    };
                    format!("resumed by {operator}{removed}")
                }
                EventKind::StepStarted { step, .. } => format!("`{step}` started"),
                EventKind::StepFinished { step, outcome, .. } => {
                    format!("`{step}`: {}", outcome.label())
                }
                EventKind::Confirmation { step, operator, .. } => {
                    format!("`{step}` confirmed by {operator}")
                }
                EventKind::Marked {
                    step,
                    status,
                    operator,
                    note,
                } => format!("`{step}` marked {} by {operator}: {note}", status.label()),
                EventKind::RunPaused { step, reason } => format!("paused at `{step}`: {reason}"),
                EventKind::RunFinished { outcome } => format!("run {}", outcome.label()),
                EventKind::HandedOff { operator } => format!("handed off by {operator}"),
                EventKind::NotificationSent {
                    notification,
                    webhook,
                    ..
                } => format!("notified `{}` to webhook {webhook}", notification.label()),
                EventKind::NotificationFailed {
                    notification,
                    webhook,
                    reason,
                    ..
                } => format!(
                    "notification `{}` to webhook {webhook} failed: {reason}",
                    notification.label()
                ),
                _ => return None,
            };
            Some(TimelineEntry {
                at: e.at.clone(),
                offset_secs: offset(&e.at),
                text,
            })
        })
        .collect()
}

/// Seconds as people read them, by the one duration formatter.
#[must_use]
pub fn human(secs: f64) -> String {
    super::lines::seconds((secs.max(0.0) * 1000.0).round() as u64)
}
