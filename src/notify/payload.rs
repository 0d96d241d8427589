//! The body each format posts: runbook's own JSON, Slack's (and
//! Mattermost's) `{"text": ...}`, or a Teams MessageCard.

use serde::Serialize;

use super::Message;
use crate::model::{NotifyEvent, NotifyFormat};

/// The `json` format: documented in docs/format.md ("Notifications").
#[derive(Serialize)]
struct Json<'a> {
    event: &'static str,
    run_id: &'a str,
    runbook: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    phase: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'a str>,
    text: &'a str,
    at: &'a str,
}

#[must_use]
pub fn body(format: NotifyFormat, m: &Message) -> String {
    let value = match format {
        NotifyFormat::Json => serde_json::to_value(Json {
            event: m.event.label(),
            run_id: &m.run_id,
            runbook: &m.runbook,
            phase: m.phase.as_deref(),
            step: m.step.as_deref(),
            service: m.service.as_deref(),
            outcome: m.outcome.as_deref(),
            text: &m.text,
            at: &m.at,
        })
        .unwrap_or_default(),
        NotifyFormat::Slack => serde_json::json!({ "text": m.text }),
        NotifyFormat::Teams => serde_json::json!({
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": m.text,
            "themeColor": color(m),
            "title": format!("{}: {}", m.runbook, m.event.label()),
            "text": m.text,
        }),
    };
    value.to_string()
}

/// Red for what needs people, green for what got better.
fn color(m: &Message) -> &'static str {
    let bad = match m.event {
        NotifyEvent::StepFailed | NotifyEvent::Paused | NotifyEvent::RtoAtRisk => true,
        NotifyEvent::PhaseFinished | NotifyEvent::RunFinished => {
            m.outcome.as_deref() != Some("succeeded")
        }
        NotifyEvent::ServiceAvailable => false,
    };
    if bad { "D70000" } else { "2E7D32" }
}
