//! `runbook runs [--format table|json]`: the runs in the state dir.

use crate::cli::{Global, RunsArgs, RunsFormat};
use crate::error::{Error, SUCCESS};
use crate::journal;
use crate::redact::{eprintln_printable, printable};
use crate::report::lines::seconds;

pub fn run(global: &Global, args: &RunsArgs) -> Result<u8, Error> {
    let runs = journal::runs(&global.state_dir)?;
    // A journal that cannot be read is named, and the others still listed.
    for run in &runs {
        if let Err(e) = &run.view {
            eprintln_printable!("warning: run {} cannot be read: {e}", run.id);
        }
    }
    match args.format {
        RunsFormat::Json => {
            let list: Vec<serde_json::Value> = runs
                .iter()
                .map(|run| match &run.view {
                    Ok(v) => serde_json::json!({
                        "id": run.id, "runbook": v.runbook, "operator": v.operators.join(","),
                        "operators": v.operators,
                        "start": v.start, "duration_secs": v.active_ms() as f64 / 1000.0,
                        "outcome": v.status.label(), "skipped_by_hand": v.skipped_by_hand(),
                    }),
                    Err(e) => serde_json::json!({
                        "id": run.id, "outcome": "unreadable", "error": e.to_string(),
                    }),
                })
                .collect();
            let list = format!("{:#}", serde_json::Value::Array(list));
            println!("{}", crate::redact::json_text(list));
        }
        RunsFormat::Table => {
            if runs.is_empty() {
                println!("no runs in {}", global.state_dir.display());
                return Ok(SUCCESS);
            }
            println!(
                "{:<22} {:<24} {:<12} {:<24} {:>9}  OUTCOME",
                "RUN", "RUNBOOK", "OPERATOR", "START", "DURATION"
            );
            for run in &runs {
                match &run.view {
                    // Anyone who can write a journal line names these.
                    Ok(v) => println!(
                        "{:<22} {:<24} {:<12} {:<24} {:>9}  {}",
                        printable(&run.id),
                        printable(&v.runbook),
                        printable(&v.operators.join(",")),
                        printable(&v.start),
                        seconds(v.active_ms()),
                        v.verdict()
                    ),
                    Err(_) => println!(
                        "{:<22} {:<24} {:<12} {:<24} {:>9}  unreadable (see above)",
                        printable(&run.id),
                        "?",
                        "?",
                        "?",
                        "-"
                    ),
                }
            }
        }
    }
    Ok(SUCCESS)
}
