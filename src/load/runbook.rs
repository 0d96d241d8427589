//! The runbook file as written: optional fields, positions kept for every
//! node a later error may need to point at. The JSON Schema is derived from
//! these same types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::span::Sp;
use crate::model::{Duration, OnFailure};

/// A disaster-recovery runbook (format version 1).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRunbook {
    /// Format version; must be 1.
    pub version: Sp<u64>,
    /// Machine name: `[a-z0-9][a-z0-9_-]*`.
    pub name: Sp<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// Variables, overridable with `--var key=value`.
    #[serde(default)]
    pub vars: BTreeMap<String, Sp<serde_json::Value>>,
    #[serde(default)]
    pub defaults: RawDefaults,
    #[serde(default)]
    pub phases: Vec<RawPhase>,
    pub steps: Sp<Vec<RawStep>>,
    /// What the people outside the recovery room care about, and the steps
    /// that make each available again.
    #[serde(default)]
    pub services: Vec<RawService>,
    /// Webhooks told about the run as it goes (a chat or an SMS gateway).
    #[serde(default)]
    pub notify: Vec<RawNotify>,
}

/// Defaults applied to every step that does not set the field.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub retry_delay: Option<Duration>,
    pub on_failure: Option<OnFailure>,
}

/// An ordered group of steps with a recovery-time objective.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPhase {
    pub id: Sp<String>,
    pub title: Option<String>,
    /// Every step of this phase waits for every step of these phases.
    #[serde(default)]
    pub depends_on: Vec<Sp<String>>,
    /// Recovery-time objective, measured from the start of the run.
    pub rto: Option<Duration>,
}

/// A service as its users know it: available again once every step of
/// `ready_when` has succeeded.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub id: Sp<String>,
    pub title: Option<String>,
    /// Free text grouping services on the public status page, e.g. `clinical`.
    pub audience: Option<String>,
    /// Steps whose success makes the service available again.
    pub ready_when: Sp<Vec<Sp<String>>>,
}

/// A webhook and the events posted to it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// `{{ secret.NAME }}` or a literal `http://` or `https://` URL.
    pub webhook: Sp<String>,
    /// `json` unless given.
    pub format: Option<crate::model::NotifyFormat>,
    /// Every event unless given.
    pub on: Option<Vec<crate::model::NotifyEvent>>,
}

/// One restoration step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub id: Sp<String>,
    pub phase: Option<Sp<String>>,
    pub title: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<Sp<String>>,
    /// Inventory hosts or groups; omitted means the controller itself.
    pub targets: Option<Vec<Sp<String>>>,
    /// Instructions for a person, who confirms when done.
    pub manual: Option<Sp<String>>,
    /// Probe: when it passes, the host is already restored and `run` is skipped.
    pub check: Option<Sp<RawProbe>>,
    /// The action, a shell command (`sh -c`).
    pub run: Option<Sp<String>>,
    /// Probe after `run`, polled until it passes or attempts run out.
    pub verify: Option<Sp<RawProbe>>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub retry_delay: Option<Duration>,
    pub on_failure: Option<OnFailure>,
    /// Condition evaluated per host, e.g. `{{ vars.site == 'paris' }}`.
    pub when: Option<Sp<String>>,
    /// Ask the operator before `run`.
    #[serde(default)]
    pub confirm: bool,
    /// Expected duration, used by `plan`.
    pub estimate: Option<Duration>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Overrides the inventory's `become` for this step.
    pub r#become: Option<bool>,
    /// Runs this step as that user through sudo (implies `become`).
    pub become_user: Option<String>,
    /// `{{ secret.NAME }}`: overrides the inventory's `become_password`.
    pub become_password: Option<Sp<String>>,
}

