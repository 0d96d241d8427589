//! The dispatcher owns the run state. It starts every step whose
//! dependencies are satisfied (no wave barriers), collects worker events,
//! writes them to the journal (one fsync per batch, before acting on
//! them), feeds the reporter, applies failure policies and signals.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;

use super::confirm::{Answer, Confirmer};
use super::worker::{Shared, millis, run_host};
use crate::events::{EventKind, HostOutcome, RunEvent, RunOutcome};
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
    pub held: Vec<(String, bool)>,
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

type StepDone = (usize, Result<HostOutcome, String>);

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
                        tasks.spawn(async move {
                            (
                                i,
                                step_task(
                                    shared, confirmer, forks, i, hosts, confirmed, sequential,
                                )
                                .await,
                            )
                        });
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
                Some(joined) = tasks.join_next() => {
                    let mut batch = Vec::new();
                    while let Ok(k) = events.try_recv() {
                        batch.push(k);
                    }
                    let Ok((i, result)) = joined else { continue };
                    let duration = step_started[i].map_or(Duration::ZERO, |s| s.elapsed());
                    let id = self.runbook().steps[i].id.clone();
                    match result {
                        Ok(outcome) => {
                            state[i] = State::Done(outcome);
                            batch.push(EventKind::StepFinished { step: id.clone(), outcome, duration_ms: millis(duration) });
                            if !outcome.is_success() {
                                failed_any = true;
                                match self.runbook().steps[i].on_failure {
                                    OnFailure::Abort => { stop.get_or_insert(Stop::Abort); }
                                    OnFailure::Continue => self.block_dependents(&mut state, i, &mut batch),
                                    OnFailure::Pause => {
                                        stop.get_or_insert(Stop::Pause);
                                        held.push((id.clone(), false));
                                        batch.push(EventKind::RunPaused { step: id, reason: "the step failed and its policy is `pause`".into() });
                                    }
                                }
                            }
                        }
                        Err(reason) => {
                            // Only this step and its dependents wait for the
                            // operator; independent branches go on.
                            state[i] = State::Held;
                            held.push((id.clone(), true));
                            batch.push(EventKind::RunPaused { step: id, reason });
                        }
                    }
                    self.record(batch)?;
                }
                () = signals.next() => {
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

/// Runs one step on all its hosts; `Err` means it waits for an operator.
async fn step_task(
    shared: Arc<Shared>,
    confirmer: Arc<Confirmer>,
    forks: Arc<Semaphore>,
    step: usize,
    hosts: Vec<Host>,
    confirmed: bool,
    sequential: bool,
) -> Result<HostOutcome, String> {
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
            shared.redactor.redact(&text)
        });
        match confirmer
            .ask(&s.id, s.title.as_deref(), instructions.as_deref())
            .await
        {
            Answer::Confirmed { note, automatic } => {
                let _ = shared.events.send(EventKind::Confirmation {
                    step: s.id.clone(),
                    operator: crate::exec::operator::current(),
                    note,
                    automatic,
                });
                if s.manual.is_some() {
                    return Ok(HostOutcome::Confirmed);
                }
            }
            Answer::Pause(reason) => return Err(reason),
        }
    }
    if sequential {
        let mut outcomes = Vec::new();
        for host in &hosts {
            outcomes.push(run_host(&shared, step, host).await.outcome);
        }
        return Ok(aggregate(&outcomes));
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
    Ok(aggregate(&outcomes))
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

/// SIGINT and SIGTERM as one stream.
struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    async fn next(&mut self) {
        let int = async {
            match &mut self.int {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        let term = async {
            match &mut self.term {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = int => {}
            () = term => {}
        }
    }
}
