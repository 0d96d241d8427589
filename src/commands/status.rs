//! `runbook status RUNBOOK -i INV`: only probes, never `run`. A board by
//! phase, step and host of what is up, what is down, and what is unknown.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::input::load;
use crate::cli::{Global, StatusArgs};
use crate::error::{Error, FAILED, SUCCESS};
use crate::exec::context::{self, Secrets};
use crate::exec::launch;
use crate::exec::probe::ProbeJob;
use crate::exec::transport::{Become, Transport, new_tag};
use crate::model::{Host, Runbook};
use crate::redact::Redactor;

#[derive(Debug, Clone)]
enum Cell {
    Up,
    Down(String),
    Unknown(String),
}

pub fn run(global: &Global, args: &StatusArgs) -> Result<u8, Error> {
    let input = load(global, &args.runbook, true)?;
    let selected = vec![true; input.runbook.steps.len()];
    let names = super::secrets::referenced(&input.runbook, input.inventory.as_ref(), &selected);
    let secrets = super::secrets::load(&names, args.secrets.as_deref(), false)?;
    let runbook = Arc::new(input.runbook);
    let inventory = Arc::new(input.inventory.unwrap_or_default());
    let hosts = launch::hosts(Some(&inventory));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
    let transport = launch::transport(&inventory, secrets.clone(), false, args.forks);
    let redactor = Redactor::new(secrets.values.values().cloned());
    let board = runtime.block_on(probe_all(&runbook, &hosts, transport, &secrets, args.forks));
    let (text, all_up) = render(&runbook, Some(&inventory), &board, &redactor);
    // A probe's message quotes what a host or a server answered.
    print!("{}", crate::redact::printable(&text));
    Ok(if all_up { SUCCESS } else { FAILED })
}

type Board = BTreeMap<(usize, String), Cell>;