/// A probe: exactly one of `command`, `tcp`, `http`, `tls`, `smtp`, `sip`, `ping` or `dns`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    pub command: Option<Sp<String>>,
    pub stdout_contains: Option<Sp<String>>,
    pub stdout_matches: Option<Sp<String>>,
    pub tcp: Option<RawTcp>,
    pub http: Option<RawHttp>,
    pub attempts: Option<u32>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub tls: Option<RawTls>,
    pub smtp: Option<RawSmtp>,
    pub sip: Option<RawSip>,
    pub ping: Option<RawPing>,
    pub dns: Option<RawDns>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTcp {
    pub port: u16,
    pub host: Option<Sp<String>>,
    /// Sent once connected (a template: it may hold a secret).
    pub send: Option<Sp<String>>,
    /// The probe passes when the data received contains this text.
    pub expect: Option<String>,
    /// An inventory host the connection is opened from, over its SSH
    /// connection (as `ssh -W` does).
    pub via: Option<Sp<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub url: Sp<String>,
    /// The status that passes, or a list of them; without it any 2xx or 3xx.
    pub status: Option<Sp<HttpStatuses>>,
    pub body_contains: Option<String>,
    /// `GET` unless given.
    pub method: Option<HttpMethod>,
    /// PEM file of the CA(s) trusted for `https` instead of the system roots,
    /// relative to the runbook's folder.
    pub ca_file: Option<Sp<String>>,
    /// An inventory host the connection is opened from, over its SSH
    /// connection (as `ssh -W` does).
    pub via: Option<Sp<String>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum HttpStatuses {
    One(u16),
    Any(Vec<u16>),
}

impl HttpStatuses {
    #[must_use]
    pub fn codes(&self) -> Vec<u16> {
        match self {
            Self::One(code) => vec![*code],
            Self::Any(codes) => codes.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
}

impl HttpMethod {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Patch => "PATCH",
        }
    }
}

/// A TLS handshake: the certificate must chain to `ca_file` (or the system
/// roots), match `server_name` and stay valid `min_days_valid` more days.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// The target's address unless given.
    pub host: Option<Sp<String>>,
    /// 443 unless given.
    pub port: Option<u16>,
    /// The name the certificate must be for (and sent as SNI); `host` unless given.
    pub server_name: Option<Sp<String>>,
    /// PEM file of the CA(s) to trust instead of the system roots, relative
    /// to the runbook's folder.
    pub ca_file: Option<Sp<String>>,
    /// Days the certificate must stay valid from now; 0 unless given.
    pub min_days_valid: Option<u32>,
    /// An inventory host the connection is opened from, over its SSH
    /// connection (as `ssh -W` does).
    pub via: Option<Sp<String>>,
}

/// The 220 banner, EHLO, and with `starttls` the upgrade to TLS.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub host: Option<Sp<String>>,
    /// 25 unless given.
    pub port: Option<u16>,
    /// Requires STARTTLS and a certificate the system trusts for `host`.
    #[serde(default)]
    pub starttls: bool,
    /// An inventory host the connection is opened from, over its SSH
    /// connection (as `ssh -W` does).
    pub via: Option<Sp<String>>,
}

/// An OPTIONS request, passed by any final response.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSip {
    pub host: Option<Sp<String>>,
    /// 5060 unless given.
    pub port: Option<u16>,
    /// `udp` unless given.
    #[serde(default)]
    pub transport: crate::model::SipTransport,
}

/// ICMP echo.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPing {
    pub host: Option<Sp<String>>,
    /// Echo requests sent (default 3).
    pub count: Option<Sp<u32>>,
    /// Loss allowed, in percent (default 0).
    pub max_loss: Option<Sp<u32>>,
}

/// A DNS query.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    pub name: Sp<String>,
    pub r#type: Option<DnsType>,
    /// `ADDR` or `ADDR:PORT`; the system resolver when absent.
    pub server: Option<Sp<String>>,
    /// One record of the answer must be this value.
    pub expect: Option<Sp<String>>,
    /// An inventory host the query is sent from, over TCP through its SSH
    /// connection (as `ssh -W` does); needs `server`.
    pub via: Option<Sp<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
pub enum DnsType {
    #[default]
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "CNAME")]
    Cname,
    #[serde(rename = "MX")]
    Mx,
    #[serde(rename = "SRV")]
    Srv,
    #[serde(rename = "TXT")]
    Txt,
    #[serde(rename = "PTR")]
    Ptr,
}
