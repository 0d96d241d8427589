//! An Ansible inventory's hosts as runbook hosts: connection variables
//! (`ansible_host`, `ansible_port`, ...) become connection settings, every
//! other variable stays a host variable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::inventory::{CheckedInventory, DEFAULT_CONNECT_TIMEOUT};
use crate::diagnostic::{Diagnostic, Problem};
use crate::load::Pos;
use crate::load::ansible::{Loaded, Resolved};
use crate::model::inventory::{MAX_JUMPS, Origin};
use crate::model::{Host, HostKeyChecking, Inventory, Shell, TransportKind};
use crate::template::secret_reference;

/// Variables that set a connection setting, by setting; when several are
/// given the later name wins, as in Ansible.
const CONNECTION: &[(&str, &[&str])] = &[
    ("address", &["ansible_ssh_host", "ansible_host"]),
    ("port", &["ansible_ssh_port", "ansible_port"]),
    ("user", &["ansible_ssh_user", "ansible_user"]),
    (
        "identity_file",
        &["ansible_ssh_private_key_file", "ansible_private_key_file"],
    ),
    ("transport", &["ansible_connection"]),
    ("jump", &["ansible_ssh_common_args"]),
];

/// Privilege escalation variables: mapped to the host's `become`
/// settings (and kept as host variables, as `ansible-inventory` lists
/// them); the password must be a secret reference.
const BECOME_PASSWORD: &[&str] = &["ansible_become_password", "ansible_become_pass"];

#[must_use]
pub fn inventory(loaded: &Loaded) -> CheckedInventory {
    let mut diagnostics = Vec::new();
    let mut hosts = BTreeMap::new();
    let mut jumps: BTreeMap<String, (String, Origin)> = BTreeMap::new();
    for (name, vars) in &loaded.hostvars {
        let mut problem = |origin: &Origin, message: String| {
            let (file, pos) = locate(loaded, name, origin);
            diagnostics.push(Diagnostic::error(
                &file,
                pos,
                Problem::AnsibleVariable { message },
            ));
        };
        let mut host_vars: BTreeMap<String, Value> = vars
            .iter()
            .filter(|(k, _)| {
                !CONNECTION
                    .iter()
                    .any(|(_, names)| names.contains(&k.as_str()))
            })
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect();
        let mut origins = BTreeMap::new();
        let mut setting = |field: &'static str| -> Option<(&Value, &Origin)> {
            let names = CONNECTION.iter().find(|(f, _)| *f == field)?.1;
            let (value, origin) = names.iter().rev().find_map(|n| vars.get(*n))?;
            origins.insert(field, origin.clone());
            Some((value, origin))
        };
        let transport = match setting("transport") {
            None => TransportKind::Ssh,
            Some((v, origin)) => match text(v).as_str() {
                "local" => TransportKind::Local,
                "ssh" | "smart" | "paramiko" | "paramiko_ssh" => TransportKind::Ssh,
                other => {
                    problem(
                        origin,
                        format!(
                            "host `{name}`: `ansible_connection: {other}` is not supported (runbook connects with `ssh` or `local`)"
                        ),
                    );
                    TransportKind::Ssh
                }
            },
        };
        let address = setting("address").map(|(v, _)| text(v));
        let port = match setting("port") {
            None => 22,
            Some((v, origin)) => match v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .and_then(|p| u16::try_from(p).ok())
            {
                Some(p) => p,
                None => {
                    problem(
                        origin,
                        format!(
                            "host `{name}`: `ansible_port` must be a number from 0 to 65535, not {v}"
                        ),
                    );
                    22
                }
            },
        };
        let user = setting("user").map(|(v, _)| text(v));
        let identity_file = setting("identity_file").map(|(v, _)| expand_home(&text(v)));
        let mut ssh = SshArgs::default();
        if let Some((args, origin)) = setting("jump") {
            match ssh_args(&text(args)) {
                Ok(found) => ssh = found,
                Err(message) => problem(origin, format!("host `{name}`: {message}")),
            }
            if let Some(jump) = ssh.jump.take() {
                jumps.insert(name.clone(), (jump, origin.clone()));
            } else {
                origins.remove("jump");
            }
            for (field, set) in [
                ("known_hosts", ssh.known_hosts.is_some()),
                ("host_key_checking", ssh.host_key_checking.is_some()),
            ] {
                if set {
                    origins.insert(field, origin.clone());
                }
            }
        }
        for key in BECOME_PASSWORD {
            if let Some((v, origin)) = vars.get(*key)
                && !is_secret_reference(v)
            {
                problem(
                    origin,
                    format!(
                        "host `{name}`: `{key}` must reference a secret, as `\"{{{{ secret.NAME }}}}\"`, not hold the password"
                    ),
                );
                host_vars.remove(*key);
            }
        }
        let mut become_setting = |field: &'static str, keys: &[&str]| {
            keys.iter()
                .rev()
                .find_map(|k| vars.get(*k))
                .map(|(v, origin)| {
                    origins.insert(field, origin.clone());
                    v.clone()
                })
        };
        let r#become = become_setting("become", &["ansible_become"]).is_some_and(|v| truthy(&v));
        let become_user = become_setting("become_user", &["ansible_become_user"]).map(|v| text(&v));
        let become_password = become_setting("become_password", BECOME_PASSWORD)
            .and_then(|v| v.as_str().and_then(secret_reference).map(str::to_string));
        let host = Host {
            name: name.clone(),
            transport,
            address: address.unwrap_or_else(|| match transport {
                TransportKind::Local => "127.0.0.1".into(),
                TransportKind::Ssh => name.clone(),
            }),
            port,
            user: user.unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "root".into())),
            identity_file,
            known_hosts: ssh.known_hosts.as_deref().map(expand_home),
            host_key_checking: ssh.host_key_checking.unwrap_or_default(),
            jump: None,
            jump_via: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            // Ansible has no equivalent of `shell: none` (its network
            // connections, `network_cli` and others, are refused above):
            // every Ansible host has a POSIX shell.
            shell: Shell::Posix,
            passphrase: None,
            password: None,
            r#become,
            become_user,
            become_password,
            vars: host_vars,
            origins,
        };
        hosts.insert(name.clone(), host);
    }
    resolve_jumps(loaded, &mut hosts, jumps, &mut diagnostics);
    diagnostics.extend(user_ssh_config(&mut hosts));
    if diagnostics.iter().any(Diagnostic::is_error) {
        return CheckedInventory {
            inventory: None,
            diagnostics,
        };
    }
    let default_vars = plain(&loaded.all_vars)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("ansible_"))
        .collect();
    CheckedInventory {
        inventory: Some(Inventory {
            hosts,
            groups: loaded.tree.members(),
            default_vars,
        }),
        diagnostics,
    }
}

