//! The shift hand-off: what the next operator needs to take a run over.
//! Built from the one journal fold (through [`RunReport`]) and the same
//! remaining-plan forecast as `plan`, the progress bar and the services.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::run_report::{self, Executed, RunReport, StepReport, human};
use crate::events::{HostOutcome, RunOutcome};
use crate::journal::{Decision, RunStatus, RunView, Status, fold};

/// `--since`: a time, or a duration back from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    At(SystemTime),
    Ago(Duration),
}

impl Since {
    #[must_use]
    pub fn resolve(self, now: SystemTime) -> SystemTime {
        match self {
            Self::At(t) => t,
            // Never before the epoch, which no run precedes and no
            // timestamp shows.
            Self::Ago(d) => now
                .checked_sub(d)
                .filter(|t| *t >= SystemTime::UNIX_EPOCH)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        }
    }
}

/// Parses `--since`: RFC 3339 (`2026-11-28T20:00:00Z`, `...+01:00`) or a
/// duration back from now (`8h`, `90m`, `1h 30m`).
pub fn parse_since(text: &str) -> Result<Since, String> {
    let text = text.trim();
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        let ms = u64::try_from(t.as_millisecond()).unwrap_or(0);
        return Ok(Since::At(
            SystemTime::UNIX_EPOCH + Duration::from_millis(ms),
        ));
    }
    if let Ok(d) = humantime::parse_duration(text) {
        return Ok(Since::Ago(d));
    }
    Err(format!(
        "`{text}` is neither an RFC 3339 time (such as 2026-11-28T20:00:00Z) nor a duration \
         back from now (such as 8h or 90m)"
    ))
}

/// Where "since" starts, and why there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinceWhen {
    Start,
    LastHandoff { operator: String, at: String },
    Given(String),
}

/// A step of the remaining critical path.
#[derive(Debug)]
pub struct Next {
    pub id: String,
    pub title: Option<String>,
    pub status: Status,
    pub blocked_by: Option<String>,
    /// Expected time left (measured in earlier runs, else its estimate).
    pub left: Duration,
    /// From now, if the run goes on now.
    pub finish: Duration,
}

/// A phase against its RTO: done (when), or forecast from now.
#[derive(Debug)]
pub struct PhaseForecast {
    pub id: String,
    pub title: Option<String>,
    pub rto_secs: Option<f64>,
    /// Seconds from the run's start; done phases only.
    pub end_secs: Option<f64>,
    /// Seconds from the run's start to its forecast end; open phases only.
    pub forecast_secs: Option<f64>,
}

impl PhaseForecast {
    fn verdict(&self) -> &'static str {
        match (self.rto_secs, self.end_secs.or(self.forecast_secs)) {
            (Some(rto), Some(t)) if t > rto && self.end_secs.is_some() => "missed",
            (Some(rto), Some(t)) if t > rto => "at risk",
            (Some(_), Some(_)) if self.end_secs.is_some() => "met",
            (Some(_), Some(_)) => "on track",
            (Some(_), None) => "no forecast",
            (None, _) => "no RTO",
        }
    }
}

pub struct Handoff {
    pub report: RunReport,
    /// Who hands over, and when (the time of this summary).
    pub by: String,
    pub now: SystemTime,
    /// `now` from the run's start.
    pub now_ms: u64,
    pub from: SinceWhen,
    pub decisions: Vec<Decision>,
    pub next: Vec<Next>,
    /// The remaining critical path's length, from now.
    pub left: Duration,
    pub phases: Vec<PhaseForecast>,
}

fn stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

use crate::events::millis;

