//! The report as one self-contained HTML file (no network): summary,
//! phases against RTO, a Gantt-style SVG timeline of steps by phase with
//! RTO markers, failures that stand out, decisions and the timeline.

use std::fmt::Write as _;

use super::run_report::{RunReport, StepReport, human};
use super::services::ServiceState;
use crate::events::RunOutcome;
use crate::journal::{RunStatus, Status};

pub(crate) fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Escapes, then shows `name` spans (from event texts) as code.
fn esc_code(text: &str) -> String {
    esc(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

/// Each status's colour, in the legend's order; any other is `OTHER`.
const COLORS: &[(&str, &str)] = &[
    ("ok", "#2e8b57"),
    ("already-ok", "#8fbc8f"),
    ("confirmed", "#4169e1"),
    ("marked", "#8a2be2"),
    ("skipped", "#b0b0b0"),
    ("failed", "#d62728"),
    ("timed-out", "#ff7f0e"),
    ("interrupted", "#a0522d"),
    ("waiting", "#e6b800"),
    ("running", "#e6b800"),
];
const OTHER: &str = "#dddddd";

fn color(status: Status) -> &'static str {
    COLORS
        .iter()
        .find(|(label, _)| *label == status.label())
        .map_or(OTHER, |(_, c)| c)
}

/// An RFC 3339 UTC time as the reader's local time with its offset, and
/// the UTC time beside it (journals record UTC; the reader thinks in local
/// time, and a team spread over zones needs the common one). The local
/// zone is the one of the machine that renders the report (`TZ`).
pub(crate) fn local_and_utc(at: &str) -> String {
    let Ok(ts) = at.parse::<jiff::Timestamp>() else {
        return at.to_string();
    };
    let local = ts.to_zoned_datetime(jiff::tz::TimeZone::system());
    let utc = ts.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    if local.offset().seconds() == 0 {
        return utc.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    }
    let utc = if utc.date() == local.date() {
        utc.strftime("%H:%M:%S UTC")
    } else {
        utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    };
    format!("{} ({utc})", local.strftime("%Y-%m-%d %H:%M:%S %:z"))
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.failed,.missed{color:#d62728;font-weight:700}.met{color:#2e8b57;font-weight:600}
pre{background:#fff4f4;border-left:4px solid #d62728;padding:6px 10px;white-space:pre-wrap;margin:4px 0}
.meta td:first-child{width:9em;color:#555}svg text{font-size:12px;font-family:system-ui,sans-serif}
.legend{font-size:12px;color:#444}.key{margin-right:1.2em;white-space:nowrap}.key i{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle;border-radius:2px}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}svg,table,pre{break-inside:avoid}}
";

#[must_use]
pub fn render(r: &RunReport) -> String {
    let mut o = String::new();
    header(&mut o, r);
    services(&mut o, r);
    phases(&mut o, r);
    let _ = writeln!(o, "<h2>Timeline</h2>");
    o.push_str(&gantt(r));
    steps(&mut o, r);
    waiting(&mut o, r);
    failures(&mut o, r);
    decisions(&mut o, r);
    events(&mut o, r);
    o.push_str("</body></html>\n");
    // Read on a terminal too, and HTML has no place for control characters:
    // see `redact::printable`.
    crate::redact::printable(&o)
}

/// The document's head, the verdict and the run's facts.
fn header(o: &mut String, r: &RunReport) {
    let title = format!("Run report: {}", r.title.as_deref().unwrap_or(&r.runbook));
    let badge = match r.outcome {
        RunStatus::Finished(RunOutcome::Succeeded) => "#2e8b57",
        RunStatus::Finished(RunOutcome::Failed) => "#d62728",
        _ => "#e6b800",
    };
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    let _ = writeln!(o, "<h1>{}</h1>", esc(&title));
    let _ = writeln!(
        o,
        "<p><span class=\"badge\" style=\"background:{badge}\">{}</span> runbook <code>{}</code>, run <code>{}</code></p>",
        esc(&r.verdict()),
        esc(&r.runbook),
        esc(&r.run_id)
    );
    let _ = writeln!(
        o,
        "<table class=\"meta\"><tr><td>operators</td><td>{}</td></tr><tr><td>start</td><td>{}</td></tr><tr><td>end</td><td>{}</td></tr><tr><td>duration</td><td>{}{}</td></tr></table>",
        esc(&r.operators.join(", ")),
        esc(&local_and_utc(&r.start)),
        esc(&local_and_utc(&r.end)),
        human(r.duration_secs),
        if r.resumed {
            format!(
                " active (wall clock {}, paused in between)",
                human(r.wall_clock_secs)
            )
        } else {
            String::new()
        }
    );
    if let Some(d) = &r.description {
        let _ = writeln!(o, "<p>{}</p>", esc(d));
    }
}

fn services(o: &mut String, r: &RunReport) {
    if r.services.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "<h2>Services</h2><table><tr><th>service</th><th>audience</th><th>state</th></tr>"
    );
    for s in &r.services {
        let class = match s.state {
            ServiceState::Available => "met",
            ServiceState::BeingRestored | ServiceState::NotStarted => "",
        };
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            esc(s.title.as_deref().unwrap_or(&s.id)),
            esc(s.audience.as_deref().unwrap_or("-")),
            esc(&s.describe())
        );
    }
    o.push_str("</table>\n");
}

fn phases(o: &mut String, r: &RunReport) {
    if r.phases.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "<h2>Phases against their RTO</h2><table><tr><th>phase</th><th>start</th><th>end</th><th>duration</th><th>RTO</th><th></th></tr>"
    );
    for p in &r.phases {
        let (class, verdict) = match p.rto_met {
            Some(true) => ("met", "met"),
            Some(false) => ("missed", "missed"),
            None if p.done => ("", "no RTO"),
            None => ("", "not done"),
        };
        let f = |x: Option<f64>| x.map_or_else(|| "-".into(), human);
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{verdict}</td></tr>",
            esc(p.title.as_deref().unwrap_or(&p.id)),
            f(p.start_secs),
            f(p.end_secs),
            f(p.duration_secs),
            f(p.rto_secs)
        );
    }
    o.push_str("</table>\n");
}

fn steps(o: &mut String, r: &RunReport) {
    let _ = writeln!(
        o,
        "<h2>Steps</h2><table><tr><th>step</th><th>phase</th><th>outcome</th><th>duration</th><th>hosts</th></tr>"
    );
    for s in &r.steps {
        let class = if s.outcome.is_failure() {
            " class=\"failed\""
        } else {
            ""
        };
        let outcome = match &s.blocked_by {
            Some(by) => format!("blocked (<code>{}</code> failed)", esc(by)),
            None => esc(s.outcome.label()),
        };
        let outcome = if s.definition_changed {
            format!("{outcome} <small>(definition changed since it ran)</small>")
        } else {
            outcome
        };
        let hosts: Vec<String> = s
            .hosts
            .iter()
            .map(|h| {
                format!(
                    "{} <span style=\"color:{}\">{}</span>",
                    esc(&h.host),
                    color(h.outcome),
                    esc(h.outcome.label())
                )
            })
            .collect();
        let _ = writeln!(
            o,
            "<tr><td><code>{}</code><br><small>{}</small></td><td>{}</td><td{class}>{outcome}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.id),
            esc(s.title.as_deref().unwrap_or("")),
            esc(s.phase.as_deref().unwrap_or("-")),
            s.duration_secs.map_or_else(|| "-".into(), human),
            hosts.join(", ")
        );
    }
    o.push_str("</table>\n");
}

/// Steps waiting for an operator, with what the operator must do.
fn waiting(o: &mut String, r: &RunReport) {
    let waiting: Vec<_> = r
        .steps
        .iter()
        .filter(|s| s.outcome == Status::Waiting)
        .collect();
    if waiting.is_empty() {
        return;
    }
    let _ = writeln!(o, "<h2>Waiting for an operator</h2>");
    for s in waiting {
        let _ = writeln!(
            o,
            "<p><code>{}</code> {}</p>",
            esc(&s.id),
            esc(s.title.as_deref().unwrap_or(""))
        );
        if let Some(i) = &s.instructions {
            let _ = writeln!(
                o,
                "<blockquote style=\"white-space:pre-wrap\">{}</blockquote>",
                esc(i)
            );
        }
    }
}

fn failures(o: &mut String, r: &RunReport) {
    let failures = r.failures();
    if failures.is_empty() {
        return;
    }
    let _ = writeln!(o, "<h2 class=\"failed\">Failures</h2>");
    for (s, h) in failures {
        let _ = writeln!(
            o,
            "<p class=\"failed\"><code>{}</code> on <code>{}</code>: {} ({} attempt(s))</p>",
            esc(&s.id),
            esc(&h.host),
            esc(h.message.as_deref().unwrap_or(h.outcome.label())),
            h.attempts
        );
        if !h.stderr_tail.is_empty() {
            let _ = writeln!(o, "<pre>{}</pre>", esc(&h.stderr_tail.join("\n")));
        }
    }
}

/// Confirmations and marks: who decided what, and when.
fn decisions(o: &mut String, r: &RunReport) {
    if r.confirmations.is_empty() && r.marks.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "<h2>Decisions</h2><table><tr><th>when</th><th>step</th><th>who</th><th>decision</th><th>note</th></tr>"
    );
    for d in r.confirmations.iter().chain(&r.marks) {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&local_and_utc(&d.at)),
            esc(&d.step),
            esc(&d.operator),
            esc(d.decision.label()),
            esc(d.note.as_deref().unwrap_or(""))
        );
    }
    o.push_str("</table>\n");
}

