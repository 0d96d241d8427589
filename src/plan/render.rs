//! `plan --format text|json|dot|mermaid`.

use std::fmt::Write as _;

use serde::Serialize;

use super::Plan;
use crate::diagnostic::count;
use crate::history::History;
use crate::model::{Duration, Runbook};

/// Where a forecast's durations came from.
pub struct Sources<'a> {
    /// Measured in earlier runs on the same inventory.
    pub history: &'a History,
    /// The critical path by the runbook's estimates alone.
    pub estimates_only: Duration,
}

/// A path as the user would type it: relative to the working directory
/// when it is below it.
fn shown(path: Option<&str>) -> String {
    let Some(path) = path else {
        return "no inventory".into();
    };
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            std::path::Path::new(path)
                .strip_prefix(cwd)
                .ok()
                .map(|p| p.display().to_string())
        })
        .unwrap_or_else(|| path.to_string())
}

/// The lines that say where the forecast's durations came from, and which
/// measurements were left out: none without any history.
fn provenance(out: &mut String, sources: &Sources) {
    let h = sources.history;
    if let Some(latest) = h.runs.last() {
        let _ = writeln!(
            out,
            "measured durations of {} on this inventory (latest {latest}) replace the runbook's estimates; by estimates alone the critical path is {}",
            count(h.runs.len(), "run"),
            sources.estimates_only,
        );
    }
    if h.other_runs > 0 {
        let places: Vec<String> = h
            .other_inventories
            .iter()
            .map(|p| shown(p.as_deref()))
            .collect();
        let _ = writeln!(
            out,
            "not used: the timings of {} on {} ({})",
            count(h.other_runs, "run"),
            if places.len() == 1 {
                "another inventory"
            } else {
                "other inventories"
            },
            places.join(", "),
        );
    }
}

#[must_use]
pub fn text(runbook: &Runbook, plan: &Plan, sources: &Sources) -> String {
    let mut out = String::new();
    let title = runbook
        .title
        .as_deref()
        .map(|t| format!(": {t}"))
        .unwrap_or_default();
    let _ = writeln!(out, "runbook `{}`{title}", runbook.name);
    let _ = writeln!(
        out,
        "{} in {}; critical path {} ({})",
        count(runbook.steps.len(), "step"),
        count(plan.waves.len(), "wave"),
        plan.total,
        count(plan.critical_path.len(), "step"),
    );
    provenance(&mut out, sources);
    let width = runbook.steps.iter().map(|s| s.id.len()).max().unwrap_or(0);
    for (w, wave) in plan.waves.iter().enumerate() {
        let _ = writeln!(out, "\nwave {}", w + 1);
        for &i in wave {
            let step = &runbook.steps[i];
            let phase = step
                .phase
                .map(|p| runbook.phases[p].id.as_str())
                .unwrap_or("-");
            let kind = if step.manual.is_some() {
                "manual "
            } else if step.confirm {
                "confirm "
            } else {
                ""
            };
            let est = step
                .estimate
                .map_or_else(|| "no estimate".to_string(), |e| format!("est {e}"));
            let est = match sources.history.get(&step.id) {
                Some(m) => format!(
                    "{est}, measured {} over {}",
                    Duration(m.median),
                    count(m.samples, "run")
                ),
                None => est,
            };
            let _ = writeln!(
                out,
                "  {:width$}  [{phase}] {kind}on {}  ({est})",
                step.id,
                crate::report::lines::host_list(&step.hosts),
            );
        }
    }
    let path: Vec<&str> = plan
        .critical_path
        .iter()
        .map(|&i| runbook.steps[i].id.as_str())
        .collect();
    let _ = writeln!(
        out,
        "\ncritical path ({}):\n  {}",
        plan.total,
        path.join(" -> ")
    );
    if !runbook.phases.is_empty() {
        let _ = writeln!(out, "\nphases:");
        let pw = runbook.phases.iter().map(|p| p.id.len()).max().unwrap_or(0);
        for (i, phase) in runbook.phases.iter().enumerate() {
            let rto = phase.rto.map_or_else(|| "-".into(), |r| r.to_string());
            let forecast = plan.phase_forecast[i].map_or_else(|| "-".into(), |f| f.to_string());
            let verdict = match phase.rto {
                None => "",
                Some(_) if plan.at_risk(runbook, i) => "  RTO at risk",
                Some(_) => "  within RTO",
            };
            let _ = writeln!(
                out,
                "  {:pw$}  rto {rto:>6}  forecast {forecast:>6}{verdict}",
                phase.id
            );
        }
    }
    out
}

