//! Rehearsal history: how long each step of a runbook really took in past
//! runs recorded in the state dir. `plan` and the live progress prefer
//! these measurements to the runbook's own `estimate`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::events::HostOutcome;
use crate::journal::{self, Status};

/// Median duration per step id over past runs of `runbook`, counting only
/// steps that did their work (`ok`): an `already-ok` step says nothing
/// about how long a restoration takes.
#[must_use]
pub fn measured(state_dir: &Path, runbook: &str) -> HashMap<String, Duration> {
    let mut samples: HashMap<String, Vec<u64>> = HashMap::new();
    // Forecasts only: a state dir that cannot be trusted gives no history.
    for run in journal::runs(state_dir).unwrap_or_default() {
        let Ok(view) = run.view else { continue };
        if view.runbook != runbook || view.dry_run {
            continue;
        }
        for step in view.steps {
            if let (Status::Done(HostOutcome::Ok), Some(ms)) = (step.status, step.duration_ms) {
                samples.entry(step.id).or_default().push(ms);
            }
        }
    }
    samples
        .into_iter()
        .map(|(step, mut ms)| {
            ms.sort_unstable();
            (step, Duration::from_millis(ms[ms.len() / 2]))
        })
        .collect()
}
