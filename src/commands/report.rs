//! `runbook report [RUN_ID] [--format md|html|json|junit] [-o FILE]`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cli::{Global, ReportArgs, ReportFormat};
use crate::error::{Error, SUCCESS};
use crate::events::RunEvent;
use crate::journal::{self, RunView, versions};
use crate::load::{self, RawRunbook};
use crate::report::run_report::{self, Executed, RunReport};
use crate::report::{html, junit, markdown};
use crate::state;

pub fn run(global: &Global, args: &ReportArgs) -> Result<u8, Error> {
    let id = match &args.run_id {
        Some(id) => id.clone(),
        None => latest_run(global)?,
    };
    let events = state::read_run(&global.state_dir, &id)?;
    let report = build(&global.state_dir, &id, &events)?;
    let text = render(&report, args.format)?;
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?,
        None => print!("{text}"),
    }
    Ok(SUCCESS)
}

/// Every version of the runbook the run executed, from the kept copies.
pub(super) fn all_executed(
    state_dir: &Path,
    id: &str,
    view: &RunView,
) -> Result<Vec<Executed>, Error> {
    let dir = state::run_path(state_dir, id);
    view.versions
        .iter()
        .map(|sha| executed(&versions::kept_copy(&dir, sha), sha))
        .collect()
}

/// The latest run in the state dir, for commands whose run id is optional.
pub(super) fn latest_run(global: &Global) -> Result<String, Error> {
    journal::runs(&global.state_dir)?
        .pop()
        .map(|run| run.id)
        .ok_or_else(|| Error::Usage(format!("no runs in {}", global.state_dir.display())))
}

/// The report of run `id` from its journal's `events`: one fold, whatever
/// the formats rendered from it.
pub(super) fn build(state_dir: &Path, id: &str, events: &[RunEvent]) -> Result<RunReport, Error> {
    let view = RunView::from_events(events);
    let executed = all_executed(state_dir, id, &view)?;
    Ok(run_report::build(id, &executed, &view, events, state_dir))
}

pub(super) fn render(report: &RunReport, format: ReportFormat) -> Result<String, Error> {
    Ok(match format {
        ReportFormat::Md => markdown::render(report),
        ReportFormat::Html => html::render(report),
        ReportFormat::Json => crate::redact::json_text(format!(
            "{:#}\n",
            serde_json::to_value(report).unwrap_or_default()
        )),
        ReportFormat::Junit => junit::render(report).map_err(Error::Usage)?,
    })
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
