//! `runbook plan`.

use crate::cli::{Global, PlanArgs, PlanFormat};
use crate::error::{Error, SUCCESS};
use crate::history::{self, Hosts};
use crate::model::Duration;
use crate::plan::{Plan, render};

pub fn run(global: &Global, args: &PlanArgs) -> Result<u8, Error> {
    let input = super::input::load(global, &args.runbook, true)?;
    let runbook = &input.runbook;
    let history = history::measured(
        &global.state_dir,
        &runbook.name,
        &Hosts::of(input.inventory_source.as_ref()),
    );
    let estimate = |i: usize| runbook.steps[i].estimate.unwrap_or(Duration::from_secs(0));
    let plan = Plan::new(runbook, |i| {
        history
            .get(&runbook.steps[i].id)
            .map_or_else(|| estimate(i), |m| Duration(m.median))
    });
    let sources = render::Sources {
        history: &history,
        estimates_only: Plan::new(runbook, estimate).total,
    };
    tracing::debug!("plan computed");
    let text = match args.format {
        PlanFormat::Text => render::text(runbook, &plan, &sources),
        PlanFormat::Json => {
            let mut text = serde_json::to_string_pretty(&render::json(runbook, &plan, &sources))
                .unwrap_or_default();
            text.push('\n');
            crate::redact::json_text(text)
        }
        PlanFormat::Dot => render::dot(runbook, &plan),
        PlanFormat::Mermaid => render::mermaid(runbook, &plan),
    };
    tracing::debug!("plan rendered");
    print!("{text}");
    Ok(SUCCESS)
}
