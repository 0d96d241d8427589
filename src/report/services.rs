//! Each service of a runbook as the people outside the recovery room see
//! it: available, being restored (with a forecast), or not started. Read
//! from the one journal fold, so reports, the summary and the board agree.

use serde::Serialize;

use crate::events::{HostOutcome, MarkStatus, RunOutcome};
use crate::journal::{RunStatus, RunView, Status};
use crate::model::{Duration, Runbook, Service};
use crate::plan::Plan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceState {
    Available,
    BeingRestored,
    NotStarted,
}

impl ServiceState {
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::BeingRestored => "being-restored",
            Self::NotStarted => "not-started",
        }
    }

    /// The label in running text.
    #[must_use]
    pub const fn words(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::BeingRestored => "being restored",
            Self::NotStarted => "not started",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    pub id: String,
    pub title: Option<String>,
    pub audience: Option<String>,
    pub state: ServiceState,
    /// The steps whose success makes it available.
    pub ready_when: Vec<String>,
    /// When it became available: seconds from the start of the run.
    pub available_secs: Option<f64>,
    /// Being restored: when its last `ready_when` step is expected to
    /// finish, in seconds from the start of the run and as a time of day.
    /// `None` while a step it needs has failed or is blocked: nobody can
    /// tell until an operator acts.
    pub forecast_secs: Option<f64>,
    pub forecast_at: Option<String>,
}

impl ServiceReport {
    /// Its state in words, with when: `available at +2m 5s`, `being
    /// restored, forecast 2026-11-28T10:12:05Z (+12m)`.
    #[must_use]
    pub fn describe(&self) -> String {
        let human = super::run_report::human;
        match (self.state, self.available_secs, self.forecast_secs) {
            (ServiceState::Available, Some(at), _) => format!("available at +{}", human(at)),
            (ServiceState::BeingRestored, _, Some(f)) => format!(
                "being restored, forecast {} (+{})",
                self.forecast_at.as_deref().unwrap_or("-"),
                human(f)
            ),
            (ServiceState::BeingRestored, _, None) => {
                "being restored, no forecast: a step it needs failed".into()
            }
            (state, _, _) => state.words().into(),
        }
    }
}

/// The services of a run, forecast from the timings measured on the hosts
/// it ran on (what `plan` uses), as of its last event.
#[must_use]
pub fn of_run(
    runbook: &Runbook,
    view: &RunView,
    state_dir: &std::path::Path,
) -> Vec<ServiceReport> {
    if runbook.services.is_empty() {
        return Vec::new();
    }
    services(
        runbook,
        view,
        &expected(runbook, view, state_dir),
        view.wall_ms,
    )
}

/// Each step's expected duration, as `plan` has it: measured on the hosts
/// the run ran on, else its `estimate`.
#[must_use]
pub fn expected(runbook: &Runbook, view: &RunView, state_dir: &std::path::Path) -> Vec<Duration> {
    let hosts = crate::history::Hosts {
        path: view.inventory_path.clone(),
        sha256: view.inventory_sha256.clone(),
    };
    let history = crate::history::measured(state_dir, &runbook.name, &hosts);
    runbook.steps.iter().map(|s| history.expected(s)).collect()
}

