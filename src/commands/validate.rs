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
    /// Some runbook has targets and no inventory was given to check them.
    targets_unchecked: bool,
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
    let mut ansible: Option<Inventory> = None;
    if let Some(path) = &global.inventory {
        report.files += 1;
        if let Some(checked) = super::input::ansible(path) {
            ansible = check_ansible(checked, &mut report);
        } else if let Some((source, raw, diags, inv)) = check_inventory(path, &mut report) {
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
        let ini_named = file.extension().is_none_or(|e| e != "yaml" && e != "yml");
        match load::ansible::sniff(&source.text) {
            Some(load::ansible::Format::Yaml) => {
                if let Some(checked) = super::input::ansible(&file) {
                    check_ansible(checked, &mut report);
                }
                continue;
            }
            Some(load::ansible::Format::Ini) if ini_named => {
                if let Some(checked) = super::input::ansible(&file) {
                    check_ansible(checked, &mut report);
                }
                continue;
            }
            _ => {}
        }
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
                        let mut all = load::structure::explain(&source, FileKind::Runbook, *d);
                        if let Some(raw) = load::structure::salvage(&source, FileKind::Runbook) {
                            let inv = inventory.as_ref().map(|(_, _, i)| i);
                            let checked = validate::runbook(&source, raw, inv, &overrides);
                            all = load::structure::merge(all, checked.diagnostics);
                        }
                        report.add(Some(&source), all);
                        continue;
                    }
                };
                for step in raw.steps.iter() {
                    used_targets.extend(step.targets.iter().flatten().map(|t| t.value.clone()));
                }
                if global.inventory.is_none() {
                    unchecked_targets(&source, &raw, args.strict, &mut report);
                }
                let checked = validate::runbook(
                    &source,
                    raw,
                    inventory.as_ref().map(|(_, _, i)| i).or(ansible.as_ref()),
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

/// Adds an Ansible inventory's diagnostics (in the inventory file and its
/// `group_vars/`/`host_vars/` files) to the report.
fn check_ansible(
    checked: Result<
        (load::ansible::Loaded, validate::inventory::CheckedInventory),
        Vec<Diagnostic>,
    >,
    report: &mut Report,
) -> Option<Inventory> {
    let diagnostics = match checked {
        Ok((_, checked)) => {
            if checked.inventory.is_some() {
                report.add(None, checked.diagnostics);
                return checked.inventory;
            }
            checked.diagnostics
        }
        Err(diagnostics) => diagnostics,
    };
    for d in &diagnostics {
        if let Ok(text) = std::fs::read_to_string(&d.file) {
            report.sources.insert(d.file.clone(), text);
        }
    }
    report.add(None, diagnostics);
    None
}

/// Without an inventory no target can be checked: a note, or under
/// `--strict` a warning at the runbook's first target.
fn unchecked_targets(source: &Source, raw: &load::RawRunbook, strict: bool, report: &mut Report) {
    let Some(first) = raw.steps.iter().find_map(|s| s.targets.as_ref()?.first()) else {
        return;
    };
    if strict {
        report.add(
            Some(source),
            vec![Diagnostic::warning(
                &source.path,
                first.pos,
                Problem::TargetsNotChecked,
            )],
        );
    } else {
        report.targets_unchecked = true;
    }
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
                    // Read without its bad fields, the inventory still
                    // checks itself and the runbooks' targets.
                    if let Some(raw) =
                        load::structure::salvage::<RawInventory>(&s, FileKind::Inventory)
                    {
                        let checked = validate::inventory::inventory(&s, &raw);
                        let all = load::structure::merge(all, checked.diagnostics);
                        return Some((s, raw, all, checked.inventory));
                    }
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
        // Symlinked folders are not followed: a link back up would loop.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
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
            // Each file split into lines once: thousands of warnings must
            // not each scan the file up to their line.
            let lines: BTreeMap<&PathBuf, Vec<&str>> = report
                .sources
                .iter()
                .map(|(path, text)| (path, text.lines().collect()))
                .collect();
            for d in &report.diagnostics {
                let line = lines
                    .get(&d.file)
                    .and_then(|l| l.get(d.pos.line.saturating_sub(1) as usize))
                    .copied();
                eprint!("{}", d.render_line(line));
            }
            if report.targets_unchecked {
                eprintln!(
                    "note: {}; {}",
                    Problem::TargetsNotChecked,
                    Problem::TargetsNotChecked.hint().unwrap_or_default()
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
            let notes: Vec<String> = report
                .targets_unchecked
                .then(|| Problem::TargetsNotChecked.to_string())
                .into_iter()
                .collect();
            let value = serde_json::json!({
                "valid": errors == 0,
                "notes": notes,
                "files": report.files,
                "errors": errors,
                "warnings": warnings,
                "diagnostics": report.diagnostics.iter().map(Diagnostic::json).collect::<Vec<_>>(),
            });
            println!("{}", crate::redact::json_text(format!("{value:#}")));
        }
        ValidateFormat::Github => {
            for d in &report.diagnostics {
                println!("{}", d.github());
            }
            if report.targets_unchecked {
                println!("::notice::{}", Problem::TargetsNotChecked);
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
