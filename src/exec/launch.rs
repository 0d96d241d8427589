//! The composition root of a run, shared by `run` and `resume` (`status`
//! and `resume`'s still-running check use its transport and hosts too).
//! Each part is built by one function below and [`Launch::run`] only wires
//! them together; reading arguments and printing the end of a run stay in
//! `commands/`.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc::UnboundedReceiver;

use super::confirm::Confirmer;
use super::context::Secrets;
use super::dispatcher::{Dispatcher, Options, Signals, Summary, first_hosts};
use super::transport::{Router, Transport, dry_run::DryRun, local::Local, ssh::SshPool};
use super::worker::Shared;
use crate::events::{EventKind, RunEvent};
use crate::model::{Duration, Host, Inventory, Runbook};
use crate::redact::Redactor;
use crate::report::progress::{Progress, Screen};
use crate::report::summary::Collect;
use crate::report::{FanOut, Reporter, plain::Plain};
use crate::state::{self, Lock, RunDir, StateError};

/// Where a run's events go.
pub enum Journal {
    /// A rehearsal: nothing is locked or written.
    None,
    /// A new run, with the texts it executes (kept in its directory).
    New {
        id: String,
        runbook: String,
        inventory: Option<String>,
    },
    /// `resume`: the run's directory, its state dir already locked.
    Existing(Lock, RunDir),
}

/// A run about to start: new, resumed, or rehearsed.
pub struct Launch {
    pub runbook: Runbook,
    pub inventory: Inventory,
    pub journal: Journal,
    /// The run's first new event: `run-started` or `run-resumed`.
    pub first: EventKind,
    pub options: Options,
    pub dry_run: bool,
    /// `--yes`: confirmations are answered without asking.
    pub yes: bool,
    /// Who started or resumed the run, and answers its confirmations.
    pub operator: String,
    pub secrets: Secrets,
    /// For the step durations of past runs, which the progress bars expect.
    pub state_dir: PathBuf,
    /// The inventory those past runs must have run on to count.
    pub forecast_for: crate::history::Hosts,
    pub quiet: bool,
    /// `run --board`: served while the run goes on.
    pub board: Option<Board>,
}

/// The web board of a run: where it listens, and its token.
pub struct Board {
    pub listener: std::net::TcpListener,
    pub token: Option<String>,
}

/// A run that ended (succeeded, failed, paused or interrupted).
pub struct Finished {
    pub run_id: String,
    pub runbook: Arc<Runbook>,
    pub summary: Summary,
    /// Every event of the run, those before a resumption included.
    pub events: Vec<RunEvent>,
    /// For the instructions of steps left waiting for an operator.
    pub inventory: Arc<Inventory>,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The state dir could not be locked or the run directory made: no
    /// step has started.
    #[error(transparent)]
    State(#[from] StateError),
    /// The journal could not be written: the run stopped rather than go
    /// on without a record.
    #[error("{source}")]
    Journal {
        source: StateError,
        run_id: String,
        /// The run is visible under its id (`resume` finds it).
        published: bool,
    },
}

impl Launch {
    pub fn run(self) -> Result<Finished, LaunchError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(LaunchError::Runtime)?;
        runtime.block_on(self.execute())
    }

