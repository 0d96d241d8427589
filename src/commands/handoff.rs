//! `runbook handoff [RUN_ID] [--since TIME] [--format md|text] [--operator NAME]`:
//! the shift-change summary. Each hand-off is journaled (`handed-off`), so
//! that the next one tells what was decided since.

use std::time::SystemTime;

use crate::cli::{Global, HandoffArgs, HandoffFormat};
use crate::error::{Error, SUCCESS};
use crate::events::{EventKind, RunEvent};
use crate::exec::operator;
use crate::journal::RunView;
use crate::report::{handoff, run_report};
use crate::state::{self, RunDir, StateError};

pub fn run(global: &Global, args: &HandoffArgs) -> Result<u8, Error> {
    let by = operator::resolve(args.operator.as_deref())?;
    let id = match &args.run_id {
        Some(id) => id.clone(),
        None => super::report::latest_run(global)?,
    };
    // A read must not create the state dir that `lock` would.
    if std::fs::symlink_metadata(&global.state_dir).is_err() {
        return Err(StateError::UnknownRun {
            id,
            state_dir: global.state_dir.clone(),
        }
        .into());
    }
    // The journal has one writer at a time. While a run holds the lock,
    // the hand-off is shown but not journaled (the live run is the writer).
    let (_lock, dir) = match state::lock(&global.state_dir) {
        Ok(lock) => {
            let dir = RunDir::open(&global.state_dir, &id)?;
            (Some(lock), Some(dir))
        }
        Err(StateError::Locked { .. }) => (None, None),
        Err(e) => return Err(e.into()),
    };
    let events = state::read_run(&global.state_dir, &id)?;
    let view = RunView::from_events(&events);
    let executed = super::report::all_executed(&global.state_dir, &id, &view)?;
    let report = run_report::build(&id, &executed, &view, &events, &global.state_dir);
    let now = SystemTime::now();
    let summary = handoff::build(
        report,
        &executed,
        &view,
        &global.state_dir,
        &by,
        args.since,
        now,
    );
    let text = handoff::render(&summary, args.format == HandoffFormat::Md);
    match dir {
        Some(mut dir) => dir.append(&[RunEvent::stamped(
            EventKind::HandedOff { operator: by },
            now,
            std::time::Duration::ZERO,
        )])?,
        None => eprintln!(
            "note: a run is active on {}, so this hand-off is not journaled; the next one \
             again starts from the same point (or give `--since`)",
            global.state_dir.display()
        ),
    }
    print!("{text}");
    Ok(SUCCESS)
}
