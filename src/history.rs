//! Rehearsal history: how long each step of a runbook really took in past
//! runs recorded in the state dir, on the same inventory. `plan` and the
//! live progress prefer these measurements to the runbook's own `estimate`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::events::HostOutcome;
use crate::journal::{self, RunView, Status};
use crate::load::Source;

/// The inventory a forecast is for. A run on other hosts (a rehearsal on
/// the simulator) says nothing about how long these take.
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    /// Absolute, as the journal records it.
    pub path: Option<String>,
    pub sha256: Option<String>,
}

impl Hosts {
    #[must_use]
    pub fn of(inventory: Option<&Source>) -> Self {
        inventory.map_or_else(Self::default, |s| Self {
            path: Some(
                std::path::absolute(&s.path)
                    .unwrap_or_else(|_| s.path.clone())
                    .display()
                    .to_string(),
            ),
            // As `run` journals it: the digest of the text, in hex.
            sha256: Some({
                use sha2::Digest as _;
                sha2::Sha256::digest(s.text.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            }),
        })
    }

    /// The same file, or the same content elsewhere; no inventory matches
    /// only no inventory.
    fn ran_on(&self, run: &RunView) -> bool {
        match (&self.path, &run.inventory_path) {
            (None, None) => run.inventory_sha256.is_none(),
            (Some(mine), Some(theirs)) if mine == theirs => true,
            _ => self.sha256.is_some() && self.sha256 == run.inventory_sha256,
        }
    }
}

/// A step's measured duration: the median of the runs that did its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    pub median: Duration,
    pub samples: usize,
}

/// What past runs say about the runbook on one inventory.
#[derive(Debug, Default)]
pub struct History {
    pub steps: HashMap<String, Measured>,
    /// Runs on this inventory that measured at least one step, oldest first.
    pub runs: Vec<String>,
    /// Runs of the runbook on other inventories (or none), whose timings
    /// are left out, and their distinct inventory paths.
    pub other_inventories: Vec<Option<String>>,
    pub other_runs: usize,
}

impl History {
    #[must_use]
    pub fn get(&self, step: &str) -> Option<Measured> {
        self.steps.get(step).copied()
    }

    /// A step's expected duration as `plan` forecasts it: measured, else
    /// its `estimate`, else zero.
    #[must_use]
    pub fn expected(&self, step: &crate::model::Step) -> crate::model::Duration {
        self.get(&step.id).map_or_else(
            || {
                step.estimate
                    .unwrap_or(crate::model::Duration::from_secs(0))
            },
            |m| crate::model::Duration(m.median),
        )
    }
}

/// Median duration per step id over past runs of `runbook` on `hosts`,
/// counting only steps that did their work (`ok`): an `already-ok` step
/// says nothing about how long a restoration takes. Dry-runs are never
/// journaled, and a journaled one would be left out.
#[must_use]
pub fn measured(state_dir: &Path, runbook: &str, hosts: &Hosts) -> History {
    let mut samples: HashMap<String, Vec<u64>> = HashMap::new();
    let mut history = History::default();
    // Forecasts only: a state dir that cannot be trusted gives no history.
    for run in journal::runs(state_dir).unwrap_or_default() {
        let Ok(view) = run.view else { continue };
        if view.runbook != runbook || view.dry_run {
            continue;
        }
        if !hosts.ran_on(&view) {
            history.other_runs += 1;
            if !history.other_inventories.contains(&view.inventory_path) {
                history.other_inventories.push(view.inventory_path);
            }
            continue;
        }
        let mut used = false;
        for step in view.steps {
            if let (Status::Done(HostOutcome::Ok), Some(ms)) = (step.status, step.duration_ms) {
                samples.entry(step.id).or_default().push(ms);
                used = true;
            }
        }
        if used {
            history.runs.push(run.id);
        }
    }
    history.steps = samples
        .into_iter()
        .map(|(step, mut ms)| {
            ms.sort_unstable();
            let measured = Measured {
                median: Duration::from_millis(ms[ms.len() / 2]),
                samples: ms.len(),
            };
            (step, measured)
        })
        .collect();
    history
}