    async fn execute(self) -> Result<Finished, LaunchError> {
        let runbook = Arc::new(self.runbook);
        let inventory = Arc::new(self.inventory);
        let hosts = hosts(Some(&inventory));
        let transport = transport(
            &inventory,
            self.secrets.clone(),
            self.dry_run,
            self.options.forks,
        );
        // A run refused because another holds the state dir touches no
        // host: the lock comes before any login.
        let lock = lock_state(&self.state_dir, &self.journal)?;
        // The first steps' hosts log in while the journal and the rest are
        // set up.
        transport.prepare(&first_hosts(&runbook, &self.options, &hosts));
        let (lock, mut run_dir) = open_state(&self.state_dir, self.journal, lock)?;
        let run_id = run_dir
            .as_ref()
            .map_or_else(|| "dry-run".to_string(), |d| d.id.clone());
        let finished: Vec<bool> = (0..runbook.steps.len())
            .map(|i| !self.options.selected[i] || self.options.done[i].is_some())
            .collect();
        let shown = Shown {
            quiet: self.quiet,
            dry_run: self.dry_run,
            state_dir: &self.state_dir,
            forecast_for: &self.forecast_for,
            expected: std::cell::OnceCell::new(),
        };
        let (shared, events) = shared(
            Arc::clone(&runbook),
            transport,
            self.secrets,
            run_dir.as_ref().map(RunDir::logs),
        );
        let subscribers = Subscribers {
            runbook: &runbook,
            shown: &shown,
            finished: &finished,
            run_dir: run_dir.as_ref(),
            shared: &shared,
        };
        let (mut followers, screen) = subscribers.start(self.board);
        let confirmer = confirmer(self.yes, self.dry_run, self.operator, screen);
        let dispatcher = dispatcher(
            Arc::clone(&shared),
            hosts,
            confirmer,
            run_dir.as_mut(),
            &mut followers.reporter,
            self.options,
        );
        let clock = (dispatcher.started, dispatcher.started_at);
        let mut signals = Signals::new();
        let summary = dispatcher
            .run(events, self.first, &mut signals)
            .await
            .map_err(|source| LaunchError::Journal {
                source,
                run_id: run_id.clone(),
                published: run_dir.as_ref().is_some_and(RunDir::is_published),
            })?;
        let collect = followers
            .wind_down(run_dir.as_mut(), clock, &mut signals, summary.killed)
            .await;
        let transport = Arc::clone(&shared.transport);
        let _ = tokio::task::spawn_blocking(move || transport.shutdown()).await;
        drop(lock);
        let events = std::mem::take(
            &mut *collect
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        Ok(Finished {
            run_id,
            runbook,
            summary,
            events,
            inventory,
        })
    }
}

/// What the run's followers are built from.
struct Subscribers<'a> {
    runbook: &'a Arc<Runbook>,
    shown: &'a Shown<'a>,
    finished: &'a [bool],
    run_dir: Option<&'a RunDir>,
    shared: &'a Shared,
}

/// Everything that follows the run's events beside the journal: the
/// reporters (the summary's copy, progress bars or plain lines), the board
/// and the notifier.
struct Followers {
    reporter: FanOut,
    collect: Collect,
    board: Option<crate::board::Live>,
    deliveries: Option<crate::notify::Deliveries>,
}

impl Subscribers<'_> {
    /// The followers, and the progress bars' screen for the confirmer.
    fn start(self, board: Option<Board>) -> (Followers, Option<Screen>) {
        let (mut reporter, collect, screen) =
            reporters(self.runbook, self.shown, self.finished, self.run_dir);
        let board = board
            .zip(self.run_dir)
            .and_then(|(board, dir)| board_sink(board, self.shown.state_dir, &dir.id))
            .map(|(live, sink)| {
                reporter.0.push(Box::new(sink));
                live
            });
        let run_id = self.run_dir.map_or("dry-run", |d| d.id.as_str());
        let deliveries = (!self.shown.dry_run)
            .then(|| {
                notifier(
                    self.runbook,
                    run_id,
                    self.shared,
                    self.shown,
                    self.finished,
                    &collect,
                )
            })
            .flatten()
            .map(|(notifier, deliveries)| {
                reporter.0.push(Box::new(notifier));
                deliveries
            });
        let followers = Followers {
            reporter,
            collect,
            board,
            deliveries,
        };
        (followers, screen)
    }
}

impl Followers {
    /// Once the run's outcome is journaled: the reporters end (the board's
    /// sink lets go of its channel, so the board sends its viewers the last
    /// events), the notifications still queued get their short wait, then
    /// the board stops. Gives back every event, for the summary.
    async fn wind_down(
        mut self,
        run_dir: Option<&mut RunDir>,
        clock: (Instant, SystemTime),
        signals: &mut Signals,
        killed: bool,
    ) -> Collect {
        self.reporter.finish();
        if let Some(deliveries) = self.deliveries {
            journal_late(deliveries, run_dir, clock, signals, killed).await;
        }
        if let Some(live) = self.board {
            live.stop();
        }
        self.collect
    }
}

/// Inventory hosts, plus the controller for steps without targets.
#[must_use]
pub fn hosts(inventory: Option<&Inventory>) -> BTreeMap<String, Host> {
    let mut hosts = inventory.map(|i| i.hosts.clone()).unwrap_or_default();
    let controller =
        inventory.map_or_else(|| Host::controller(BTreeMap::new()), Inventory::controller);
    hosts.entry(controller.name.clone()).or_insert(controller);
    hosts
}