/// The hand-off of a run as of `now`. Decisions since `since`, else since
/// the last hand-off, else since the start. `state_dir` holds the runs
/// whose timings forecast the rest.
#[must_use]
pub fn build(
    report: RunReport,
    executed: &[Executed],
    view: &RunView,
    state_dir: &std::path::Path,
    by: &str,
    since: Option<Since>,
    now: SystemTime,
) -> Handoff {
    let start = fold::parse_at(&view.start);
    let now_ms = start
        .and_then(|s| now.duration_since(s).ok())
        .map_or(0, millis)
        .max(view.wall_ms);
    let (from, since) = match (since, view.handoffs.last()) {
        (Some(s), _) => {
            let t = s.resolve(now);
            (SinceWhen::Given(stamp(t)), Some(t))
        }
        (None, Some(h)) => (
            SinceWhen::LastHandoff {
                operator: h.operator.clone(),
                at: h.at.clone(),
            },
            fold::parse_at(&h.at),
        ),
        (None, None) => (SinceWhen::Start, None),
    };
    let decisions = view.decisions_since(since).cloned().collect();
    let mut next = Vec::new();
    let mut phases = Vec::new();
    let mut left = Duration::ZERO;
    if let Some(rb) = run_report::latest(view, executed).map(|e| &e.runbook) {
        let expected = super::services::expected(rb, view, state_dir);
        let plan = super::services::remaining(rb, view, &expected, now_ms);
        left = plan.total.std();
        // Without any duration every path is as long as any other: then
        // all that is left, in plan order.
        let path: Vec<usize> = if left.is_zero() {
            plan.waves.iter().flatten().copied().collect()
        } else {
            plan.critical_path.clone()
        };
        for i in path {
            let step = &rb.steps[i];
            let seen = view.step(&step.id);
            let status = seen.map_or(Status::NotRun, |s| s.status);
            if status.is_success() {
                continue;
            }
            next.push(Next {
                id: step.id.clone(),
                title: step.title.clone(),
                status,
                blocked_by: seen.and_then(|s| s.blocked_by.clone()),
                left: plan.estimate[i].std(),
                finish: plan.earliest_finish[i].std(),
            });
        }
        for (p, phase) in rb.phases.iter().enumerate() {
            let done = report.phases.iter().find(|r| r.id == phase.id);
            let end_secs = done.filter(|r| r.done).and_then(|r| r.end_secs);
            phases.push(PhaseForecast {
                id: phase.id.clone(),
                title: phase.title.clone(),
                rto_secs: phase.rto.map(|r| r.std().as_secs_f64()),
                end_secs,
                forecast_secs: end_secs.is_none().then_some(()).and_then(|()| {
                    plan.phase_forecast[p].map(|f| (now_ms + millis(f.std())) as f64 / 1000.0)
                }),
            });
        }
    }
    Handoff {
        report,
        by: by.to_string(),
        now,
        now_ms,
        from,
        decisions,
        next,
        left,
        phases,
    }
}

/// Markdown or plain text: the same sections, told apart here only.
struct Out {
    md: bool,
    text: String,
}

/// Titles, names and notes are written on one line: a line break in a
/// note (or an operator's name) would otherwise start a line of the
/// document's own, such as a forged section heading.
fn one_line(text: &str) -> String {
    text.replace("\r\n", " ").replace(['\n', '\r'], " ")
}

impl Out {
    /// A section; `rest` follows the title as written (a time, a name).
    fn heading(&mut self, title: &str, rest: &str, count: Option<usize>) {
        let rest = one_line(rest);
        let count = count.map(|n| format!(" ({n})")).unwrap_or_default();
        if self.md {
            let _ = write!(self.text, "\n## {title}{rest}{count}\n\n");
        } else {
            let _ = write!(self.text, "\n{}{rest}{count}\n", title.to_uppercase());
        }
    }

    fn item(&mut self, line: &str) {
        let bullet = if self.md { "- " } else { "  " };
        let _ = writeln!(self.text, "{bullet}{}", one_line(line));
    }

    /// A line under the last item.
    fn sub(&mut self, line: &str) {
        let bullet = if self.md { "  - " } else { "    " };
        let _ = writeln!(self.text, "{bullet}{}", one_line(line));
    }

    /// An operator's instructions, quoted under their item.
    fn quote(&mut self, text: &str) {
        let mark = if self.md { "  > " } else { "      " };
        for line in text.lines() {
            let _ = writeln!(self.text, "{mark}{line}");
        }
    }

    /// Output of a command (the end of stderr), verbatim.
    fn output(&mut self, lines: &[String]) {
        if self.md {
            // Longer than any run of backticks in the output, which would
            // otherwise close the fence and be read as Markdown.
            let longest = lines
                .iter()
                .flat_map(|l| l.split(|c| c != '`'))
                .map(str::len)
                .max()
                .unwrap_or(0);
            let fence = "`".repeat(longest.max(2) + 1);
            let _ = writeln!(self.text, "\n    {fence}");
            for l in lines {
                let _ = writeln!(self.text, "    {l}");
            }
            let _ = writeln!(self.text, "    {fence}\n");
        } else {
            for l in lines {
                let _ = writeln!(self.text, "      | {l}");
            }
        }
    }

    /// An id or a command, as code in Markdown.
    fn code(&self, text: &str) -> String {
        if self.md {
            format!("`{text}`")
        } else {
            text.to_string()
        }
    }

    fn field(&mut self, name: &str, value: &str) {
        let value = one_line(value);
        if self.md {
            let _ = writeln!(self.text, "| {name} | {} |", value.replace('|', "\\|"));
        } else {
            let _ = writeln!(self.text, "{:<15}{value}", format!("{name}:"));
        }
    }

