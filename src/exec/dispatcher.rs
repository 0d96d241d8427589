//! The dispatcher owns the run state. It starts every step whose
//! dependencies are satisfied (no wave barriers), collects worker events,
//! writes them to the journal (one fsync per batch, before acting on
//! them), feeds the reporter, applies failure policies and signals.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;

use super::confirm::{Answer, Confirmer};
use super::worker::{Shared, millis, run_host};
use crate::events::{EventKind, HostOutcome, PauseReason, RunEvent, RunOutcome};
use crate::model::{Host, OnFailure, Runbook};
use crate::report::Reporter;
use crate::state::{RunDir, StateError};

/// After the first Ctrl-C, how long running commands may take to finish.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Done(HostOutcome),
    Blocked,
    Unselected,
    /// Waiting for an operator.
    Held,
}

pub struct Options {
    pub forks: usize,
    pub selected: Vec<bool>,
    /// Steps finished before (`resume`): not run again.
    pub done: Vec<Option<HostOutcome>>,
    /// Steps an operator already confirmed (`runbook confirm`).
    pub confirmed: Vec<bool>,
    /// Start one step at a time (dry-run: a readable, stable order).
    pub sequential: bool,
}

pub struct Summary {
    pub outcome: RunOutcome,
    /// Steps waiting for an operator: `(id, needs a confirmation)`; the
    /// others failed under `on_failure: pause`.
    pub held: Vec<(String, PauseReason)>,
    /// A second interrupt killed the running steps: the operator wants out
    /// now, not after the notifications still queued.
    pub killed: bool,
}

enum Stop {
    Abort,
    Pause,
    Interrupt,
}

pub struct Dispatcher<'a> {
    pub shared: Arc<Shared>,
    pub hosts: Arc<BTreeMap<String, Host>>,
    pub confirmer: Arc<Confirmer>,
    pub run_dir: Option<&'a mut RunDir>,
    pub reporter: &'a mut dyn Reporter,
    pub options: Options,
    pub started: Instant,
    pub started_at: std::time::SystemTime,
}

/// How a step task ended.
pub enum StepEnd {
    Finished(HostOutcome),
    /// It waits for an operator; only it and its dependents stop.
    Held(PauseReason),
    /// The run was interrupted at its question: started and not finished in
    /// the journal, so `resume` asks again.
    Interrupted,
}

type StepDone = (usize, StepEnd);

