//! The validated model: what a runbook means once every reference is
//! resolved. Only `validate` builds these types.

pub mod duration;
pub mod inventory;
pub mod notify;
pub mod runbook;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use duration::Duration;
pub use inventory::{CONTROLLER, Host, Inventory};
pub use notify::{Notify, NotifyEvent, NotifyFormat, Webhook};
pub use runbook::{BecomeAs, Dag, Phase, Probe, ProbeKind, Runbook, Service, StdoutMatch, Step};

/// What happens to the run when a step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Stop scheduling new steps; running ones finish; the run fails.
    #[default]
    Abort,
    /// Mark the step failed, block its dependents, go on with the rest.
    Continue,
    /// Stop in a resumable state and ask for an operator.
    Pause,
}

/// How a `sip` probe sends its OPTIONS request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SipTransport {
    #[default]
    Udp,
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    #[default]
    Ssh,
    Local,
}

/// What a host's SSH server runs a command with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Shell {
    /// A POSIX shell: commands run under runbook's wrapper (deadline,
    /// process group, script on standard input).
    #[default]
    Posix,
    /// The server's own CLI (switches, firewalls, storage arrays): the
    /// rendered command is the exec request, as it is.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyChecking {
    /// An unknown host is refused.
    #[default]
    Strict,
    /// An unknown host's key is recorded on first use.
    AcceptNew,
}
