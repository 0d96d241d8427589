//! The report as Markdown, to paste into an incident ticket or post-mortem.

use std::fmt::Write as _;

use super::run_report::{RunReport, human};
use crate::journal::Status;

fn opt(secs: Option<f64>) -> String {
    secs.map_or_else(|| "-".into(), human)
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[must_use]
pub fn render(r: &RunReport) -> String {
    let mut out = String::new();
    let title = r
        .title
        .as_deref()
        .map(|t| format!(": {t}"))
        .unwrap_or_default();
    let _ = writeln!(out, "# Run report: `{}`{title}\n", r.runbook);
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| run | `{}` |", r.run_id);
    let _ = writeln!(out, "| outcome | **{}** |", r.verdict());
    let _ = writeln!(out, "| operators | {} |", r.operators.join(", "));
    let _ = writeln!(out, "| start | {} |", r.start);
    let _ = writeln!(out, "| end | {} |", r.end);
    let _ = writeln!(out, "| duration | {} |", human(r.duration_secs));
    if r.resumed {
        let _ = writeln!(
            out,
            "| wall clock | {} (paused in between) |",
            human(r.wall_clock_secs)
        );
    }
    out.push('\n');
    if !r.services.is_empty() {
        let _ = writeln!(out, "## Services\n");
        let _ = writeln!(
            out,
            "| service | title | audience | state |\n|---|---|---|---|"
        );
        for s in &r.services {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                s.id,
                cell(s.title.as_deref().unwrap_or("-")),
                cell(s.audience.as_deref().unwrap_or("-")),
                s.describe()
            );
        }
        out.push('\n');
    }
    if !r.phases.is_empty() {
        let _ = writeln!(out, "## Phases against their RTO\n");
        let _ = writeln!(
            out,
            "| phase | start | end | duration | RTO | |\n|---|---|---|---|---|---|"
        );
        for p in &r.phases {
            let verdict = match p.rto_met {
                Some(true) => "met",
                Some(false) => "**missed**",
                None if p.done => "no RTO",
                None => "not done",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {verdict} |",
                p.id,
                opt(p.start_secs),
                opt(p.end_secs),
                opt(p.duration_secs),
                opt(p.rto_secs)
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Steps\n");
    let _ = writeln!(
        out,
        "| step | phase | outcome | start | duration | hosts |\n|---|---|---|---|---|---|"
    );
    for s in &r.steps {
        let outcome = match &s.blocked_by {
            Some(by) => format!("blocked by `{by}`"),
            None if s.outcome.is_failure() => format!("**{}**", s.outcome.label()),
            None => s.outcome.label().to_string(),
        };
        let outcome = if s.definition_changed {
            format!("{outcome} (definition changed since it ran)")
        } else {
            outcome
        };
        let hosts: Vec<String> = s
            .hosts
            .iter()
            .map(|h| format!("{} {}", h.host, h.outcome.label()))
            .collect();
        let _ = writeln!(
            out,
            "| `{}` | {} | {outcome} | {} | {} | {} |",
            s.id,
            s.phase.as_deref().unwrap_or("-"),
            opt(s.start_secs),
            opt(s.duration_secs),
            cell(&hosts.join(", "))
        );
    }
    let waiting: Vec<_> = r
        .steps
        .iter()
        .filter(|s| s.outcome == Status::Waiting)
        .collect();
    if !waiting.is_empty() {
        let _ = writeln!(out, "\n## Waiting for an operator\n");
        for s in waiting {
            let title = s
                .title
                .as_deref()
                .map(|t| format!(": {t}"))
                .unwrap_or_default();
            let _ = writeln!(out, "- `{}`{title}", s.id);
            for line in s.instructions.iter().flat_map(|i| i.lines()) {
                let _ = writeln!(out, "  > {line}");
            }
        }
    }
    let failures = r.failures();
    if !failures.is_empty() {
        let _ = writeln!(out, "\n## Failures\n");
        for (s, h) in failures {
            let message = h.message.as_deref().unwrap_or(h.outcome.label());
            let exit = h
                .exit_code
                .filter(|_| !message.contains("exit status"))
                .map(|c| format!(", exit status {c}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- `{}` on `{}`: {message}{exit}, {} attempt(s)",
                s.id, h.host, h.attempts
            );
            if !h.stderr_tail.is_empty() {
                let _ = writeln!(
                    out,
                    "\n  ```\n{}\n  ```",
                    h.stderr_tail
                        .iter()
                        .map(|l| format!("  {l}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
        }
    }
    if !r.confirmations.is_empty() || !r.marks.is_empty() {
        let _ = writeln!(out, "\n## Decisions\n");
        let _ = writeln!(
            out,
            "| when | step | who | decision | note |\n|---|---|---|---|---|"
        );
        for d in r.confirmations.iter().chain(&r.marks) {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} |",
                d.at,
                d.step,
                d.operator,
                d.decision.label(),
                cell(d.note.as_deref().unwrap_or(""))
            );
        }
    }
    let _ = writeln!(out, "\n## Timeline\n");
    for t in &r.timeline {
        let _ = writeln!(out, "- `+{}` {}", human(t.offset_secs), t.text);
    }
    // Read on a terminal too: see `redact::printable`.
    crate::redact::printable(&out)
}
