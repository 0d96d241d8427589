//! The inventory file as written.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::span::Sp;
use crate::model::{Duration, HostKeyChecking, Shell, TransportKind};

/// Hosts and groups a runbook runs against (format version 1).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInventory {
    pub version: Sp<u64>,
    #[serde(default)]
    pub defaults: RawHostSettings,
    #[serde(default)]
    pub hosts: BTreeMap<String, Sp<RawHostSettings>>,
    #[serde(default)]
    pub groups: BTreeMap<String, Sp<RawGroup>>,
}

/// Connection settings of one host, or the defaults of all.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHostSettings {
    pub transport: Option<TransportKind>,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub identity_file: Option<String>,
    pub known_hosts: Option<String>,
    pub host_key_checking: Option<HostKeyChecking>,
    pub jump: Option<Sp<String>>,
    pub connect_timeout: Option<Duration>,
    /// `none` for an SSH server that runs its own CLI (no POSIX shell).
    pub shell: Option<Shell>,
    /// An OpenSSH client configuration to read, or `none`; without it,
    /// `~/.ssh/config` when it exists.
    pub ssh_config: Option<Sp<String>>,
    /// Passphrase of an encrypted `identity_file`: `{{ secret.NAME }}`.
    pub passphrase: Option<Sp<String>>,
    /// For password or keyboard-interactive authentication: `{{ secret.NAME }}`.
    pub password: Option<Sp<String>>,
    /// Run `run` and `command` probes through `sudo`.
    pub r#become: Option<bool>,
    /// Who sudo runs them as (default `root`).
    pub become_user: Option<String>,
    /// The password sudo asks for, if it does: `{{ secret.NAME }}`.
    pub become_password: Option<Sp<String>>,
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    #[serde(default)]
    pub hosts: Vec<Sp<String>>,
    #[serde(default)]
    pub children: Vec<Sp<String>>,
    /// The members' `shell`, unless a host sets its own.
    pub shell: Option<Shell>,
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
}
