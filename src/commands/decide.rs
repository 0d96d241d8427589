//! Operator decisions written into a stopped run's journal:
//! `runbook confirm RUN_ID STEP` and `runbook mark RUN_ID STEP done|skipped`.

use crate::cli::{ConfirmArgs, Global, MarkArgs, MarkStatusArg};
use crate::error::{Error, SUCCESS};
use crate::events::{EventKind, MarkStatus, RunEvent};
use crate::exec::operator;
use crate::journal::{RunView, Status};
use crate::redact::println_printable;
use crate::state::{self, RunDir};

fn stamp(kind: EventKind) -> RunEvent {
    RunEvent::stamped(
        kind,
        std::time::SystemTime::now(),
        std::time::Duration::ZERO,
    )
}

/// The step's last state in the journal, for deciding whether a decision
/// applies to it.
enum StepState {
    Unknown,
    WaitingForConfirmation,
    Done,
    Other,
}

fn step_state(view: &RunView, step: &str) -> StepState {
    if !view.selected.as_ref().is_some_and(|s| s.contains(step)) {
        return StepState::Unknown;
    }
    match view.step(step).map(|s| s.status) {
        Some(Status::Waiting) => StepState::WaitingForConfirmation,
        Some(s) if s.is_success() => StepState::Done,
        _ => StepState::Other,
    }
}

fn open(
    global: &Global,
    run_id: &str,
    step: &str,
) -> Result<(state::Lock, RunDir, StepState), Error> {
    let lock = state::lock(&global.state_dir)?;
    let dir = RunDir::open(&global.state_dir, run_id)?;
    let view = RunView::from_events(&state::read_journal(&dir.journal_path())?);
    let st = step_state(&view, step);
    if matches!(st, StepState::Unknown) {
        return Err(Error::Usage(format!("run `{run_id}` has no step `{step}`")));
    }
    Ok((lock, dir, st))
}

pub fn confirm(global: &Global, args: &ConfirmArgs) -> Result<u8, Error> {
    let operator = operator::resolve(args.operator.as_deref())?;
    let (_lock, mut dir, st) = open(global, &args.run_id, &args.step)?;
    if !matches!(st, StepState::WaitingForConfirmation) {
        return Err(Error::Usage(format!(
            "step `{}` of run `{}` is not waiting for a confirmation",
            args.step, args.run_id
        )));
    }
    dir.append(&[stamp(EventKind::Confirmation {
        step: args.step.clone(),
        operator: operator.clone(),
        note: args.note.clone(),
        automatic: false,
    })])?;
    println_printable!(
        "confirmed `{}` of run {} as {}; continue with: runbook resume {}{}",
        args.step,
        args.run_id,
        operator,
        args.run_id,
        super::run::state_flag(global)
    );
    Ok(SUCCESS)
}

pub fn mark(global: &Global, args: &MarkArgs) -> Result<u8, Error> {
    if args.note.trim().is_empty() {
        return Err(Error::Usage(
            "`--note` must say what was done and why".into(),
        ));
    }
    let operator = operator::resolve(args.operator.as_deref())?;
    let (_lock, mut dir, st) = open(global, &args.run_id, &args.step)?;
    if matches!(st, StepState::Done) {
        return Err(Error::Usage(format!(
            "step `{}` of run `{}` already finished; nothing to mark",
            args.step, args.run_id
        )));
    }
    let status = match args.status {
        MarkStatusArg::Done => MarkStatus::Done,
        MarkStatusArg::Skipped => MarkStatus::Skipped,
    };
    dir.append(&[stamp(EventKind::Marked {
        step: args.step.clone(),
        status,
        operator: operator.clone(),
        note: args.note.clone(),
    })])?;
    println_printable!(
        "marked `{}` of run {} {} by {}; continue with: runbook resume {}{}",
        args.step,
        args.run_id,
        status.label(),
        operator,
        args.run_id,
        super::run::state_flag(global)
    );
    Ok(SUCCESS)
}
