//! `runbook plan`.

use crate::cli::{Global, PlanArgs, PlanFormat};
use crate::error::{Error, SUCCESS};
use crate::model::Duration;
use crate::plan::{Plan, render};

pub fn run(global: &Global, args: &PlanArgs) -> Result<u8, Error> {
    let input = super::input::load(global, &args.runbook, true)?;
    let runbook = &input.runbook;
    let measured = crate::history::measured(&global.state_dir, &runbook.name);
    let plan = Plan::new(runbook, |i| {
        measured
            .get(&runbook.steps[i].id)
            .map(|d| Duration(*d))
            .or(runbook.steps[i].estimate)
            .unwrap_or(Duration::from_secs(0))
    });
    let measured_flags: Vec<bool> = runbook
        .steps
        .iter()
        .map(|s| measured.contains_key(&s.id))
        .collect();
    tracing::debug!("plan computed");
    let text = match args.format {
        PlanFormat::Text => render::text(runbook, &plan, &measured_flags),
        PlanFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(&render::json(runbook, &plan, &measured_flags))
                    .unwrap_or_default();
            text.push('\n');
            text
        }
        PlanFormat::Dot => render::dot(runbook, &plan),
        PlanFormat::Mermaid => render::mermaid(runbook, &plan),
    };
    tracing::debug!("plan rendered");
    print!("{text}");
    Ok(SUCCESS)
}
