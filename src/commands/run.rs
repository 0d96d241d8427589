//! `runbook run RUNBOOK -i INV [--dry-run] [--only ..] [--from ..] [--tags ..] [--forks N] [--yes] [--operator NAME]`,
//! and the arguments of a run shared with `resume`: what `exec::launch`
//! starts, and what is printed once it ends.

use std::path::PathBuf;

use super::input::{Input, load, overrides, var_text};
use crate::cli::{Global, RunArgs};
use crate::error::{Error, FAILED, INTERRUPTED, PAUSED, SUCCESS};
use crate::events::{EventKind, HostOutcome, JOURNAL_VERSION, RunOutcome};
use crate::exec::context::Secrets;
use crate::exec::dispatcher::Options;
use crate::exec::launch::{Board, Finished, Journal, Launch, LaunchError};
use crate::exec::operator;
use crate::exec::selection::Selection;
use crate::journal::RunView;
use crate::redact::printable;
use crate::report::summary::render;
use crate::state::{self, RunDir};

pub fn run(global: &Global, args: &RunArgs) -> Result<u8, Error> {
    let operator = operator::resolve(args.exec.operator.as_deref())?;
    let input = load(global, &args.runbook, true)?;
    require_inventory(&input)?;
    let selection = Selection {
        only: args.only.clone(),
        from: args.from.clone(),
        tags: args.tags.clone(),
    };
    let selected = selection.resolve(&input.runbook).map_err(Error::Usage)?;
    let n = input.runbook.steps.len();
    let start = Start {
        dry_run: args.dry_run,
        forks: args.exec.forks,
        yes: args.exec.yes,
        secrets_file: args.exec.secrets.clone(),
        selected,
        done: vec![None; n],
        confirmed: vec![false; n],
        existing: None,
        runbook_path: args.runbook.clone(),
        operator,
        board: board(args)?,
    };
    start.start(global, input)
}

/// `--board ADDR`: bound before anything starts, so that a bad address
/// stops the command with nothing done.
fn board(args: &RunArgs) -> Result<Option<Board>, Error> {
    let Some(addr) = args.board else {
        return Ok(None);
    };
    if args.dry_run {
        return Err(Error::Usage(
            "`--board` shows a run's journal, and a dry run keeps none".into(),
        ));
    }
    let listener = crate::board::listen(addr, args.board_token.as_deref())
        .map_err(|e| Error::Usage(e.to_string()))?;
    Ok(Some(Board {
        listener,
        token: args.board_token.clone(),
    }))
}

pub fn require_inventory(input: &Input) -> Result<(), Error> {
    if input.inventory.is_none()
        && let Some(step) = input.runbook.steps.iter().find(|s| s.targets.is_some())
    {
        return Err(Error::Usage(format!(
            "step `{}` names targets, so `run` needs an inventory: pass `-i INVENTORY`",
            step.id
        )));
    }
    Ok(())
}

