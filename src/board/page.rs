//! The board's two pages, self-contained: inline style and script, no
//! address outside the board itself, every value escaped. The script only
//! fetches the page again when `/events` says the journal grew, and swaps
//! its `<main>`: one renderer, here, for the first load and every update.

use std::fmt::Write as _;
use std::sync::LazyLock;

use super::Board;
use crate::journal::{RunStatus, Status};
use crate::report::html::{esc, local_and_utc};
use crate::report::run_report::human;
use crate::report::services::ServiceState;

const SCRIPT: &str = "(function(){var q=location.search,due=false,n=0;\
function refresh(){due=false;fetch(location.pathname+q,{cache:'no-store'}).then(function(r){if(!r.ok)throw r.status;return r.text();}).then(function(t){\
var m=new DOMParser().parseFromString(t,'text/html').querySelector('main');\
if(m){document.querySelector('main').replaceWith(m);document.body.dataset.updates=++n;}}).catch(function(){});}\
function later(){if(!due){due=true;setTimeout(refresh,150);}}\
var es=new EventSource('events'+q);es.onmessage=later;es.addEventListener('ready',later);\
es.onopen=function(){document.body.dataset.live='1';};es.onerror=function(){document.body.dataset.live='0';};\
setInterval(refresh,15000);})();";

