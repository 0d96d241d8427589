//! `runbook plan`.

use crate::cli::{Global, PlanArgs, PlanFormat};
use crate::error::{Error, SUCCESS};
use crate::model::Duration;
use crate::plan::{Plan, render};

pub fn run(global: &Global, args: &PlanArgs) -> Result<u8, Error> {
    let input = super::input::load(global, &args.runbook, true)?;
    let runbook = &input.runbook;
    let plan = Plan::new(runbook, |i| {
        runbook.steps[i].estimate.unwrap_or(Duration::from_secs(0))
    });
    tracing::debug!("plan computed");
    let text = match args.format {
        PlanFormat::Text => render::text(runbook, &plan),
        PlanFormat::Json => format!("{:#}\n", render::json(runbook, &plan)),
        PlanFormat::Dot => render::dot(runbook, &plan),
        PlanFormat::Mermaid => render::mermaid(runbook, &plan),
    };
    tracing::debug!("plan rendered");
    print!("{text}");
    Ok(SUCCESS)
}
