//! Notifications (`notify`): a reporter that computes the contract's events
//! (phase finished, step failed, paused, RTO at risk, service available,
//! run finished) from the run's events, and queues them to the webhooks'
//! threads ([`deliver`]): the dispatcher never waits on a chat server.

mod deliver;
mod payload;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc::UnboundedSender;

pub use deliver::{Deliveries, GiveUp, RETRY_FOR_VAR};
use deliver::{Queues, Target};

use crate::events::{EventKind, RunEvent, RunOutcome};
use crate::exec::context::Secrets;
use crate::journal::{RunView, Status};
use crate::model::{NotifyEvent, Runbook, Webhook};
use crate::redact::Redactor;
use crate::report::Reporter;
use crate::report::run_report::human;

/// How often a running phase's forecast is looked at again between events.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// One notification, whatever the format it is posted in.
#[derive(Debug, Clone)]
pub struct Message {
    pub event: NotifyEvent,
    pub run_id: String,
    pub runbook: String,
    pub phase: Option<String>,
    pub step: Option<String>,
    pub service: Option<String>,
    pub outcome: Option<String>,
    pub text: String,
    /// RFC 3339.
    pub at: String,
}

impl Message {
    /// The phase, step or service it is about.
    #[must_use]
    pub fn about(&self) -> Option<String> {
        self.phase
            .clone()
            .or_else(|| self.step.clone())
            .or_else(|| self.service.clone())
    }
}

/// What the run knows before its first event.
pub struct Start<'a> {
    pub runbook: &'a Arc<Runbook>,
    pub run_id: &'a str,
    /// The journal so far (`resume`), else empty.
    pub before: Vec<RunEvent>,
    /// Per step: not selected, or finished before this process.
    pub settled: &'a [bool],
    /// Per step: its expected duration, as `plan` forecasts it.
    pub expected: Vec<crate::model::Duration>,
    pub secrets: &'a Secrets,
    pub redactor: &'a Redactor,
    /// The dispatcher's channel: deliveries are journaled as they settle.
    pub journal: &'a UnboundedSender<EventKind>,
}

/// The reporter that notifies; `None` when the runbook has no `notify`.
#[must_use]
pub fn start(s: Start<'_>) -> Option<(Notifier, Deliveries)> {
    if s.runbook.notify.is_empty() {
        return None;
    }
    let targets = s
        .runbook
        .notify
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let url = match &n.webhook {
                Webhook::Url(url) => url.clone(),
                // Loaded before the run starts (`secrets::referenced`).
                Webhook::Secret(name) => s.secrets.values.get(name)?.trim().to_string(),
            };
            Some(Target {
                index: i + 1,
                url,
                format: n.format,
                on: n.on.clone(),
            })
        })
        .collect();
    let (queues, deliveries) = deliver::start(targets, s.journal, s.redactor);
    let seen = announced(&s.before);
    let mut notifier = Notifier {
        runbook: Arc::clone(s.runbook),
        run_id: s.run_id.to_string(),
        queues,
        view: RunView::from_events(&s.before[..seen]),
        expected: s.expected,
        settled: s.settled.to_vec(),
        phase_done: vec![false; s.runbook.phases.len()],
        at_risk: vec![false; s.runbook.phases.len()],
        available: vec![false; s.runbook.services.len()],
        looked: None,
        redactor: s.redactor.clone(),
    };
    // What an earlier process saw is not news; what operators decided
    // since (`confirm`, `mark`) is.
    notifier.look(true);
    if seen < s.before.len() {
        for e in &s.before[seen..] {
            notifier.view.push(e);
        }
        notifier.look(false);
    }
    Some((notifier, deliveries))
}

/// How many of a journal's first events an earlier run process has seen
/// (and notified about): up to its `run-finished`, or all of them when
/// that process died before its end.
fn announced(before: &[RunEvent]) -> usize {
    let last_start = before.iter().rposition(|e| {
        matches!(
            e.kind,
            EventKind::RunStarted { .. } | EventKind::RunResumed { .. }
        )
    });
    let last_end = before
        .iter()
        .rposition(|e| matches!(e.kind, EventKind::RunFinished { .. }));
    match (last_start, last_end) {
        (Some(start), Some(end)) if end > start => end + 1,
        _ => before.len(),
    }
}

pub struct Notifier {
    runbook: Arc<Runbook>,
    run_id: String,
    queues: Queues,
    /// The one fold of the run's events so far, each folded in once.
    view: RunView,
    expected: Vec<crate::model::Duration>,
    settled: Vec<bool>,
    phase_done: Vec<bool>,
    at_risk: Vec<bool>,
    available: Vec<bool>,
    looked: Option<Instant>,
    redactor: Redactor,
}

impl Notifier {
    fn post(&mut self, event: NotifyEvent, about: About, outcome: Option<&str>, text: &str) {
        let (phase, step, service) = match about {
            About::Run => (None, None, None),
            About::Phase(p) => (Some(p), None, None),
            About::Step(s) => (None, Some(s), None),
            About::Service(s) => (None, None, Some(s)),
        };
        let message = Message {
            event,
            run_id: self.run_id.clone(),
            runbook: self.runbook.name.clone(),
            phase,
            step,
            service,
            outcome: outcome.map(str::to_string),
            text: self
                .redactor
                .redact(&format!("{} ({}): {text}", self.runbook.name, self.run_id)),
            at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        };
        self.queues.post(&Arc::new(message));
    }

    /// Phases finished, services available and phases at risk since the
    /// last look; `quietly` only takes note of them.
    fn look(&mut self, quietly: bool) {
        // Lent out while `post` needs the notifier.
        let view = std::mem::take(&mut self.view);
        self.look_at(&view, quietly);
        self.view = view;
    }