fn events(o: &mut String, r: &RunReport) {
    let _ = writeln!(
        o,
        "<h2>Events</h2><table><tr><th>+time</th><th>event</th></tr>"
    );
    for t in &r.timeline {
        let _ = writeln!(
            o,
            "<tr><td>+{}</td><td>{}</td></tr>",
            human(t.offset_secs),
            esc_code(&t.text)
        );
    }
    o.push_str("</table>\n");
}

/// Steps as bars on a time axis, grouped by phase; dashed lines mark each
/// phase's RTO when it falls within the chart.
fn gantt(r: &RunReport) -> String {
    let rows = rows(r);
    let chart = Chart {
        span: r
            .duration_secs
            .max(
                r.steps
                    .iter()
                    .filter_map(|s| s.end_secs)
                    .fold(0.0, f64::max),
            )
            .max(1.0),
        height: 30.0 + ROW * rows.len() as f64 + 10.0,
    };
    let mut o = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {}\" width=\"100%\" role=\"img\" aria-label=\"timeline of steps\">\n",
        chart.height
    );
    chart.axis(&mut o);
    for (i, row) in rows.iter().enumerate() {
        let y = 24.0 + ROW * i as f64;
        match row {
            Row::Phase(phase) => chart.phase(&mut o, r, phase, y),
            Row::Step(s) => chart.step(&mut o, s, y),
        }
    }
    o.push_str("</svg>\n");
    legend(&mut o, r, chart.span);
    let beyond: Vec<String> = r
        .phases
        .iter()
        .filter_map(|p| {
            p.rto_secs
                .filter(|rto| *rto > chart.span)
                .map(|rto| format!("{} {}", esc(&p.id), human(rto)))
        })
        .collect();
    if !beyond.is_empty() {
        let _ = writeln!(
            o,
            "<p><small>RTO beyond the right edge of the chart: {}</small></p>",
            beyond.join(", ")
        );
    }
    o
}

