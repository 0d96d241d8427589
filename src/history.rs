//! Rehearsal history: how long each step of a runbook really took in past
//! runs recorded in the state dir. `plan` and the live progress prefer
//! these measurements to the runbook's own `estimate`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::events::{EventKind, HostOutcome};
use crate::state;

/// Median duration per step id over past runs of `runbook`, counting only
/// steps that did their work (`ok`): an `already-ok` step says nothing
/// about how long a restoration takes.
#[must_use]
pub fn measured(state_dir: &Path, runbook: &str) -> HashMap<String, Duration> {
    let mut samples: HashMap<String, Vec<u64>> = HashMap::new();
    for id in state::run_ids(state_dir) {
        let Ok(events) = state::read_run(state_dir, &id) else {
            continue;
        };
        let same = events.iter().any(|e| {
            matches!(&e.kind, EventKind::RunStarted { runbook: r, dry_run: false, .. } if r == runbook)
        });
        if !same {
            continue;
        }
        for e in &events {
            if let EventKind::StepFinished {
                step,
                outcome: HostOutcome::Ok,
                duration_ms,
            } = &e.kind
            {
                samples.entry(step.clone()).or_default().push(*duration_ms);
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