/// Locks the state dir and makes a new run's directory (staged until its
/// start is journaled), keeping the runbook and inventory as executed.
/// The state dir's lock a new run needs (an existing run's is taken).
pub fn lock_state(state_dir: &Path, journal: &Journal) -> Result<Option<Lock>, StateError> {
    match journal {
        Journal::New { .. } => state::lock(state_dir).map(Some),
        Journal::None | Journal::Existing(..) => Ok(None),
    }
}

pub fn open_state(
    state_dir: &Path,
    journal: Journal,
    lock: Option<Lock>,
) -> Result<(Option<Lock>, Option<RunDir>), StateError> {
    match (journal, lock) {
        (Journal::None, _) => Ok((None, None)),
        (Journal::Existing(lock, dir), _) => Ok((Some(lock), Some(dir))),
        (
            Journal::New {
                id,
                runbook,
                inventory,
            },
            lock,
        ) => {
            let lock = match lock {
                Some(lock) => lock,
                None => state::lock(state_dir)?,
            };
            let dir = RunDir::create(state_dir, &id)?;
            dir.keep("runbook.yaml", &runbook)?;
            if let Some(inventory) = &inventory {
                dir.keep("inventory.yaml", inventory)?;
            }
            Ok((Some(lock), Some(dir)))
        }
    }
}

/// How commands reach hosts: chosen once, for the whole run.
#[must_use]
/// `secrets`: those the hosts log in with (passwords, passphrases);
/// `forks`: how many host operations run at once.
pub fn transport(
    inventory: &Arc<Inventory>,
    secrets: Secrets,
    dry_run: bool,
    forks: usize,
) -> Arc<dyn Transport> {
    if dry_run {
        Arc::new(DryRun)
    } else {
        Arc::new(Router {
            local: Local,
            ssh: SshPool::new(Arc::clone(inventory), secrets, forks),
        })
    }
}

/// What the reporters need to know about the run's screen.
pub struct Shown<'a> {
    pub quiet: bool,
    pub dry_run: bool,
    pub state_dir: &'a Path,
    pub forecast_for: &'a crate::history::Hosts,
    /// Each step's expected duration, read from past runs once for the
    /// progress bars and the notifier alike, and only if one needs it.
    pub expected: std::cell::OnceCell<Vec<Duration>>,
}

impl Shown<'_> {
    /// What `plan` forecasts for each step: measured on this inventory,
    /// else its `estimate`.
    fn expected(&self, runbook: &Runbook) -> &[Duration] {
        self.expected.get_or_init(|| {
            let history =
                crate::history::measured(self.state_dir, &runbook.name, self.forecast_for);
            runbook.steps.iter().map(|s| history.expected(s)).collect()
        })
    }
}

/// The reporters: every event kept for the summary (seeded with the
/// journal so far on `resume`), and progress bars on a terminal or plain
/// lines elsewhere. The bars' screen goes to the confirmer, which hides
/// them while it asks.
pub fn reporters(
    runbook: &Arc<Runbook>,
    shown: &Shown<'_>,
    finished: &[bool],
    run_dir: Option<&RunDir>,
) -> (FanOut, Collect, Option<Screen>) {
    let collect = Collect::default();
    if let Some(dir) = run_dir
        && let Ok(before) = state::read_journal(&dir.journal_path())
        && let Ok(mut seed) = collect.0.lock()
    {
        *seed = before;
    }
    let terminal =
        std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() && !shown.quiet;
    let mut sinks: Vec<Box<dyn Reporter>> = vec![Box::new(collect.clone())];
    let mut screen = None;
    if terminal && !shown.dry_run {
        let expected = shown.expected(runbook).to_vec();
        let progress = Progress::new(Arc::clone(runbook), expected, finished.to_vec());
        screen = Some(progress.screen());
        sinks.push(Box::new(progress));
    } else {
        sinks.push(Box::new(Plain {
            dry_run: shown.dry_run,
            quiet: shown.quiet,
        }));
    }
    (FanOut(sinks), collect, screen)
}

/// The reporter posting the runbook's notifications, and what ends them;
/// `None` without `notify`.
fn notifier(
    runbook: &Arc<Runbook>,
    run_id: &str,
    shared: &Shared,
    shown: &Shown<'_>,
    finished: &[bool],
    collect: &Collect,
) -> Option<(crate::notify::Notifier, crate::notify::Deliveries)> {
    if runbook.notify.is_empty() {
        return None;
    }
    let before = collect
        .0
        .lock()
        .map(|events| events.clone())
        .unwrap_or_default();
    crate::notify::start(crate::notify::Start {
        runbook,
        run_id,
        before,
        settled: finished,
        expected: shown.expected(runbook).to_vec(),
        secrets: &shared.secrets,
        redactor: &shared.redactor,
        journal: &shared.events,
    })
}

