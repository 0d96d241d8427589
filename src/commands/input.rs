//! Loading and validating the runbook and inventory a command works on,
//! printing every diagnostic on the way.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cli::Global;
use crate::diagnostic::Diagnostic;
use crate::error::Error;
use crate::load::ansible::Loaded;
use crate::load::{self, Source};
use crate::model::{Inventory, Runbook};
use crate::validate;
use crate::validate::inventory::CheckedInventory;

pub struct Input {
    pub runbook: Runbook,
    pub inventory: Option<Inventory>,
    pub runbook_source: Source,
    pub inventory_source: Option<Source>,
}

/// `--var key=value` pairs; values that read as numbers or booleans become
/// those, so `--var port=8443` compares like `port: 8443`.
pub fn overrides(vars: &[String]) -> Result<BTreeMap<String, serde_json::Value>, Error> {
    vars.iter()
        .map(|arg| {
            let (key, value) = arg
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| Error::VarSyntax { arg: arg.clone() })?;
            let value = if let Ok(n) = value.parse::<i64>() {
                n.into()
            } else if let Ok(b) = value.parse::<bool>() {
                b.into()
            } else {
                value.into()
            };
            Ok((key.to_string(), value))
        })
        .collect()
}

/// A `--var` value as it was typed.
pub fn var_text(value: &serde_json::Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

pub fn print(diagnostics: &[Diagnostic], source: Option<&str>) {
    let lines: Vec<&str> = source.map(|s| s.lines().collect()).unwrap_or_default();
    for d in diagnostics {
        let line = lines.get(d.pos.line.saturating_sub(1) as usize).copied();
        eprint!("{}", d.render_line(line));
    }
}

/// Prints the loader's error, and every other structural error of the
/// file when it could be read as text.
fn explain(path: &Path, kind: load::FileKind, first: Diagnostic) {
    match Source::read(path) {
        Ok(source) => print(
            &load::structure::explain(&source, kind, first),
            Some(&source.text),
        ),
        Err(_) => print(&[first], None),
    }
}

/// Prints diagnostics that may be about several files (an Ansible
/// inventory and its `group_vars/`), each with its own file's text.
pub fn print_files(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        let text = std::fs::read_to_string(&d.file).ok();
        eprint!("{}", d.render(text.as_deref()));
    }
}

/// An Ansible inventory, when `path` holds one (recognised by its content):
/// read, with its hosts as runbook hosts.
pub fn ansible(path: &Path) -> Option<Result<(Loaded, CheckedInventory), Vec<Diagnostic>>> {
    let source = Source::read(path).ok()?;
    let format = load::ansible::sniff(&source.text)?;
    Some(load::ansible::load(source, format).map(|loaded| {
        let checked = validate::ansible::inventory(&loaded);
        (loaded, checked)
    }))
}

pub fn load_inventory(path: &Path) -> Result<(Source, Inventory), Error> {
    if let Some(result) = ansible(path) {
        let (loaded, checked) = result.map_err(|diagnostics| {
            print_files(&diagnostics);
            invalid(path)
        })?;
        print_files(&checked.diagnostics);
        return checked
            .inventory
            .map(|inv| (loaded.source, inv))
            .ok_or_else(|| invalid(path));
    }
    let (source, raw) = match load::load_inventory(path) {
        Ok(x) => x,
        Err(d) => {
            explain(path, load::FileKind::Inventory, *d);
            return Err(invalid(path));
        }
    };
    let checked = validate::inventory::inventory(&source, &raw);
    // Some findings are in an OpenSSH config file: no inventory snippet.
    for d in &checked.diagnostics {
        eprint!(
            "{}",
            d.render((d.file == source.path).then_some(&*source.text))
        );
    }
    match checked.inventory {
        Some(inv) => Ok((source, inv)),
        None => Err(invalid(path)),
    }
}

pub fn invalid(path: &Path) -> Error {
    Error::Invalid(format!("`{}` is not valid", path.display()))
}

pub fn load(global: &Global, runbook: &Path, quiet_warnings: bool) -> Result<Input, Error> {
    load_with(global, runbook, quiet_warnings, BTreeMap::new())
}

/// [`load`] for `resume`: `journaled` are the run's earlier `--var`
/// overrides; the command line's win over them, and one the runbook no
/// longer declares is dropped with a note rather than refused.
pub fn load_with(
    global: &Global,
    runbook: &Path,
    quiet_warnings: bool,
    mut journaled: BTreeMap<String, serde_json::Value>,
) -> Result<Input, Error> {
    let given = overrides(&global.vars)?;
    let started = std::time::Instant::now();
    let inventory = match &global.inventory {
        Some(p) => Some(load_inventory(p)?),
        None => None,
    };
    tracing::debug!(elapsed = ?started.elapsed(), "inventory loaded");
    let (source, raw) = match load::load_runbook(runbook) {
        Ok(x) => x,
        Err(d) => {
            explain(runbook, load::FileKind::Runbook, *d);
            return Err(invalid(runbook));
        }
    };
    tracing::debug!(elapsed = ?started.elapsed(), "runbook parsed");
    journaled.retain(|name, _| {
        let declared = raw.vars.contains_key(name);
        if !declared {
            eprintln!(
                "note: the runbook no longer declares `{name}`: the run's `--var {name}` is dropped"
            );
        }
        declared
    });
    let mut overrides = journaled;
    overrides.extend(given);
    let checked = validate::runbook(&source, raw, inventory.as_ref().map(|(_, i)| i), &overrides);
    tracing::debug!(elapsed = ?started.elapsed(), "runbook validated");
    let shown: Vec<Diagnostic> = checked
        .diagnostics
        .into_iter()
        .filter(|d| d.is_error() || !quiet_warnings)
        .collect();
    print(&shown, Some(&source.text));
    let runbook_model = checked.runbook.ok_or_else(|| invalid(runbook))?;
    let (inventory_source, inventory) = inventory.map_or((None, None), |(s, i)| (Some(s), Some(i)));
    Ok(Input {
        runbook: runbook_model,
        inventory,
        runbook_source: source,
        inventory_source,
    })
}