const STYLE: &str = "
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1200px;color:#222;padding:.5em 1em}
h1{font-size:1.4em;margin:.3em 0}h2{font-size:1.1em;margin-top:1.4em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.meta{color:#555}.b{display:inline-block;padding:1px 9px;border-radius:9px;background:#ddd;font-weight:600}
.ok,.already-ok,.confirmed,.marked,.succeeded,.met,.available{background:#d8f0df}
.failed,.timed-out,.missed,.risk{background:#f9d6d6}.running,.waiting,.paused,.being-restored,.unfinished{background:#fff0b3}
.not-run,.not-started{color:#777}pre{background:#f7f7f7;border-left:4px solid #bbb;padding:5px 9px;white-space:pre-wrap;margin:4px 0}
pre.err{background:#fff4f4;border-color:#d62728}.wait{border:2px solid #e6b800;border-radius:6px;padding:6px 10px;margin:6px 0}
#live{float:right;font-size:.85em;color:#777}body[data-live='0'] #live{color:#d62728}
ul.svc{list-style:none;padding:0}ul.svc li{font-size:1.15em;padding:.7em .9em;margin:.4em 0;border-radius:8px}
ul.svc .state{display:block;font-size:.9em;color:#333}
";

/// The page's policy: nothing but itself; its one script by hash, so that
/// markup that escaped escaping could not run.
pub static CSP: LazyLock<String> = LazyLock::new(|| {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(SCRIPT));
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{hash}'; \
         connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    )
});

fn page(title: &str, main: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n{main}\n<script>{SCRIPT}</script>\n</body></html>\n",
        esc(title)
    )
}

fn name(board: &Board) -> &str {
    board
        .report
        .title
        .as_deref()
        .unwrap_or(&board.report.runbook)
}

fn offset(secs: Option<f64>) -> String {
    secs.map_or_else(|| "-".into(), |s| format!("+{}", human(s)))
}

/// A time of day on the machine serving the board, with the day when it
/// is not today.
fn clock(at: &str) -> String {
    let Ok(ts) = at.parse::<jiff::Timestamp>() else {
        return at.to_string();
    };
    let tz = jiff::tz::TimeZone::system();
    let then = ts.to_zoned_datetime(tz.clone());
    let today = jiff::Timestamp::now().to_zoned_datetime(tz).date();
    if then.date() == today {
        then.strftime("%H:%M").to_string()
    } else {
        then.strftime("%a %d %b %H:%M").to_string()
    }
}

/// `secs` after the run's start, as a time of day.
fn clock_at(board: &Board, secs: f64) -> Option<String> {
    let start = board.report.start.parse::<jiff::Timestamp>().ok()?;
    let at = start
        .checked_add(jiff::SignedDuration::from_secs_f64(secs))
        .ok()?;
    Some(clock(&at.to_string()))
}

fn badge(label: &str) -> String {
    format!("<span class=\"b {0}\">{0}</span>", esc(label))
}

/// `/`: the war room.
#[must_use]
pub fn war_room(board: &Board) -> String {
    let r = &board.report;
    let mut m = String::from("<main>\n");
    let _ = write!(
        m,
        "<span id=\"live\">live · updated {}</span><h1>{}</h1>\n<p class=\"meta\">run <b>{}</b> {} · started {} · {} elapsed · operators: {}</p>\n",
        esc(&clock(&board.now)),
        esc(name(board)),
        esc(&r.run_id),
        badge(&r.verdict()),
        esc(&local_and_utc(&r.start)),
        esc(&human(r.wall_clock_secs)),
        esc(&r.operators.join(", "))
    );
    phases(&mut m, board);
    waiting(&mut m, board);
    failures(&mut m, board);
    steps(&mut m, board);
    if !r.services.is_empty() {
        m.push_str("<h2>Services</h2>\n<table><tr><th>Service</th><th>State</th></tr>\n");
        for s in &r.services {
            let _ = writeln!(
                m,
                "<tr data-service=\"{}\"><td>{}</td><td>{} {}</td></tr>",
                esc(&s.id),
                esc(s.title.as_deref().unwrap_or(&s.id)),
                badge(s.state.label()),
                esc(&s.describe())
            );
        }
        m.push_str("</table>\n");
    }
    decisions(&mut m, board);
    m.push_str("</main>");
    page(&format!("{} — war room", name(board)), &m)
}

fn phases(m: &mut String, board: &Board) {
    let r = &board.report;
    if r.phases.is_empty() {
        return;
    }
    m.push_str("<h2>Phases against RTO</h2>\n<table><tr><th>Phase</th><th>Started</th><th>Done, or forecast</th><th>RTO</th><th></th></tr>\n");
    for p in &r.phases {
        let forecast = board.forecasts.iter().find(|f| f.phase == p.id);
        let end = if p.done {
            format!("done {}", offset(p.end_secs))
        } else if let Some(f) = forecast.and_then(|f| f.end_secs) {
            format!(
                "forecast {} ({})",
                offset(Some(f)),
                clock_at(board, f).unwrap_or_default()
            )
        } else {
            "-".into()
        };
        let verdict = match (p.rto_met, forecast.is_some_and(|f| f.at_risk)) {
            (Some(true), _) => badge("met"),
            (Some(false), _) => "<span class=\"b missed\">missed</span>".into(),
            (None, true) => "<span class=\"b risk\">at risk</span>".into(),
            _ => String::new(),
        };
        let _ = writeln!(
            m,
            "<tr data-phase=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{verdict}</td></tr>",
            esc(&p.id),
            esc(p.title.as_deref().unwrap_or(&p.id)),
            esc(&offset(p.start_secs)),
            esc(&end),
            esc(&p.rto_secs.map_or_else(|| "-".into(), human)),
        );
    }
    m.push_str("</table>\n");
}

fn waiting(m: &mut String, board: &Board) {
    if board.waiting.is_empty() {
        return;
    }
    m.push_str("<h2>Waiting for an operator</h2>\n");
    for w in &board.waiting {
        let _ = writeln!(
            m,
            "<div class=\"wait\" data-waiting=\"{0}\"><b>{0}</b> {1}{2}<div class=\"meta\">runbook confirm {3} {0}</div></div>",
            esc(&w.step),
            esc(w.title.as_deref().unwrap_or("")),
            w.instructions
                .as_deref()
                .map(|i| format!("<pre>{}</pre>", esc(i)))
                .unwrap_or_default(),
            esc(&board.report.run_id),
        );
    }
}

fn failures(m: &mut String, board: &Board) {
    let failures = board.report.failures();
    if failures.is_empty() {
        return;
    }
    m.push_str("<h2>Failures</h2>\n");
    for (s, h) in failures {
        let _ = writeln!(
            m,
            "<div data-failure=\"{}\"><b>{}</b> on <b>{}</b>: {} {}{}</div>",
            esc(&s.id),
            esc(&s.id),
            esc(&h.host),
            badge(h.outcome.label()),
            esc(&h.message.clone().unwrap_or_default()),
            if h.stderr_tail.is_empty() {
                String::new()
            } else {
                format!(
                    "<pre class=\"err\">{}</pre>",
                    esc(&h.stderr_tail.join("\n"))
                )
            }
        );
    }
}

fn steps(m: &mut String, board: &Board) {
    m.push_str("<h2>Steps</h2>\n<table><tr><th>Step</th><th>Phase</th><th>Outcome</th><th>Duration</th><th>Hosts</th></tr>\n");
    for s in &board.report.steps {
        let hosts: Vec<String> = s
            .hosts
            .iter()
            .map(|h| {
                format!(
                    "{} {} {}",
                    esc(&h.host),
                    badge(h.outcome.label()),
                    esc(&human(h.duration_secs))
                )
            })
            .collect();
        let title = s
            .title
            .as_deref()
            .map(|t| format!("<br><span class=\"meta\">{}</span>", esc(t)))
            .unwrap_or_default();
        let blocked = s
            .blocked_by
            .as_deref()
            .map(|b| format!(" by {}", esc(b)))
            .unwrap_or_default();
        let _ = writeln!(
            m,
            "<tr data-step=\"{0}\" data-status=\"{1}\" class=\"{1}\"><td><b>{0}</b>{title}</td><td>{2}</td><td>{3}{blocked}</td><td>{4}</td><td>{5}</td></tr>",
            esc(&s.id),
            esc(s.outcome.label()),
            esc(s.phase.as_deref().unwrap_or("")),
            badge(s.outcome.label()),
            esc(&s.duration_secs.map_or_else(
                || if s.outcome == Status::Running {
                    "running".into()
                } else {
                    "-".into()
                },
                human
            )),
            hosts.join("<br>"),
        );
    }
    m.push_str("</table>\n");
}

fn decisions(m: &mut String, board: &Board) {
    let r = &board.report;
    let mut all: Vec<_> = r.confirmations.iter().chain(&r.marks).collect();
    if all.is_empty() {
        return;
    }
    all.sort_by(|a, b| a.at.cmp(&b.at));
    m.push_str("<h2>Decisions</h2>\n<table><tr><th>When</th><th>Step</th><th>Who</th><th>Decision</th><th>Note</th></tr>\n");
    for d in all {
        let _ = writeln!(
            m,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&local_and_utc(&d.at)),
            esc(&d.step),
            esc(&d.operator),
            esc(d.decision.label()),
            esc(d.note.as_deref().unwrap_or(""))
        );
    }
    m.push_str("</table>\n");
}

/// `/status`: each service in plain words, grouped by audience, for a
/// phone.
#[must_use]
pub fn status(board: &Board) -> String {
    let r = &board.report;
    let mut m = String::from("<main>\n");
    let _ = write!(
        m,
        "<h1>Service status</h1>\n<p class=\"meta\">{} · updated {}</p>\n",
        esc(name(board)),
        esc(&clock(&board.now))
    );
    if matches!(
        r.outcome,
        RunStatus::Finished(crate::events::RunOutcome::Succeeded)
    ) {
        m.push_str("<p>The recovery is complete.</p>\n");
    }
    if r.services.is_empty() {
        m.push_str("<p>No services are listed for this recovery.</p>\n");
    }
    let mut audiences: Vec<Option<&str>> = Vec::new();
    for s in &r.services {
        if !audiences.contains(&s.audience.as_deref()) {
            audiences.push(s.audience.as_deref());
        }
    }
    for audience in audiences {
        if let Some(a) = audience {
            let _ = writeln!(m, "<h2>{}</h2>", esc(a));
        }
        m.push_str("<ul class=\"svc\">\n");
        for s in r
            .services
            .iter()
            .filter(|s| s.audience.as_deref() == audience)
        {
            let state = match s.state {
                ServiceState::Available => s
                    .available_secs
                    .and_then(|secs| clock_at(board, secs))
                    .map_or_else(|| "Available".into(), |t| format!("Available since {t}")),
                ServiceState::BeingRestored => s.forecast_at.as_deref().map_or_else(
                    || "Being restored".into(),
                    |at| format!("Being restored, expected around {}", clock(at)),
                ),
                ServiceState::NotStarted => "Not started yet".into(),
            };
            let _ = writeln!(
                m,
                "<li class=\"{}\" data-service=\"{}\"><span class=\"name\">{}</span><span class=\"state\">{}</span></li>",
                esc(s.state.label()),
                esc(&s.id),
                esc(s.title.as_deref().unwrap_or(&s.id)),
                esc(&state)
            );
        }
        m.push_str("</ul>\n");
    }
    m.push_str("</main>");
    page(&format!("{} — service status", name(board)), &m)
}