/// The documented JSON shape of `plan --format json`.
#[derive(Serialize)]
pub struct PlanJson<'a> {
    format_version: u32,
    runbook: &'a str,
    title: Option<&'a str>,
    waves: Vec<WaveJson<'a>>,
    steps: Vec<StepJson<'a>>,
    critical_path: Vec<&'a str>,
    critical_path_secs: f64,
    /// The critical path by the runbook's estimates alone.
    critical_path_estimate_secs: f64,
    history: HistoryJson,
    phases: Vec<PhaseJson<'a>>,
}

/// The runs whose timings the forecast uses, and those it leaves out.
#[derive(Serialize)]
struct HistoryJson {
    runs: Vec<String>,
    other_inventory_runs: usize,
    other_inventories: Vec<Option<String>>,
}

#[derive(Serialize)]
struct WaveJson<'a> {
    wave: usize,
    steps: Vec<&'a str>,
}

#[derive(Serialize)]
struct StepJson<'a> {
    id: &'a str,
    title: Option<&'a str>,
    phase: Option<&'a str>,
    wave: usize,
    depends_on: Vec<&'a str>,
    hosts: &'a [String],
    manual: bool,
    confirm: bool,
    estimate_secs: Option<f64>,
    expected_secs: f64,
    /// `history`, `estimate` or `none`.
    expected_from: &'static str,
    /// Median over the runs on this inventory that did the step's work.
    measured_secs: Option<f64>,
    measured_runs: usize,
    earliest_start_secs: f64,
    earliest_finish_secs: f64,
    tags: &'a [String],
}

#[derive(Serialize)]
struct PhaseJson<'a> {
    id: &'a str,
    title: Option<&'a str>,
    depends_on: Vec<&'a str>,
    rto_secs: Option<f64>,
    forecast_secs: Option<f64>,
    at_risk: bool,
}