impl Dispatcher<'_> {
    fn runbook(&self) -> &Runbook {
        &self.shared.runbook
    }

    fn stamp(&self, kind: EventKind) -> RunEvent {
        RunEvent::stamped(kind, self.started_at, self.started.elapsed())
    }

    /// Journals (durably) then reports a batch of events.
    fn record(&mut self, kinds: Vec<EventKind>) -> Result<(), StateError> {
        if kinds.is_empty() {
            return Ok(());
        }
        let events: Vec<RunEvent> = kinds.into_iter().map(|k| self.stamp(k)).collect();
        if let Some(dir) = self.run_dir.as_deref_mut() {
            off_the_workers(|| dir.append(&events))?;
        }
        for e in &events {
            self.reporter.event(e);
        }
        Ok(())
    }

    fn ready(&self, state: &[State], step: usize) -> bool {
        ready(self.runbook(), state, step)
    }

    /// Marks every pending step downstream of `failed` as blocked.
    fn block_dependents(&self, state: &mut [State], failed: usize, out: &mut Vec<EventKind>) {
        let dag = &self.runbook().dag;
        let mut stack: Vec<usize> = dag.succs[failed].clone();
        let mut seen = vec![false; dag.len()];
        while let Some(node) = stack.pop() {
            if std::mem::replace(&mut seen[node], true) {
                continue;
            }
            if dag.is_step(node) {
                if state[node] != State::Pending {
                    continue;
                }
                state[node] = State::Blocked;
                out.push(EventKind::StepBlocked {
                    step: self.runbook().steps[node].id.clone(),
                    by: self.runbook().steps[failed].id.clone(),
                });
            }
            stack.extend(dag.succs[node].iter().copied());
        }
    }

    pub async fn run(
        mut self,
        mut events: UnboundedReceiver<EventKind>,
        first: EventKind,
        signals: &mut Signals,
    ) -> Result<Summary, StateError> {
        let mut run = self.begin();
        self.record(vec![first])?;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        // What a step's end leaves to journal: it goes with the starts of
        // the steps it lets go, one write for both.
        let mut settled = Vec::new();
        loop {
            self.start_ready(&mut run, std::mem::take(&mut settled))?;
            if run.tasks.is_empty() {
                break;
            }
            let grace = grace_over(run.interrupted_at);
            tokio::select! {
                Some(kind) = events.recv() => {
                    let mut batch = vec![kind];
                    batch.extend(pending(&mut events));
                    self.record(batch)?;
                }
                Some(joined) = run.tasks.join_next_with_id() => {
                    let batch = pending(&mut events);
                    settled = self.step_ended(&mut run, joined, batch)?;
                }
                () = signals.next() => {
                    if self.interrupt(&mut run).await {
                        break;
                    }
                }
                () = grace => {
                    abandon(&mut run.tasks).await;
                    break;
                }
                _ = tick.tick() => self.reporter.tick(),
            }
        }
        self.finish(run)
    }

    fn begin(&self) -> Run {
        let n = self.runbook().steps.len();
        let state = initial_state(&self.options, n);
        Run {
            state,
            forks: Arc::new(Semaphore::new(self.options.forks.max(1))),
            tasks: JoinSet::new(),
            task_step: HashMap::new(),
            step_started: vec![None; n],
            stop: None,
            failed_any: false,
            held: Vec::new(),
            interrupted_at: None,
            killed: false,
        }
    }

    /// Starts every step whose dependencies are satisfied (no wave
    /// barriers), or only the next one when steps go one at a time; none
    /// once the run stops. Their starts are journaled after `batch`, in one
    /// write (one fsync: on the way from a step's end to the next one's
    /// start), before any of them runs.
    fn start_ready(&mut self, run: &mut Run, mut batch: Vec<EventKind>) -> Result<(), StateError> {
        let mut starting = Vec::new();
        for i in 0..run.state.len() {
            if run.stop.is_some()
                || (self.options.sequential && !(run.tasks.is_empty() && starting.is_empty()))
            {
                break;
            }
            if self.ready(&run.state, i) {
                run.state[i] = State::Running;
                run.step_started[i] = Some(Instant::now());
                let hosts: Vec<Host> = self.runbook().steps[i]
                    .hosts
                    .iter()
                    .filter_map(|h| self.hosts.get(h).cloned())
                    .collect();
                batch.push(EventKind::StepStarted {
                    step: self.runbook().steps[i].id.clone(),
                    hosts: hosts.iter().map(|h| h.name.clone()).collect(),
                });
                starting.push((i, hosts));
            }
        }
        self.record(batch)?;
        for (i, hosts) in starting {
            self.spawn_step(run, i, hosts);
        }
        Ok(())
    }

    fn spawn_step(&self, run: &mut Run, i: usize, hosts: Vec<Host>) {
        let shared = Arc::clone(&self.shared);
        let forks = Arc::clone(&run.forks);
        let confirmer = Arc::clone(&self.confirmer);
        let confirmed = self.options.confirmed.get(i).copied().unwrap_or(false);
        let sequential = self.options.sequential;
        let task = run.tasks.spawn(async move {
            let end = step_task(shared, confirmer, forks, i, hosts, confirmed, sequential).await;
            (i, end)
        });
        run.task_step.insert(task.id(), i);
    }

    /// A step task ended: what its hosts did, then its end and what that
    /// means for the run, to journal (what a crashed step did is journaled
    /// at once).
    fn step_ended(
        &mut self,
        run: &mut Run,
        joined: Result<(tokio::task::Id, StepDone), tokio::task::JoinError>,
        mut batch: Vec<EventKind>,
    ) -> Result<Vec<EventKind>, StateError> {
        let (i, end) = match joined {
            Ok((id, done)) => {
                run.task_step.remove(&id);
                done
            }
            Err(e) => {
                let Some(i) = run.task_step.remove(&e.id()) else {
                    return Ok(batch);
                };
                // What the step did before it crashed goes to the journal
                // first; then it counts as failed, under its own failure
                // policy.
                self.record(std::mem::take(&mut batch))?;
                self.reporter.note(&format!(
                    "step `{}` crashed (a bug in runbook): {e}; it counts as failed",
                    self.runbook().steps[i].id
                ));
                (i, StepEnd::Finished(HostOutcome::Failed))
            }
        };
        self.settle(run, i, end, &mut batch);
        Ok(batch)
    }

    /// Applies a step's end: its outcome and failure policy, or its wait
    /// for an operator.
    fn settle(&self, run: &mut Run, i: usize, end: StepEnd, batch: &mut Vec<EventKind>) {
        let duration = run.step_started[i].map_or(Duration::ZERO, |s| s.elapsed());
        let id = self.runbook().steps[i].id.clone();
        match end {
            StepEnd::Finished(outcome) => {
                run.state[i] = State::Done(outcome);
                batch.push(EventKind::StepFinished {
                    step: id.clone(),
                    outcome,
                    duration_ms: millis(duration),
                });
                if outcome.is_success() {
                    return;
                }
                run.failed_any = true;
                match self.runbook().steps[i].on_failure {
                    OnFailure::Abort => {
                        run.stop.get_or_insert(Stop::Abort);
                    }
                    OnFailure::Continue => self.block_dependents(&mut run.state, i, batch),
                    OnFailure::Pause => {
                        run.stop.get_or_insert(Stop::Pause);
                        hold(run, id, PauseReason::StepFailed, batch);
                    }
                }
            }
            StepEnd::Interrupted => {}
            StepEnd::Held(reason) => {
                // Only this step and its dependents wait for the operator;
                // independent branches go on.
                run.state[i] = State::Held;
                hold(run, id, reason, batch);
            }
        }
    }

    /// A first signal lets running steps finish (within the grace period)
    /// and starts no more; a second one kills them. Whether to stop now.
    async fn interrupt(&mut self, run: &mut Run) -> bool {
        self.confirmer.interrupt();
        if run.interrupted_at.is_some() {
            run.killed = true;
            abandon(&mut run.tasks).await;
            return true;
        }
        run.interrupted_at = Some(Instant::now());
        run.stop = Some(Stop::Interrupt);
        self.reporter
            .note("interrupted: letting running steps finish (Ctrl-C again to kill them)");
        false
    }

    /// Blocks what failed steps leave unreachable and journals the run's
    /// end.
    fn finish(mut self, mut run: Run) -> Result<Summary, StateError> {
        let mut batch = Vec::new();
        for i in 0..run.state.len() {
            if let State::Done(o) = run.state[i]
                && !o.is_success()
                && self.runbook().steps[i].on_failure != OnFailure::Pause
            {
                self.block_dependents(&mut run.state, i, &mut batch);
            }
        }
        let outcome = run.outcome();
        batch.push(EventKind::RunFinished { outcome });
        self.record(batch)?;
        Ok(Summary {
            outcome,
            held: run.held,
            killed: run.killed,
        })
    }
}

