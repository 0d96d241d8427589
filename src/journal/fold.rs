//! The journal folded once: events in, what happened to the run, each step
//! and each host out. Pure; every reader of a journal reads this, so that
//! they cannot disagree on a duration, an outcome or who acted.

use std::collections::BTreeSet;
use std::time::SystemTime;

use serde::Serialize;

use crate::events::{Action, EventKind, HostOutcome, MarkStatus, RunEvent, RunOutcome};

/// Where a step or a host stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    NotRun,
    Running,
    /// Paused for an operator's confirmation.
    Waiting,
    /// Killed before it finished (a second Ctrl-C), or cut short when the
    /// controller died and the run was resumed.
    Interrupted,
    Done(HostOutcome),
}

impl Status {
    /// The one label of each status (reports, JSON, summary).
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::NotRun => "not-run",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Interrupted => "interrupted",
            Self::Done(o) => o.label(),
        }
    }

    /// The label in running text: `not run` reads better than `not-run`.
    #[must_use]
    pub const fn words(self) -> &'static str {
        match self {
            Self::NotRun => "not run",
            other => other.label(),
        }
    }

    #[must_use]
    pub const fn is_success(self) -> bool {
        matches!(self, Self::Done(o) if o.is_success())
    }

    /// Failed or timed out: what a report makes stand out.
    #[must_use]
    pub const fn is_failure(self) -> bool {
        matches!(
            self,
            Self::Done(HostOutcome::Failed | HostOutcome::TimedOut)
        )
    }
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

/// The run's outcome: the last `run-finished`, unless a later resume or
/// decision reopened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunStatus {
    #[default]
    Unfinished,
    Finished(RunOutcome),
}

impl RunStatus {
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Unfinished => "unfinished",
            Self::Finished(o) => o.label(),
        }
    }
}

impl Serialize for RunStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostView {
    pub host: String,
    pub status: Status,
    /// `run` attempts of the step's last execution.
    pub attempts: u32,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    pub message: Option<String>,
    pub stderr_tail: Vec<String>,
    /// The tag its commands carry on the host (journals before tags: none).
    pub tag: Option<String>,
}

/// A step's command on a host that had started and not finished when the
/// journal ends: it may still be running if the controller was killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub step: String,
    pub host: String,
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepView {
    pub id: String,
    pub status: Status,
    pub blocked_by: Option<String>,
    /// An operator confirmed it and it has not finished since.
    pub confirmed: bool,
    /// How an operator marked it, if that is how it ended.
    pub mark: Option<MarkStatus>,
    /// Wall-clock offsets from the run's start, of its last execution.
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
    /// Active time of its last execution, as the dispatcher measured it.
    pub duration_ms: Option<u64>,
    /// Hosts of its last execution, in the order they started.
    pub hosts: Vec<HostView>,
    /// The runbook it last ran (or was decided) under: an index into
    /// [`RunView::versions`].
    pub version: Option<usize>,
}

impl StepView {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            status: Status::NotRun,
            blocked_by: None,
            confirmed: false,
            mark: None,
            start_ms: None,
            end_ms: None,
            duration_ms: None,
            hosts: Vec::new(),
            version: None,
        }
    }

    fn host(&mut self, host: &str) -> &mut HostView {
        let i = match self.hosts.iter().position(|h| h.host == host) {
            Some(i) => i,
            None => {
                self.hosts.push(HostView {
                    host: host.to_string(),
                    status: Status::Running,
                    attempts: 0,
                    exit_code: None,
                    duration_ms: 0,
                    message: None,
                    stderr_tail: Vec::new(),
                    tag: None,
                });
                self.hosts.len() - 1
            }
        };
        &mut self.hosts[i]
    }

    fn cut_short(&mut self) {
        if self.status == Status::Running {
            self.status = Status::Interrupted;
            for h in &mut self.hosts {
                if h.status == Status::Running {
                    h.status = Status::Interrupted;
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    Confirmed { automatic: bool },
    Marked(MarkStatus),
}

impl DecisionKind {
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Confirmed { automatic: false } => "confirmed",
            Self::Confirmed { automatic: true } => "confirmed (--yes)",
            Self::Marked(MarkStatus::Done) => "done",
            Self::Marked(MarkStatus::Skipped) => "skipped",
        }
    }
}

impl Serialize for DecisionKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub step: String,
    pub at: String,
    pub offset_ms: u64,
    pub operator: String,
    pub kind: DecisionKind,
    pub note: Option<String>,
}

/// A shift hand-off (`runbook handoff`): who handed the run over, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    pub at: String,
    pub offset_ms: u64,
    pub operator: String,
}