/// Whether a step's success restores what depends on it. A step skipped
/// (by `when` or by hand) proved nothing about the service.
fn restored(view: &RunView, id: &str) -> bool {
    view.step(id).is_some_and(|s| match s.status {
        Status::Done(HostOutcome::Ok | HostOutcome::AlreadyOk | HostOutcome::Confirmed) => true,
        Status::Done(HostOutcome::Marked) => s.mark == Some(MarkStatus::Done),
        _ => false,
    })
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Every service of `runbook` in the run `view`, as of `now_ms` after the
/// run's start. `expected[i]` is step `i`'s expected duration (measured
/// history, else its `estimate`), as `plan` uses.
#[must_use]
pub fn services(
    runbook: &Runbook,
    view: &RunView,
    expected: &[Duration],
    now_ms: u64,
) -> Vec<ServiceReport> {
    if runbook.services.is_empty() {
        return Vec::new();
    }
    let plan = what_is_left(runbook, view, expected, now_ms);
    let start = humantime::parse_rfc3339_weak(view.start.trim_end_matches('Z')).ok();
    let going = !matches!(view.status, RunStatus::Finished(RunOutcome::Succeeded));
    runbook
        .services
        .iter()
        .map(|service| {
            let ready_when: Vec<String> = service
                .ready_when
                .iter()
                .map(|&i| runbook.steps[i].id.clone())
                .collect();
            let needed = needed(runbook, service);
            let seen = |i: &usize| view.step(&runbook.steps[*i].id);
            let state = if ready_when.iter().all(|id| restored(view, id)) {
                ServiceState::Available
            } else if going
                && needed
                    .iter()
                    .any(|i| seen(i).is_some_and(|s| s.status != Status::NotRun))
            {
                ServiceState::BeingRestored
            } else {
                ServiceState::NotStarted
            };
            let available_secs = (state == ServiceState::Available)
                .then(|| {
                    ready_when
                        .iter()
                        .filter_map(|id| view.step(id).and_then(|s| s.end_ms))
                        .max()
                })
                .flatten()
                .map(secs);
            let stuck = needed.iter().any(|i| {
                seen(i).is_some_and(|s| {
                    s.status.is_failure() || s.status == Status::Done(HostOutcome::Blocked)
                })
            });
            let forecast_ms = (state == ServiceState::BeingRestored && !stuck)
                .then(|| {
                    service
                        .ready_when
                        .iter()
                        .map(|&i| plan.earliest_finish[i].std())
                        .max()
                })
                .flatten()
                .map(|left| now_ms + u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
            ServiceReport {
                id: service.id.clone(),
                title: service.title.clone(),
                audience: service.audience.clone(),
                state,
                ready_when,
                available_secs,
                forecast_secs: forecast_ms.map(secs),
                forecast_at: forecast_ms.zip(start).map(|(ms, start)| {
                    humantime::format_rfc3339_seconds(start + std::time::Duration::from_millis(ms))
                        .to_string()
                }),
            }
        })
        .collect()
}

/// The plan of what is left of the run from `now_ms` after its start: a
/// step that succeeded takes nothing, a running one the rest of its
/// expected time. Its `earliest_finish` and `phase_forecast` are offsets
/// from `now_ms`; the board's phase forecasts read the same plan.
#[must_use]
pub fn what_is_left(runbook: &Runbook, view: &RunView, expected: &[Duration], now_ms: u64) -> Plan {
    let remaining = |i: usize| {
        let step = &runbook.steps[i];
        let seen = view.step(&step.id);
        let expect = expected.get(i).copied().unwrap_or_default().std();
        match seen.map(|s| (s.status, s.start_ms)) {
            Some((status, _)) if status.is_success() => Duration::from_secs(0),
            Some((Status::Running | Status::Waiting, Some(start))) => {
                Duration(expect.saturating_sub(std::time::Duration::from_millis(
                    now_ms.saturating_sub(start),
                )))
            }
            _ => Duration(expect),
        }
    };
    Plan::new(runbook, remaining)
}

/// A service's `ready_when` steps and every step they wait for, directly,
/// through other steps or through phases.
fn needed(runbook: &Runbook, service: &Service) -> Vec<usize> {
    let dag = &runbook.dag;
    let mut seen = vec![false; dag.len()];
    let mut todo = service.ready_when.clone();
    while let Some(node) = todo.pop() {
        if !std::mem::replace(&mut seen[node], true) {
            todo.extend(&dag.preds[node]);
        }
    }
    (0..dag.steps).filter(|&i| seen[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runbook(dir: &std::path::Path) -> Runbook {
        crate::exec::dispatcher::tests::runbook(
            dir,
            "version: 1
name: svc
phases: [{id: net}, {id: apps, depends_on: [net]}]
steps:
  - {id: net, phase: net, check: {command: 'true'}}
  - {id: db, phase: apps, check: {command: 'true'}}
  - {id: app, phase: apps, depends_on: [db], check: {command: 'true'}, estimate: 10m}
  - {id: mail, check: {command: 'true'}, estimate: 1m}
services:
  - {id: records, ready_when: [db, app]}
  - {id: email, ready_when: [mail]}
",
        )
    }

    fn view(lines: &[String], finished: Option<&str>) -> RunView {
        let mut events = vec![format!(
            r#"{{"at": "2026-11-28T10:00:00Z", "elapsed_ms": 0, "event": "run-started", "version": 1, "run_id": "r", "runbook": "svc", "runbook_sha256": "0", "inventory_sha256": null, "operator": "a", "dry_run": false, "steps": ["net", "db", "app", "mail"], "runbook_path": "", "inventory_path": null}}"#
        )];
        events.extend(lines.iter().cloned());
        events.extend(finished.map(|o| {
            format!(r#"{{"at": "2026-11-28T10:05:00Z", "elapsed_ms": 300000, "event": "run-finished", "outcome": "{o}"}}"#)
        }));
        let events: Vec<crate::events::RunEvent> = events
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        RunView::from_events(&events)
    }

    fn started(step: &str, at_s: u64) -> String {
        format!(
            r#"{{"at": "2026-11-28T10:{:02}:{:02}Z", "elapsed_ms": {}, "event": "step-started", "step": "{step}", "hosts": ["controller"]}}"#,
            at_s / 60,
            at_s % 60,
            at_s * 1000
        )
    }

    fn finished(step: &str, at_s: u64, outcome: &str) -> String {
        format!(
            r#"{{"at": "2026-11-28T10:{:02}:{:02}Z", "elapsed_ms": {}, "event": "step-finished", "step": "{step}", "outcome": "{outcome}", "duration_ms": 1000}}"#,
            at_s / 60,
            at_s % 60,
            at_s * 1000
        )
    }

    fn expected(rb: &Runbook) -> Vec<Duration> {
        rb.steps
            .iter()
            .map(|s| s.estimate.unwrap_or(Duration::from_secs(0)))
            .collect()
    }

    #[test]
    fn a_service_is_restored_by_its_steps_and_forecast_by_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let rb = runbook(dir.path());
        let lines = [
            started("net", 0),
            finished("net", 10, "ok"),
            started("db", 10),
            finished("db", 20, "ok"),
            started("app", 20),
        ];
        let v = view(&lines, None);
        // 2 minutes into a 10-minute step: 8 left.
        let got = services(&rb, &v, &expected(&rb), 140_000);
        assert_eq!(got[0].state, ServiceState::BeingRestored);
        assert_eq!(got[0].forecast_secs, Some(620.0));
        assert_eq!(got[0].forecast_at.as_deref(), Some("2026-11-28T10:10:20Z"));
        assert_eq!(got[1].state, ServiceState::NotStarted, "mail never started");
        assert_eq!(got[1].forecast_secs, None);

        let mut lines = lines.to_vec();
        lines.push(finished("app", 30, "already-ok"));
        let v = view(&lines, Some("paused"));
        let got = services(&rb, &v, &expected(&rb), 300_000);
        assert_eq!(got[0].state, ServiceState::Available);
        assert_eq!(got[0].available_secs, Some(30.0));
        assert_eq!(got[0].forecast_secs, None);
    }

    #[test]
    fn a_failed_dependency_leaves_no_forecast_and_a_finished_run_restores_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let rb = runbook(dir.path());
        let lines = [started("net", 0), finished("net", 10, "failed")];
        let v = view(&lines, Some("paused"));
        let got = services(&rb, &v, &expected(&rb), 300_000);
        assert_eq!(got[0].state, ServiceState::BeingRestored, "net is needed");
        assert_eq!(got[0].forecast_secs, None, "net failed: no forecast");

        let lines = [
            started("mail", 0),
            finished("mail", 10, "skipped"),
            started("net", 0),
            finished("net", 10, "ok"),
        ];
        let v = view(&lines, Some("succeeded"));
        let got = services(&rb, &v, &expected(&rb), 300_000);
        assert_eq!(got[0].state, ServiceState::NotStarted, "the run is over");
        assert_eq!(
            got[1].state,
            ServiceState::NotStarted,
            "a skipped step proves nothing"
        );
    }
}