/// A jump named in `ansible_ssh_common_args` is an inventory host, by name
/// or by address; chains go through the jump host's own jump.
fn resolve_jumps(
    loaded: &Loaded,
    hosts: &mut BTreeMap<String, Host>,
    jumps: BTreeMap<String, (String, Origin)>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for (name, (jump, origin)) in &jumps {
        let target = if hosts.contains_key(jump) {
            Some(jump.clone())
        } else {
            let by_address: Vec<&String> = hosts
                .values()
                .filter(|h| h.address == *jump)
                .map(|h| &h.name)
                .collect();
            (by_address.len() == 1).then(|| by_address[0].clone())
        };
        match target {
            Some(t) if t == *name => {}
            Some(t) => {
                if let Some(h) = hosts.get_mut(name) {
                    h.jump = Some(t);
                }
            }
            None => {
                let (file, pos) = locate(loaded, name, origin);
                diagnostics.push(Diagnostic::error(
                    &file,
                    pos,
                    Problem::AnsibleVariable {
                        message: format!(
                            "host `{name}`: jump host `{jump}` in `ansible_ssh_common_args` is not a host of this inventory (by name or `ansible_host`)"
                        ),
                    },
                ));
            }
        }
    }
    for name in jumps.keys() {
        let mut chain = Vec::new();
        let mut at = hosts.get(name).and_then(|h| h.jump.clone());
        while let Some(j) = at {
            if j == *name || chain.len() > MAX_JUMPS {
                let (file, pos) = locate(loaded, name, &jumps[name].1);
                chain.push(j);
                diagnostics.push(Diagnostic::error(
                    &file,
                    pos,
                    Problem::JumpChainTooLong {
                        host: name.clone(),
                        chain,
                        limit: MAX_JUMPS,
                    },
                ));
                break;
            }
            at = hosts.get(&j).and_then(|h| h.jump.clone());
            chain.push(j);
        }
    }
}

/// What runbook takes from `ansible_ssh_common_args`.
#[derive(Debug, Default, PartialEq)]
struct SshArgs {
    jump: Option<String>,
    known_hosts: Option<String>,
    host_key_checking: Option<HostKeyChecking>,
}

