//! What a journal says is still outstanding. Pure: the folded journal and
//! the current runbook in, the state to continue from out.

use crate::events::HostOutcome;
use crate::journal::{RunView, Status};
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

#[must_use]
pub fn outstanding(view: &RunView, runbook: &Runbook) -> Outstanding {
    let mut out = Outstanding::default();
    for step in &runbook.steps {
        let seen = view.step(&step.id);
        let status = seen.map_or(Status::NotRun, |s| s.status);
        let done = match status {
            // A confirmation finishes a manual step; a `confirm: true` step
            // still has its command to run.
            Status::Done(HostOutcome::Confirmed) if step.manual.is_none() => None,
            Status::Done(o) if o.is_success() => Some(o),
            _ => None,
        };
        out.confirmed.push(seen.is_some_and(|s| s.confirmed));
        if matches!(status, Status::Running | Status::Interrupted) {
            out.in_flight.push(step.id.clone());
        }
        out.done.push(done);
        let known = view.selected.as_ref();
        let was_selected = known.is_none_or(|s| s.contains(&step.id));
        let is_new = known.is_some_and(|s| !s.contains(&step.id));
        out.selected.push(was_selected || is_new);
    }
    out.removed = view
        .selected
        .iter()
        .flatten()
        .filter(|k| !runbook.steps.iter().any(|s| &s.id == *k))
        .cloned()
        .collect();
    out
}
