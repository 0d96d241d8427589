//! `runbook run RUNBOOK -i INV [--dry-run] [--only ..] [--from ..] [--tags ..] [--forks N] [--yes] [--operator NAME]`,
//! and the launch of a run shared with `resume`.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::input::{Input, load, overrides, var_text};
use crate::cli::{Global, RunArgs};
use crate::error::{Error, FAILED, INTERRUPTED, PAUSED, SUCCESS};
use crate::events::{EventKind, HostOutcome, JOURNAL_VERSION, RunOutcome};
use crate::exec::confirm::Confirmer;
use crate::exec::context::Secrets;
use crate::exec::dispatcher::{Dispatcher, Options};
use crate::exec::operator;
use crate::exec::selection::Selection;
use crate::exec::transport::{Router, Transport, dry_run::DryRun, local::Local, ssh::SshPool};
use crate::exec::worker::Shared;
use crate::model::{Host, Inventory};
use crate::redact::Redactor;
use crate::report::summary::{Collect, render};
use crate::report::{FanOut, Reporter, plain::Plain, progress::Progress};
use crate::state::{self, RunDir};

pub fn run(global: &Global, args: &RunArgs) -> Result<u8, Error> {
    let input = load(global, &args.runbook, true)?;
    require_inventory(&input)?;
    let selection = Selection {
        only: args.only.clone(),
        from: args.from.clone(),
        tags: args.tags.clone(),
    };
    let selected = selection.resolve(&input.runbook).map_err(Error::Usage)?;
    let n = input.runbook.steps.len();
    let launch = Launch {
        dry_run: args.dry_run,
        forks: args.exec.forks,
        yes: args.exec.yes,
        secrets_file: args.exec.secrets.clone(),
        selected,
        done: vec![None; n],
        confirmed: vec![false; n],
        existing: None,
        runbook_path: args.runbook.clone(),
        operator: operator::resolve(args.exec.operator.as_deref()),
    };
    launch.start(global, input)
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

/// Inventory hosts, plus the controller for steps without targets.
pub fn hosts(inventory: Option<&Inventory>) -> BTreeMap<String, Host> {
    let mut hosts = inventory.map(|i| i.hosts.clone()).unwrap_or_default();
    let controller =
        inventory.map_or_else(|| Host::controller(BTreeMap::new()), Inventory::controller);
    hosts.entry(controller.name.clone()).or_insert(controller);
    hosts
}

pub fn sha256(text: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A run about to start: new, or resumed from its journal.
pub struct Launch {
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
}

impl Launch {
    pub fn start(self, global: &Global, input: Input) -> Result<u8, Error> {
        let pending: Vec<bool> = self
            .selected
            .iter()
            .zip(&self.done)
            .map(|(s, d)| *s && d.is_none())
            .collect();
        let names = super::secrets::referenced(&input.runbook, &pending);
        let secrets = super::secrets::load(&names, self.secrets_file.as_deref(), self.dry_run)?;
        no_secret_in_vars(global, &secrets)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Runtime(format!("cannot start the async runtime: {e}")))?;
        runtime.block_on(self.execute(global, input, secrets))
    }

    async fn execute(self, global: &Global, input: Input, secrets: Secrets) -> Result<u8, Error> {
        let Input {
            runbook,
            inventory,
            runbook_source,
            inventory_source,
        } = input;
        let runbook = Arc::new(runbook);
        let inventory = Arc::new(inventory.unwrap_or_default());
        let host_map = Arc::new(hosts(Some(&inventory)));
        let (lock, mut run_dir, first) = match self.existing {
            Some((lock, dir, first)) => (Some(lock), Some(dir), first),
            None if self.dry_run => (
                None,
                None,
                self.started_event(
                    "dry-run",
                    &runbook.name,
                    &runbook_source.text,
                    inventory_source.as_ref().map(|s| s.text.as_str()),
                    global,
                    &runbook.steps,
                ),
            ),
            None => {
                let lock = state::lock(&global.state_dir)?;
                let dir = RunDir::create(&global.state_dir, &state::new_run_id())?;
                dir.keep("runbook.yaml", &runbook_source.text)?;
                if let Some(inv) = &inventory_source {
                    dir.keep("inventory.yaml", &inv.text)?;
                }
                let first = self.started_event(
                    &dir.id,
                    &runbook.name,
                    &runbook_source.text,
                    inventory_source.as_ref().map(|s| s.text.as_str()),
                    global,
                    &runbook.steps,
                );
                (Some(lock), Some(dir), first)
            }
        };
        let run_id = run_dir
            .as_ref()
            .map_or_else(|| "dry-run".to_string(), |d| d.id.clone());
        let transport: Arc<dyn Transport> = if self.dry_run {
            Arc::new(DryRun)
        } else {
            Arc::new(Router {
                local: Local,
                ssh: SshPool::new(Arc::clone(&inventory)),
            })
        };
        let redactor = Redactor::new(if secrets.masked {
            Vec::new()
        } else {
            secrets.values.values().cloned().collect()
        });
        let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            runbook: Arc::clone(&runbook),
            transport,
            secrets,
            redactor,
            logs: run_dir.as_ref().map(RunDir::logs),
            events: events_tx,
        });
        let terminal =
            std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() && !global.quiet;
        let collect = Collect::default();
        if let Some(dir) = &run_dir
            && let Ok(before) = state::read_journal(&dir.journal_path())
            && let Ok(mut seed) = collect.0.lock()
        {
            *seed = before;
        }
        let mut sinks: Vec<Box<dyn Reporter>> = vec![Box::new(collect.clone())];
        let mut screen = None;
        let to_run = |i: usize| self.selected[i] && self.done[i].is_none();
        if terminal && !self.dry_run {
            let measured = crate::history::measured(
                &global.state_dir,
                &runbook.name,
                &crate::history::Hosts::of(inventory_source.as_ref()),
            );
            let expected = runbook
                .steps
                .iter()
                .map(|step| {
                    measured
                        .get(&step.id)
                        .map(|m| crate::model::Duration(m.median))
                        .or(step.estimate)
                        .unwrap_or(crate::model::Duration::from_secs(0))
                })
                .collect();
            let finished = (0..runbook.steps.len()).map(|i| !to_run(i)).collect();
            let progress = Progress::new(Arc::clone(&runbook), expected, finished);
            screen = Some(progress.screen());
            sinks.push(Box::new(progress));
        } else {
            sinks.push(Box::new(Plain {
                dry_run: self.dry_run,
                quiet: global.quiet,
            }));
        }
        let mut reporter = FanOut(sinks);
        let confirmer = Arc::new(Confirmer {
            yes: self.yes,
            dry_run: self.dry_run,
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
            screen,
            operator: self.operator.clone(),
            ..Confirmer::default()
        });
        let dispatcher = Dispatcher {
            shared: Arc::clone(&shared),
            hosts: host_map,
            confirmer,
            run_dir: run_dir.as_mut(),
            reporter: &mut reporter,
            options: Options {
                forks: self.forks,
                selected: self.selected.clone(),
                done: self.done.clone(),
                confirmed: self.confirmed.clone(),
                sequential: self.dry_run,
            },
            started: Instant::now(),
            started_at: std::time::SystemTime::now(),
        };
        let summary = dispatcher
            .run(events_rx, first)
            .await
            .map_err(|source| Error::Journal {
                source,
                next: if run_dir.as_ref().is_some_and(RunDir::is_published) {
                    format!(
                        "the journal is whole up to that point: once that is fixed (e.g. space freed), \
                         continue with: runbook resume {run_id}{}",
                        state_flag(global)
                    )
                } else {
                    "no step had started: run it again once that is fixed".to_string()
                },
            })?;
        reporter.finish();
        let transport = Arc::clone(&shared.transport);
        let _ = tokio::task::spawn_blocking(move || transport.shutdown()).await;
        let events = std::mem::take(
            &mut *collect
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let view = crate::journal::RunView::from_events(&events);
        if !global.quiet {
            print!("{}", render(&runbook, &view));
        }
        drop(lock);
        if !summary.held.is_empty() {
            print_held(global, &run_id, &runbook, &inventory, &summary.held);
        } else if summary.outcome == RunOutcome::Failed && run_dir.is_some() {
            print_failed(global, &run_id, &view);
        }
        Ok(match summary.outcome {
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
        })
    }

    fn started_event(
        &self,
        run_id: &str,
        name: &str,
        runbook_text: &str,
        inventory_text: Option<&str>,
        global: &Global,
        steps: &[crate::model::Step],
    ) -> EventKind {
        EventKind::RunStarted {
            version: JOURNAL_VERSION,
            run_id: run_id.to_string(),
            runbook: name.to_string(),
            runbook_sha256: sha256(runbook_text),
            inventory_sha256: inventory_text.map(sha256),
            operator: self.operator.clone(),
            dry_run: self.dry_run,
            steps: steps
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
    inventory: &Inventory,
    held: &[(String, crate::events::PauseReason)],
) {
    let flag = state_flag(global);
    eprintln!("\nwaiting for an operator. To go on, type:");
    for (step, reason) in held {
        if reason.needs_confirmation() {
            eprintln!("  runbook confirm {run_id} {step}{flag}");
            // Nobody saw a prompt: what the operator must do first.
            let Some(s) = runbook.steps.iter().find(|s| s.id == *step) else {
                continue;
            };
            if let Some(title) = &s.title {
                eprintln!("      {title}");
            }
            let manual = crate::report::lines::instructions(runbook, s, Some(inventory));
            for line in manual.iter().flat_map(|m| m.lines()) {
                eprintln!("      | {line}");
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

fn retry_or_mark(run_id: &str, step: &str, flag: &str) {
    eprintln!("  runbook resume {run_id}{flag}   (retries `{step}`), or");
    eprintln!("  runbook mark {run_id} {step} done --note '...'{flag}   (fixed by hand), or");
    eprintln!("  runbook mark {run_id} {step} skipped --note '...'{flag}");
}
