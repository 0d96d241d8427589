//! The end-of-run summary, by phase and step: outcome, duration, and the
//! failed hosts with their last stderr lines. Rendered from events only.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use super::Reporter;
use super::lines::seconds;
use crate::events::{EventKind, HostOutcome, RunEvent};
use crate::model::Runbook;

/// Keeps every event, for the summary (and reports) after the run.
#[derive(Clone, Default)]
pub struct Collect(pub Arc<Mutex<Vec<RunEvent>>>);

impl Reporter for Collect {
    fn event(&mut self, event: &RunEvent) {
        if let Ok(mut events) = self.0.lock() {
            events.push(event.clone());
        }
    }
    fn note(&mut self, _: &str) {}
}

#[derive(Default)]
struct Row {
    outcome: Option<HostOutcome>,
    duration_ms: u64,
    failures: Vec<(String, HostOutcome, String, Vec<String>)>,
    blocked_by: Option<String>,
    paused: bool,
}

#[must_use]
pub fn render(runbook: &Runbook, events: &[RunEvent]) -> String {
    let mut rows: HashMap<&str, Row> = HashMap::new();
    let mut total_ms = 0;
    let mut verdict = String::from("unfinished");
    let mut segments_ms = 0;
    for e in events {
        if matches!(e.kind, EventKind::RunResumed { .. }) {
            segments_ms += total_ms;
        }
        total_ms = e.elapsed_ms;
        match &e.kind {
            EventKind::HostFinished {
                step,
                host,
                outcome,
                message,
                stderr_tail,
                ..
            } if !outcome.is_success() => rows.entry(step).or_default().failures.push((
                host.clone(),
                *outcome,
                message.clone().unwrap_or_default(),
                stderr_tail.clone(),
            )),
            EventKind::StepFinished {
                step,
                outcome,
                duration_ms,
            } => {
                let row = rows.entry(step).or_default();
                row.outcome = Some(*outcome);
                row.duration_ms = *duration_ms;
            }
            EventKind::StepBlocked { step, by } => {
                let row = rows.entry(step).or_default();
                row.outcome = Some(HostOutcome::Blocked);
                row.blocked_by = Some(by.clone());
            }
            EventKind::RunPaused { step, .. } => rows.entry(step).or_default().paused = true,
            EventKind::Confirmation { step, .. } => {
                let row = rows.entry(step).or_default();
                row.paused = false;
                row.outcome.get_or_insert(HostOutcome::Confirmed);
            }
            EventKind::Marked { step, .. } => {
                let row = rows.entry(step).or_default();
                row.outcome = Some(HostOutcome::Marked);
                row.failures.clear();
            }
            EventKind::StepStarted { step, .. } => {
                let row = rows.entry(step).or_default();
                row.failures.clear();
                row.paused = false;
                row.blocked_by = None;
                if row.outcome.is_some_and(|o| !o.is_success()) {
                    row.outcome = None;
                }
            }
            EventKind::RunFinished { outcome } => {
                verdict = format!("{outcome:?}").to_lowercase();
            }
            _ => {}
        }
    }
    let mut out = format!(
        "\nsummary: {verdict} after {}\n",
        seconds(segments_ms + total_ms)
    );
    let width = runbook.steps.iter().map(|s| s.id.len()).max().unwrap_or(0);
    for phase in runbook.phase_slots() {
        let steps: Vec<_> = runbook.steps.iter().filter(|s| s.phase == phase).collect();
        if steps.is_empty() {
            continue;
        }
        match phase {
            Some(p) => {
                let ph = &runbook.phases[p];
                let rto = ph.rto.map(|r| format!(" (rto {r})")).unwrap_or_default();
                let _ = writeln!(out, "  phase {}{rto}", ph.id);
            }
            None => {
                let _ = writeln!(out, "  no phase");
            }
        }
        for step in steps {
            let row = rows.get(step.id.as_str());
            let label = match row {
                Some(Row {
                    outcome: Some(o), ..
                }) => o.label(),
                Some(Row { paused: true, .. }) => "waiting",
                _ => "not run",
            };
            let duration = row
                .filter(|r| r.outcome.is_some_and(|o| o != HostOutcome::Blocked))
                .map(|r| seconds(r.duration_ms))
                .unwrap_or_default();
            let by = row
                .and_then(|r| r.blocked_by.as_ref())
                .map(|b| format!("(`{b}` failed)"))
                .unwrap_or_default();
            let _ = writeln!(out, "    {label:<11} {:width$}  {duration}{by}", step.id);
            for (host, outcome, message, tail) in
                row.map(|r| r.failures.as_slice()).unwrap_or_default()
            {
                let _ = writeln!(
                    out,
                    "                  {host}: {}: {message}",
                    outcome.label()
                );
                for line in tail {
                    let _ = writeln!(out, "                    | {line}");
                }
            }
        }
    }
    out
}