    fn look_at(&mut self, view: &RunView, quietly: bool) {
        self.looked = Some(Instant::now());
        let runbook = Arc::clone(&self.runbook);
        let now_ms = humantime::parse_rfc3339_weak(view.start.trim_end_matches('Z'))
            .ok()
            .and_then(|start| SystemTime::now().duration_since(start).ok())
            .map_or(view.wall_ms, |d| {
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
            });
        let status = |i: usize| view.step(&runbook.steps[i].id).map(|s| s.status);
        for (p, phase) in runbook.phases.iter().enumerate() {
            let steps: Vec<usize> = (0..runbook.steps.len())
                .filter(|&i| runbook.steps[i].phase == Some(p))
                .collect();
            // A step this run does not run (not selected) settles as it is.
            let settled = |i: &usize| match status(*i) {
                Some(Status::Done(_)) => true,
                None | Some(Status::NotRun) => self.settled[*i],
                Some(_) => false,
            };
            if self.phase_done[p] || steps.is_empty() || !steps.iter().all(settled) {
                continue;
            }
            self.phase_done[p] = true;
            if quietly {
                continue;
            }
            let ok = steps
                .iter()
                .all(|&i| status(i).is_none_or(Status::is_success));
            let outcome = if ok { "succeeded" } else { "failed" };
            let rto = phase.rto.map(|r| format!(", RTO {r}")).unwrap_or_default();
            let text = format!(
                "phase {} finished: {outcome} (+{}{rto})",
                named(&phase.id, phase.title.as_deref()),
                human(now_ms as f64 / 1000.0)
            );
            self.post(
                NotifyEvent::PhaseFinished,
                About::Phase(phase.id.clone()),
                Some(outcome),
                &text,
            );
        }
        let services = crate::report::services::services(&runbook, view, &self.expected, now_ms);
        for (k, service) in services.iter().enumerate() {
            if service.state != crate::report::services::ServiceState::Available
                || std::mem::replace(&mut self.available[k], true)
                || quietly
            {
                continue;
            }
            let text = format!(
                "{} is available again (+{})",
                named(&service.id, service.title.as_deref()),
                human(service.available_secs.unwrap_or_default())
            );
            self.post(
                NotifyEvent::ServiceAvailable,
                About::Service(service.id.clone()),
                Some("available"),
                &text,
            );
        }
        if quietly || !self.watching_rto() {
            return;
        }
        let plan = crate::report::services::remaining(&runbook, view, &self.expected, now_ms);
        for (p, phase) in runbook.phases.iter().enumerate() {
            let (Some(rto), Some(left)) = (phase.rto, plan.phase_forecast[p]) else {
                continue;
            };
            let at = Duration::from_millis(now_ms) + left.std();
            if self.phase_done[p] || self.at_risk[p] || at <= rto.std() {
                continue;
            }
            self.at_risk[p] = true;
            let text = format!(
                "phase {} is at risk: forecast to finish at +{}, past its RTO of {rto}",
                named(&phase.id, phase.title.as_deref()),
                human(at.as_secs_f64())
            );
            self.post(
                NotifyEvent::RtoAtRisk,
                About::Phase(phase.id.clone()),
                None,
                &text,
            );
        }
    }

    /// Whether a phase with an RTO is still open and not yet reported at risk.
    fn watching_rto(&self) -> bool {
        self.runbook
            .phases
            .iter()
            .enumerate()
            .any(|(p, ph)| ph.rto.is_some() && !self.phase_done[p] && !self.at_risk[p])
    }
}

enum About {
    Run,
    Phase(String),
    Step(String),
    Service(String),
}

fn named(id: &str, title: Option<&str>) -> String {
    match title {
        Some(t) => format!("{t} ({id})"),
        None => id.to_string(),
    }
}

impl Reporter for Notifier {
    fn event(&mut self, event: &RunEvent) {
        if event.kind.is_notification() {
            self.queues.journaled();
            return;
        }
        self.view.push(event);
        match &event.kind {
            EventKind::StepFinished { step, outcome, .. } if !outcome.is_success() => {
                let title = self
                    .runbook
                    .step_index(step)
                    .and_then(|i| self.runbook.steps[i].title.clone());
                let text = format!("step {} {}", named(step, title.as_deref()), outcome.label());
                self.post(
                    NotifyEvent::StepFailed,
                    About::Step(step.clone()),
                    Some(outcome.label()),
                    &text,
                );
                self.look(false);
            }
            EventKind::RunPaused { step, reason } => {
                let text = format!("paused at step {step}: {reason}");
                self.post(NotifyEvent::Paused, About::Step(step.clone()), None, &text);
            }
            EventKind::RunFinished { outcome } => {
                self.look(false);
                let text = match outcome {
                    RunOutcome::Succeeded => "the run succeeded".to_string(),
                    other => format!("the run ended: {}", other.label()),
                };
                self.post(
                    NotifyEvent::RunFinished,
                    About::Run,
                    Some(outcome.label()),
                    &text,
                );
            }
            EventKind::StepFinished { .. }
            | EventKind::StepBlocked { .. }
            | EventKind::Marked { .. } => self.look(false),
            _ => {}
        }
    }

    /// A running step can put its phase at risk without any event.
    fn tick(&mut self) {
        if self.watching_rto() && self.looked.is_none_or(|t| t.elapsed() >= LOOK_EVERY) {
            self.look(false);
        }
    }

    fn note(&mut self, _: &str) {}

    fn finish(&mut self) {
        self.queues.close();
    }
}
