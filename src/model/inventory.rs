//! Hosts with their settings resolved: defaults, then group vars, then host vars.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Duration, HostKeyChecking, Shell, TransportKind};

/// The name of the implicit host that steps without `targets` run on.
pub const CONTROLLER: &str = "controller";

/// The most jump hosts in front of a host; a longer chain is refused
/// (at validation, and again when connecting).
pub const MAX_JUMPS: usize = 7;

#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub name: String,
    pub transport: TransportKind,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identity_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub host_key_checking: HostKeyChecking,
    pub jump: Option<String>,
    /// The jump host `jump` names, when it is not the inventory host of
    /// that name: one reached through an OpenSSH `ProxyJump` (its own
    /// settings, and its own `jump` before it).
    pub jump_via: Option<Box<Host>>,
    pub connect_timeout: Duration,
    pub shell: Shell,
    /// Secret names (never values): the identity file's passphrase, and
    /// the password for password or keyboard-interactive authentication.
    pub passphrase: Option<String>,
    pub password: Option<String>,
    /// Commands go through `sudo` as `become_user` (root when `None`);
    /// `become_password` is the name of the secret sudo is given.
    pub r#become: bool,
    pub become_user: Option<String>,
    pub become_password: Option<String>,
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Where each connection setting came from (by field name: `address`,
    /// `port`, `user`, ...), for `runbook inventory`; a setting absent here
    /// is runbook's built-in default.
    pub origins: BTreeMap<&'static str, Origin>,
}

/// Where a host's setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Written for the host itself in the inventory file.
    Host,
    /// The inventory's `defaults`.
    Defaults,
    /// A group's variables (Ansible inventories).
    Group(String),
    /// A line of another file: an OpenSSH client config, an Ansible
    /// `host_vars/` or `group_vars/` file.
    File { path: PathBuf, line: usize },
}

impl Host {
    /// The controller as seen by a step without `targets`.
    #[must_use]
    pub fn controller(vars: BTreeMap<String, serde_json::Value>) -> Self {
        Self {
            name: CONTROLLER.into(),
            transport: TransportKind::Local,
            address: "127.0.0.1".into(),
            port: 22,
            user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
            identity_file: None,
            known_hosts: None,
            host_key_checking: HostKeyChecking::Strict,
            jump: None,
            jump_via: None,
            connect_timeout: Duration::from_secs(10),
            shell: Shell::Posix,
            passphrase: None,
            password: None,
            r#become: false,
            become_user: None,
            become_password: None,
            vars,
            origins: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub hosts: BTreeMap<String, Host>,
    /// Each group's members, children expanded, in inventory order.
    pub groups: BTreeMap<String, Vec<String>>,
    pub default_vars: BTreeMap<String, serde_json::Value>,
}

impl Inventory {
    /// Host names for a target that is a host or a group.
    #[must_use]
    pub fn resolve(&self, target: &str) -> Option<Vec<String>> {
        if self.hosts.contains_key(target) {
            return Some(vec![target.to_string()]);
        }
        self.groups.get(target).cloned()
    }

    /// The controller, unless the inventory describes it itself.
    #[must_use]
    pub fn controller(&self) -> Host {
        self.hosts
            .get(super::CONTROLLER)
            .cloned()
            .unwrap_or_else(|| Host::controller(self.default_vars.clone()))
    }
}
