//! `runbook resume [RUN_ID]`: continue from the journal. Finished steps are
//! not run again; steps that were in flight start with their `check`; the
//! runbook is read again from where it was, so a fix made mid-incident is
//! picked up (the journal records the new hashes).

use std::path::PathBuf;

use super::input::load;
use super::run::{Launch, require_inventory, sha256};
use crate::cli::{Global, ResumeArgs};
use crate::error::Error;
use crate::events::{EventKind, RunOutcome};
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
    let input = load(&global_for_load, &runbook_path, true)?;
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
    let operator = operator::resolve(args.exec.operator.as_deref());
    let outstanding_ids: Vec<String> = input
        .runbook
        .steps
        .iter()
        .enumerate()
        .filter(|(i, _)| todo.selected[*i] && todo.done[*i].is_none())
        .map(|(_, s)| s.id.clone())
        .collect();
    let first = EventKind::RunResumed {
        operator: operator.clone(),
        runbook_sha256: sha256(&input.runbook_source.text),
        inventory_sha256: input.inventory_source.as_ref().map(|s| sha256(&s.text)),
        removed: todo.removed.clone(),
        outstanding: outstanding_ids,
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
        operator,
    };
    launch.start(&global_for_load, input)
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
