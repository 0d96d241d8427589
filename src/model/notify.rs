//! `notify`: where the contract's events are posted, and in which shape.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::load::Pos;

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyFormat {
    /// runbook's own JSON object (docs/format.md).
    #[default]
    Json,
    /// `{"text": ...}`: Slack and Mattermost incoming webhooks.
    Slack,
    /// A MessageCard for a Microsoft Teams incoming webhook.
    Teams,
}

impl NotifyFormat {
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Slack => "slack",
            Self::Teams => "teams",
        }
    }
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyEvent {
    PhaseFinished,
    StepFailed,
    Paused,
    RtoAtRisk,
    ServiceAvailable,
    RunFinished,
}

impl NotifyEvent {
    pub const ALL: [Self; 6] = [
        Self::PhaseFinished,
        Self::StepFailed,
        Self::Paused,
        Self::RtoAtRisk,
        Self::ServiceAvailable,
        Self::RunFinished,
    ];

    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::PhaseFinished => "phase-finished",
            Self::StepFailed => "step-failed",
            Self::Paused => "paused",
            Self::RtoAtRisk => "rto-at-risk",
            Self::ServiceAvailable => "service-available",
            Self::RunFinished => "run-finished",
        }
    }
}

/// Where a webhook posts to. A URL is never shown (it is often the
/// credential itself): messages name a webhook by its place in `notify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Webhook {
    /// `{{ secret.NAME }}`.
    Secret(String),
    /// A literal `http://` or `https://` URL.
    Url(String),
}

#[derive(Debug, Clone)]
pub struct Notify {
    pub webhook: Webhook,
    pub format: NotifyFormat,
    /// Never empty: all events when the runbook lists none.
    pub on: Vec<NotifyEvent>,
    pub pos: Pos,
}
