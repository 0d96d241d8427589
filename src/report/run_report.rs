//! A run as people read it afterwards, built from its journal alone: per
//! phase against its RTO, per step and host, confirmations, the timeline.
//! Every report format renders this one structure.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use crate::events::{EventKind, HostOutcome, MarkStatus, RunEvent};
use crate::model::Runbook;
use crate::resume::final_outcome;

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
    pub duration_secs: f64,
    /// `succeeded`, `failed`, `paused`, `interrupted` or `unfinished`.
    pub outcome: String,
    pub phases: Vec<PhaseReport>,
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
            .filter(|(_, h)| matches!(h.outcome.as_str(), "failed" | "timed-out"))
            .collect()
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
    /// A step outcome, or `not-run` / `waiting`.
    pub outcome: String,
    pub start_secs: Option<f64>,
    pub end_secs: Option<f64>,
    pub duration_secs: Option<f64>,
    pub blocked_by: Option<String>,
    pub hosts: Vec<HostReport>,
}

#[derive(Debug, Serialize)]
pub struct HostReport {
    pub host: String,
    pub outcome: String,
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
    pub decision: String,
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TimelineEntry {
    pub at: String,
    pub offset_secs: f64,
    pub text: String,
}

fn parse_at(at: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(at.trim_end_matches('Z')).ok()
}

#[must_use]
pub fn build(run_id: &str, runbook: &Runbook, events: &[RunEvent]) -> RunReport {
    let start_time = events
        .first()
        .and_then(|e| parse_at(&e.at))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let offset = |at: &str| {
        parse_at(at)
            .and_then(|t| t.duration_since(start_time).ok())
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let mut operators: Vec<String> = Vec::new();
    let mut steps: BTreeMap<&str, StepReport> = BTreeMap::new();
    let mut hosts: BTreeMap<(&str, &str), HostReport> = BTreeMap::new();
    let mut confirmations = Vec::new();
    let mut marks = Vec::new();
    let mut timeline = Vec::new();
    let mut add_operator = |o: &str| {
        if !operators.iter().any(|x| x == o) {
            operators.push(o.to_string());
        }
    };
    for step in &runbook.steps {
        steps.insert(
            &step.id,
            StepReport {
                id: step.id.clone(),
                title: step.title.clone(),
                phase: step.phase.map(|p| runbook.phases[p].id.clone()),
                outcome: "not-run".into(),
                start_secs: None,
                end_secs: None,
                duration_secs: None,
                blocked_by: None,
                hosts: Vec::new(),
            },
        );
    }
    for e in events {
        let t = offset(&e.at);
        let mut note = |text: String| {
            timeline.push(TimelineEntry {
                at: e.at.clone(),
                offset_secs: t,
                text,
            });
        };
        match &e.kind {
            EventKind::RunStarted {
                operator, runbook, ..
            } => {
                add_operator(operator);
                note(format!("run of `{runbook}` started by {operator}"));
            }
            EventKind::RunResumed {
                operator, removed, ..
            } => {
                add_operator(operator);
                let removed = if removed.is_empty() {
                    String::new()
                } else {
                    format!(" (removed: {})", removed.join(", "))
                };
                note(format!("resumed by {operator}{removed}"));
            }
            EventKind::StepStarted { step, .. } => {
                if let Some(s) = steps.get_mut(step.as_str()) {
                    s.start_secs = Some(t);
                    s.end_secs = None;
                    s.outcome = "running".into();
                    s.blocked_by = None;
                }
                note(format!("`{step}` started"));
            }
            EventKind::Action {
                step,
                host,
                attempt,
                exit_code,
                action,
                ..
            } => {
                let h = hosts
                    .entry((step.as_str(), host.as_str()))
                    .or_insert_with(|| empty_host(host));
                if *action == crate::events::Action::Run {
                    h.attempts = h.attempts.max(*attempt);
                    h.exit_code = *exit_code;
                }
            }
            EventKind::HostFinished {
                step,
                host,
                outcome,
                duration_ms,
                message,
                stderr_tail,
            } => {
                let h = hosts
                    .entry((step.as_str(), host.as_str()))
                    .or_insert_with(|| empty_host(host));
                h.outcome = outcome.label().into();
                h.duration_secs = *duration_ms as f64 / 1000.0;
                h.message.clone_from(message);
                h.stderr_tail.clone_from(stderr_tail);
            }
            EventKind::StepFinished { step, outcome, .. } => {
                if let Some(s) = steps.get_mut(step.as_str()) {
                    s.outcome = outcome.label().into();
                    s.end_secs = Some(t);
                    s.duration_secs = s.start_secs.map(|st| t - st);
                }
                note(format!("`{step}`: {}", outcome.label()));
            }
            EventKind::StepBlocked { step, by } => {
                if let Some(s) = steps.get_mut(step.as_str()) {
                    s.outcome = HostOutcome::Blocked.label().into();
                    s.blocked_by = Some(by.clone());
                }
            }
            EventKind::Confirmation {
                step,
                operator,
                note: n,
                automatic,
            } => {
                confirmations.push(Decision {
                    step: step.clone(),
                    at: e.at.clone(),
                    operator: operator.clone(),
                    decision: if *automatic {
                        "confirmed (--yes)".into()
                    } else {
                        "confirmed".into()
                    },
                    note: n.clone().filter(|_| !automatic),
                });
                if let Some(s) = steps.get_mut(step.as_str())
                    && s.outcome == "waiting"
                {
                    s.outcome = "confirmed".into();
                    s.end_secs = Some(t);
                }
                note(format!("`{step}` confirmed by {operator}"));
            }
            EventKind::Marked {
                step,
                status,
                operator,
                note: n,
            } => {
                let status = match status {
                    MarkStatus::Done => "done",
                    MarkStatus::Skipped => "skipped",
                };
                marks.push(Decision {
                    step: step.clone(),
                    at: e.at.clone(),
                    operator: operator.clone(),
                    decision: status.into(),
                    note: Some(n.clone()),
                });
                if let Some(s) = steps.get_mut(step.as_str()) {
                    s.outcome = "marked".into();
                    s.end_secs = Some(t);
                }
                note(format!("`{step}` marked {status} by {operator}: {n}"));
            }
            EventKind::RunPaused { step, reason } => {
                if let Some(s) = steps.get_mut(step.as_str())
                    && s.outcome == "running"
                {
                    s.outcome = "waiting".into();
                }
                note(format!("paused at `{step}`: {reason}"));
            }
            EventKind::HostStarted { step, host, .. } => {
                hosts
                    .entry((step.as_str(), host.as_str()))
                    .or_insert_with(|| empty_host(host));
            }
            EventKind::RunFinished { outcome } => {
                note(format!("run {}", format!("{outcome:?}").to_lowercase()))
            }
        }
    }
    let mut steps: Vec<StepReport> = runbook
        .steps
        .iter()
        .filter_map(|s| steps.remove(s.id.as_str()))
        .collect();
    for s in &mut steps {
        s.hosts = hosts
            .range((s.id.as_str(), "")..)
            .take_while(|((step, _), _)| *step == s.id)
            .map(|(_, h)| HostReport {
                host: h.host.clone(),
                outcome: h.outcome.clone(),
                attempts: h.attempts,
                duration_secs: h.duration_secs,
                exit_code: h.exit_code,
                message: h.message.clone(),
                stderr_tail: h.stderr_tail.clone(),
            })
            .collect();
    }
    let phases = runbook
        .phases
        .iter()
        .map(|p| {
            let mine: Vec<&StepReport> = steps
                .iter()
                .filter(|s| s.phase.as_deref() == Some(&p.id))
                .collect();
            let done = !mine.is_empty()
                && mine.iter().all(|s| {
                    matches!(
                        s.outcome.as_str(),
                        "ok" | "already-ok" | "skipped" | "confirmed" | "marked"
                    )
                });
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
        })
        .collect();
    let end = events.last().map(|e| e.at.clone()).unwrap_or_default();
    let duration_secs = events.last().map_or(0.0, |e| offset(&e.at));
    RunReport {
        format_version: 1,
        run_id: run_id.to_string(),
        runbook: runbook.name.clone(),
        title: runbook.title.clone(),
        description: runbook.description.clone(),
        operators,
        start: events.first().map(|e| e.at.clone()).unwrap_or_default(),
        end,
        duration_secs,
        outcome: final_outcome(events)
            .map_or_else(|| "unfinished".into(), |o| format!("{o:?}").to_lowercase()),
        phases,
        steps,
        confirmations,
        marks,
        timeline,
    }
}

fn empty_host(host: &str) -> HostReport {
    HostReport {
        host: host.to_string(),
        outcome: "running".into(),
        attempts: 0,
        duration_secs: 0.0,
        exit_code: None,
        message: None,
        stderr_tail: Vec::new(),
    }
}

/// `1h02m03s`-style durations for people.
#[must_use]
pub fn human(secs: f64) -> String {
    if secs < 10.0 {
        return format!("{secs:.1}s");
    }
    let total = secs.round() as u64;
    crate::model::Duration::from_secs(total).to_string()
}
