//! `runbook report [RUN_ID] [--format md|html|json|junit] [-o FILE]`.

use std::collections::BTreeMap;

use crate::cli::{Global, ReportArgs, ReportFormat};
use crate::error::{Error, SUCCESS};
use crate::load::{self, RawRunbook};
use crate::report::{html, junit, markdown, run_report};
use crate::state;

pub fn run(global: &Global, args: &ReportArgs) -> Result<u8, Error> {
    let id = match &args.run_id {
        Some(id) => id.clone(),
        None => state::run_ids(&global.state_dir)
            .pop()
            .ok_or_else(|| Error::Usage(format!("no runs in {}", global.state_dir.display())))?,
    };
    let events = state::read_run(&global.state_dir, &id)?;
    let copy = state::run_path(&global.state_dir, &id).join("runbook.yaml");
    let (source, raw) = load::load_runbook(&copy).map_err(|d| Error::Usage(d.render(None)))?;
    let raw: RawRunbook = raw;
    let checked = crate::validate::runbook(&source, raw, None, &BTreeMap::new());
    let runbook = checked.runbook.ok_or_else(|| {
        Error::Usage(format!(
            "the runbook kept in {} does not validate any more",
            copy.display()
        ))
    })?;
    let report = run_report::build(&id, &runbook, &events);
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