/// `-J HOST` / `-o ProxyJump=HOST` (`user@` and `:port` dropped; the last
/// hop of a chain), `-o UserKnownHostsFile=PATH` and
/// `-o StrictHostKeyChecking=yes|accept-new|no` (`no` is taken as
/// `accept-new`: a changed key is never accepted). Other options are
/// ignored.
fn ssh_args(args: &str) -> Result<SshArgs, String> {
    let words = shlex::split(args).ok_or_else(|| {
        format!("cannot read `ansible_ssh_common_args: {args}` (unbalanced quotes)")
    })?;
    let mut found = SshArgs::default();
    let mut words = words.iter();
    while let Some(w) = words.next() {
        let jump = if w == "-J" {
            words.next().cloned()
        } else {
            w.strip_prefix("-J").map(str::to_string)
        };
        if jump.is_some() {
            found.jump = jump;
            continue;
        }
        let option = if w == "-o" {
            words.next().cloned()
        } else {
            Some(w.strip_prefix("-o").unwrap_or(w).to_string())
        };
        let Some((key, value)) = option.as_deref().and_then(|o| o.split_once(['=', ' '])) else {
            continue;
        };
        let value = value.trim().to_string();
        match key.trim().to_ascii_lowercase().as_str() {
            "proxyjump" => found.jump = Some(value),
            "proxycommand" => {
                return Err("`ProxyCommand` is not supported: use `-J HOST` (ProxyJump)".into());
            }
            "userknownhostsfile" => found.known_hosts = Some(value),
            "stricthostkeychecking" => {
                found.host_key_checking = Some(match value.to_ascii_lowercase().as_str() {
                    "yes" => HostKeyChecking::Strict,
                    _ => HostKeyChecking::AcceptNew,
                });
            }
            _ => {}
        }
    }
    found.jump = found.jump.map(|v| {
        let last = v.rsplit(',').next().unwrap_or(&v).trim();
        let host = last.strip_prefix("ssh://").unwrap_or(last);
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        match host.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
            _ => host.to_string(),
        }
    });
    Ok(found)
}

/// Ansible's booleans as an inventory writes them: `true`, `yes`, `1`, ...
fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64().is_some_and(|n| n != 0),
        Value::String(s) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "true" | "yes" | "on" | "1" | "y" | "t"
        ),
        _ => false,
    }
}

fn is_secret_reference(v: &Value) -> bool {
    let Some(s) = v.as_str() else {
        return false;
    };
    let inner = s.trim();
    inner
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .map(str::trim)
        .and_then(|r| r.strip_prefix("secret."))
        .is_some_and(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        })
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => {
            Path::new(&std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(rest)
        }
        None => PathBuf::from(path),
    }
}

#[must_use]
pub fn plain(vars: &Resolved) -> BTreeMap<String, Value> {
    vars.iter()
        .map(|(k, (v, _))| (k.clone(), v.clone()))
        .collect()
}

/// The file and position a variable's problem is reported at.
fn locate(loaded: &Loaded, host: &str, origin: &Origin) -> (PathBuf, Pos) {
    match origin {
        Origin::File { path, line } => (
            path.clone(),
            Pos::new(u32::try_from(*line).unwrap_or(u32::MAX), 1),
        ),
        Origin::Group(g) => (
            loaded.source.path.clone(),
            loaded.tree.groups.get(g).map_or(Pos::new(1, 1), |g| g.pos),
        ),
        Origin::Host | Origin::Defaults => (
            loaded.source.path.clone(),
            loaded
                .tree
                .hosts
                .get(host)
                .map_or(Pos::new(1, 1), |h| h.pos),
        ),
    }
}

/// Ansible's `ssh` reads the user's OpenSSH client config too: so do we,
/// the inventory's own values winning as there.
fn user_ssh_config(hosts: &mut BTreeMap<String, Host>) -> Vec<Diagnostic> {
    let Some(path) = crate::load::ssh_config::default_path() else {
        return Vec::new();
    };
    let config_of: BTreeMap<String, std::path::PathBuf> = hosts
        .iter()
        .filter(|(_, h)| h.transport == TransportKind::Ssh)
        .map(|(name, _)| (name.clone(), path.clone()))
        .collect();
    let fresh = |name: &str| {
        let mut host = Host::controller(BTreeMap::new());
        name.clone_into(&mut host.name);
        name.clone_into(&mut host.address);
        host.transport = TransportKind::Ssh;
        host
    };
    super::ssh_config::apply_ssh_config(hosts, &config_of, &fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_options_are_read_from_ssh_args() {
        let j = |a: &str| ssh_args(a).unwrap().jump;
        assert_eq!(j("-J bastion"), Some("bastion".into()));
        assert_eq!(j("-o ProxyJump=ops@bastion:2222"), Some("bastion".into()));
        assert_eq!(
            j("-o ServerAliveInterval=5 -o ProxyJump=a,b"),
            Some("b".into())
        );
        assert_eq!(j("-o ServerAliveInterval=5"), None);
        let args = ssh_args("-o UserKnownHostsFile=/k -o StrictHostKeyChecking=no").unwrap();
        assert_eq!(args.known_hosts.as_deref(), Some("/k"));
        assert_eq!(args.host_key_checking, Some(HostKeyChecking::AcceptNew));
        assert!(ssh_args("-o ProxyCommand='ssh -W %h:%p gw'").is_err());
    }
}