    /// A line of its own after a section's items.
    fn none(&mut self, what: &str) {
        if self.md {
            // A blank line first, or Markdown continues the last item.
            if !self.text.ends_with("\n\n") {
                self.text.push('\n');
            }
            let _ = writeln!(self.text, "{what}");
        } else {
            let _ = writeln!(self.text, "  {what}");
        }
    }
}

fn titled(out: &Out, s: &StepReport) -> String {
    match &s.title {
        Some(t) => format!("{} {t}", out.code(&s.id)),
        None => out.code(&s.id),
    }
}

#[must_use]
pub fn render(h: &Handoff, md: bool) -> String {
    let mut out = Out {
        md,
        text: String::new(),
    };
    let r = &h.report;
    let now = stamp(h.now);
    let at = |secs: f64| {
        fold::parse_at(&r.start).map_or_else(
            || format!("+{}", human(secs)),
            |s| stamp(s + Duration::from_secs_f64(secs.max(0.0))),
        )
    };
    let title = r
        .title
        .as_deref()
        .map(|t| format!(": {}", one_line(t)))
        .unwrap_or_default();
    if md {
        let _ = writeln!(
            out.text,
            "# Hand-off: `{}`{title}\n\n| | |\n|---|---|",
            r.runbook
        );
    } else {
        let _ = writeln!(out.text, "HAND-OFF: {}{title}\n", r.runbook);
    }
    out.field("run", &out.code(&r.run_id));
    out.field("outcome", &r.verdict());
    out.field("operators", &r.operators.join(", "));
    out.field("handed off by", &format!("{} at {now}", h.by));
    out.field(
        "started",
        &format!("{} ({} ago)", r.start, human(h.now_ms as f64 / 1000.0)),
    );
    let since = match &h.from {
        SinceWhen::Start => "the start of the run".to_string(),
        SinceWhen::LastHandoff { operator, at } => format!("the hand-off by {operator} at {at}"),
        SinceWhen::Given(at) => at.clone(),
    };
    out.field("since", &since);

    let done: Vec<&StepReport> = r.steps.iter().filter(|s| s.outcome.is_success()).collect();
    out.heading("Done", "", Some(done.len()));
    for s in &done {
        let how = match s.outcome {
            Status::Done(HostOutcome::Marked) => {
                let mark = r.marks.iter().rev().find(|m| m.step == s.id);
                mark.map_or_else(
                    || "marked".to_string(),
                    |m| format!("marked {} by {}", m.decision.label(), m.operator),
                )
            }
            other => other.label().to_string(),
        };
        let took = s
            .duration_secs
            .map(|d| format!(" in {}", human(d)))
            .unwrap_or_default();
        let when = s
            .end_secs
            .map(|e| format!(", at {}", at(e)))
            .unwrap_or_default();
        out.item(&format!("{}: {how}{took}{when}", titled(&out, s)));
    }
    if done.is_empty() {
        out.none("nothing yet");
    }

    let flight: Vec<&StepReport> = r
        .steps
        .iter()
        .filter(|s| matches!(s.outcome, Status::Running | Status::Interrupted))
        .collect();
    out.heading("In flight", "", Some(flight.len()));
    for s in &flight {
        let finished = s
            .hosts
            .iter()
            .filter(|h| matches!(h.outcome, Status::Done(_)))
            .count();
        let hosts = format!("{finished} of {} host(s) finished", s.hosts.len());
        let line = if s.outcome == Status::Interrupted {
            format!(
                "{}: interrupted when the run stopped ({hosts}); `resume` asks its hosts whether it still runs before starting it again",
                titled(&out, s)
            )
        } else {
            let since = s
                .start_secs
                .map(|t| format!(" for {}", human(h.now_ms as f64 / 1000.0 - t)))
                .unwrap_or_default();
            format!("{}: running{since} ({hosts})", titled(&out, s))
        };
        out.item(&line);
    }
    if flight.is_empty() {
        out.none("nothing");
    }

    let failed: Vec<&StepReport> = r
        .steps
        .iter()
        .filter(|s| s.outcome.is_failure() || s.blocked_by.is_some())
        .collect();
    out.heading("Failed", "", Some(failed.len()));
    for s in &failed {
        if let Some(by) = &s.blocked_by {
            out.item(&format!("{}: blocked by {}", titled(&out, s), out.code(by)));
            continue;
        }
        out.item(&format!("{}: {}", titled(&out, s), s.outcome.label()));
        for host in s.hosts.iter().filter(|h| h.outcome.is_failure()) {
            let message = host.message.as_deref().unwrap_or(host.outcome.label());
            out.sub(&format!(
                "on {}: {message}, {} attempt(s)",
                out.code(&host.host),
                host.attempts
            ));
            if !host.stderr_tail.is_empty() {
                out.output(&host.stderr_tail);
            }
        }
    }
    if failed.is_empty() {
        out.none("nothing");
    } else if r.outcome != RunStatus::Finished(RunOutcome::Succeeded) {
        out.none(&format!(
            "fix by hand, then {} (or {})",
            out.code(&format!(
                "runbook mark {} STEP done|skipped --note TEXT",
                r.run_id
            )),
            out.code(&format!("runbook resume {}", r.run_id))
        ));
    }

    let waiting: Vec<&StepReport> = r
        .steps
        .iter()
        .filter(|s| s.outcome == Status::Waiting)
        .collect();
    out.heading("Waiting for an operator", "", Some(waiting.len()));
    for s in &waiting {
        let whom = if s.instructions.is_some() {
            "an operator to do this by hand, then confirm"
        } else {
            "an operator's go-ahead before it runs (`confirm: true`)"
        };
        out.item(&format!("{}: waits for {whom}", titled(&out, s)));
        if let Some(i) = &s.instructions {
            out.quote(i);
        }
        // After a blank line, or Markdown continues the quote.
        let then = if md { "\n  then" } else { "    then" };
        let _ = writeln!(
            out.text,
            "{then}: {}",
            out.code(&format!(
                "runbook confirm {} {} --operator NAME --note TEXT",
                r.run_id, s.id
            ))
        );
    }
    if waiting.is_empty() {
        out.none("nobody");
    }

    out.heading("Next on the critical path", "", None);
    if h.next.is_empty() {
        out.none("nothing left");
    } else {
        for n in &h.next {
            let state = match &n.blocked_by {
                Some(by) => format!("blocked by {}", out.code(by)),
                None => n.status.words().to_string(),
            };
            let title = n
                .title
                .as_deref()
                .map(|t| format!(" {t}"))
                .unwrap_or_default();
            let forecast = if h.left.is_zero() {
                String::new()
            } else {
                format!(
                    ", ~{} left, forecast done {} (in {})",
                    human(n.left.as_secs_f64()),
                    stamp(h.now + n.finish),
                    human(n.finish.as_secs_f64())
                )
            };
            out.item(&format!("{}{title}: {state}{forecast}", out.code(&n.id)));
        }
        if h.left.is_zero() {
            out.none(
                "no step left has a measured duration or an `estimate`: all of them, in plan \
                 order, and no forecast",
            );
        } else {
            out.none(&format!(
                "forecast end of the run: {} (in {}), if it goes on now",
                stamp(h.now + h.left),
                human(h.left.as_secs_f64())
            ));
        }
    }

    out.heading("Phases against their RTO", "", None);
    if h.phases.is_empty() {
        out.none("no phases");
    }
    for p in &h.phases {
        let title = p
            .title
            .as_deref()
            .map(|t| format!(" {t}"))
            .unwrap_or_default();
        let rto = p
            .rto_secs
            .map(|r| format!("RTO {}", human(r)))
            .unwrap_or_default();
        let state = match (p.end_secs, p.forecast_secs) {
            (Some(e), _) => format!("done at {} (+{})", at(e), human(e)),
            (None, Some(f)) => format!("forecast {} (+{})", at(f), human(f)),
            (None, None) => "not done, no forecast".to_string(),
        };
        let verdict = p.verdict();
        let verdict = if md && matches!(verdict, "missed" | "at risk") {
            format!("**{verdict}**")
        } else {
            verdict.to_string()
        };
        let rto = if rto.is_empty() {
            String::new()
        } else {
            format!("{rto}, ")
        };
        out.item(&format!(
            "{}{title}: {state}; {rto}{verdict}",
            out.code(&p.id)
        ));
    }

    out.heading(
        "Decisions and notes since",
        &format!(" {since}"),
        Some(h.decisions.len()),
    );
    for d in &h.decisions {
        let note = d
            .note
            .as_deref()
            .map(|n| format!(": {n}"))
            .unwrap_or_default();
        out.item(&format!(
            "{} {} {} {}{note}",
            d.at,
            d.operator,
            d.kind.label(),
            out.code(&d.step)
        ));
    }
    if h.decisions.is_empty() {
        out.none("none");
    }
    // A journal not written by this version (or edited) may hold raw
    // control characters, and operators' names and notes are typed freely.
    crate::redact::printable(&out.text)
}
