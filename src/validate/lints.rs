//! Warnings: runbooks that validate but will hurt during a real recovery.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use super::Sink;
use crate::diagnostic::Problem;
use crate::load::{RawInventory, Source, Sp};
use crate::model::{Dag, OnFailure, Phase, ProbeKind, Step};
use crate::template::Templates;

static SECRET_ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?:password|passwd|secret|token|api[_-]?key)\w*\s*[=:]\s*['"]?[^\s'"{$<]{4,}|--(?:password|token|api-key)[= ]['"]?[^\s'"{$<-][^\s'"]{3,}|\bsshpass\s+-p\s*['"]?[^\s'"{$]{3,}"#,
    )
    .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});

/// Returns which kind of secret `text` seems to hold literally.
#[must_use]
pub fn literal_secret(text: &str) -> Option<&'static str> {
    SECRET_ASSIGNMENT
        .is_match(text)
        .then_some("password or token")
}

/// Whether a value, or any key or value inside it, holds a NUL byte.
#[must_use]
pub fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

pub fn literal_vars(sink: &mut Sink<'_>, vars: &BTreeMap<String, Sp<serde_json::Value>>) {
    for (name, value) in vars {
        if holds_nul(value) {
            sink.error(
                value.pos,
                Problem::NulByte {
                    what: format!("variable `{name}`"),
                },
            );
        }
        let lower = name.to_lowercase();
        let secret_name = ["password", "passwd", "secret", "token", "api_key", "apikey"]
            .iter()
            .any(|w| lower.contains(w));
        if let serde_json::Value::String(s) = &value.value
            && secret_name
            && !s.is_empty()
            && !s.contains("{{")
        {
            sink.warn(
                value.pos,
                Problem::LiteralSecret {
                    what: "password or token",
                },
            );
        }
    }
}

pub fn runbook(
    sink: &mut Sink<'_>,
    steps: &[Step],
    phases: &[Phase],
    dag: &Dag,
    templates: &Templates,
) {
    for (index, step) in steps.iter().enumerate() {
        if let Some(run) = step.run {
            let pos = templates.pos(run);
            if step.check.is_none() && step.verify.is_none() {
                sink.warn(
                    pos,
                    Problem::RunWithoutProbe {
                        step: step.id.clone(),
                    },
                );
            }
            if step.timeout.is_none() {
                sink.warn(
                    pos,
                    Problem::RunWithoutTimeout {
                        step: step.id.clone(),
                    },
                );
            }
        }
        let commands = step.run.into_iter().chain(
            [&step.check, &step.verify]
                .into_iter()
                .flatten()
                .filter_map(|p| match &p.kind {
                    ProbeKind::Command { command, .. } => Some(*command),
                    _ => None,
                }),
        );
        for id in commands {
            if let Some(what) = literal_secret(templates.source(id)) {
                sink.warn(templates.pos(id), Problem::LiteralSecret { what });
            }
        }
        if step.on_failure == OnFailure::Continue {
            let dependents = dependents(dag, index, steps);
            if !dependents.is_empty() {
                let shown = dependents
                    .iter()
                    .take(3)
                    .map(|d| format!("`{d}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let more = if dependents.len() > 3 {
                    format!(" and {} more", dependents.len() - 3)
                } else {
                    String::new()
                };
                sink.warn(
                    step.pos,
                    Problem::ContinueWithDependents {
                        step: step.id.clone(),
                        dependents: format!("{shown}{more}"),
                        count: dependents.len(),
                    },
                );
            }
        }
    }
    for (i, phase) in phases.iter().enumerate() {
        if !steps.iter().any(|s| s.phase == Some(i)) {
            sink.warn(
                phase.pos,
                Problem::Unused {
                    what: "phase",
                    name: phase.id.clone(),
                },
            );
        }
    }
}

/// Steps that wait on `index` directly or through a phase barrier.
/// Groups that no runbook targets, directly or through a parent group:
/// checked once every runbook given to `validate` is read.
#[must_use]
pub fn unused_groups(
    source: &Source,
    raw: &RawInventory,
    used: &HashSet<String>,
) -> Vec<crate::diagnostic::Diagnostic> {
    let mut reached: HashSet<&str> = HashSet::new();
    let mut stack: Vec<&str> = used.iter().map(String::as_str).collect();
    while let Some(g) = stack.pop() {
        if let Some(group) = raw.groups.get(g)
            && reached.insert(g)
        {
            stack.extend(group.children.iter().map(|c| c.as_str()));
        }
    }
    let mut sink = Sink::new(source);
    for (name, g) in &raw.groups {
        if !reached.contains(name.as_str()) {
            sink.warn(
                g.pos,
                Problem::Unused {
                    what: "group",
                    name: name.clone(),
                },
            );
        }
    }
    sink.diagnostics
}

fn dependents<'a>(dag: &Dag, index: usize, steps: &'a [Step]) -> Vec<&'a str> {
    let mut out = Vec::new();
    for &n in &dag.succs[index] {
        if dag.is_step(n) {
            out.push(steps[n].id.as_str());
        } else {
            out.extend(
                dag.succs[n]
                    .iter()
                    .filter(|&&m| dag.is_step(m))
                    .map(|&m| steps[m].id.as_str()),
            );
        }
    }
    out.dedup();
    out
}
