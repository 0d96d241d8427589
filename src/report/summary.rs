//! The end-of-run summary, by phase and step: outcome, duration, and the
//! failed hosts with their last stderr lines. Rendered from events only.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use super::Reporter;
use super::lines::seconds;
use super::services::ServiceReport;
use crate::events::{HostOutcome, RunEvent};
use crate::journal::{RunView, Status};
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

/// `services`: the runbook's services in this run (see [`super::services`]).
#[must_use]
pub fn render(runbook: &Runbook, view: &RunView, services: &[ServiceReport]) -> String {
    let mut out = format!(
        "\nsummary: {} after {}{}\n",
        view.verdict(),
        seconds(view.active_ms()),
        if view.was_resumed() {
            format!(" (wall clock {}, paused in between)", seconds(view.wall_ms))
        } else {
            String::new()
        }
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
            let row = view.step(&step.id);
            let status = row.map_or(Status::NotRun, |r| r.status);
            let duration = row
                .filter(|_| status != Status::Done(HostOutcome::Blocked))
                .and_then(|r| r.duration_ms)
                .map(seconds)
                .unwrap_or_default();
            let by = row
                .and_then(|r| r.blocked_by.as_ref())
                .map(|b| format!("(`{b}` failed)"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    {:<11} {:width$}  {duration}{by}",
                status.words(),
                step.id
            );
            // A rehearsal shows what the operator will be asked to do.
            if view.dry_run
                && let Some(manual) = super::lines::instructions(runbook, step, None)
            {
                for line in manual.lines() {
                    let _ = writeln!(out, "                  | {line}");
                }
            }
            // Failures of a step fixed since (marked, run again) are history.
            let failed = row
                .filter(|_| !status.is_success())
                .map(|r| r.hosts.as_slice())
                .unwrap_or_default()
                .iter()
                .filter(|h| matches!(h.status, Status::Done(o) if !o.is_success()));
            for h in failed {
                let _ = writeln!(
                    out,
                    "                  {}: {}: {}",
                    h.host,
                    h.status.label(),
                    h.message.as_deref().unwrap_or_default()
                );
                for line in &h.stderr_tail {
                    let _ = writeln!(out, "                    | {line}");
                }
            }
        }
    }
    if !services.is_empty() {
        let _ = writeln!(out, "  services");
        let width = services.iter().map(|s| s.id.len()).max().unwrap_or(0);
        for s in services {
            let _ = writeln!(out, "    {:width$}  {}", s.id, s.describe());
        }
    }
    // On a resume it shows events of earlier processes: see `redact::printable`.
    crate::redact::printable(&out)
}