/// The fold of a journal: [`RunView::from_events`] for one read whole,
/// [`RunView::default`] then [`RunView::push`] for one that grows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunView {
    pub run_id: String,
    pub runbook: String,
    pub dry_run: bool,
    pub runbook_path: Option<String>,
    pub inventory_path: Option<String>,
    /// The inventory's SHA-256 as the run last read it (start or latest
    /// resumption): which hosts its timings were measured on.
    pub inventory_sha256: Option<String>,
    /// Wall-clock times of the first and last events (hand-offs aside:
    /// reading a run does not lengthen it).
    pub start: String,
    pub end: String,
    /// Everyone who acted: started, resumed, confirmed, marked or handed
    /// the run over, in order.
    pub operators: Vec<String>,
    /// The runbook's SHA-256 each time the run started or resumed,
    /// distinct, in the order they were first executed.
    pub versions: Vec<String>,
    /// The version the run executed last (start or latest resumption).
    pub latest_version: Option<usize>,
    /// Active time of the start and of each resumption.
    pub segments_ms: Vec<u64>,
    /// From the first event to the last, pauses included.
    pub wall_ms: u64,
    /// Every step the journal names, in order of first mention.
    pub steps: Vec<StepView>,
    pub decisions: Vec<Decision>,
    /// Shift hand-offs, in order.
    pub handoffs: Vec<Handoff>,
    pub status: RunStatus,
    /// Steps the run set out to do: its selection plus the steps a
    /// resumption added. `None` without a start event.
    pub selected: Option<BTreeSet<String>>,
    /// The `--var` overrides of the start and every resumption, the latest
    /// winning: a resumption runs with them.
    pub vars: std::collections::BTreeMap<String, serde_json::Value>,
    /// The first event's time, which every offset counts from.
    start_time: Option<SystemTime>,
    folded: usize,
}

impl RunView {
    /// Every (step, host) whose command had started and not finished when
    /// the journal ends, with the tag to look for on the host.
    #[must_use]
    pub fn unfinished(&self) -> Vec<Unfinished> {
        self.steps
            .iter()
            .flat_map(|s| {
                s.hosts.iter().filter_map(|h| match (&h.tag, h.status) {
                    (Some(tag), Status::Running | Status::Interrupted) => Some(Unfinished {
                        step: s.id.clone(),
                        host: h.host.clone(),
                        tag: tag.clone(),
                    }),
                    _ => None,
                })
            })
            .collect()
    }
}

/// The time of an event's `at`.
#[must_use]
pub fn parse_at(at: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(at.trim_end_matches('Z')).ok()
}

impl RunView {
    /// The fold of `events`: every reader's view of a journal read whole.
    #[must_use]
    pub fn from_events(events: &[RunEvent]) -> Self {
        let mut v = Self::default();
        for e in events {
            v.push(e);
        }
        v
    }

    /// How many events were folded in.
    #[must_use]
    pub const fn folded(&self) -> usize {
        self.folded
    }

