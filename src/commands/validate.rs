//! `runbook validate PATH... [-i INV] [--format human|json|github] [--strict]`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::cli::{Global, ValidateArgs, ValidateFormat};
use crate::diagnostic::{Diagnostic, Problem, count};
use crate::error::{Error, FAILED, INVALID_INPUT, SUCCESS};
use crate::load::{self, FileKind, Pos, RawInventory, Source};
use crate::model::Inventory;
use crate::validate;

#[derive(Default)]
struct Report {
    diagnostics: Vec<Diagnostic>,
    sources: BTreeMap<PathBuf, String>,
    files: usize,
}

impl Report {
    fn add(&mut self, source: Option<&Source>, diagnostics: Vec<Diagnostic>) {
        if let Some(s) = source {
            self.sources.insert(s.path.clone(), s.text.clone());
        }
        self.diagnostics.extend(diagnostics);
    }
}

pub fn run(global: &Global, args: &ValidateArgs) -> Result<u8, Error> {
    let overrides = super::input::overrides(&global.vars)?;
    let mut report = Report::default();
    let mut inventory: Option<(Source, RawInventory, Inventory)> = None;
    if let Some(path) = &global.inventory {
        report.files += 1;
        if let Some((source, raw, diags, inv)) = check_inventory(path, &mut report) {
            report.add(Some(&source), diags);
            if let Some(inv) = inv {
                inventory = Some((source, raw, inv));
            }
        }
    }
    let inventory_path = global
        .inventory
        .as_ref()
        .and_then(|p| p.canonicalize().ok());
    let mut used_targets: HashSet<String> = HashSet::new();
    let mut runbooks = 0;
    for file in expand(&args.paths, &mut report) {
        if file.canonicalize().ok() == inventory_path && inventory_path.is_some() {
            continue;
        }
        report.files += 1;
        let source = match Source::read(&file) {
            Ok(s) => s,
            Err(d) => {
                report.add(None, vec![*d]);
                continue;
            }
        };
        match FileKind::sniff(&source.text) {
            FileKind::Inventory => {
                if let Some((source, _, diags, _)) = check_inventory(&file, &mut report) {
                    report.add(Some(&source), diags);
                }
            }
            FileKind::Runbook => {
                runbooks += 1;
                let raw = match load::parse::<load::RawRunbook>(&source) {
                    Ok(raw) => raw,
                    Err(d) => {
                        let all = load::structure::explain(&source, FileKind::Runbook, *d);
                        report.add(Some(&source), all);
                        continue;
                    }
                };
                for step in raw.steps.iter() {
                    used_targets.extend(step.targets.iter().flatten().map(|t| t.value.clone()));
                }
                let checked = validate::runbook(
                    &source,
                    raw,
                    inventory.as_ref().map(|(_, _, i)| i),
                    &overrides,
                );
                report.add(Some(&source), checked.diagnostics);
            }
        }
    }
    if let Some((source, raw, _)) = &inventory
        && runbooks > 0
        && !report.diagnostics.iter().any(Diagnostic::is_error)
    {
        report.add(None, validate::unused_groups(source, raw, &used_targets));
    }
    Ok(finish(&mut report, args))
}

type CheckedFile = (Source, RawInventory, Vec<Diagnostic>, Option<Inventory>);

fn check_inventory(path: &Path, report: &mut Report) -> Option<CheckedFile> {
    match load::load_inventory(path) {
        Ok((source, raw)) => {
            let checked = validate::inventory::inventory(&source, &raw);
            Some((source, raw, checked.diagnostics, checked.inventory))
        }
        Err(d) => {
            match Source::read(path) {
                Ok(s) => {
                    let all = load::structure::explain(&s, FileKind::Inventory, *d);
                    report.sources.insert(s.path.clone(), s.text);
                    report.add(None, all);
                }
                Err(_) => report.add(None, vec![*d]),
            }
            None
        }
    }
}

/// Files named, and `*.yaml` / `*.yml` below folders named, sorted.
fn expand(paths: &[PathBuf], report: &mut Report) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found);
            found.sort();
            files.extend(found);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            report.files += 1;
            report.add(
                None,
                vec![Diagnostic::error(
                    path,
                    Pos::new(1, 1),
                    Problem::Unreadable {
                        reason: "no such file or directory".into(),
                    },
                )],
            );
        }
    }
    files
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

fn finish(report: &mut Report, args: &ValidateArgs) -> u8 {
    let mut order: Vec<PathBuf> = Vec::new();
    for d in &report.diagnostics {
        if !order.contains(&d.file) {
            order.push(d.file.clone());
        }
    }
    report
        .diagnostics
        .sort_by_key(|d| (order.iter().position(|f| *f == d.file), d.pos));
    let errors = report.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = report.diagnostics.len() - errors;
    match args.format {
        ValidateFormat::Human => {
            for d in &report.diagnostics {
                eprint!(
                    "{}",
                    d.render(report.sources.get(&d.file).map(String::as_str))
                );
            }
            let verdict = if errors > 0 { "invalid" } else { "valid" };
            println!(
                "{verdict}: {} checked, {}, {}",
                count(report.files, "file"),
                count(errors, "error"),
                count(warnings, "warning")
            );
        }
        ValidateFormat::Json => {
            let value = serde_json::json!({
                "valid": errors == 0,
                "files": report.files,
                "errors": errors,
                "warnings": warnings,
                "diagnostics": report.diagnostics.iter().map(Diagnostic::json).collect::<Vec<_>>(),
            });
            println!("{value:#}");
        }
        ValidateFormat::Github => {
            for d in &report.diagnostics {
                println!("{}", d.github());
            }
        }
    }
    if errors > 0 {
        INVALID_INPUT
    } else if warnings > 0 && args.strict {
        FAILED
    } else {
        SUCCESS
    }
}