async fn probe_all(
    runbook: &Arc<Runbook>,
    hosts: &BTreeMap<String, Host>,
    transport: Arc<dyn Transport>,
    secrets: &Secrets,
    forks: usize,
) -> Board {
    let forks = Arc::new(Semaphore::new(forks.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    // A probe task that panics takes its key with it: find it by task.
    let mut keys = std::collections::HashMap::new();
    for (i, step) in runbook.steps.iter().enumerate() {
        for name in &step.hosts {
            let Some(host) = hosts.get(name).cloned() else {
                continue;
            };
            let (runbook, transport, forks) = (
                Arc::clone(runbook),
                Arc::clone(&transport),
                Arc::clone(&forks),
            );
            let ctx = context::for_host(&host, &runbook.vars, secrets);
            let r#become = Become::of(&host, &runbook.steps[i], secrets);
            let key = (i, host.name.clone());
            let task = tasks.spawn(async move {
                let _permit = forks.acquire_owned().await;
                let step = &runbook.steps[i];
                if step.manual.is_some() {
                    Cell::Unknown("manual step".into())
                } else if step.check.is_none() && step.verify.is_none() {
                    Cell::Unknown("no probe".into())
                } else {
                    let when = step.when.map(|w| {
                        runbook
                            .templates
                            .render(w, &ctx)
                            .and_then(|r| context::truth(&r))
                    });
                    match when {
                        Some(Ok(false)) => Cell::Unknown("`when` is false".into()),
                        Some(Err(e)) => Cell::Down(e),
                        _ => {
                            let mut cell = Cell::Up;
                            for p in [&step.check, &step.verify].into_iter().flatten() {
                                let job = ProbeJob {
                                    probe: p,
                                    context: &ctx,
                                    templates: &runbook.templates,
                                    tag: &new_tag(),
                                    before_run: false,
                                    r#become: r#become.as_ref(),
                                };
                                let r = transport.probe(&host, job).await;
                                if !r.passed {
                                    cell = Cell::Down(format!(
                                        "{}: {}",
                                        r.what,
                                        r.detail.unwrap_or_default()
                                    ));
                                    break;
                                }
                            }
                            cell
                        }
                    }
                }
            });
            keys.insert(task.id(), key);
        }
    }
    let mut board = Board::new();
    while let Some(joined) = tasks.join_next_with_id().await {
        let (id, cell) = match joined {
            Ok((id, cell)) => (id, cell),
            Err(e) => (
                e.id(),
                Cell::Down(format!("the probe crashed (a bug in runbook): {e}")),
            ),
        };
        if let Some(key) = keys.remove(&id) {
            board.insert(key, cell);
        }
    }
    board
}

fn render(
    runbook: &Runbook,
    inventory: Option<&crate::model::Inventory>,
    board: &Board,
    redactor: &Redactor,
) -> (String, bool) {
    let mut out = format!("status of `{}`\n", runbook.name);
    let (mut up, mut down, mut unknown) = (0, 0, 0);
    for phase in runbook.phase_slots() {
        let steps: Vec<usize> = (0..runbook.steps.len())
            .filter(|&i| runbook.steps[i].phase == phase)
            .collect();
        if steps.is_empty() {
            continue;
        }
        let name = phase.map_or("no phase", |p| runbook.phases[p].id.as_str());
        let _ = writeln!(out, "\nphase {name}");
        for i in steps {
            let step = &runbook.steps[i];
            let cells = cells(board, i);
            let _ = writeln!(out, "  {:<8} {}", verdict(&cells), step.id);
            for (host, cell) in cells {
                let line = match cell {
                    Cell::Up => {
                        up += 1;
                        "up".to_string()
                    }
                    Cell::Down(why) => {
                        down += 1;
                        format!("DOWN: {}", redactor.redact(why))
                    }
                    Cell::Unknown(why) => {
                        unknown += 1;
                        format!("unknown: {why}")
                    }
                };
                let _ = writeln!(out, "      {host}: {line}");
            }
            // No probe can tell: how a person checks it.
            for line in crate::report::lines::instructions(runbook, step, inventory)
                .iter()
                .flat_map(|m| m.lines())
            {
                let _ = writeln!(out, "      | {line}");
            }
        }
    }
    services(&mut out, runbook, board);
    let _ = writeln!(out, "\n{up} up, {down} down, {unknown} unknown");
    (out, down == 0)
}

fn cells(board: &Board, step: usize) -> Vec<(&String, &Cell)> {
    board
        .range((step, String::new())..(step + 1, String::new()))
        .map(|((_, h), c)| (h, c))
        .collect()
}

fn verdict(cells: &[(&String, &Cell)]) -> &'static str {
    if cells.iter().any(|(_, c)| matches!(c, Cell::Down(_))) {
        "DOWN"
    } else if cells.iter().all(|(_, c)| matches!(c, Cell::Up)) && !cells.is_empty() {
        "up"
    } else {
        "unknown"
    }
}

/// A service is up when the probes of every step that makes it available
/// pass, down when one fails; otherwise no probe can tell (a manual step).
fn services(out: &mut String, runbook: &Runbook, board: &Board) {
    if runbook.services.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nservices");
    let width = runbook
        .services
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(0);
    for service in &runbook.services {
        let verdicts: Vec<(&str, &'static str)> = service
            .ready_when
            .iter()
            .map(|&i| (runbook.steps[i].id.as_str(), verdict(&cells(board, i))))
            .collect();
        let overall = ["DOWN", "unknown"]
            .into_iter()
            .find(|v| verdicts.iter().any(|(_, got)| got == v))
            .unwrap_or("up");
        let not_up: Vec<String> = verdicts
            .iter()
            .filter(|(_, v)| *v != "up")
            .map(|(step, v)| format!("{step} {v}"))
            .collect();
        let why = if not_up.is_empty() {
            String::new()
        } else {
            format!("  ({})", not_up.join(", "))
        };
        let title = service
            .title
            .as_deref()
            .map(|t| format!("  {t}"))
            .unwrap_or_default();
        let _ = writeln!(out, "  {overall:<8} {:width$}{title}{why}", service.id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::exec::transport::{ExecFuture, Exit, Job, Output};

    /// Answers every probe, except that `boom` panics its task.
    struct PanicsOnBoom;

    impl Transport for PanicsOnBoom {
        fn exec<'a>(&'a self, _: &'a Host, job: Job<'a>) -> ExecFuture<'a> {
            Box::pin(async move {
                assert!(!job.command.contains("boom"), "injected probe bug");
                Ok(Output {
                    exit: Exit::Code(0),
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                    stdout_dropped: 0,
                    stderr_dropped: 0,
                    duration: Duration::ZERO,
                })
            })
        }
    }

    #[test]
    fn a_panicking_probe_is_down_and_the_board_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let steps: String = (0..6)
            .map(|i| {
                let command = if i == 0 { "boom" } else { "true" };
                format!("  - {{id: s{i}, check: {{command: '{command}'}}}}\n")
            })
            .collect();
        let runbook = Arc::new(crate::exec::dispatcher::tests::runbook(
            dir.path(),
            &format!("version: 1\nname: board\nsteps:\n{steps}"),
        ));
        let hosts = launch::hosts(None);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let board = runtime.block_on(probe_all(
            &runbook,
            &hosts,
            Arc::new(PanicsOnBoom),
            &Secrets::default(),
            1,
        ));
        assert_eq!(board.len(), 6, "every cell is on the board: {board:?}");
        let (text, all_up) = render(&runbook, None, &board, &Redactor::new(Vec::new()));
        assert!(!all_up, "a crashed probe is not up:\n{text}");
        assert!(text.contains("DOWN: the probe crashed"), "{text}");
    }
}