/// Waits a short while for the notifications still queued (not at all
/// once the operator interrupted twice, or interrupts now), then journals
/// what the dispatcher could not: those settled after its end, and those
/// given up on. The run's outcome is already journaled: a failure to write
/// these is only logged.
async fn journal_late(
    deliveries: crate::notify::Deliveries,
    run_dir: Option<&mut RunDir>,
    (started, started_at): (Instant, SystemTime),
    signals: &mut Signals,
    killed: bool,
) {
    let give_up = deliveries.give_up();
    if killed {
        give_up.now();
    }
    let mut waiting = tokio::task::spawn_blocking(move || deliveries.finish());
    let late = loop {
        tokio::select! {
            late = &mut waiting => break late.unwrap_or_default(),
            () = signals.next() => give_up.now(),
        }
    };
    for kind in &late {
        if let EventKind::NotificationFailed {
            notification,
            webhook,
            reason,
            ..
        } = kind
        {
            tracing::warn!(
                "notification {} to webhook {webhook} not delivered: {reason}",
                notification.label()
            );
        }
    }
    let Some(dir) = run_dir.filter(|_| !late.is_empty()) else {
        return;
    };
    let events: Vec<RunEvent> = late
        .into_iter()
        .map(|kind| RunEvent::stamped(kind, started_at, started.elapsed()))
        .collect();
    if let Err(e) = tokio::task::block_in_place(|| dir.append(&events)) {
        tracing::warn!("cannot journal the notifications' results: {e}");
    }
}
/// The board's server, on a thread of its own, and the sink that feeds it.
fn board_sink(
    board: Board,
    state_dir: &Path,
    run_id: &str,
) -> Option<(crate::board::Live, crate::board::Sink)> {
    let url = crate::board::url(&board.listener, board.token.as_deref());
    match crate::board::Live::start(
        board.listener,
        board.token,
        state_dir.to_path_buf(),
        run_id.to_string(),
    ) {
        Ok(started) => {
            // Even with `--quiet`: where to look is what `--board` asked.
            eprintln!("board: {url}");
            Some(started)
        }
        Err(e) => {
            tracing::warn!("no board: {e}");
            None
        }
    }
}

/// Who answers manual steps and confirmations: `--yes`, the operator on a
/// terminal, or nobody (the run pauses for `runbook confirm`).
#[must_use]
pub fn confirmer(
    yes: bool,
    dry_run: bool,
    operator: String,
    screen: Option<Screen>,
) -> Arc<Confirmer> {
    Arc::new(Confirmer {
        yes,
        dry_run,
        interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        screen,
        operator,
        ..Confirmer::default()
    })
}

/// What every worker of the run shares, and the channel their events
/// reach the dispatcher on. A dry-run's secrets are already the mask:
/// there is nothing to redact.
pub(crate) fn shared(
    runbook: Arc<Runbook>,
    transport: Arc<dyn Transport>,
    secrets: Secrets,
    logs: Option<PathBuf>,
) -> (Arc<Shared>, UnboundedReceiver<EventKind>) {
    let redactor = Redactor::new(if secrets.masked {
        Vec::new()
    } else {
        secrets.values.values().cloned().collect()
    });
    let (events, receiver) = tokio::sync::mpsc::unbounded_channel();
    let shared = Shared {
        runbook,
        transport,
        secrets,
        redactor,
        logs,
        events,
    };
    (Arc::new(shared), receiver)
}

/// The dispatcher over the run's steps, its clock started now.
pub fn dispatcher<'a>(
    shared: Arc<Shared>,
    hosts: BTreeMap<String, Host>,
    confirmer: Arc<Confirmer>,
    run_dir: Option<&'a mut RunDir>,
    reporter: &'a mut dyn Reporter,
    options: Options,
) -> Dispatcher<'a> {
    Dispatcher {
        shared,
        hosts: Arc::new(hosts),
        confirmer,
        run_dir,
        reporter,
        options,
        started: Instant::now(),
        started_at: SystemTime::now(),
    }
}
