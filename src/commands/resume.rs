//! `runbook resume [RUN_ID]`: continue from the journal. Finished steps are
//! not run again; steps that were in flight start with their `check`; the
//! runbook is read again from where it was, so a fix made mid-incident is
//! picked up (the journal records the new hashes).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::input::{Input, load_with, overrides, var_text};
use super::run::{Start, require_inventory, sha256};
use crate::cli::{Global, ResumeArgs};
use crate::error::Error;
use crate::events::{EventKind, RunOutcome};
use crate::exec::launch;
use crate::exec::operator;
use crate::exec::probe::describe_exit;
use crate::exec::transport::{Job, groups_script, new_tag};
use crate::journal::{self, RunStatus, RunView, versions};
use crate::redact::eprintln_printable;
use crate::resume::outstanding;
use crate::state::{self, RunDir};

/// How long a host may take to say whether a command still runs.
const STILL_RUNNING_TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(global: &Global, args: &ResumeArgs) -> Result<u8, Error> {
    let operator = operator::resolve(args.exec.operator.as_deref())?;
    let lock = state::lock(&global.state_dir)?;
    let run_id = match &args.run_id {
        Some(id) => id.clone(),
        None => latest_unfinished(global)?,
    };
    let dir = RunDir::open(&global.state_dir, &run_id)?;
    let view = RunView::from_events(&state::read_journal(&dir.journal_path())?);
    if view.status == RunStatus::Finished(RunOutcome::Succeeded) {
        return Err(Error::Usage(format!(
            "run `{run_id}` already succeeded; nothing to resume"
        )));
    }
    if view.selected.is_none() {
        return Err(Error::Runtime(format!(
            "the journal of run `{run_id}` has no start"
        )));
    }
    let runbook_path = PathBuf::from(view.runbook_path.clone().unwrap_or_default());
    let inventory_path = view.inventory_path.clone().map(PathBuf::from);
    let runbook_path = if runbook_path.exists() {
        runbook_path
    } else {
        eprintln_printable!(
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
    let journaled = view.vars.clone();
    let given = overrides(&global.vars)?;
    let inherited: Vec<String> = journaled
        .iter()
        .filter(|(k, _)| !given.contains_key(*k))
        .map(|(k, v)| format!("--var {k}={}", var_text(v)))
        .collect();
    if !inherited.is_empty() {
        eprintln_printable!("note: with the run's {}", inherited.join(" "));
    }
    let input = load_with(&global_for_load, &runbook_path, true, journaled)?;
    require_inventory(&input)?;
    refuse_if_still_running(&run_id, &view, &input, global, args.exec.secrets.as_deref())?;
    let todo = outstanding(&view, &input.runbook);
    let runbook_sha256 = sha256(&input.runbook_source.text);
    warn_changed_since_done(&dir, &view, &input, &todo.done);
    if !view.versions.contains(&runbook_sha256) {
        dir.keep(
            &versions::file_name(&runbook_sha256),
            &input.runbook_source.text,
        )?;
    }
    if !todo.removed.is_empty() {
        eprintln_printable!(
            "note: the runbook no longer has {}: left as they were",
            todo.removed
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !todo.in_flight.is_empty() {
        eprintln_printable!(
            "note: in flight when the run stopped, so their `check` runs first: {}",
            todo.in_flight
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
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
        runbook_sha256,
        inventory_sha256: input.inventory_source.as_ref().map(|s| sha256(&s.text)),
        removed: todo.removed.clone(),
        outstanding: outstanding_ids,
        vars: given,
    };
    let start = Start {
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
        board: None,
    };
    start.start(&global_for_load, input)
}

/// A finished step is not run again, even when its definition changed since
/// it ran: say so, so that nobody believes the new definition ran.
fn warn_changed_since_done(
    dir: &RunDir,
    view: &RunView,
    input: &super::input::Input,
    done: &[Option<crate::events::HostOutcome>],
) {
    let now = versions::step_definitions(&input.runbook_source.text);
    for (step, _) in input
        .runbook
        .steps
        .iter()
        .zip(done)
        .filter(|(_, d)| d.is_some())
    {
        let Some(ran) = view.version_of_step(&step.id) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(versions::kept_copy(&dir.path, ran)) else {
            continue;
        };
        if versions::changed(&versions::step_definitions(&text), &now, &step.id) {
            eprintln!(
                "warning: step `{}` finished before its definition changed; it is not run again, and the report shows the definition that ran",
                step.id
            );
        }
    }
}

/// After the controller was killed (`kill -9`, a crash), a step's command
/// may still run on its host: starting it again would run two copies at
/// once. Each host is asked whether a process tagged with the step's tag
/// still runs; if one does, resume stops and says what to do.
fn refuse_if_still_running(
    run_id: &str,
    view: &RunView,
    input: &Input,
    global: &Global,
    secrets_file: Option<&std::path::Path>,
) -> Result<(), Error> {
    let open = view.unfinished();
    if open.is_empty() {
        return Ok(());
    }
    let inventory = Arc::new(input.inventory.clone().unwrap_or_default());
    let hosts = launch::hosts(Some(&inventory));
    // The check probes one host at a time.
    let transport = launch::transport(
        &inventory,
        login_secrets(&inventory, secrets_file),
        false,
        1,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
    let mut running = Vec::new();
    for u in &open {
        let (Some(host), Some(script)) = (hosts.get(&u.host), groups_script(&u.tag)) else {
            continue;
        };
        // A host without a shell cannot be asked; its commands end with
        // their channel, which the crash closed.
        if host.shell == crate::model::Shell::None {
            continue;
        }
        let job = Job {
            command: &script,
            timeout: Some(STILL_RUNNING_TIMEOUT),
            tag: &new_tag(),
            r#become: None,
        };
        match runtime.block_on(transport.exec(host, job)) {
            Ok(out) if out.exit.success() => {
                let groups: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                if !groups.is_empty() {
                    running.push((u, groups));
                }
            }
            Ok(out) => eprintln_printable!(
                "warning: cannot tell whether step `{}` still runs on `{}` ({}; `pgrep` is needed): its `check` runs first",
                u.step,
                u.host,
                describe_exit(&out.exit)
            ),
            Err(e) => eprintln_printable!(
                "warning: cannot tell whether step `{}` still runs on `{}` ({e}): its `check` runs first",
                u.step,
                u.host
            ),
        }
    }
    transport.shutdown();
    if running.is_empty() {
        return Ok(());
    }
    let state_dir = global.state_dir.display();
    let lines: Vec<String> = running
        .iter()
        .map(|(u, groups)| {
            format!(
                "  step `{}` on `{}`: process group {} (tagged runbook-{}); to stop it, on `{}`: {}",
                u.step,
                u.host,
                groups.join(", "),
                u.tag,
                u.host,
                groups
                    .iter()
                    .map(|g| format!("kill -TERM -{g}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
        .collect();
    Err(Error::Usage(format!(
        "run `{run_id}` still has commands running from before it stopped; resuming now would start them a second time:\n{}\nwait for them to end (or stop them), then run `runbook resume {run_id} --state-dir {state_dir}` again",
        lines.join("\n")
    )))
}

/// The secrets the hosts log in with, to ask them what still runs; one that
/// is missing makes that host's question fail (with a warning), and the run
/// itself then says which secret is missing.
fn login_secrets(
    inventory: &crate::model::Inventory,
    file: Option<&std::path::Path>,
) -> crate::exec::context::Secrets {
    let names = inventory
        .hosts
        .values()
        .flat_map(|h| super::secrets::login_secrets(inventory, h))
        .collect();
    super::secrets::load(&names, file, false).unwrap_or_default()
}

/// The latest run that has not succeeded, saying which one and why; none
/// when unfinished runs of different runbooks make the choice a guess.
fn latest_unfinished(global: &Global) -> Result<String, Error> {
    let runs = journal::runs(&global.state_dir)?;
    let mut open: Vec<(&str, &RunView)> = Vec::new();
    for run in &runs {
        match &run.view {
            Ok(view) if view.status != RunStatus::Finished(RunOutcome::Succeeded) => {
                open.push((&run.id, view));
            }
            Ok(_) => {}
            Err(e) => eprintln_printable!("warning: skipping run {}: {e}", run.id),
        }
    }
    let Some(&(id, view)) = open.last() else {
        return Err(Error::Usage(format!(
            "no unfinished run in {}; `runbook runs` lists the runs",
            global.state_dir.display()
        )));
    };
    let describe = |id: &str, view: &RunView| {
        format!(
            "run {id} of `{}` ({}, started {})",
            view.runbook,
            view.status.label(),
            view.start
        )
    };
    if open.iter().any(|(_, v)| v.runbook != view.runbook) {
        let list: Vec<String> = open
            .iter()
            .rev()
            .map(|(id, v)| format!("  {}", describe(id, v)))
            .collect();
        return Err(Error::Usage(format!(
            "unfinished runs of different runbooks; say which to resume:\n{}\nwith: runbook resume RUN_ID{}",
            list.join("\n"),
            super::run::state_flag(global)
        )));
    }
    eprintln_printable!("resuming {}: the latest unfinished run", describe(id, view));
    Ok(id.to_string())
}
