//! `runbook runs [--format table|json]`: the runs in the state dir.

use crate::cli::{Global, RunsArgs, RunsFormat};
use crate::error::{Error, SUCCESS};
use crate::events::EventKind;
use crate::report::lines::seconds;
use crate::resume::final_outcome;
use crate::state;

pub fn run(global: &Global, args: &RunsArgs) -> Result<u8, Error> {
    let mut rows = Vec::new();
    for id in state::run_ids(&global.state_dir) {
        let events = state::read_run(&global.state_dir, &id)?;
        let (mut runbook, mut operator, mut start) = (String::new(), String::new(), String::new());
        let mut operators: Vec<String> = Vec::new();
        for e in &events {
            match &e.kind {
                EventKind::RunStarted {
                    runbook: r,
                    operator: o,
                    ..
                } => {
                    runbook.clone_from(r);
                    operator.clone_from(o);
                    start.clone_from(&e.at);
                }
                EventKind::RunResumed { operator: o, .. }
                    if !operators.contains(o) && *o != operator =>
                {
                    operators.push(o.clone());
                }
                _ => {}
            }
        }
        operators.insert(0, operator);
        let duration_ms = duration_ms(&events);
        let outcome = final_outcome(&events).map_or_else(
            || "unfinished".to_string(),
            |o| format!("{o:?}").to_lowercase(),
        );
        rows.push((
            id,
            runbook,
            operators.join(","),
            start,
            duration_ms,
            outcome,
        ));
    }
    match args.format {
        RunsFormat::Json => {
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|(id, runbook, operators, start, ms, outcome)| {
                    serde_json::json!({
                        "id": id, "runbook": runbook, "operator": operators,
                        "start": start, "duration_secs": *ms as f64 / 1000.0, "outcome": outcome,
                    })
                })
                .collect();
            println!("{:#}", serde_json::Value::Array(list));
        }
        RunsFormat::Table => {
            if rows.is_empty() {
                println!("no runs in {}", global.state_dir.display());
                return Ok(SUCCESS);
            }
            println!(
                "{:<22} {:<24} {:<12} {:<24} {:>9}  OUTCOME",
                "RUN", "RUNBOOK", "OPERATOR", "START", "DURATION"
            );
            for (id, runbook, operators, start, ms, outcome) in &rows {
                println!(
                    "{id:<22} {runbook:<24} {operators:<12} {start:<24} {:>9}  {outcome}",
                    seconds(*ms)
                );
            }
        }
    }
    Ok(SUCCESS)
}

/// Time spent running, summed over the run and its resumptions.
fn duration_ms(events: &[crate::events::RunEvent]) -> u64 {
    let mut total = 0;
    let mut segment = 0;
    for e in events {
        if matches!(e.kind, EventKind::RunResumed { .. }) {
            total += segment;
            segment = 0;
        }
        segment = segment.max(e.elapsed_ms);
    }
    total + segment
}
