//! `runbook run RUNBOOK -i INV [--dry-run] [--only ..] [--from ..] [--tags ..] [--forks N] [--yes] [--operator NAME]`.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Instant;

use super::input::{Input, load};
use crate::cli::{Global, RunArgs};
use crate::error::{Error, FAILED, INTERRUPTED, PAUSED, SUCCESS};
use crate::events::{EventKind, JOURNAL_VERSION, RunOutcome};
use crate::exec::confirm::Confirmer;
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
    let names = super::secrets::referenced(&input.runbook, &selected);
    let secrets = super::secrets::load(&names, args.secrets.as_deref(), args.dry_run)?;
    operator::set(args.operator.as_deref());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(execute(global, args, input, selected, secrets))
}

fn require_inventory(input: &Input) -> Result<(), Error> {
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

fn sha256(text: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

async fn execute(
    global: &Global,
    args: &RunArgs,
    input: Input,
    selected: Vec<bool>,
    secrets: crate::exec::context::Secrets,
) -> Result<u8, Error> {
    let Input {
        runbook,
        inventory,
        runbook_source,
        inventory_source,
    } = input;
    let runbook = Arc::new(runbook);
    let inventory = Arc::new(inventory.unwrap_or_default());
    let host_map = Arc::new(hosts(Some(&inventory)));
    let state_err = |e: state::StateError| Error::Usage(e.to_string());
    let (lock, mut run_dir) = if args.dry_run {
        (None, None)
    } else {
        let lock = state::lock(&global.state_dir).map_err(state_err)?;
        let dir = RunDir::create(&global.state_dir, &state::new_run_id()).map_err(state_err)?;
        dir.keep("runbook.yaml", &runbook_source.text)
            .map_err(state_err)?;
        if let Some(inv) = &inventory_source {
            dir.keep("inventory.yaml", &inv.text).map_err(state_err)?;
        }
        (Some(lock), Some(dir))
    };
    let run_id = run_dir
        .as_ref()
        .map_or_else(|| "dry-run".to_string(), |d| d.id.clone());
    let transport: Arc<dyn Transport> = if args.dry_run {
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
    let mut sinks: Vec<Box<dyn Reporter>> = vec![Box::new(collect.clone())];
    let mut progress_handle = None;
    if terminal && !args.dry_run {
        let estimates: HashMap<String, u64> = runbook
            .steps
            .iter()
            .zip(&selected)
            .filter(|(_, s)| **s)
            .map(|(s, _)| (s.id.clone(), s.estimate.map_or(0, |e| e.std().as_secs())))
            .collect();
        let progress = Progress::new(selected.iter().filter(|s| **s).count(), estimates);
        progress_handle = Some(progress.multi());
        sinks.push(Box::new(progress));
    } else {
        sinks.push(Box::new(Plain {
            dry_run: args.dry_run,
            quiet: global.quiet,
        }));
    }
    let mut reporter = FanOut(sinks);
    let confirmer = Arc::new(Confirmer {
        yes: args.yes,
        interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        progress: progress_handle,
        turn: tokio::sync::Mutex::new(()),
    });
    let first = EventKind::RunStarted {
        version: JOURNAL_VERSION,
        run_id: run_id.clone(),
        runbook: runbook.name.clone(),
        runbook_sha256: sha256(&runbook_source.text),
        inventory_sha256: inventory_source.as_ref().map(|s| sha256(&s.text)),
        operator: operator::current(),
        dry_run: args.dry_run,
        steps: runbook
            .steps
            .iter()
            .zip(&selected)
            .filter(|(_, s)| **s)
            .map(|(s, _)| s.id.clone())
            .collect(),
    };
    let dispatcher = Dispatcher {
        shared: Arc::clone(&shared),
        hosts: host_map,
        confirmer,
        run_dir: run_dir.as_mut(),
        reporter: &mut reporter,
        options: Options {
            forks: args.forks,
            selected,
            operator: operator::current(),
            sequential: args.dry_run,
        },
        started: Instant::now(),
        started_at: std::time::SystemTime::now(),
    };
    let summary = dispatcher.run(events_rx, first).await.map_err(|e| {
        Error::Usage(format!(
            "the journal could not be written, so the run stopped: {e}"
        ))
    })?;
    reporter.finish();
    let events = std::mem::take(
        &mut *collect
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    if !global.quiet {
        print!("{}", render(&runbook, &events));
    }
    drop(lock);
    if !summary.held.is_empty() {
        print_held(global, &run_id, &summary.held);
    }
    Ok(match summary.outcome {
        RunOutcome::Succeeded => SUCCESS,
        RunOutcome::Failed => FAILED,
        RunOutcome::Interrupted => {
            eprintln!(
                "interrupted; the journal is consistent. To continue: runbook resume {run_id}"
            );
            INTERRUPTED
        }
        RunOutcome::Paused => PAUSED,
    })
}

fn print_held(global: &Global, run_id: &str, held: &[(String, bool)]) {
    let state_flag = if global.state_dir.as_os_str() == ".runbook" {
        String::new()
    } else {
        format!(" --state-dir {}", global.state_dir.display())
    };
    eprintln!("\nwaiting for an operator. To go on, type:");
    for (step, confirm) in held {
        if *confirm {
            eprintln!("  runbook confirm {run_id} {step}{state_flag}");
        } else {
            eprintln!("  runbook resume {run_id}{state_flag}   (retries `{step}`), or");
            eprintln!(
                "  runbook mark {run_id} {step} done --note '...'{state_flag}   (fixed by hand), or"
            );
            eprintln!("  runbook mark {run_id} {step} skipped --note '...'{state_flag}");
        }
    }
    eprintln!("  then: runbook resume {run_id}{state_flag}");
}