/// Whether `node` (a step, or a group of them) no longer holds up what
/// depends on it.
fn satisfied(runbook: &Runbook, state: &[State], node: usize) -> bool {
    let dag = &runbook.dag;
    if dag.is_step(node) {
        match state[node] {
            State::Unselected => true,
            State::Done(o) => o.is_success(),
            _ => false,
        }
    } else {
        dag.preds[node]
            .iter()
            .all(|&p| satisfied(runbook, state, p))
    }
}

fn ready(runbook: &Runbook, state: &[State], step: usize) -> bool {
    state[step] == State::Pending
        && runbook.dag.preds[step]
            .iter()
            .all(|&p| satisfied(runbook, state, p))
}

/// The state of every step before anything starts: done before
/// (`resume`), pending, or not selected.
fn initial_state(options: &Options, n: usize) -> Vec<State> {
    (0..n)
        .map(|i| {
            if let Some(outcome) = options.done.get(i).copied().flatten() {
                State::Done(outcome)
            } else if options.selected[i] {
                State::Pending
            } else {
                State::Unselected
            }
        })
        .collect()
}

/// The hosts the run's first steps run commands on, in step order, each
/// once and at most `--forks` of them: the transport may log in to them
/// while the run is still being set up. Steps waiting for an operator are
/// left out (the run may pause there, and a login would be wasted).
#[must_use]
pub fn first_hosts(
    runbook: &Runbook,
    options: &Options,
    hosts: &BTreeMap<String, Host>,
) -> Vec<Host> {
    let state = initial_state(options, runbook.steps.len());
    let mut first: Vec<Host> = Vec::new();
    for (i, step) in runbook.steps.iter().enumerate() {
        let waits = step.manual.is_some()
            || (step.confirm && !options.confirmed.get(i).copied().unwrap_or(false));
        if waits || !ready(runbook, &state, i) {
            continue;
        }
        for host in step.hosts.iter().filter_map(|h| hosts.get(h)) {
            if first.iter().any(|f| f.name == host.name) {
                continue;
            }
            if first.len() >= options.forks.max(1) {
                return first;
            }
            first.push(host.clone());
        }
    }
    first
}