    fn offset(&self, at: &str) -> u64 {
        self.start_time
            .zip(parse_at(at))
            .and_then(|(s, t)| t.duration_since(s).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Folds in the journal's next event: a view that follows a run goes
    /// on from where it was rather than reading every event again.
    pub fn push(&mut self, e: &RunEvent) {
        if self.folded == 0 {
            self.start.clone_from(&e.at);
            self.start_time = parse_at(&e.at);
        }
        self.folded += 1;
        let t = self.offset(&e.at);
        // Hand-offs record that someone read the run, and notifications are
        // delivered after its end too: neither moves its end or stretches
        // its wall-clock time.
        if !e.kind.takes_no_run_time() {
            self.end.clone_from(&e.at);
            self.wall_ms = t;
        }
        if e.kind.is_notification() {
            return;
        }
        let version = self.latest_version;
        // Decisions are written outside the run with no elapsed time;
        // the maximum keeps them from shortening a segment.
        if let Some(active) = self.segments_ms.last_mut() {
            *active = (*active).max(e.elapsed_ms);
        }
        match &e.kind {
            EventKind::RunStarted {
                run_id,
                runbook,
                runbook_sha256,
                operator,
                dry_run,
                steps,
                runbook_path,
                inventory_path,
                inventory_sha256,
                vars,
                ..
            } => {
                self.inventory_sha256.clone_from(inventory_sha256);
                self.vars.extend(vars.clone());
                self.run_id.clone_from(run_id);
                self.runbook.clone_from(runbook);
                self.dry_run = *dry_run;
                self.runbook_path = Some(runbook_path.clone()).filter(|p| !p.is_empty());
                self.inventory_path.clone_from(inventory_path);
                self.add_operator(operator);
                self.latest_version = Some(self.version_of(runbook_sha256));
                self.segments_ms.push(e.elapsed_ms);
                self.selected = Some(steps.iter().cloned().collect());
                for s in steps {
                    self.step_mut(s);
                }
            }
            EventKind::RunResumed {
                operator,
                runbook_sha256,
                inventory_sha256,
                outstanding,
                vars,
                ..
            } => {
                if inventory_sha256.is_some() {
                    self.inventory_sha256.clone_from(inventory_sha256);
                }
                self.vars.extend(vars.clone());
                self.add_operator(operator);
                self.latest_version = Some(self.version_of(runbook_sha256));
                self.segments_ms.push(e.elapsed_ms);
                // A step still running when the run was resumed died
                // with the controller.
                for s in &mut self.steps {
                    s.cut_short();
                }
                if let Some(sel) = &mut self.selected {
                    sel.extend(outstanding.iter().cloned());
                }
                for s in outstanding {
                    self.step_mut(s);
                }
                self.reopen();
            }
            EventKind::Marked {
                step,
                status,
                operator,
                note,
            } => {
                self.add_operator(operator);
                self.decisions.push(Decision {
                    step: step.clone(),
                    at: e.at.clone(),
                    offset_ms: t,
                    operator: operator.clone(),
                    kind: DecisionKind::Marked(*status),
                    note: Some(note.clone()),
                });
                let s = self.step_mut(step);
                s.status = Status::Done(HostOutcome::Marked);
                s.mark = Some(*status);
                s.end_ms = Some(t);
                s.version = s.version.or(version);
                self.reopen();
            }
            EventKind::Confirmation {
                step,
                operator,
                note,
                automatic,
            } => {
                self.add_operator(operator);
                self.decisions.push(Decision {
                    step: step.clone(),
                    at: e.at.clone(),
                    offset_ms: t,
                    operator: operator.clone(),
                    kind: DecisionKind::Confirmed {
                        automatic: *automatic,
                    },
                    note: note.clone().filter(|_| !automatic),
                });
                let s = self.step_mut(step);
                s.confirmed = true;
                // Confirmed while the step runs (at the prompt), it goes
                // on; confirmed while the run is stopped, that is its
                // state until it runs again.
                if matches!(s.status, Status::NotRun | Status::Waiting) {
                    s.status = Status::Done(HostOutcome::Confirmed);
                    s.end_ms = Some(t);
                    s.version = s.version.or(version);
                }
                self.reopen();
            }
            EventKind::StepStarted { step, .. } => {
                let s = self.step_mut(step);
                s.status = Status::Running;
                s.start_ms = Some(t);
                s.end_ms = None;
                s.duration_ms = None;
                s.blocked_by = None;
                s.mark = None;
                s.hosts.clear();
                s.version = version;
            }
            EventKind::HostStarted { step, host, tag } => {
                let h = self.step_mut(step).host(host);
                h.status = Status::Running;
                h.tag.clone_from(tag);
            }
            EventKind::Action {
                step,
                host,
                action,
                attempt,
                exit_code,
                ..
            } => {
                let h = self.step_mut(step).host(host);
                if *action == Action::Run {
                    h.attempts = h.attempts.max(*attempt);
                    h.exit_code = *exit_code;
                }
            }
            EventKind::HostFinished {
                step,
                host,
                outcome,
                duration_ms,
                message,
                stderr_tail,
            } => {
                let h = self.step_mut(step).host(host);
                h.status = Status::Done(*outcome);
                h.duration_ms = *duration_ms;
                h.message.clone_from(message);
                h.stderr_tail.clone_from(stderr_tail);
            }
            EventKind::StepFinished {
                step,
                outcome,
                duration_ms,
            } => {
                let s = self.step_mut(step);
                s.status = Status::Done(*outcome);
                s.end_ms = Some(t);
                s.duration_ms = Some(*duration_ms);
                s.confirmed = false;
                s.version = version;
            }
            EventKind::StepBlocked { step, by } => {
                let s = self.step_mut(step);
                s.status = Status::Done(HostOutcome::Blocked);
                s.blocked_by = Some(by.clone());
            }
            EventKind::RunPaused { step, .. } => {
                // A failed step held by `on_failure: pause` stays failed;
                // only a step paused mid-way waits for a confirmation.
                let s = self.step_mut(step);
                if s.status == Status::Running {
                    s.status = Status::Waiting;
                }
            }
            EventKind::RunFinished { outcome } => {
                for s in &mut self.steps {
                    s.cut_short();
                }
                self.status = RunStatus::Finished(*outcome);
            }
            EventKind::HandedOff { operator } => {
                self.add_operator(operator);
                self.handoffs.push(Handoff {
                    at: e.at.clone(),
                    offset_ms: t,
                    operator: operator.clone(),
                });
            }
            EventKind::NotificationSent { .. } | EventKind::NotificationFailed { .. } => {}
        }
    }

    fn add_operator(&mut self, operator: &str) {
        if !self.operators.iter().any(|o| o == operator) {
            self.operators.push(operator.to_string());
        }
    }

    fn version_of(&mut self, sha: &str) -> usize {
        self.versions
            .iter()
            .position(|v| v == sha)
            .unwrap_or_else(|| {
                self.versions.push(sha.to_string());
                self.versions.len() - 1
            })
    }

    /// A succeeded run stays succeeded; anything else done to a stopped
    /// run means it is not over.
    fn reopen(&mut self) {
        if self.status != RunStatus::Finished(RunOutcome::Succeeded) {
            self.status = RunStatus::Unfinished;
        }
    }

    fn step_mut(&mut self, id: &str) -> &mut StepView {
        let i = match self.steps.iter().position(|s| s.id == id) {
            Some(i) => i,
            None => {
                self.steps.push(StepView::new(id));
                self.steps.len() - 1
            }
        };
        &mut self.steps[i]
    }

    #[must_use]
    pub fn step(&self, id: &str) -> Option<&StepView> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The run's duration: time spent running, summed over the start and
    /// every resumption (not the time it stood paused in between).
    #[must_use]
    pub fn active_ms(&self) -> u64 {
        self.segments_ms.iter().sum()
    }

    /// Whether the run stopped and went on again, so that its wall-clock
    /// span says something its active time does not.
    #[must_use]
    pub fn was_resumed(&self) -> bool {
        self.segments_ms.len() > 1
    }

    /// Steps an operator marked `skipped` instead of running them.
    #[must_use]
    pub fn skipped_by_hand(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.mark == Some(MarkStatus::Skipped))
            .count()
    }

    /// The outcome with its caveat: `succeeded, 1 step skipped by hand`.
    #[must_use]
    pub fn verdict(&self) -> String {
        match self.skipped_by_hand() {
            0 => self.status.label().to_string(),
            n => format!(
                "{}, {} skipped by hand",
                self.status.label(),
                crate::diagnostic::count(n, "step")
            ),
        }
    }

    /// Decisions made at or after `since`; every one without it.
    pub fn decisions_since(&self, since: Option<SystemTime>) -> impl Iterator<Item = &Decision> {
        self.decisions
            .iter()
            .filter(move |d| since.is_none_or(|t| parse_at(&d.at).is_none_or(|at| at >= t)))
    }

    /// The runbook SHA-256 a step last ran (or was decided) under.
    #[must_use]
    pub fn version_of_step(&self, id: &str) -> Option<&str> {
        self.step(id)
            .and_then(|s| s.version)
            .map(|i| self.versions[i].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::JOURNAL_VERSION;

    /// Events at one second per event from 10:00:00, each `elapsed_ms`
    /// given (the run's own clock).
    struct Journal(Vec<RunEvent>);

    impl Journal {
        fn new() -> Self {
            Self(Vec::new())
        }
        fn at(mut self, secs: u64, elapsed_ms: u64, kind: EventKind) -> Self {
            let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000 + secs);
            self.0.push(RunEvent {
                at: humantime::format_rfc3339_millis(t).to_string(),
                elapsed_ms,
                kind,
            });
            self
        }
        fn view(&self) -> RunView {
            RunView::from_events(&self.0)
        }
    }

    fn started(steps: &[&str], sha: &str, operator: &str) -> EventKind {
        EventKind::RunStarted {
            version: JOURNAL_VERSION,
            run_id: "r".into(),
            runbook: "rb".into(),
            runbook_sha256: sha.into(),
            inventory_sha256: None,
            operator: operator.into(),
            dry_run: false,
            steps: steps.iter().map(|s| (*s).to_string()).collect(),
            runbook_path: "/rb.yaml".into(),
            inventory_path: None,
            vars: std::collections::BTreeMap::new(),
        }
    }
    fn resumed(sha: &str, operator: &str, outstanding: &[&str]) -> EventKind {
        EventKind::RunResumed {
            operator: operator.into(),
            runbook_sha256: sha.into(),
            inventory_sha256: None,
            removed: Vec::new(),
            outstanding: outstanding.iter().map(|s| (*s).to_string()).collect(),
            vars: std::collections::BTreeMap::new(),
        }
    }
    fn step_started(step: &str, hosts: &[&str]) -> EventKind {
        EventKind::StepStarted {
            step: step.into(),
            hosts: hosts.iter().map(|s| (*s).to_string()).collect(),
        }
    }
    fn run_action(step: &str, host: &str, attempt: u32, exit: i32) -> EventKind {
        EventKind::Action {
            step: step.into(),
            host: host.into(),
            action: Action::Run,
            attempt,
            command: "true".into(),
            passed: exit == 0,
            exit_code: Some(exit),
            signal: None,
            timed_out: false,
            duration_ms: 1,
            detail: None,
        }
    }
    fn host_finished(step: &str, host: &str, outcome: HostOutcome) -> EventKind {
        EventKind::HostFinished {
            step: step.into(),
            host: host.into(),
            outcome,
            duration_ms: 700,
            message: (!outcome.is_success()).then(|| "run failed: exit status 1".into()),
            stderr_tail: Vec::new(),
        }
    }
    fn step_finished(step: &str, outcome: HostOutcome, ms: u64) -> EventKind {
        EventKind::StepFinished {
            step: step.into(),
            outcome,
            duration_ms: ms,
        }
    }
    fn finished(outcome: RunOutcome) -> EventKind {
        EventKind::RunFinished { outcome }
    }
    fn paused(step: &str) -> EventKind {
        EventKind::RunPaused {
            step: step.into(),
            reason: "anything: the fold does not read it".into(),
        }
    }

    /// One generated event: which kind, on which step and host, how
    /// far in (seconds, which may go back: clocks jump) and the run's own
    /// clock.
    fn generated(
        kind: u8,
        step: u8,
        host: u8,
        secs: u64,
        elapsed_ms: u64,
    ) -> (u64, u64, EventKind) {
        let steps = ["a", "b", "c"];
        let (s, h) = (
            steps[usize::from(step % 3)],
            ["h1", "h2"][usize::from(host % 2)],
        );
        let outcome =
            [HostOutcome::Ok, HostOutcome::Failed, HostOutcome::Skipped][usize::from(host % 3)];
        let kind = match kind % 16 {
            0 => started(&steps, "v1", "alice"),
            1 => resumed(["v1", "v2"][usize::from(host % 2)], "bob", &[s]),
            2 => step_started(s, &["h1", "h2"]),
            3 => EventKind::HostStarted {
                step: s.into(),
                host: h.into(),
                tag: Some(format!("t{step}")),
            },
            4 => run_action(s, h, u32::from(step % 3) + 1, i32::from(host % 2)),
            5 => host_finished(s, h, outcome),
            6 => step_finished(s, outcome, elapsed_ms / 2),
            7 => EventKind::StepBlocked {
                step: s.into(),
                by: "a".into(),
            },
            8 => paused(s),
            9 => finished(
                [
                    RunOutcome::Succeeded,
                    RunOutcome::Failed,
                    RunOutcome::Paused,
                ][usize::from(host % 3)],
            ),
            10 => EventKind::Confirmation {
                step: s.into(),
                operator: "carol".into(),
                note: Some("by hand".into()),
                automatic: host.is_multiple_of(2),
            },
            11 => EventKind::Marked {
                step: s.into(),
                status: [MarkStatus::Done, MarkStatus::Skipped][usize::from(host % 2)],
                operator: "dave".into(),
                note: "n".into(),
            },
            12 => EventKind::HandedOff {
                operator: "erin".into(),
            },
            13 => EventKind::NotificationSent {
                notification: crate::model::NotifyEvent::StepFailed,
                webhook: 0,
                format: crate::model::NotifyFormat::Json,
                about: Some(s.into()),
                attempts: 1,
            },
            14 => EventKind::NotificationFailed {
                notification: crate::model::NotifyEvent::RunFinished,
                webhook: 1,
                format: crate::model::NotifyFormat::Json,
                about: None,
                attempts: 3,
                reason: "refused".into(),
            },
            _ => run_action(s, h, 1, 0),
        };
        (secs, elapsed_ms, kind)
    }

    /// The journals of the test suite and generated ones: however a
    /// journal arrives (read whole, or one batch after another as the
    /// board gets them), its view is the same.
    fn assert_folds_alike_at_every_split(events: &[RunEvent]) {
        let whole = RunView::from_events(events);
        let mut pushed = RunView::default();
        for (k, e) in events.iter().enumerate() {
            assert_eq!(
                pushed,
                RunView::from_events(&events[..k]),
                "after {k} events"
            );
            let mut rest = pushed.clone();
            for later in &events[k..] {
                rest.push(later);
            }
            assert_eq!(rest, whole, "split at {k}");
            pushed.push(e);
        }
        assert_eq!(pushed, whole);
        assert_eq!(whole.folded(), events.len());
    }

    #[test]
    fn the_journals_of_the_test_suite_fold_alike_pushed_one_by_one() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        for name in ["report", "report-services"] {
            let events = crate::state::read_journal(
                &std::path::Path::new(fixtures)
                    .join(name)
                    .join("journal.jsonl"),
            )
            .unwrap();
            assert!(events.len() > 5, "{name}");
            assert_folds_alike_at_every_split(&events);
        }
    }

    proptest::proptest! {
        #[test]
        fn a_generated_journal_folds_alike_pushed_one_by_one(
            first_is_a_notification in proptest::bool::ANY,
            events in proptest::collection::vec(
                (0u8..16, 0u8..3, 0u8..6, 0u64..40, 0u64..50_000),
                0..40,
            ),
        ) {
            let mut j = Journal::new();
            if first_is_a_notification {
                let (secs, ms, kind) = generated(13, 0, 0, 0, 0);
                j = j.at(secs, ms, kind);
            }
            for (kind, step, host, secs, ms) in events {
                let (secs, ms, kind) = generated(kind, step, host, secs, ms);
                j = j.at(secs, ms, kind);
            }
            assert_folds_alike_at_every_split(&j.0);
        }
    }

    #[test]
    fn a_plain_run_folds_to_its_steps_hosts_and_outcome() {
        let v = Journal::new()
            .at(0, 0, started(&["a", "b"], "v1", "alice"))
            .at(1, 1000, step_started("a", &["h1", "h2"]))
            .at(
                1,
                1000,
                EventKind::HostStarted {
                    step: "a".into(),
                    host: "h1".into(),
                    tag: None,
                },
            )
            .at(2, 2000, run_action("a", "h1", 1, 1))
            .at(3, 3000, run_action("a", "h1", 2, 0))
            .at(3, 3000, host_finished("a", "h1", HostOutcome::Ok))
            .at(3, 3000, step_finished("a", HostOutcome::Ok, 2000))
            .at(4, 4000, finished(RunOutcome::Failed))
            .view();
        assert_eq!(v.status, RunStatus::Finished(RunOutcome::Failed));
        assert_eq!(v.status.label(), "failed");
        let a = v.step("a").unwrap();
        assert_eq!(a.status, Status::Done(HostOutcome::Ok));
        assert_eq!(
            (a.start_ms, a.end_ms, a.duration_ms),
            (Some(1000), Some(3000), Some(2000))
        );
        assert_eq!(a.hosts.len(), 1, "only hosts that started");
        assert_eq!((a.hosts[0].attempts, a.hosts[0].exit_code), (2, Some(0)));
        assert_eq!(v.step("b").unwrap().status, Status::NotRun);
        assert_eq!(v.step("b").unwrap().status.words(), "not run");
        assert_eq!(v.version_of_step("a"), Some("v1"));
        assert_eq!(v.version_of_step("b"), None);
        assert_eq!((v.active_ms(), v.wall_ms), (4000, 4000));
        assert!(!v.was_resumed());
    }

    #[test]
    fn a_resumed_run_counts_active_time_once_and_keeps_each_version() {
        // Paused for a confirmation, confirmed an hour later outside the
        // run (elapsed 0), then resumed with an edited runbook.
        let v = Journal::new()
            .at(0, 0, started(&["manual", "after"], "v1", "alice"))
            .at(1, 1000, step_started("manual", &["controller"]))
            .at(2, 2000, paused("manual"))
            .at(5, 5000, finished(RunOutcome::Paused))
            .at(
                3600,
                0,
                EventKind::Confirmation {
                    step: "manual".into(),
                    operator: "bob".into(),
                    note: Some("done by hand".into()),
                    automatic: false,
                },
            )
            .at(3700, 0, resumed("v2", "carol", &["after"]))
            .at(3701, 1000, step_started("after", &["controller"]))
            .at(3702, 2400, step_finished("after", HostOutcome::Ok, 1400))
            .at(3702, 2500, finished(RunOutcome::Succeeded))
            .view();
        assert_eq!(v.segments_ms, [5000, 2500]);
        assert_eq!(
            v.active_ms(),
            7500,
            "the pause in between is not active time"
        );
        assert_eq!(v.wall_ms, 3_702_000);
        assert!(v.was_resumed());
        assert_eq!(v.operators, ["alice", "bob", "carol"]);
        assert_eq!(v.versions, ["v1", "v2"]);
        assert_eq!(v.version_of_step("manual"), Some("v1"));
        assert_eq!(v.version_of_step("after"), Some("v2"));
        assert_eq!(
            v.step("manual").unwrap().status,
            Status::Done(HostOutcome::Confirmed)
        );
        assert!(v.step("manual").unwrap().confirmed);
        assert_eq!(v.decisions[0].kind.label(), "confirmed");
        assert_eq!(v.decisions[0].note.as_deref(), Some("done by hand"));
        assert_eq!(v.status, RunStatus::Finished(RunOutcome::Succeeded));
    }

    #[test]
    fn a_pause_waits_only_for_a_step_paused_mid_way() {
        let v = Journal::new()
            .at(0, 0, started(&["ask", "broken"], "v1", "alice"))
            .at(0, 1, step_started("ask", &[]))
            .at(0, 2, step_started("broken", &["h"]))
            .at(1, 3, host_finished("broken", "h", HostOutcome::Failed))
            .at(1, 4, step_finished("broken", HostOutcome::Failed, 3))
            .at(1, 5, paused("broken"))
            .at(1, 6, paused("ask"))
            .at(1, 7, finished(RunOutcome::Paused))
            .view();
        assert_eq!(v.step("ask").unwrap().status, Status::Waiting);
        let broken = v.step("broken").unwrap();
        assert_eq!(broken.status, Status::Done(HostOutcome::Failed));
        assert!(broken.status.is_failure());
        assert_eq!(
            broken.hosts[0].message.as_deref(),
            Some("run failed: exit status 1")
        );
        assert_eq!(v.status.label(), "paused");
    }

    #[test]
    fn a_step_killed_by_a_second_ctrl_c_is_interrupted_not_not_run() {
        let v = Journal::new()
            .at(0, 0, started(&["slow", "next"], "v1", "alice"))
            .at(0, 1, step_started("slow", &["h"]))
            .at(
                0,
                1,
                EventKind::HostStarted {
                    step: "slow".into(),
                    host: "h".into(),
                    tag: Some("ab12".into()),
                },
            )
            .at(2, 2000, finished(RunOutcome::Interrupted))
            .view();
        let slow = v.step("slow").unwrap();
        assert_eq!(slow.status, Status::Interrupted);
        assert_eq!(slow.status.label(), "interrupted");
        assert_eq!(slow.hosts[0].status, Status::Interrupted);
        assert_eq!(v.step("next").unwrap().status, Status::NotRun);
        // Killed, but `resume` still asks the host before starting it again.
        assert_eq!(
            v.unfinished(),
            [Unfinished {
                step: "slow".into(),
                host: "h".into(),
                tag: "ab12".into()
            }]
        );
    }

    #[test]
    fn a_journal_cut_by_kill_9_leaves_the_step_running_until_resumed() {
        let j = Journal::new().at(0, 0, started(&["a"], "v1", "alice")).at(
            0,
            1,
            step_started("a", &["h"]),
        );
        let v = j.view();
        assert_eq!(v.step("a").unwrap().status, Status::Running);
        assert_eq!(v.status, RunStatus::Unfinished);
        let v = j.at(9, 0, resumed("v1", "alice", &["a"])).view();
        assert_eq!(v.step("a").unwrap().status, Status::Interrupted);
        assert_eq!(v.versions, ["v1"], "the same runbook is one version");
    }

    #[test]
    fn marks_reopen_a_run_and_a_skip_is_a_caveat_on_success() {
        let v = Journal::new()
            .at(0, 0, started(&["a", "b"], "v1", "alice"))
            .at(0, 1, step_started("a", &["h"]))
            .at(1, 2, host_finished("a", "h", HostOutcome::Failed))
            .at(1, 3, step_finished("a", HostOutcome::Failed, 2))
            .at(
                1,
                3,
                EventKind::StepBlocked {
                    step: "b".into(),
                    by: "a".into(),
                },
            )
            .at(1, 4, finished(RunOutcome::Failed))
            .at(
                60,
                0,
                EventKind::Marked {
                    step: "a".into(),
                    status: MarkStatus::Skipped,
                    operator: "dave".into(),
                    note: "not needed tonight".into(),
                },
            );
        let v1 = v.view();
        assert_eq!(v1.status, RunStatus::Unfinished);
        assert_eq!(v1.step("b").unwrap().blocked_by.as_deref(), Some("a"));
        let v2 = v
            .at(70, 0, resumed("v1", "alice", &["b"]))
            .at(70, 1, step_started("b", &[]))
            .at(70, 2, step_finished("b", HostOutcome::Skipped, 1))
            .at(70, 3, finished(RunOutcome::Succeeded))
            .view();
        let a = v2.step("a").unwrap();
        assert_eq!(
            (a.status, a.mark),
            (Status::Done(HostOutcome::Marked), Some(MarkStatus::Skipped))
        );
        assert_eq!(v2.step("b").unwrap().blocked_by, None);
        assert_eq!(v2.verdict(), "succeeded, 1 step skipped by hand");
        assert_eq!(v2.operators, ["alice", "dave"]);
        assert_eq!(v2.decisions[0].kind.label(), "skipped");
    }

    #[test]
    fn a_succeeded_run_stays_succeeded() {
        let v = Journal::new()
            .at(0, 0, started(&["a"], "v1", "alice"))
            .at(0, 1, finished(RunOutcome::Succeeded))
            .at(
                1,
                0,
                EventKind::Confirmation {
                    step: "a".into(),
                    operator: "x".into(),
                    note: None,
                    automatic: false,
                },
            )
            .view();
        assert_eq!(v.status, RunStatus::Finished(RunOutcome::Succeeded));
    }

    #[test]
    fn a_hand_off_names_its_operator_and_neither_reopens_nor_lengthens_the_run() {
        let confirmed = |secs, who: &str| {
            (
                secs,
                EventKind::Confirmation {
                    step: "a".into(),
                    operator: who.into(),
                    note: Some(format!("by {who}")),
                    automatic: false,
                },
            )
        };
        let (t1, c1) = confirmed(30, "bob");
        let v = Journal::new()
            .at(0, 0, started(&["a"], "v1", "alice"))
            .at(10, 10_000, finished(RunOutcome::Succeeded))
            .at(t1, 0, c1)
            .at(
                7200,
                0,
                EventKind::HandedOff {
                    operator: "carol".into(),
                },
            )
            .view();
        assert_eq!(v.status, RunStatus::Finished(RunOutcome::Succeeded));
        assert_eq!(v.operators, ["alice", "bob", "carol"]);
        assert_eq!(v.handoffs.len(), 1);
        assert_eq!(
            (v.handoffs[0].operator.as_str(), v.handoffs[0].offset_ms),
            ("carol", 7_200_000)
        );
        assert_eq!(v.wall_ms, 30_000, "the hand-off is not part of the run");
        assert!(v.end.starts_with("2027-01-15T08:00:30"), "{}", v.end);
        assert_eq!(v.active_ms(), 10_000);
        let at = |secs: u64| {
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000 + secs)
        };
        assert_eq!(v.decisions_since(None).count(), 1);
        assert_eq!(v.decisions_since(Some(at(30))).count(), 1, "inclusive");
        assert_eq!(v.decisions_since(Some(at(31))).count(), 0);
    }