pub fn sha256(text: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A run about to start, as its arguments (or its journal) describe it.
pub struct Start {
    pub dry_run: bool,
    pub forks: usize,
    pub yes: bool,
    pub secrets_file: Option<PathBuf>,
    pub selected: Vec<bool>,
    pub done: Vec<Option<HostOutcome>>,
    pub confirmed: Vec<bool>,
    /// `resume`: the run directory (locked) and its first new event.
    pub existing: Option<(state::Lock, RunDir, EventKind)>,
    pub runbook_path: PathBuf,
    /// Who started or resumed the run, and answers its confirmations.
    pub operator: String,
    /// `--board ADDR`, bound.
    pub board: Option<Board>,
}

impl Start {
    pub fn start(mut self, global: &Global, input: Input) -> Result<u8, Error> {
        let pending: Vec<bool> = self
            .selected
            .iter()
            .zip(&self.done)
            .map(|(s, d)| *s && d.is_none())
            .collect();
        let names = super::secrets::referenced(&input.runbook, input.inventory.as_ref(), &pending);
        let secrets = super::secrets::load(&names, self.secrets_file.as_deref(), self.dry_run)?;
        no_secret_in_vars(global, &secrets)?;
        webhooks_are_urls(&input.runbook, &secrets)?;
        let (journal, first) = self.journal(global, &input);
        let forecast_for = crate::history::Hosts::of(input.inventory_source.as_ref());
        let launch = Launch {
            runbook: input.runbook,
            inventory: input.inventory.unwrap_or_default(),
            journal,
            first,
            options: Options {
                forks: self.forks,
                selected: self.selected,
                done: self.done,
                confirmed: self.confirmed,
                sequential: self.dry_run,
            },
            dry_run: self.dry_run,
            yes: self.yes,
            operator: self.operator,
            secrets,
            state_dir: global.state_dir.clone(),
            forecast_for,
            quiet: global.quiet,
            board: self.board.take(),
        };
        match launch.run() {
            Ok(finished) => Ok(finish(global, &finished)),
            Err(LaunchError::Runtime(e)) => Err(Error::Runtime(format!(
                "cannot start the async runtime: {e}"
            ))),
            Err(LaunchError::State(e)) => Err(e.into()),
            Err(LaunchError::Journal {
                source,
                run_id,
                published,
            }) => Err(Error::Journal {
                source,
                next: if published {
                    format!(
                        "the journal is whole up to that point: once that is fixed (e.g. space freed), \
                         continue with: runbook resume {run_id}{}",
                        state_flag(global)
                    )
                } else {
                    "no step had started: run it again once that is fixed".to_string()
                },
            }),
        }
    }

    /// Where the run's events go, and its first one.
    fn journal(&mut self, global: &Global, input: &Input) -> (Journal, EventKind) {
        if let Some((lock, dir, first)) = self.existing.take() {
            return (Journal::Existing(lock, dir), first);
        }
        let id = if self.dry_run {
            "dry-run".to_string()
        } else {
            state::new_run_id()
        };
        let first = self.started_event(&id, global, input);
        let journal = if self.dry_run {
            Journal::None
        } else {
            Journal::New {
                id,
                runbook: input.runbook_source.text.clone(),
                inventory: input.inventory_source.as_ref().map(|s| s.text.clone()),
            }
        };
        (journal, first)
    }

    fn started_event(&self, run_id: &str, global: &Global, input: &Input) -> EventKind {
        let runbook = &input.runbook;
        EventKind::RunStarted {
            version: JOURNAL_VERSION,
            run_id: run_id.to_string(),
            runbook: runbook.name.clone(),
            runbook_sha256: sha256(&input.runbook_source.text),
            inventory_sha256: input.inventory_source.as_ref().map(|s| sha256(&s.text)),
            operator: self.operator.clone(),
            dry_run: self.dry_run,
            steps: runbook
                .steps
                .iter()
                .zip(&self.selected)
                .filter(|(_, s)| **s)
                .map(|(s, _)| s.id.clone())
                .collect(),
            runbook_path: absolute(&self.runbook_path),
            inventory_path: global.inventory.as_deref().map(absolute),
            // Already parsed once by `load`.
            vars: overrides(&global.vars).unwrap_or_default(),
        }
    }
}

/// The end of a run on the screen: its summary, what waits for an
/// operator, and its exit code.
fn finish(global: &Global, finished: &Finished) -> u8 {
    let Finished {
        run_id,
        runbook,
        summary,
        events,
        inventory,
    } = finished;
    let view = RunView::from_events(events);
    if !global.quiet {
        let services = crate::report::services::of_run(runbook, &view, &global.state_dir);
        print!("{}", render(runbook, &view, &services));
    }
    if !summary.held.is_empty() {
        print_held(global, run_id, runbook, inventory, &summary.held);
    } else if summary.outcome == RunOutcome::Failed && !view.dry_run {
        print_failed(global, run_id, &view);
    }
    match summary.outcome {
        RunOutcome::Succeeded => SUCCESS,
        RunOutcome::Failed => FAILED,
        RunOutcome::Interrupted => {
            eprintln!(
                "interrupted; the journal is consistent. To continue: runbook resume {run_id}{}",
                state_flag(global)
            );
            INTERRUPTED
        }
        RunOutcome::Paused => PAUSED,
    }
}

/// `--var` values are journaled (for `resume`), and a secret's value must
/// never be: one given as a `--var` is refused before anything runs.
fn no_secret_in_vars(global: &Global, secrets: &Secrets) -> Result<(), Error> {
    for (name, value) in overrides(&global.vars)? {
        let text = var_text(&value);
        if let Some(secret) = secrets
            .values
            .iter()
            .find(|(_, v)| !v.trim().is_empty() && v.trim() == text.trim())
            .map(|(k, _)| k)
        {
            return Err(Error::Usage(format!(
                "`--var {name}` holds the value of the secret `{secret}`, and `--var` values are \
                 journaled: pass secrets only with RUNBOOK_SECRET_{secret} or `--secrets FILE`"
            )));
        }
    }
    Ok(())
}

/// A webhook kept in a secret is only known once the secret is read: one
/// that is not an http(s) URL would fail every attempt for minutes, so the
/// run does not start. Its value is never shown.
fn webhooks_are_urls(runbook: &crate::model::Runbook, secrets: &Secrets) -> Result<(), Error> {
    if secrets.masked {
        return Ok(());
    }
    for (i, notify) in runbook.notify.iter().enumerate() {
        let crate::model::Webhook::Secret(name) = &notify.webhook else {
            continue;
        };
        let Some(value) = secrets.values.get(name) else {
            continue;
        };
        if let Err(reason) = crate::validate::http_url(value) {
            return Err(Error::Usage(format!(
                "the secret `{name}` of webhook {} in `notify` is not an http:// or https:// URL \
                 ({reason}); no host was touched",
                i + 1
            )));
        }
    }
    Ok(())
}

fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

pub fn state_flag(global: &Global) -> String {
    if global.state_dir.as_os_str() == ".runbook" {
        String::new()
    } else {
        format!(" --state-dir {}", global.state_dir.display())
    }
}

fn print_held(
    global: &Global,
    run_id: &str,
    runbook: &crate::model::Runbook,
    inventory: &crate::model::Inventory,
    held: &[(String, crate::events::PauseReason)],
) {
    let flag = state_flag(global);
    eprintln!("\nwaiting for an operator. To go on, type:");
    for (step, reason) in held {
        if reason.needs_confirmation() {
            eprintln!("  runbook confirm {run_id} {}{flag}", printable(step));
            // Nobody saw a prompt: what the operator must do first.
            let Some(s) = runbook.steps.iter().find(|s| s.id == *step) else {
                continue;
            };
            if let Some(title) = &s.title {
                eprintln!("      {}", printable(title));
            }
            let manual = crate::report::lines::instructions(runbook, s, Some(inventory));
            for line in manual.iter().flat_map(|m| m.lines()) {
                eprintln!("      | {}", printable(line));
            }
        } else {
            retry_or_mark(run_id, step, &flag);
        }
    }
    eprintln!("  then: runbook resume {run_id}{flag}");
}

/// A failed run says what to type next, as a paused one does.
fn print_failed(global: &Global, run_id: &str, view: &crate::journal::RunView) {
    let failed: Vec<&str> = view
        .steps
        .iter()
        .filter(|s| s.status.is_failure())
        .map(|s| s.id.as_str())
        .collect();
    if failed.is_empty() {
        return;
    }
    let flag = state_flag(global);
    eprintln!("\nthe run failed. Once the cause is fixed, type:");
    for step in failed {
        retry_or_mark(run_id, step, &flag);
    }
    eprintln!("  then: runbook resume {run_id}{flag}");
}

/// `step` as a resumed run's journal names it: anyone's writing.
fn retry_or_mark(run_id: &str, step: &str, flag: &str) {
    let step = printable(step);
    eprintln!("  runbook resume {run_id}{flag}   (retries `{step}`), or");
    eprintln!("  runbook mark {run_id} {step} done --note '...'{flag}   (fixed by hand), or");
    eprintln!("  runbook mark {run_id} {step} skipped --note '...'{flag}");
}