/// The dispatcher's run in progress.
struct Run {
    state: Vec<State>,
    forks: Arc<Semaphore>,
    tasks: JoinSet<StepDone>,
    /// A task that panics loses its step index with it: find it by task.
    task_step: HashMap<tokio::task::Id, usize>,
    step_started: Vec<Option<Instant>>,
    stop: Option<Stop>,
    failed_any: bool,
    held: Vec<(String, PauseReason)>,
    interrupted_at: Option<Instant>,
    killed: bool,
}

impl Run {
    fn outcome(&self) -> RunOutcome {
        match self.stop {
            Some(Stop::Interrupt) => RunOutcome::Interrupted,
            Some(Stop::Pause) => RunOutcome::Paused,
            _ if !self.held.is_empty() && !self.failed_any => RunOutcome::Paused,
            _ if self.failed_any => RunOutcome::Failed,
            Some(Stop::Abort) => RunOutcome::Failed,
            None if self.state.contains(&State::Pending) => RunOutcome::Failed,
            None => RunOutcome::Succeeded,
        }
    }
}

/// A step waits for an operator: the run says so.
fn hold(run: &mut Run, step: String, reason: PauseReason, batch: &mut Vec<EventKind>) {
    run.held.push((step.clone(), reason));
    batch.push(EventKind::RunPaused {
        reason: reason.sentence(&step),
        step,
    });
}

/// Runs blocking file work (the journal's write and fsync) without holding
/// up the runtime's worker threads: on a multi-threaded runtime the tasks
/// queued on this thread move to another one meanwhile. The dispatcher
/// waits for it either way: it acts only on what is journaled.
fn off_the_workers<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        // One thread (tests in process): nowhere else to run its tasks.
        _ => work(),
    }
}

/// Worker events already sent, without waiting for more.
fn pending(events: &mut UnboundedReceiver<EventKind>) -> Vec<EventKind> {
    std::iter::from_fn(|| events.try_recv().ok()).collect()
}

/// Ends when the grace period after the first interruption is over.
async fn grace_over(interrupted_at: Option<Instant>) {
    match interrupted_at {
        Some(at) => tokio::time::sleep_until((at + INTERRUPT_GRACE).into()).await,
        None => std::future::pending().await,
    }
}

