//! Reading a run's journal: [`fold::RunView`] is the one interpretation of
//! the events that every reader (summary, `runs`, report, resume, decisions,
//! history) shares, and [`versions`] the runbooks a run executed.

pub mod chain;
pub mod fold;
pub mod versions;

pub use fold::{Decision, DecisionKind, HostView, RunStatus, RunView, Status, StepView};

use std::path::Path;

use crate::state::{self, StateError};

/// A run of the state dir: its id and its folded journal, or why the
/// journal could not be read (one bad journal does not hide the others).
pub struct Listed {
    pub id: String,
    pub view: Result<RunView, StateError>,
}

/// Every run of the state dir, oldest first. Ids sort by the second a run
/// started; runs started in the same second sort by their first event's
/// time (to the millisecond), not by their random suffix.
/// A state dir that others could have written to is refused whole.
pub fn runs(state_dir: &Path) -> Result<Vec<Listed>, state::StateError> {
    if std::fs::symlink_metadata(state_dir).is_ok() {
        state::check(state_dir)?;
    }
    let mut runs: Vec<Listed> = state::run_ids(state_dir)
        .into_iter()
        .map(|id| Listed {
            view: state::read_run(state_dir, &id).map(|events| RunView::from_events(&events)),
            id,
        })
        .collect();
    runs.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    Ok(runs)
}

fn sort_key(run: &Listed) -> (&str, &str, &str) {
    let second = run.id.split('-').next().unwrap_or(&run.id);
    let start = run.view.as_ref().map_or("", |v| v.start.as_str());
    (second, start, &run.id)
}
