//! `runbook resume [RUN_ID]`: continue from the journal. Finished steps are
//! not run again; steps that were in flight start with their `check`; the
//! runbook is read again from where it was, so a fix made mid-incident is
//! picked up (the journal records the new hashes).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::input::{load_with, overrides, var_text};
use super::run::{Launch, require_inventory, sha256};
use crate::cli::{Global, ResumeArgs};
use crate::error::Error;
use crate::events::{EventKind, RunEvent, RunOutcome};
use crate::exec::operator;
use crate::resume::{final_outcome, outstanding};
use crate::state::{self, RunDir};

pub fn run(global: &Global, args: &ResumeArgs) -> Result<u8, Error> {
    let lock = state::lock(&global.state_dir)?;
    let run_id = match &args.run_id {
        Some(id) => id.clone(),
        None => latest_unfinished(global)?,
    };
    let dir = RunDir::open(&global.state_dir, &run_id)?;
    let events = state::read_journal(&dir.journal_path())?;
    if final_outcome(&events) == Some(RunOutcome::Succeeded) {
        return Err(Error::Usage(format!(
            "run `{run_id}` already succeeded; nothing to resume"
        )));
    }
    let (runbook_path, inventory_path) = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::RunStarted {
                runbook_path,
                inventory_path,
                ..
            } => Some((
                PathBuf::from(runbook_path),
                inventory_path.clone().map(PathBuf::from),
            )),
            _ => None,
        })
        .ok_or_else(|| Error::Usage(format!("the journal of run `{run_id}` has no start")))?;
    let runbook_path = if runbook_path.exists() {
        runbook_path
    } else {
        eprintln!(
            "note: {} is gone; resuming with the copy kept in the run directory",
            runbook_path.display()
        );
        dir.path.join("runbook.yaml")
    };
    let mut global_for_load = global.clone();
    if global_for_load.inventory.is_none() {
        global_for_load.inventory = inventory_path.map(|p| {
            if p.exists() {
                p
            } else {
                dir.path.join("inventory.yaml")
            }
        });
    }
    let journaled = journaled_vars(&events);
    let given = overrides(&global.vars)?;
    let inherited: Vec<String> = journaled
        .iter()
        .filter(|(k, _)| !given.contains_key(*k))
        .map(|(k, v)| format!("--var {k}={}", var_text(v)))
        .collect();
    if !inherited.is_empty() {
        eprintln!("note: with the run's {}", inherited.join(" "));
    }
    let input = load_with(&global_for_load, &runbook_path, true, journaled)?;
    require_inventory(&input)?;
    let todo = outstanding(&events, &input.runbook);
    if !todo.removed.is_empty() {
        eprintln!(
            "note: the runbook no longer has {}: left as they were",
            todo.removed
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !todo.in_flight.is_empty() {
        eprintln!(
            "note: in flight when the run stopped, so their `check` runs first: {}",
            todo.in_flight
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    operator::set(args.exec.operator.as_deref());
    let outstanding_ids: Vec<String> = input
        .runbook
        .steps
        .iter()
        .enumerate()
        .filter(|(i, _)| todo.selected[*i] && todo.done[*i].is_none())
        .map(|(_, s)| s.id.clone())
        .collect();
    let first = EventKind::RunResumed {
        operator: operator::current(),
        runbook_sha256: sha256(&input.runbook_source.text),
        inventory_sha256: input.inventory_source.as_ref().map(|s| sha256(&s.text)),
        removed: todo.removed.clone(),
        outstanding: outstanding_ids,
        vars: given,
    };
    let launch = Launch {
        dry_run: false,
        forks: args.exec.forks,
        yes: args.exec.yes,
        secrets_file: args.exec.secrets.clone(),
        selected: todo.selected,
        done: todo.done,
        confirmed: todo.confirmed,
        existing: Some((lock, dir, first)),
        runbook_path,
    };
    launch.start(&global_for_load, input)
}

/// The `--var` overrides the run was started and resumed with, the
/// latest winning.
fn journaled_vars(events: &[RunEvent]) -> BTreeMap<String, serde_json::Value> {
    let mut vars = BTreeMap::new();
    for e in events {
        if let EventKind::RunStarted { vars: v, .. } | EventKind::RunResumed { vars: v, .. } =
            &e.kind
        {
            vars.extend(v.clone());
        }
    }
    vars
}

fn latest_unfinished(global: &Global) -> Result<String, Error> {
    for id in state::run_ids(&global.state_dir).into_iter().rev() {
        let events = state::read_run(&global.state_dir, &id)?;
        if final_outcome(&events) != Some(RunOutcome::Succeeded) {
            return Ok(id);
        }
    }
    Err(Error::Usage(format!(
        "no unfinished run in {}; `runbook runs` lists the runs",
        global.state_dir.display()
    )))
}