const LEFT: f64 = 380.0;
const WIDTH: f64 = 1060.0;
const ROW: f64 = 20.0;

/// An id and its title in the label column, the title cut to what fits
/// in `room` pixels (the whole of it in the tooltip).
fn label(id: &str, title: Option<&str>, room: f64) -> String {
    // An average glyph of the chart's 12px sans-serif is under 7px wide.
    let fits = (room / 7.0) as usize;
    let Some(title) = title.filter(|t| !t.is_empty() && *t != id) else {
        return esc(id);
    };
    let left = fits.saturating_sub(id.chars().count() + 1);
    let shown: String = if title.chars().count() > left {
        let mut cut: String = title.chars().take(left.saturating_sub(1)).collect();
        cut.push('\u{2026}');
        cut
    } else {
        title.to_string()
    };
    format!(
        "<title>{0}: {1}</title>{0} <tspan fill=\"#666\" font-weight=\"400\">{2}</tspan>",
        esc(id),
        esc(title),
        esc(&shown)
    )
}

/// What the timeline's colours and marks mean: the statuses the report
/// shows, the RTO line when one is drawn, the outline of a failure.
fn legend(o: &mut String, r: &RunReport, span: f64) {
    let shown: Vec<&str> = r
        .steps
        .iter()
        .flat_map(|s| std::iter::once(s.outcome).chain(s.hosts.iter().map(|h| h.outcome)))
        .map(Status::label)
        .collect();
    let swatch = |style: &str, text: &str| {
        format!(
            "<span class=\"key\"><i style=\"{style}\"></i>{}</span>",
            esc(text)
        )
    };
    let mut keys: Vec<String> = COLORS
        .iter()
        .filter(|(label, _)| shown.contains(label))
        .map(|(label, c)| swatch(&format!("background:{c}"), label))
        .collect();
    if r.steps.iter().any(|s| s.outcome.is_failure()) {
        keys.push(swatch(
            "background:#d62728;outline:2px solid #7f0000",
            "dark outline: failed or timed out",
        ));
    }
    if r.phases
        .iter()
        .any(|p| p.rto_secs.is_some_and(|rto| rto <= span))
    {
        keys.push(swatch(
            "height:0;border-top:2px dashed #d62728",
            "dashed line: a phase's RTO",
        ));
    }
    if r.steps.iter().any(|s| s.start_secs.is_none()) {
        keys.push(
            "<span class=\"key\" style=\"color:#999\">grey text: never started</span>".into(),
        );
    }
    let _ = writeln!(o, "<p class=\"legend\">{}</p>", keys.join(" "));
}

