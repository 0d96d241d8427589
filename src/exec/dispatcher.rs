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
        let elapsed = self.started.elapsed();
        RunEvent {
            at: humantime::format_rfc3339_millis(self.started_at + elapsed).to_string(),
            elapsed_ms: millis(elapsed),
            kind,
        }
    }

    /// Journals (durably) then reports a batch of events.
    fn record(&mut self, kinds: Vec<EventKind>) -> Result<(), StateError> {
        if kinds.is_empty() {
            return Ok(());
        }
        let events: Vec<RunEvent> = kinds.into_iter().map(|k| self.stamp(k)).collect();
        if let Some(dir) = self.run_dir.as_deref_mut() {
            dir.append(&events)?;
        }
        for e in &events {
            self.reporter.event(e);
        }
        Ok(())
    }

    fn satisfied(&self, state: &[State], node: usize) -> bool {
        let dag = &self.runbook().dag;
        if dag.is_step(node) {
            match state[node] {
                State::Unselected => true,
                State::Done(o) => o.is_success(),
                _ => false,
            }
        } else {
            dag.preds[node].iter().all(|&p| self.satisfied(state, p))
        }
    }

    fn ready(&self, state: &[State], step: usize) -> bool {
        state[step] == State::Pending
            && self.runbook().dag.preds[step]
                .iter()
                .all(|&p| self.satisfied(state, p))
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
    ) -> Result<Summary, StateError> {
        let n = self.runbook().steps.len();
        let mut state: Vec<State> = (0..n)
            .map(|i| {
                if let Some(outcome) = self.options.done.get(i).copied().flatten() {
                    State::Done(outcome)
                } else if self.options.selected[i] {
                    State::Pending
                } else {
                    State::Unselected
                }
            })
            .collect();
        self.record(vec![first])?;
        let forks = Arc::new(Semaphore::new(self.options.forks.max(1)));
        let mut tasks: JoinSet<StepDone> = JoinSet::new();
        // A task that panics loses its step index with it: find it by task.
        let mut task_step: HashMap<tokio::task::Id, usize> = HashMap::new();
        let mut step_started: Vec<Option<Instant>> = vec![None; n];
        let mut stop: Option<Stop> = None;
        let mut failed_any = false;
        let mut held = Vec::new();
        let mut interrupted_at: Option<Instant> = None;
        let mut signals = Signals::new();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            if stop.is_none() {
                for i in 0..n {
                    if self.options.sequential && !tasks.is_empty() {
                        break;
                    }
                    if self.ready(&state, i) {
                        state[i] = State::Running;
                        step_started[i] = Some(Instant::now());
                        let hosts: Vec<Host> = self.runbook().steps[i]
                            .hosts
                            .iter()
                            .filter_map(|h| self.hosts.get(h).cloned())
                            .collect();
                        self.record(vec![EventKind::StepStarted {
                            step: self.runbook().steps[i].id.clone(),
                            hosts: hosts.iter().map(|h| h.name.clone()).collect(),
                        }])?;
                        let shared = Arc::clone(&self.shared);
                        let forks = Arc::clone(&forks);
                        let confirmer = Arc::clone(&self.confirmer);
                        let confirmed = self.options.confirmed.get(i).copied().unwrap_or(false);
                        let sequential = self.options.sequential;
                        let task = tasks.spawn(async move {
                            (
                                i,
                                step_task(
                                    shared, confirmer, forks, i, hosts, confirmed, sequential,
                                )
                                .await,
                            )
                        });
                        task_step.insert(task.id(), i);
                    }
                }
            }
            if tasks.is_empty() {
                break;
            }
            let grace_over = async {
                match interrupted_at {
                    Some(at) => tokio::time::sleep_until((at + INTERRUPT_GRACE).into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(kind) = events.recv() => {
                    let mut batch = vec![kind];
                    while let Ok(k) = events.try_recv() {
                        batch.push(k);
                    }
                    self.record(batch)?;
                }
                Some(joined) = tasks.join_next_with_id() => {
                    let mut batch = Vec::new();
                    while let Ok(k) = events.try_recv() {
                        batch.push(k);
                    }
                    let (i, result) = match joined {
                        Ok((id, done)) => {
                            task_step.remove(&id);
                            done
                        }
                        Err(e) => {
                            let Some(i) = task_step.remove(&e.id()) else {
                                self.record(batch)?;
                                continue;
                            };
                            // What the step did before it crashed goes to
                            // the journal first; then it counts as failed,
                            // under its own failure policy.
                            self.record(std::mem::take(&mut batch))?;
                            self.reporter.note(&format!(
                                "step `{}` crashed (a bug in runbook): {e}; it counts as failed",
                                self.runbook().steps[i].id
                            ));
                            (i, StepEnd::Finished(HostOutcome::Failed))
                        }
                    };
                    let duration = step_started[i].map_or(Duration::ZERO, |s| s.elapsed());
                    let id = self.runbook().steps[i].id.clone();
                    match result {
                        StepEnd::Finished(outcome) => {
                            state[i] = State::Done(outcome);
                            batch.push(EventKind::StepFinished { step: id.clone(), outcome, duration_ms: millis(duration) });
                            if !outcome.is_success() {
                                failed_any = true;
                                match self.runbook().steps[i].on_failure {
                                    OnFailure::Abort => { stop.get_or_insert(Stop::Abort); }
                                    OnFailure::Continue => self.block_dependents(&mut state, i, &mut batch),
                                    OnFailure::Pause => {
                                        stop.get_or_insert(Stop::Pause);
                                        let reason = PauseReason::StepFailed;
                                        held.push((id.clone(), reason));
                                        batch.push(EventKind::RunPaused { reason: reason.sentence(&id), step: id });
                                    }
                                }
                            }
                        }
                        StepEnd::Interrupted => {}
                        StepEnd::Held(reason) => {
                            // Only this step and its dependents wait for the
                            // operator; independent branches go on.
                            state[i] = State::Held;
                            held.push((id.clone(), reason));
                            batch.push(EventKind::RunPaused { reason: reason.sentence(&id), step: id });
                        }
                    }
                    self.record(batch)?;
                }
                () = signals.next() => {
                    self.confirmer.interrupt();
                    if interrupted_at.is_some() {
                        tasks.abort_all();
                        while tasks.join_next().await.is_some() {}
                        break;
                    }
                    interrupted_at = Some(Instant::now());
                    stop = Some(Stop::Interrupt);
                    self.reporter.note("interrupted: letting running steps finish (Ctrl-C again to kill them)");
                }
                () = grace_over => {
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    break;
                }
                _ = tick.tick() => self.reporter.tick(),
            }
        }
        let mut batch = Vec::new();
        for i in 0..n {
            if let State::Done(o) = state[i]
                && !o.is_success()
                && self.runbook().steps[i].on_failure != OnFailure::Pause
            {
                self.block_dependents(&mut state, i, &mut batch);
            }
        }
        let outcome = match stop {
            Some(Stop::Interrupt) => RunOutcome::Interrupted,
            Some(Stop::Pause) => RunOutcome::Paused,
            _ if !held.is_empty() && !failed_any => RunOutcome::Paused,
            _ if failed_any => RunOutcome::Failed,
            Some(Stop::Abort) => RunOutcome::Failed,
            None if state.contains(&State::Pending) => RunOutcome::Failed,
            None => RunOutcome::Succeeded,
        };
        batch.push(EventKind::RunFinished { outcome });
        self.record(batch)?;
        Ok(Summary { outcome, held })
    }
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
    if (s.manual.is_some() || s.confirm) && !confirmed {
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
                if s.manual.is_some() {
                    return StepEnd::Finished(HostOutcome::Confirmed);
                }
            }
            Answer::Pause(reason) => return StepEnd::Held(reason),
            Answer::Interrupted => return StepEnd::Interrupted,
        }
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
/// closed) as one stream.
struct Signals(Vec<tokio::signal::unix::Signal>);

impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let kinds = [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
        ];
        Self(kinds.into_iter().filter_map(|k| signal(k).ok()).collect())
    }

    async fn next(&mut self) {
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
    use crate::redact::Redactor;
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

    #[tokio::test]
    async fn a_panicking_step_is_journaled_and_fails_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let runbook = Arc::new(runbook(
            dir.path(),
            "version: 1\nname: crash\nsteps:\n  - {id: leaf, check: {command: 'false'}, run: 'true'}\n",
        ));
        let mut run_dir = RunDir::create(dir.path(), "r1").unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            runbook: Arc::clone(&runbook),
            transport: Arc::new(Panics),
            secrets: Secrets::default(),
            redactor: Redactor::new(Vec::new()),
            logs: None,
            events: tx,
        });
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
        let first = EventKind::RunResumed {
            operator: "test".into(),
            runbook_sha256: String::new(),
            inventory_sha256: None,
            removed: Vec::new(),
            outstanding: Vec::new(),
            vars: BTreeMap::new(),
        };
        let summary = dispatcher.run(rx, first).await.unwrap();
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
}
