//! Raw types -> model, collecting every diagnostic of a file in one pass.

pub mod ansible;
mod graph;
pub mod inventory;
mod lints;
pub use lints::unused_groups;
mod names;
mod notify;
pub use notify::http_url;
mod probes;
mod services;
pub mod ssh_config;
mod steps;
pub use steps::step_templates;
mod templates;

use std::collections::BTreeMap;
use std::path::Path;

use crate::diagnostic::{Diagnostic, Problem};
use crate::load::{Pos, RawRunbook, Source};
use crate::model::{Inventory, Runbook};

/// Collects the diagnostics of one file.
pub struct Sink<'a> {
    pub file: &'a Path,
    pub text: &'a str,
    pub diagnostics: Vec<Diagnostic>,
    /// `text` split into lines on first use, for [`Sink::find_on_line`].
    lines: std::cell::OnceCell<Vec<&'a str>>,
}

impl<'a> Sink<'a> {
    #[must_use]
    pub fn new(source: &'a Source) -> Self {
        Self {
            file: source.path.as_path(),
            text: source.text.as_str(),
            diagnostics: Vec::new(),
            lines: std::cell::OnceCell::new(),
        }
    }

    pub fn error(&mut self, pos: Pos, problem: Problem) {
        self.diagnostics
            .push(Diagnostic::error(self.file, pos, problem));
    }

    pub fn warn(&mut self, pos: Pos, problem: Problem) {
        self.diagnostics
            .push(Diagnostic::warning(self.file, pos, problem));
    }

    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Where the tag of `found` is in the file, for a template read at
    /// `pos`: its occurrence after `pos` with as many copies of it before it
    /// as in the template. Escapes in a double-quoted YAML scalar can hide
    /// it; the scalar's own position is the answer then.
    #[must_use]
    pub fn find_tag(&self, pos: Pos, template: &str, found: &crate::template::Located) -> Pos {
        let before = template
            .get(..found.offset)
            .map_or(0, |t| t.matches(found.tag.as_str()).count());
        let line_start: usize = self
            .text
            .split_inclusive('\n')
            .take(pos.line.saturating_sub(1) as usize)
            .map(str::len)
            .sum();
        let start = self.text.get(line_start..).map_or(line_start, |line| {
            line.char_indices()
                .nth(pos.column.saturating_sub(1) as usize)
                .map_or(line_start, |(i, _)| line_start + i)
        });
        let Some(at) = self
            .text
            .get(start..)
            .and_then(|rest| rest.match_indices(found.tag.as_str()).nth(before))
            .map(|(i, _)| start + i)
        else {
            return pos;
        };
        let line_start = self.text[..at].rfind('\n').map_or(0, |i| i + 1);
        let line = self.text[..at].matches('\n').count() + 1;
        let column = self.text[line_start..at].chars().count() + 1;
        Pos::new(
            u32::try_from(line).unwrap_or(pos.line),
            u32::try_from(column).unwrap_or(pos.column),
        )
    }

    /// The position of `needle` on `pos`'s line at or after its column, for
    /// pointing inside a template string at the name that is wrong.
    #[must_use]
    pub fn find_on_line(&self, pos: Pos, needle: &str) -> Pos {
        let lines = self.lines.get_or_init(|| self.text.lines().collect());
        let Some(line) = lines.get(pos.line.saturating_sub(1) as usize).copied() else {
            return pos;
        };
        let start: usize = line
            .char_indices()
            .nth(pos.column.saturating_sub(1) as usize)
            .map_or(line.len(), |(i, _)| i);
        line[start..].find(needle).map_or(pos, |i| {
            let col = line[..start + i].chars().count() + 1;
            Pos::new(pos.line, u32::try_from(col).unwrap_or(pos.column))
        })
    }
}

/// A runbook checked against an optional inventory.
pub struct Checked {
    pub runbook: Option<Runbook>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Validates a parsed runbook. `overrides` are `--var` values, already
/// split; an override of an undeclared name is an error.
#[must_use]
pub fn runbook(
    source: &Source,
    raw: RawRunbook,
    inventory: Option<&Inventory>,
    overrides: &BTreeMap<String, serde_json::Value>,
) -> Checked {
    let mut sink = Sink::new(source);
    if *raw.version != 1 {
        sink.error(
            raw.version.pos,
            Problem::UnsupportedVersion {
                found: *raw.version,
            },
        );
    }
    names::check_name(&mut sink, "runbook name", &raw.name);
    let mut vars: BTreeMap<String, serde_json::Value> = raw
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect();
    for (name, value) in overrides {
        if vars.contains_key(name) {
            vars.insert(name.clone(), value.clone());
        } else {
            let suggestion = crate::diagnostic::suggest(name, vars.keys().map(String::as_str));
            sink.error(
                raw.name.pos,
                Problem::UnknownVarOverride {
                    name: name.clone(),
                    suggestion,
                },
            );
        }
    }
    lints::literal_vars(&mut sink, &raw.vars);
    let phases = steps::phases(&mut sink, &raw.phases);
    let built = steps::steps(&mut sink, &raw, &phases, inventory, &vars);
    steps::become_without_shell(&mut sink, source, &built.steps, &raw, inventory);
    let services = services::services(&mut sink, &raw.services, &built.steps);
    let notify = notify::notify(&mut sink, &raw.notify);
    let dag = graph::build(&mut sink, &phases, &built.steps, &built.dep_pos);
    if !sink.has_errors() {
        lints::runbook(&mut sink, &built.steps, &phases, &dag, &built.templates);
    }
    let runbook = (!sink.has_errors()).then(|| Runbook {
        name: raw.name.value.clone(),
        title: raw.title.clone(),
        description: raw.description.clone(),
        vars,
        phases,
        steps: built.steps,
        services,
        notify,
        dag,
        templates: built.templates,
    });
    Checked {
        runbook,
        diagnostics: sink.diagnostics,
    }
}