    #[test]
    fn a_torn_last_line_is_left_out_and_the_rest_folds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let j = Journal::new()
            .at(0, 0, started(&["a"], "v1", "alice"))
            .at(0, 1, step_started("a", &["h"]))
            .at(1, 900, step_finished("a", HostOutcome::Ok, 899));
        let mut text = String::new();
        for e in &j.0 {
            text.push_str(&serde_json::to_string(e).unwrap());
            text.push('\n');
        }
        text.push_str(r#"{"at": "2027-01-15T08:00:02.000Z", "elapsed_ms": 20"#);
        std::fs::write(&path, text).unwrap();
        let v = RunView::from_events(&crate::state::read_journal(&path).unwrap());
        assert_eq!(v.step("a").unwrap().status, Status::Done(HostOutcome::Ok));
        assert_eq!(v.status, RunStatus::Unfinished);
        assert_eq!(v.active_ms(), 900);
    }

    #[test]
    fn an_unreadable_first_line_is_a_corrupt_journal_and_a_torn_middle_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let good = serde_json::to_string(&Journal::new().at(0, 0, started(&["a"], "v1", "x")).0[0])
            .unwrap();
        std::fs::write(&path, format!("{{oops\n{good}\n")).unwrap();
        match crate::state::read_journal(&path) {
            Err(crate::state::StateError::CorruptJournal { line, .. }) => assert_eq!(line, 1),
            other => panic!("expected a corrupt journal at line 1, got {other:?}"),
        }
        // What an older version left after a torn write: the lines around
        // the torn one still count.
        std::fs::write(&path, format!("{good}\n{{oops\n{good}\n")).unwrap();
        assert_eq!(crate::state::read_journal(&path).unwrap().len(), 2);
    }
}