enum Row<'a> {
    Phase(&'a str),
    Step(&'a StepReport),
}

/// A title row per phase (steps without one last), then its steps.
fn rows(r: &RunReport) -> Vec<Row<'_>> {
    let mut rows = Vec::new();
    let mut phases: Vec<Option<&str>> = r.phases.iter().map(|p| Some(p.id.as_str())).collect();
    phases.push(None);
    for phase in phases {
        let steps: Vec<_> = r
            .steps
            .iter()
            .filter(|s| s.phase.as_deref() == phase)
            .collect();
        if steps.is_empty() {
            continue;
        }
        rows.push(Row::Phase(phase.unwrap_or("no phase")));
        rows.extend(steps.into_iter().map(Row::Step));
    }
    rows
}

/// The timeline's scale: `span` seconds across, `height` pixels down.
struct Chart {
    span: f64,
    height: f64,
}

impl Chart {
    fn x(&self, secs: f64) -> f64 {
        LEFT + (secs / self.span) * (WIDTH - LEFT - 10.0)
    }

    /// Five time marks across the top, with their grid lines.
    fn axis(&self, o: &mut String) {
        for i in 0..=4 {
            let t = self.span * f64::from(i) / 4.0;
            let anchor = match i {
                0 => "start",
                4 => "end",
                _ => "middle",
            };
            let _ = writeln!(
                o,
                "<line x1=\"{0:.1}\" y1=\"18\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"#eee\"/><text x=\"{0:.1}\" y=\"12\" text-anchor=\"{anchor}\" fill=\"#666\">+{1}</text>",
                self.x(t),
                human(t),
                self.height
            );
        }
    }

    /// A phase's title, and its RTO line when it falls within the chart.
    fn phase(&self, o: &mut String, r: &RunReport, phase: &str, y: f64) {
        let _ = writeln!(
            o,
            "<text x=\"4\" y=\"{:.1}\" font-weight=\"700\">{}</text>",
            y + 14.0,
            label(
                phase,
                r.phases
                    .iter()
                    .find(|p| p.id == phase)
                    .and_then(|p| p.title.as_deref()),
                LEFT - 14.0
            )
        );
        if let Some(p) = r.phases.iter().find(|p| p.id == phase)
            && let Some(rto) = p.rto_secs
            && rto <= self.span
        {
            let _ = writeln!(
                o,
                "<line x1=\"{0:.1}\" y1=\"18\" x2=\"{0:.1}\" y2=\"{3}\" stroke=\"#d62728\" stroke-dasharray=\"5,4\"/><text x=\"{0:.1}\" y=\"{1:.1}\" fill=\"#d62728\"> RTO {2}</text>",
                self.x(rto),
                y + 14.0,
                esc(phase),
                self.height
            );
        }
    }

    /// A step's name and its bar, or its outcome when it never started.
    fn step(&self, o: &mut String, s: &StepReport, y: f64) {
        let _ = writeln!(
            o,
            "<text x=\"14\" y=\"{:.1}\">{}</text>",
            y + 14.0,
            label(&s.id, s.title.as_deref(), LEFT - 24.0)
        );
        let Some(start) = s.start_secs else {
            let _ = writeln!(
                o,
                "<text x=\"{LEFT}\" y=\"{:.1}\" fill=\"#999\">{}</text>",
                y + 14.0,
                esc(s.outcome.label())
            );
            return;
        };
        let end = s.end_secs.unwrap_or(self.span);
        let w = (self.x(end) - self.x(start)).max(3.0);
        let stroke = if s.outcome.is_failure() {
            " stroke=\"#7f0000\" stroke-width=\"2\""
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"14\" rx=\"2\" fill=\"{}\"{stroke}><title>{}: {} ({})</title></rect>",
            self.x(start),
            y + 3.0,
            color(s.outcome),
            esc(&s.id),
            esc(s.outcome.label()),
            s.duration_secs.map_or_else(|| "-".into(), human)
        );
    }
}
