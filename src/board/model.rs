//! What the board shows, built from the one journal fold and the runbook
//! copies kept in the run's directory: the run's report (as `runbook
//! report --format json` has it), with the services and each phase
//! forecast as of now by the plan of what is left, and the steps waiting
//! for an operator. `/api/run` is this, serialized.

use std::path::PathBuf;

use serde::Serialize;

use crate::events::{RunEvent, RunOutcome};
use crate::journal::{RunStatus, RunView, Status};
use crate::model::Duration;
use crate::report::run_report::{self, Executed, RunReport};
use crate::report::services;

#[derive(Debug, Serialize)]
pub struct Board {
    /// Journal events folded: the `id` of the last `/events` message + 1.
    pub events: usize,
    /// When this was built (RFC 3339): forecasts are as of then.
    pub now: String,
    #[serde(flatten)]
    pub report: RunReport,
    /// Each phase's forecast end, in the order of `phases`.
    pub forecasts: Vec<PhaseForecast>,
    /// Steps waiting for an operator's confirmation, with the instructions.
    pub waiting: Vec<Waiting>,
}

#[derive(Debug, Serialize)]
pub struct PhaseForecast {
    pub phase: String,
    /// Seconds from the start of the run when its last step is expected to
    /// end; `None` once done, or while a step it needs failed.
    pub end_secs: Option<f64>,
    pub end_at: Option<String>,
    /// The forecast end is past its RTO.
    pub at_risk: bool,
}

#[derive(Debug, Serialize)]
pub struct Waiting {
    pub step: String,
    pub title: Option<String>,
    pub instructions: Option<String>,
}

/// Where a run's kept runbook copies are; the parsed copies by hash, and
/// each step's expected duration (read once: past runs do not change).
pub struct Source {
    pub state_dir: PathBuf,
    pub run_id: String,
    executed: Vec<Executed>,
    expected: Option<Vec<Duration>>,
}

impl Source {
    #[must_use]
    pub const fn new(state_dir: PathBuf, run_id: String) -> Self {
        Self {
            state_dir,
            run_id,
            executed: Vec::new(),
            expected: None,
        }
    }

    /// The board of `events`, folded into `view`, as of `now`.
    pub fn build(
        &mut self,
        view: &RunView,
        events: &[RunEvent],
        now: std::time::SystemTime,
    ) -> Board {
        self.load_versions(view);
        let latest = run_report::latest(view, &self.executed);
        let now_ms = now_ms(view, now);
        // The services forecast from the durations read once, not from
        // every journal of the state dir again.
        let expected = latest.map(|executed| {
            self.expected
                .get_or_insert_with(|| services::expected(&executed.runbook, view, &self.state_dir))
                .as_slice()
        });
        let services = latest
            .zip(expected)
            .map(|(e, expected)| services::services(&e.runbook, view, expected, now_ms))
            .unwrap_or_default();
        let report =
            run_report::with_services(&self.run_id, &self.executed, view, events, services);
        let (mut forecasts, mut waiting) = (Vec::new(), Vec::new());
        if let Some((executed, expected)) = latest.zip(expected) {
            forecasts = phase_forecasts(&executed.runbook, view, &report, expected, now_ms);
            waiting = report
                .steps
                .iter()
                .filter(|s| s.outcome == Status::Waiting)
                .map(|s| Waiting {
                    step: s.id.clone(),
                    title: s.title.clone(),
                    instructions: s.instructions.clone(),
                })
                .collect();
        }
        Board {
            events: events.len(),
            now: jiff::Timestamp::try_from(now)
                .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
                .unwrap_or_default(),
            report,
            forecasts,
            waiting,
        }
    }

    /// Parses the kept copy of each runbook version not parsed yet. A copy
    /// that no longer validates is left out: the board shows what it can.
    fn load_versions(&mut self, view: &RunView) {
        let dir = crate::state::run_path(&self.state_dir, &self.run_id);
        for sha in &view.versions {
            if self.executed.iter().any(|e| &e.sha256 == sha) {
                continue;
            }
            let copy = crate::journal::versions::kept_copy(&dir, sha);
            match crate::commands::report::executed(&copy, sha) {
                Ok(e) => {
                    self.executed.push(e);
                    self.expected = None;
                }
                Err(e) => tracing::warn!("board: {e}"),
            }
        }
    }
}

/// Milliseconds from the run's start to `now` while it goes on or waits
/// for an operator; once it ended, to its last event.
fn now_ms(view: &RunView, now: std::time::SystemTime) -> u64 {
    let start = humantime::parse_rfc3339_weak(view.start.trim_end_matches('Z')).ok();
    match (view.status, start) {
        (RunStatus::Unfinished | RunStatus::Finished(RunOutcome::Paused), Some(start)) => now
            .duration_since(start)
            .map_or(view.wall_ms, |d| {
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
            })
            .max(view.wall_ms),
        _ => view.wall_ms,
    }
}

/// Each phase not done: `now` plus what is left of it by the plan of what
/// is left (the forecast of `plan` and of the progress bars).
fn phase_forecasts(
    runbook: &crate::model::Runbook,
    view: &RunView,
    report: &RunReport,
    expected: &[Duration],
    now_ms: u64,
) -> Vec<PhaseForecast> {
    let plan = services::remaining(runbook, view, expected, now_ms);
    let start = humantime::parse_rfc3339_weak(view.start.trim_end_matches('Z')).ok();
    let going = !matches!(view.status, RunStatus::Finished(RunOutcome::Succeeded));
    runbook
        .phases
        .iter()
        .enumerate()
        .map(|(p, phase)| {
            let done = report.phases.iter().any(|r| r.id == phase.id && r.done);
            let stuck = report.steps.iter().any(|s| {
                s.phase.as_deref() == Some(&phase.id)
                    && (s.outcome.is_failure() || s.blocked_by.is_some())
            });
            let end_ms = (going && !done && !stuck)
                .then_some(plan.phase_forecast[p])
                .flatten()
                .map(|left| now_ms + u64::try_from(left.std().as_millis()).unwrap_or(u64::MAX));
            PhaseForecast {
                phase: phase.id.clone(),
                end_secs: end_ms.map(|ms| ms as f64 / 1000.0),
                end_at: end_ms.zip(start).map(|(ms, start)| {
                    humantime::format_rfc3339_seconds(start + std::time::Duration::from_millis(ms))
                        .to_string()
                }),
                at_risk: matches!((phase.rto, end_ms), (Some(rto), Some(ms)) if u128::from(ms) > rto.std().as_millis()),
            }
        })
        .collect()
}