#[must_use]
pub fn json<'a>(runbook: &'a Runbook, plan: &Plan, sources: &Sources) -> PlanJson<'a> {
    let history = sources.history;
    let ids =
        |v: &[usize]| -> Vec<&'a str> { v.iter().map(|&i| runbook.steps[i].id.as_str()).collect() };
    let secs = |d: crate::model::Duration| d.std().as_secs_f64();
    PlanJson {
        format_version: 1,
        runbook: &runbook.name,
        title: runbook.title.as_deref(),
        waves: plan
            .waves
            .iter()
            .enumerate()
            .map(|(w, wave)| WaveJson {
                wave: w + 1,
                steps: ids(wave),
            })
            .collect(),
        steps: runbook
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepJson {
                id: &s.id,
                title: s.title.as_deref(),
                phase: s.phase.map(|p| runbook.phases[p].id.as_str()),
                wave: plan.wave_of[i],
                depends_on: ids(&s.depends_on),
                hosts: &s.hosts,
                manual: s.manual.is_some(),
                confirm: s.confirm,
                estimate_secs: s.estimate.map(secs),
                expected_secs: secs(plan.estimate[i]),
                expected_from: if history.get(&s.id).is_some() {
                    "history"
                } else if s.estimate.is_some() {
                    "estimate"
                } else {
                    "none"
                },
                measured_secs: history.get(&s.id).map(|m| m.median.as_secs_f64()),
                measured_runs: history.get(&s.id).map_or(0, |m| m.samples),
                earliest_start_secs: secs(plan.earliest_start[i]),
                earliest_finish_secs: secs(plan.earliest_finish[i]),
                tags: &s.tags,
            })
            .collect(),
        critical_path: ids(&plan.critical_path),
        critical_path_secs: secs(plan.total),
        critical_path_estimate_secs: secs(sources.estimates_only),
        history: HistoryJson {
            runs: history.runs.clone(),
            other_inventory_runs: history.other_runs,
            other_inventories: history.other_inventories.clone(),
        },
        phases: runbook
            .phases
            .iter()
            .enumerate()
            .map(|(i, p)| PhaseJson {
                id: &p.id,
                title: p.title.as_deref(),
                depends_on: p
                    .depends_on
                    .iter()
                    .map(|&d| runbook.phases[d].id.as_str())
                    .collect(),
                rto_secs: p.rto.map(secs),
                forecast_secs: plan.phase_forecast[i].map(secs),
                at_risk: plan.at_risk(runbook, i),
            })
            .collect(),
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[must_use]
pub fn dot(runbook: &Runbook, plan: &Plan) -> String {
    let mut out = format!(
        "digraph {} {{\n  rankdir=LR;\n  compound=true;\n  node [shape=box];\n",
        quote(&runbook.name)
    );
    let on_path = |i: usize| plan.critical_path.contains(&i);
    for (p, phase) in runbook.phases.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph {} {{\n    label={};",
            quote(&format!("cluster_{}", phase.id)),
            quote(&phase.id)
        );
        for (i, s) in runbook
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.phase == Some(p))
        {
            let style = if on_path(i) {
                " color=red penwidth=2"
            } else {
                ""
            };
            let _ = writeln!(out, "    {} [label={}{style}];", quote(&s.id), quote(&s.id));
        }
        if first_of(runbook, p).is_none() {
            // Graphviz drops a cluster with no node, and then every edge
            // naming it as `ltail`/`lhead` (with a warning): an invisible
            // node keeps it.
            let _ = writeln!(
                out,
                "    {} [label=\"\" shape=point style=invis];",
                quote(&anchor(phase))
            );
        }
        out.push_str("  }\n");
    }
    for (i, s) in runbook
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.phase.is_none())
    {
        let style = if on_path(i) {
            " color=red penwidth=2"
        } else {
            ""
        };
        let _ = writeln!(out, "  {} [label={}{style}];", quote(&s.id), quote(&s.id));
    }
    for s in &runbook.steps {
        for &d in &s.depends_on {
            let _ = writeln!(
                out,
                "  {} -> {};",
                quote(&runbook.steps[d].id),
                quote(&s.id)
            );
        }
    }
    for (p, phase) in runbook.phases.iter().enumerate() {
        for &d in &phase.depends_on {
            let _ = writeln!(
                out,
                "  {} -> {} [style=dashed ltail={} lhead={}];",
                quote(&first_of(runbook, d).unwrap_or_else(|| anchor(&runbook.phases[d]))),
                quote(&first_of(runbook, p).unwrap_or_else(|| anchor(phase))),
                quote(&format!("cluster_{}", runbook.phases[d].id)),
                quote(&format!("cluster_{}", phase.id)),
            );
        }
    }
    out.push_str("}\n");
    out
}

fn first_of(runbook: &Runbook, phase: usize) -> Option<String> {
    runbook
        .steps
        .iter()
        .find(|s| s.phase == Some(phase))
        .map(|s| s.id.clone())
}

/// The node of a phase without steps: a space no step id can hold keeps
/// it apart from them.
fn anchor(phase: &crate::model::Phase) -> String {
    format!("phase {}", phase.id)
}

#[must_use]
pub fn mermaid(runbook: &Runbook, plan: &Plan) -> String {
    let node = |i: usize| format!("s{i}");
    let mut out = String::from("flowchart LR\n");
    for (p, phase) in runbook.phases.iter().enumerate() {
        let _ = writeln!(out, "  subgraph p{p}[\"{}\"]", phase.id);
        for (i, s) in runbook
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.phase == Some(p))
        {
            let _ = writeln!(out, "    {}[\"{}\"]", node(i), s.id);
        }
        out.push_str("  end\n");
    }
    for (i, s) in runbook
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.phase.is_none())
    {
        let _ = writeln!(out, "  {}[\"{}\"]", node(i), s.id);
    }
    for (i, s) in runbook.steps.iter().enumerate() {
        for &d in &s.depends_on {
            let _ = writeln!(out, "  {} --> {}", node(d), node(i));
        }
    }
    for (p, phase) in runbook.phases.iter().enumerate() {
        for &d in &phase.depends_on {
            let _ = writeln!(out, "  p{d} -.-> p{p}");
        }
    }
    for &i in &plan.critical_path {
        let _ = writeln!(out, "  style {} stroke:#c00,stroke-width:3px", node(i));
    }
    out
}
