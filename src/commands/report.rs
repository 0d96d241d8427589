//! `runbook report [RUN_ID] [--format md|html|json|junit] [-o FILE]`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cli::{Global, ReportArgs, ReportFormat};
use crate::error::{Error, SUCCESS};
use crate::journal::{self, RunView, versions};
use crate::load::{self, RawRunbook};
use crate::report::run_report::{self, Executed};
use crate::report::{html, junit, markdown};
use crate::state;

pub fn run(global: &Global, args: &ReportArgs) -> Result<u8, Error> {
    let id = match &args.run_id {
        Some(id) => id.clone(),
        None => journal::runs(&global.state_dir)?
            .pop()
            .map(|run| run.id)
            .ok_or_else(|| Error::Usage(format!("no runs in {}", global.state_dir.display())))?,
    };
    let events = state::read_run(&global.state_dir, &id)?;
    let view = RunView::from_events(&events);
    let dir = state::run_path(&global.state_dir, &id);
    let executed = view
        .versions
        .iter()
        .map(|sha| executed(&versions::kept_copy(&dir, sha), sha))
        .collect::<Result<Vec<_>, _>>()?;
    let report = run_report::build(&id, &executed, &view, &events, &global.state_dir);
    let text = match args.format {
        ReportFormat::Md => markdown::render(&report),
        ReportFormat::Html => html::render(&report),
        ReportFormat::Json => format!("{:#}\n", serde_json::to_value(&report).unwrap_or_default()),
        ReportFormat::Junit => junit::render(&report).map_err(Error::Usage)?,
    };
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?,
        None => print!("{text}"),
    }
    Ok(SUCCESS)
}

/// A version of the runbook the run executed, from its kept copy.
pub(crate) fn executed(copy: &Path, sha256: &str) -> Result<Executed, Error> {
    let (source, raw) = load::load_runbook(copy).map_err(|d| Error::Runtime(d.render(None)))?;
    let raw: RawRunbook = raw;
    let checked = crate::validate::runbook(&source, raw, None, &BTreeMap::new());
    let runbook = checked.runbook.ok_or_else(|| {
        Error::Runtime(format!(
            "the runbook kept in {} does not validate any more",
            copy.display()
        ))
    })?;
    Ok(Executed {
        sha256: sha256.to_string(),
        definitions: versions::step_definitions(&source.text),
        runbook,
    })
}