/// Kills the running steps' tasks (their commands with them).
async fn abandon(tasks: &mut JoinSet<StepDone>) {
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// Runs one step on all its hosts, unless it waits for an operator.
async fn step_task(
    shared: Arc<Shared>,
    confirmer: Arc<Confirmer>,
    forks: Arc<Semaphore>,
    step: usize,
    hosts: Vec<Host>,
    confirmed: bool,
    sequential: bool,
) -> StepEnd {
    let s = &shared.runbook.steps[step];
    if (s.manual.is_some() || s.confirm)
        && !confirmed
        && let Some(end) = ask_operator(&shared, &confirmer, step, &hosts).await
    {
        return end;
    }
    if sequential {
        let mut outcomes = Vec::new();
        for host in &hosts {
            outcomes.push(run_host(&shared, step, host).await.outcome);
        }
        return StepEnd::Finished(aggregate(&outcomes));
    }
    let mut set = JoinSet::new();
    for host in hosts {
        let shared = Arc::clone(&shared);
        let forks = Arc::clone(&forks);
        set.spawn(async move {
            let _permit = forks.acquire_owned().await;
            run_host(&shared, step, &host).await.outcome
        });
    }
    let mut outcomes = Vec::new();
    while let Some(r) = set.join_next().await {
        outcomes.push(r.unwrap_or(HostOutcome::Failed));
    }
    StepEnd::Finished(aggregate(&outcomes))
}

/// Asks for a manual step or a confirmation; `None` when the step goes on
/// to run (confirmed, and not manual).
async fn ask_operator(
    shared: &Shared,
    confirmer: &Confirmer,
    step: usize,
    hosts: &[Host],
) -> Option<StepEnd> {
    let s = &shared.runbook.steps[step];
    let instructions = s.manual.map(|m| {
        let controller = hosts
            .first()
            .cloned()
            .unwrap_or_else(|| Host::controller(BTreeMap::new()));
        let ctx = super::context::for_host(&controller, &shared.runbook.vars, &shared.secrets);
        let text = shared
            .runbook
            .templates
            .render(m, &ctx)
            .unwrap_or_else(|_| shared.runbook.templates.source(m).to_string());
        crate::redact::printable(&shared.redactor.redact(&text))
    });
    match confirmer
        .ask(&s.id, s.title.as_deref(), instructions.as_deref())
        .await
    {
        Answer::Confirmed { note, automatic } => {
            let _ = shared.events.send(EventKind::Confirmation {
                step: s.id.clone(),
                operator: confirmer.operator.clone(),
                note,
                automatic,
            });
            s.manual
                .is_some()
                .then_some(StepEnd::Finished(HostOutcome::Confirmed))
        }
        Answer::Pause(reason) => Some(StepEnd::Held(reason)),
        Answer::Interrupted => Some(StepEnd::Interrupted),
    }
}

/// A step's outcome from its hosts' outcomes.
#[must_use]
pub fn aggregate(outcomes: &[HostOutcome]) -> HostOutcome {
    use HostOutcome as O;
    if outcomes.contains(&O::Failed) {
        O::Failed
    } else if outcomes.contains(&O::TimedOut) {
        O::TimedOut
    } else if outcomes.is_empty() || outcomes.iter().all(|o| *o == O::Skipped) {
        O::Skipped
    } else if outcomes
        .iter()
        .all(|o| matches!(o, O::AlreadyOk | O::Skipped))
    {
        O::AlreadyOk
    } else {
        O::Ok
    }
}

/// SIGINT, SIGTERM and SIGHUP (the operator's session to the controller
/// closed) as one stream. One for the whole run, so that a signal arriving
/// after the dispatcher's end still counts for what follows it.
pub struct Signals(Vec<tokio::signal::unix::Signal>);

impl Default for Signals {
    fn default() -> Self {
        Self::new()
    }
}

impl Signals {
    #[must_use]
    pub fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let kinds = [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
        ];
        Self(kinds.into_iter().filter_map(|k| signal(k).ok()).collect())
    }

    pub async fn next(&mut self) {
        std::future::poll_fn(|cx| {
            if self.0.iter_mut().any(|s| s.poll_recv(cx).is_ready()) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::exec::context::Secrets;
    use crate::exec::transport::{ExecFuture, Transport};
    use crate::state::read_journal;

    /// A transport with a bug: every command panics its worker.
    struct Panics;

    impl Transport for Panics {
        fn exec<'a>(&'a self, _: &'a Host, _: crate::exec::transport::Job<'a>) -> ExecFuture<'a> {
            Box::pin(async { panic!("injected transport bug") })
        }
    }

    struct Quiet;

    impl Reporter for Quiet {
        fn event(&mut self, _: &crate::events::RunEvent) {}
        fn note(&mut self, _: &str) {}
    }

    /// A valid runbook from its text, for tests in process.
    pub(crate) fn runbook(dir: &std::path::Path, yaml: &str) -> Runbook {
        let path = dir.join("runbook.yaml");
        std::fs::write(&path, yaml).unwrap();
        let (source, raw) = crate::load::load_runbook(&path).unwrap();
        let checked = crate::validate::runbook(&source, raw, None, &BTreeMap::new());
        checked.runbook.expect("a valid runbook")
    }

    /// The event a test dispatcher starts its journal with.
    fn resumed() -> EventKind {
        EventKind::RunResumed {
            operator: "test".into(),
            runbook_sha256: String::new(),
            inventory_sha256: None,
            removed: Vec::new(),
            outstanding: Vec::new(),
            vars: BTreeMap::new(),
        }
    }

    /// With one worker thread busy on the journal, other tasks still run:
    /// held up, the sender below would never run and the wait would end
    /// empty (the timeout is only a hang guard).
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn journal_work_does_not_hold_up_the_workers() {
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let (tx, rx) = std::sync::mpsc::channel();
        let blocked = tokio::spawn(async move {
            let _ = started_tx.send(());
            off_the_workers(|| rx.recv_timeout(Duration::from_secs(60)))
        });
        started.await.unwrap();
        tokio::spawn(async move { tx.send(()).unwrap() });
        assert!(blocked.await.unwrap().is_ok(), "the other task never ran");
    }

    #[tokio::test]
    async fn a_panicking_step_is_journaled_and_fails_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let runbook = Arc::new(runbook(
            dir.path(),
            "version: 1\nname: crash\nsteps:\n  - {id: leaf, check: {command: 'false'}, run: 'true'}\n",
        ));
        let mut run_dir = RunDir::create(dir.path(), "r1").unwrap();
        let (shared, rx) = crate::exec::launch::shared(
            Arc::clone(&runbook),
            Arc::new(Panics),
            Secrets::default(),
            None,
        );
        let controller = Host::controller(BTreeMap::new());
        let mut reporter = Quiet;
        let dispatcher = Dispatcher {
            shared,
            hosts: Arc::new(BTreeMap::from([(controller.name.clone(), controller)])),
            confirmer: Arc::new(Confirmer {
                yes: true,
                dry_run: false,
                interactive: false,
                operator: "test".into(),
                ..Confirmer::default()
            }),
            run_dir: Some(&mut run_dir),
            reporter: &mut reporter,
            options: Options {
                forks: 1,
                selected: vec![true],
                done: vec![None],
                confirmed: vec![false],
                // The host runs inside the step's own task: its panic
                // reaches the dispatcher.
                sequential: true,
            },
            started: Instant::now(),
            started_at: std::time::SystemTime::now(),
        };
        let summary = dispatcher
            .run(rx, resumed(), &mut Signals::new())
            .await
            .unwrap();
        assert_eq!(summary.outcome, RunOutcome::Failed);
        let kinds: Vec<EventKind> = read_journal(&run_dir.journal_path())
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert!(
            kinds
                .iter()
                .any(|k| matches!(k, EventKind::HostStarted { step, .. } if step == "leaf")),
            "what the step did before the panic is journaled: {kinds:?}"
        );
        assert!(
            kinds.iter().any(|k| matches!(
                k,
                EventKind::StepFinished { step, outcome: HostOutcome::Failed, .. } if step == "leaf"
            )),
            "the step is recorded as failed: {kinds:?}"
        );
    }

    fn named(names: &[&str]) -> BTreeMap<String, Host> {
        names
            .iter()
            .map(|n| {
                let mut host = Host::controller(BTreeMap::new());
                host.name = (*n).to_string();
                (host.name.clone(), host)
            })
            .collect()
    }

    fn options(forks: usize, done: Vec<Option<HostOutcome>>) -> Options {
        let n = done.len();
        Options {
            forks,
            selected: vec![true; n],
            done,
            confirmed: vec![false; n],
            sequential: false,
        }
    }

    #[test]
    fn the_first_hosts_are_those_of_the_steps_ready_at_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let runbook = runbook(
            dir.path(),
            "version: 1\nname: first\nsteps:\n  - {id: a, targets: [h1, h2], run: 'true'}\n  \
             - {id: b, depends_on: [a], targets: [h3], run: 'true'}\n  \
             - {id: c, targets: [h2, h4], run: 'true'}\n  \
             - {id: d, targets: [h5], confirm: true, run: 'true'}\n  \
             - {id: e, targets: [h6], run: 'true'}\n",
        );
        let hosts = named(&["h1", "h2", "h3", "h4", "h5", "h6"]);
        let first = |options: &Options| -> Vec<String> {
            first_hosts(&runbook, options, &hosts)
                .into_iter()
                .map(|h| h.name)
                .collect()
        };
        assert_eq!(first(&options(50, vec![None; 5])), ["h1", "h2", "h4", "h6"]);
        assert_eq!(first(&options(3, vec![None; 5])), ["h1", "h2", "h4"]);
        let mut done = vec![None; 5];
        done[0] = Some(HostOutcome::Ok);
        assert_eq!(first(&options(50, done)), ["h3", "h2", "h4", "h6"]);
    }

    /// Answers every command at once, successfully.
    struct Succeeds;

    impl Transport for Succeeds {
        fn exec<'a>(&'a self, _: &'a Host, _: crate::exec::transport::Job<'a>) -> ExecFuture<'a> {
            Box::pin(async {
                Ok(crate::exec::transport::Output {
                    exit: crate::exec::transport::Exit::Code(0),
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                    stdout_dropped: 0,
                    stderr_dropped: 0,
                    duration: Duration::ZERO,
                })
            })
        }
    }

    /// For each event reported, the events the journal held by then.
    struct Peek {
        journal: std::path::PathBuf,
        seen: Vec<(EventKind, Vec<EventKind>)>,
    }

    impl Reporter for Peek {
        fn event(&mut self, e: &crate::events::RunEvent) {
            let journal = read_journal(&self.journal).unwrap_or_default();
            self.seen.push((
                e.kind.clone(),
                journal.into_iter().map(|e| e.kind).collect(),
            ));
        }
        fn note(&mut self, _: &str) {}
    }

    fn started(kind: &EventKind, id: &str) -> bool {
        matches!(kind, EventKind::StepStarted { step, .. } if step == id)
    }

    /// One journal write (one fsync) for the steps starting together, and
    /// for a step's end with the starts it lets go: the reporter hears of
    /// the first event of such a batch when the journal holds all of it.
    #[tokio::test]
    async fn the_starts_of_a_wave_are_journaled_together_with_what_let_them_go() {
        let dir = tempfile::tempdir().unwrap();
        let runbook = Arc::new(runbook(
            dir.path(),
            "version: 1\nname: wave\nsteps:\n  - {id: a, run: 'true'}\n  \
             - {id: b, depends_on: [a], run: 'true'}\n  - {id: c, run: 'true'}\n",
        ));
        let mut run_dir = RunDir::create(dir.path(), "r1").unwrap();
        let (shared, rx) = crate::exec::launch::shared(
            Arc::clone(&runbook),
            Arc::new(Succeeds),
            Secrets::default(),
            None,
        );
        let controller = Host::controller(BTreeMap::new());
        let mut reporter = Peek {
            journal: dir.path().join("runs/r1/journal.jsonl"),
            seen: Vec::new(),
        };
        let dispatcher = Dispatcher {
            shared,
            hosts: Arc::new(BTreeMap::from([(controller.name.clone(), controller)])),
            confirmer: Arc::new(Confirmer {
                yes: true,
                operator: "test".into(),
                ..Confirmer::default()
            }),
            run_dir: Some(&mut run_dir),
            reporter: &mut reporter,
            options: options(4, vec![None; 3]),
            started: Instant::now(),
            started_at: std::time::SystemTime::now(),
        };
        let summary = dispatcher
            .run(rx, resumed(), &mut Signals::new())
            .await
            .unwrap();
        assert_eq!(summary.outcome, RunOutcome::Succeeded);
        let (_, held) = reporter
            .seen
            .iter()
            .find(|(kind, _)| started(kind, "a"))
            .expect("a started");
        assert!(
            held.iter().any(|k| started(k, "c")),
            "a and c start in one write: {held:?}"
        );
        let (_, held) = reporter
            .seen
            .iter()
            .find(|(kind, _)| matches!(kind, EventKind::StepFinished { step, .. } if step == "a"))
            .expect("a finished");
        assert!(
            held.iter().any(|k| started(k, "b")),
            "a's end and b's start in one write: {held:?}"
        );
    }
}
