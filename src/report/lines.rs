//! Pure formatting of event lines, shared by the plain and progress
//! reporters so both say the same thing.

use crate::events::{EventKind, RunEvent};

#[must_use]
pub fn clock(elapsed_ms: u64) -> String {
    let secs = elapsed_ms / 1000;
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    } else {
        format!("{:02}:{:02}", secs / 60, secs % 60)
    }
}

/// The one duration formatter: tenths below ten seconds, then whole
/// seconds (rounded) as `1h02m03s`.
#[must_use]
pub fn seconds(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        crate::model::Duration::from_secs(ms.saturating_add(500) / 1000).to_string()
    }
}

/// The lines an event prints, or none. `dry_run` adds every action. They
/// reach a terminal: an operator's name or note, or an older journal's
/// stderr, never as escape sequences (`redact::printable`).
#[must_use]
pub fn lines(event: &RunEvent, dry_run: bool) -> Vec<String> {
    unescaped(event, dry_run)
        .iter()
        .map(|line| crate::redact::printable(line))
        .collect()
}

fn unescaped(event: &RunEvent, dry_run: bool) -> Vec<String> {
    let t = clock(event.elapsed_ms);
    match &event.kind {
        EventKind::RunStarted {
            run_id,
            runbook,
            steps,
            operator,
            dry_run,
            ..
        } => {
            let what = if *dry_run {
                "dry-run".to_string()
            } else {
                format!("run {run_id}")
            };
            vec![format!(
                "[{t}] {what} of `{runbook}`: {}, operator {operator}",
                crate::diagnostic::count(steps.len(), "step")
            )]
        }
        EventKind::StepStarted { step, hosts } => {
            vec![format!("[{t}] start      {step} on {}", host_list(hosts))]
        }
        EventKind::Action {
            host,
            action,
            command,
            passed,
            attempt,
            ..
        } if dry_run => {
            let verdict = match (action, passed) {
                (crate::events::Action::Run, _) => "",
                (_, true) => " (assumed to pass)",
                (_, false) => " (assumed not yet passing)",
            };
            let again = if *attempt > 1 {
                format!(" #{attempt}")
            } else {
                String::new()
            };
            vec![format!(
                "         {host}: {}{again}: {command}{verdict}",
                action.label()
            )]
        }
        EventKind::HostFinished {
            host,
            outcome,
            duration_ms,
            message,
            stderr_tail,
            step,
        } if !outcome.is_success() => {
            let mut out = vec![format!(
                "[{t}] {:<11}{step} @ {host}: {} ({})",
                outcome.label(),
                message.as_deref().unwrap_or(""),
                seconds(*duration_ms)
            )];
            out.extend(
                stderr_tail
                    .iter()
                    .rev()
                    .take(5)
                    .rev()
                    .map(|l| format!("         | {l}")),
            );
            out
        }
        EventKind::StepFinished {
            step,
            outcome,
            duration_ms,
        } => vec![format!(
            "[{t}] {:<11}{step} ({})",
            outcome.label(),
            seconds(*duration_ms)
        )],
        EventKind::StepBlocked { step, by } => {
            vec![format!("[{t}] blocked    {step} (`{by}` failed)")]
        }
        EventKind::Confirmation { step, .. } if dry_run => {
            vec![format!("[{t}] would ask an operator to confirm {step}")]
        }
        EventKind::Confirmation {
            step,
            operator,
            note,
            automatic,
        } => {
            let how = if *automatic { " (--yes)" } else { "" };
            let note = note
                .as_deref()
                .filter(|_| !automatic)
                .map(|n| format!(": {n}"))
                .unwrap_or_default();
            vec![format!("[{t}] confirmed {step} by {operator}{how}{note}")]
        }
        EventKind::RunPaused { step, reason } => {
            vec![format!("[{t}] paused     at {step}: {reason}")]
        }
        EventKind::RunFinished { outcome } => {
            vec![format!("[{t}] finished: {}", outcome.label())]
        }
        EventKind::NotificationFailed {
            notification,
            webhook,
            reason,
            ..
        } => vec![format!(
            "[{t}] notify     {} to webhook {webhook} not delivered: {reason}",
            notification.label()
        )],
        _ => Vec::new(),
    }
}

#[must_use]
pub fn host_list(hosts: &[String]) -> String {
    match hosts.len() {
        0 => "no hosts".into(),
        1..=4 => hosts.join(", "),
        n => format!("{}, ... ({n} hosts)", hosts[..3].join(", ")),
    }
}

/// A manual step's instructions as the operator is shown them, rendered
/// with the runbook's variables on the controller. Secrets are never
/// filled in here (this text goes to reports and logs): a template that
/// needs one is shown as written.
#[must_use]
pub fn instructions(
    runbook: &crate::model::Runbook,
    step: &crate::model::Step,
    inventory: Option<&crate::model::Inventory>,
) -> Option<String> {
    let manual = step.manual?;
    let controller = inventory.map_or_else(
        || crate::model::Host::controller(std::collections::BTreeMap::new()),
        crate::model::Inventory::controller,
    );
    let ctx = crate::exec::context::for_host(
        &controller,
        &runbook.vars,
        &crate::exec::context::Secrets::default(),
    );
    Some(
        runbook
            .templates
            .render(manual, &ctx)
            .unwrap_or_else(|_| runbook.templates.source(manual).to_string())
            .trim_end()
            .to_string(),
    )
}
