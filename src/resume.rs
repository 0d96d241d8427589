//! What a journal says is still outstanding. Pure: events and the current
//! runbook in, the state to continue from out.

use std::collections::{HashMap, HashSet};

use crate::events::{EventKind, HostOutcome, RunEvent, RunOutcome};
use crate::model::Runbook;

#[derive(Debug, Default)]
pub struct Outstanding {
    /// Per current step: finished for good (not run again), with its outcome.
    pub done: Vec<Option<HostOutcome>>,
    /// Per current step: an operator already confirmed it (`confirm: true`).
    pub confirmed: Vec<bool>,
    /// Per current step: part of this run's selection.
    pub selected: Vec<bool>,
    /// Step ids in the journal that the runbook no longer has.
    pub removed: Vec<String>,
    /// Steps that had started and not finished when the run stopped.
    pub in_flight: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Started,
    Finished(HostOutcome),
    Blocked,
    Confirmed,
    Marked,
}

/// The outcome of the last `run-finished`, if the run finished at all.
#[must_use]
pub fn final_outcome(events: &[RunEvent]) -> Option<RunOutcome> {
    let mut outcome = None;
    for e in events {
        match &e.kind {
            EventKind::RunFinished { outcome: o } => outcome = Some(*o),
            EventKind::RunResumed { .. }
            | EventKind::Marked { .. }
            | EventKind::Confirmation { .. } => {
                if outcome == Some(RunOutcome::Succeeded) {
                    continue;
                }
                outcome = None;
            }
            _ => {}
        }
    }
    outcome
}

#[must_use]
pub fn outstanding(events: &[RunEvent], runbook: &Runbook) -> Outstanding {
    let mut seen: HashMap<&str, Seen> = HashMap::new();
    let mut selected: Option<HashSet<&str>> = None;
    let mut known: HashSet<&str> = HashSet::new();
    for e in events {
        match &e.kind {
            EventKind::RunStarted { steps, .. } => {
                known.extend(steps.iter().map(String::as_str));
                selected = Some(steps.iter().map(String::as_str).collect());
            }
            EventKind::RunResumed { outstanding, .. } => {
                known.extend(outstanding.iter().map(String::as_str));
                if let Some(sel) = &mut selected {
                    sel.extend(outstanding.iter().map(String::as_str));
                }
            }
            EventKind::StepStarted { step, .. } => {
                seen.insert(step, Seen::Started);
            }
            EventKind::StepFinished { step, outcome, .. } => {
                seen.insert(step, Seen::Finished(*outcome));
            }
            EventKind::StepBlocked { step, .. } => {
                seen.insert(step, Seen::Blocked);
            }
            EventKind::Confirmation { step, .. } => {
                seen.insert(step, Seen::Confirmed);
            }
            EventKind::Marked { step, .. } => {
                seen.insert(step, Seen::Marked);
            }
            _ => {}
        }
    }
    let mut out = Outstanding::default();
    for step in &runbook.steps {
        let state = seen.get(step.id.as_str()).copied();
        let done = match state {
            Some(Seen::Finished(o)) if o.is_success() => Some(o),
            Some(Seen::Marked) => Some(HostOutcome::Marked),
            Some(Seen::Confirmed) if step.manual.is_some() => Some(HostOutcome::Confirmed),
            _ => None,
        };
        out.confirmed.push(state == Some(Seen::Confirmed));
        if state == Some(Seen::Started) {
            out.in_flight.push(step.id.clone());
        }
        out.done.push(done);
        let was_selected = selected
            .as_ref()
            .is_none_or(|s| s.contains(step.id.as_str()));
        let is_new = !known.contains(step.id.as_str());
        out.selected.push(was_selected || is_new);
    }
    let current: HashSet<&str> = runbook.steps.iter().map(|s| s.id.as_str()).collect();
    let mut removed: Vec<String> = known
        .iter()
        .filter(|k| !current.contains(*k))
        .map(|k| (*k).to_string())
        .collect();
    removed.sort();
    out.removed = removed;
    out
}

/// A step's command on a host that had started and not finished when the
/// journal ends: it may still be running if the controller was killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub step: String,
    pub host: String,
    /// The tag its commands carry (journals written before tags: none).
    pub tag: String,
}

/// Every (step, host) whose last `host-started` has no `host-finished`.
#[must_use]
pub fn unfinished(events: &[RunEvent]) -> Vec<Unfinished> {
    let mut open: Vec<Unfinished> = Vec::new();
    for e in events {
        match &e.kind {
            EventKind::HostStarted { step, host, tag } => {
                open.retain(|u| !(u.step == *step && u.host == *host));
                if let Some(tag) = tag {
                    open.push(Unfinished {
                        step: step.clone(),
                        host: host.clone(),
                        tag: tag.clone(),
                    });
                }
            }
            EventKind::HostFinished { step, host, .. } => {
                open.retain(|u| !(u.step == *step && u.host == *host));
            }
            _ => {}
        }
    }
    open
}
