//! Inventory checks and variable precedence: defaults < groups (parents
//! before children) < host.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::Sink;
use super::ssh_config::apply_ssh_config;
use crate::diagnostic::{Diagnostic, Problem, suggest};
use crate::load::inventory::RawHostSettings;
use crate::load::{RawInventory, Source, Sp, ssh_config};
use crate::model::inventory::{MAX_JUMPS, Origin};
use crate::model::{Dag, Duration, Host, Inventory, Shell, TransportKind};
use crate::template::secret_reference;

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct CheckedInventory {
    pub inventory: Option<Inventory>,
    pub diagnostics: Vec<Diagnostic>,
}

#[must_use]
pub fn inventory(source: &Source, raw: &RawInventory) -> CheckedInventory {
    let mut sink = Sink::new(source);
    if *raw.version != 1 {
        sink.error(
            raw.version.pos,
            Problem::UnsupportedVersion {
                found: *raw.version,
            },
        );
    }
    names(&mut sink, source, raw);
    addresses(&mut sink, source, raw);
    for (name, group) in &raw.groups {
        if raw.hosts.contains_key(name) {
            sink.error(group.pos, Problem::HostGroupClash { name: name.clone() });
        }
    }
    let group_names: Vec<&String> = raw.groups.keys().collect();
    let group_index: HashMap<&str, usize> = group_names
        .iter()
        .enumerate()
        .map(|(i, g)| (g.as_str(), i))
        .collect();
    let mut children = Dag::new(group_names.len(), 0);
    for (gi, (_, group)) in raw.groups.iter().enumerate() {
        for host in &group.hosts {
            if !raw.hosts.contains_key(host.as_str()) {
                sink.error(
                    host.pos,
                    Problem::Unknown {
                        what: "host",
                        name: host.value.clone(),
                        suggestion: suggest(host, raw.hosts.keys().map(String::as_str)),
                    },
                );
            }
        }
        for child in &group.children {
            match group_index.get(child.as_str()) {
                Some(&ci) => children.edge(ci, gi),
                None => sink.error(
                    child.pos,
                    Problem::Unknown {
                        what: "group",
                        name: child.value.clone(),
                        suggestion: suggest(child, raw.groups.keys().map(String::as_str)),
                    },
                ),
            }
        }
    }
    if let Err(node) = children.topo_order() {
        let cycle = children.cycle_from(node);
        sink.error(
            raw.groups[group_names[cycle[0]]].pos,
            Problem::Cycle {
                what: "group",
                path: cycle.iter().map(|&i| group_names[i].clone()).collect(),
            },
        );
    }
    nul_vars(&mut sink, source, raw);
    check_jumps(&mut sink, raw);
    for settings in std::iter::once(&raw.defaults).chain(raw.hosts.values().map(|h| &h.value)) {
        for (field, value) in [
            ("passphrase", &settings.passphrase),
            ("password", &settings.password),
            ("become_password", &settings.become_password),
        ] {
            secret_name(&mut sink, field, value.as_ref());
        }
    }
    if sink.has_errors() {
        return CheckedInventory {
            inventory: None,
            diagnostics: sink.diagnostics,
        };
    }
    let base = source.path.parent().unwrap_or(Path::new("."));
    let members = expand_groups(raw, &group_names, &children);
    let mut hosts = BTreeMap::new();
    let mut ssh_configs = BTreeMap::new();
    let d = &raw.defaults;
    for (name, h) in &raw.hosts {
        let mut vars = d.vars.clone();
        // Like vars: the most specific group (children after parents) wins.
        let mut group_shell = None;
        for g in ancestry_order(name, raw, &group_names, &children) {
            let group = &raw.groups[group_names[g]];
            vars.extend(group.vars.clone());
            if let Some(shell) = group.shell {
                group_shell = Some((shell, group_names[g]));
            }
        }
        vars.extend(h.vars.clone());
        let host = settle(name, h, d, group_shell, vars, base);
        if host.transport == TransportKind::Ssh {
            match h.ssh_config.as_ref().or(d.ssh_config.as_ref()) {
                Some(v) if v.value == "none" => {}
                Some(v) => {
                    let path = expand_path(base, v);
                    if path.is_file() {
                        ssh_configs.insert(name.clone(), path);
                    } else {
                        sink.error(
                            v.pos,
                            Problem::Unreadable {
                                reason: format!("`{}` is not a file", path.display()),
                            },
                        );
                    }
                }
                None => {
                    if let Some(path) = ssh_config::default_path() {
                        ssh_configs.insert(name.clone(), path);
                    }
                }
            }
        }
        hosts.insert(name.clone(), host);
    }
    become_without_shell(&mut sink, source, raw, &hosts);
    let fresh = |name: &str| {
        settle(
            name,
            &RawHostSettings::default(),
            d,
            None,
            d.vars.clone(),
            base,
        )
    };
    let found = apply_ssh_config(&mut hosts, &ssh_configs, &fresh);
    sink.diagnostics.extend(found);
    if sink.has_errors() {
        return CheckedInventory {
            inventory: None,
            diagnostics: sink.diagnostics,
        };
    }
    CheckedInventory {
        inventory: Some(Inventory {
            hosts,
            groups: members,
            default_vars: raw.defaults.vars.clone(),
        }),
        diagnostics: sink.diagnostics,
    }
}

/// Host and group names, each refused at its key.
fn names(sink: &mut Sink<'_>, source: &Source, raw: &RawInventory) {
    let hosts = raw.hosts.iter().map(|(n, h)| ("host", "hosts", n, h.pos));
    let groups = raw
        .groups
        .iter()
        .map(|(n, g)| ("group", "groups", n, g.pos));
    let bad: Vec<_> = hosts
        .chain(groups)
        .filter(|(_, _, name, _)| !super::names::is_valid_host_name(name))
        .collect();
    if bad.is_empty() {
        return;
    }
    // Keys carry no position in the typed tree; read them again, only when
    // a name is wrong.
    let keys = crate::load::structure::key_positions(source);
    for (what, section, name, value_pos) in bad {
        let pointer = format!("/{section}/{}", crate::load::structure::escape(name));
        sink.error(
            keys.get(&pointer).copied().unwrap_or(value_pos),
            Problem::InvalidHostName {
                what,
                name: name.clone(),
            },
        );
    }
}

/// Addresses reach a resolver (perhaps a jump host's, which may stop
/// reading at a space), the terminal and `known_hosts`, where a space,
/// a comma or a newline would make a line for other hosts.
fn addresses(sink: &mut Sink<'_>, source: &Source, raw: &RawInventory) {
    let valid = |a: &str| {
        !a.is_empty()
            && !a.starts_with('-')
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '%'))
    };
    let hosts = raw.hosts.iter().map(|(n, h)| {
        (
            format!("/hosts/{}", crate::load::structure::escape(n)),
            h.pos,
            &h.address,
        )
    });
    let defaults = std::iter::once((
        "/defaults".to_string(),
        raw.version.pos,
        &raw.defaults.address,
    ));
    let bad: Vec<_> = hosts
        .chain(defaults)
        .filter_map(|(at, pos, a)| a.as_ref().filter(|a| !valid(a)).map(|a| (at, pos, a)))
        .collect();
    if bad.is_empty() {
        return;
    }
    let keys = crate::load::structure::key_positions(source);
    for (at, pos, address) in bad {
        sink.error(
            keys.get(&format!("{at}/address")).copied().unwrap_or(pos),
            Problem::InvalidAddress {
                address: address.clone(),
            },
        );
    }
}

/// Variables are rendered into commands: a NUL would cut them short.
fn nul_vars(sink: &mut Sink<'_>, source: &Source, raw: &RawInventory) {
    use crate::load::structure::{escape, key_positions};
    let holds = |vars: &BTreeMap<String, serde_json::Value>| {
        vars.iter()
            .find(|(k, v)| k.contains('\0') || super::lints::holds_nul(v))
            .map(|(k, _)| k.clone())
    };
    let hosts = raw.hosts.iter().map(|(n, h)| {
        let at = format!("/hosts/{}", escape(n));
        (format!(" of host `{n}`"), at, h.pos, &h.vars)
    });
    let groups = raw.groups.iter().map(|(n, g)| {
        let at = format!("/groups/{}", escape(n));
        (format!(" of group `{n}`"), at, g.pos, &g.vars)
    });
    let defaults = std::iter::once((
        " under `defaults`".to_string(),
        "/defaults".to_string(),
        crate::load::Pos::new(1, 1),
        &raw.defaults.vars,
    ));
    let bad: Vec<_> = hosts
        .chain(groups)
        .chain(defaults)
        .filter_map(|(owner, at, pos, vars)| holds(vars).map(|name| (owner, at, pos, name)))
        .collect();
    if bad.is_empty() {
        return;
    }
    let keys = key_positions(source);
    for (owner, at, pos, name) in bad {
        let pointer = format!("{at}/vars/{}", escape(&name));
        sink.error(
            keys.get(&pointer).copied().unwrap_or(pos),
            Problem::NulByte {
                what: format!("variable `{name}`{owner}"),
            },
        );
    }
}

/// sudo runs in a shell: a host without one cannot `become`. Pointed at the
/// `become` that applies, the host's own or the defaults'.
fn become_without_shell(
    sink: &mut Sink<'_>,
    source: &Source,
    raw: &RawInventory,
    hosts: &BTreeMap<String, Host>,
) {
    let bad: Vec<&Host> = hosts
        .values()
        .filter(|h| h.r#become && h.shell == Shell::None)
        .collect();
    if bad.is_empty() {
        return;
    }
    let keys = crate::load::structure::key_positions(source);
    for host in bad {
        let own = raw.hosts.get(&host.name);
        let (pointer, fallback) = match own.filter(|h| h.r#become.is_some()) {
            Some(h) => (
                format!(
                    "/hosts/{}/become",
                    crate::load::structure::escape(&host.name)
                ),
                h.pos,
            ),
            None => ("/defaults/become".to_string(), raw.version.pos),
        };
        sink.error(
            keys.get(&pointer).copied().unwrap_or(fallback),
            Problem::BecomeWithoutShell {
                host: host.name.clone(),
            },
        );
    }
}

/// A host as the inventory describes it: its own settings, else the
/// defaults, else runbook's; `origins` says which.
fn settle(
    name: &str,
    h: &RawHostSettings,
    d: &RawHostSettings,
    group_shell: Option<(Shell, &String)>,
    vars: BTreeMap<String, serde_json::Value>,
    base: &Path,
) -> Host {
    let transport = h.transport.or(d.transport).unwrap_or_default();
    // Without an address, a local host is the controller itself and an
    // SSH host is reached by its name (as Ansible does).
    let unnamed = match transport {
        TransportKind::Local => "127.0.0.1".to_string(),
        TransportKind::Ssh => name.to_string(),
    };
    let mut origins = BTreeMap::new();
    // The host's own value wins over the defaults; each records where it
    // came from.
    let mut pick = |field: &'static str, own: bool, default: bool| {
        if own {
            origins.insert(field, Origin::Host);
        } else if default {
            origins.insert(field, Origin::Defaults);
        }
    };
    // The field's name is its key in `origins`.
    macro_rules! pick {
        ($($field:ident),*) => {
            $(pick(stringify!($field), h.$field.is_some(), d.$field.is_some());)*
        };
    }
    pick!(
        transport,
        address,
        port,
        user,
        identity_file,
        known_hosts,
        host_key_checking,
        jump,
        connect_timeout,
        passphrase,
        password,
        become_user,
        become_password
    );
    pick("become", h.r#become.is_some(), d.r#become.is_some());
    // Like vars: the host's own, else the most specific group's, else the
    // defaults'.
    let shell = if let Some(shell) = h.shell {
        origins.insert("shell", Origin::Host);
        shell
    } else if let Some((shell, group)) = group_shell {
        origins.insert("shell", Origin::Group(group.clone()));
        shell
    } else if let Some(shell) = d.shell {
        origins.insert("shell", Origin::Defaults);
        shell
    } else {
        Shell::Posix
    };
    // Checked before: every one of these is a secret reference.
    let secret = |own: &Option<Sp<String>>, default: &Option<Sp<String>>| {
        own.as_ref()
            .or(default.as_ref())
            .and_then(|s| secret_reference(s))
            .map(str::to_string)
    };
    Host {
        name: name.to_string(),
        transport,
        address: h
            .address
            .clone()
            .or_else(|| d.address.clone())
            .unwrap_or(unnamed),
        port: h.port.or(d.port).unwrap_or(22),
        user: h
            .user
            .clone()
            .or_else(|| d.user.clone())
            .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "root".into())),
        identity_file: h
            .identity_file
            .as_ref()
            .or(d.identity_file.as_ref())
            .map(|p| expand_path(base, p)),
        known_hosts: h
            .known_hosts
            .as_ref()
            .or(d.known_hosts.as_ref())
            .map(|p| expand_path(base, p)),
        host_key_checking: h
            .host_key_checking
            .or(d.host_key_checking)
            .unwrap_or_default(),
        jump: h
            .jump
            .as_ref()
            .or(d.jump.as_ref())
            .map(|j| j.value.clone())
            .filter(|j| j != name),
        jump_via: None,
        connect_timeout: h
            .connect_timeout
            .or(d.connect_timeout)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        shell,
        passphrase: secret(&h.passphrase, &d.passphrase),
        password: secret(&h.password, &d.password),
        r#become: h.r#become.or(d.r#become).unwrap_or(false),
        become_user: h.become_user.clone().or_else(|| d.become_user.clone()),
        become_password: secret(&h.become_password, &d.become_password),
        vars,
        origins,
    }
}

/// The secret a password field names; anything else is an error (a
/// password written in the inventory would be in every copy of it).
pub fn secret_name(sink: &mut Sink<'_>, field: &'static str, value: Option<&Sp<String>>) {
    if let Some(v) = value
        && secret_reference(v).is_none()
    {
        sink.error(v.pos, Problem::NotSecretReference { field });
    }
}

fn check_jumps(sink: &mut Sink<'_>, raw: &RawInventory) {
    let names: Vec<&String> = raw.hosts.keys().collect();
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut jumps = Dag::new(names.len(), 0);
    let mut jump_of = vec![None; names.len()];
    let default_jump = raw.defaults.jump.as_ref();
    for (i, (name, host)) in raw.hosts.iter().enumerate() {
        let Some(jump) = host.jump.as_ref().or(default_jump) else {
            continue;
        };
        if jump.value == *name {
            continue;
        }
        match index.get(jump.as_str()) {
            Some(&j) => {
                jumps.edge(j, i);
                jump_of[i] = Some((j, jump.pos));
            }
            None => sink.error(
                jump.pos,
                Problem::Unknown {
                    what: "jump host",
                    name: jump.value.clone(),
                    suggestion: suggest(jump, raw.hosts.keys().map(String::as_str)),
                },
            ),
        }
    }
    if let Err(node) = jumps.topo_order() {
        let cycle = jumps.cycle_from(node);
        sink.error(
            raw.hosts[names[cycle[0]]].pos,
            Problem::Cycle {
                what: "jump host",
                path: cycle.iter().map(|&i| names[i].clone()).collect(),
            },
        );
        return;
    }
    for (i, jump) in jump_of.iter().enumerate() {
        let Some((_, pos)) = jump else { continue };
        let chain: Vec<String> = std::iter::successors(*jump, |&(j, _)| jump_of[j])
            .map(|(j, _)| names[j].clone())
            .collect();
        if chain.len() > MAX_JUMPS {
            sink.error(
                *pos,
                Problem::JumpChainTooLong {
                    host: names[i].clone(),
                    chain,
                    limit: MAX_JUMPS,
                },
            );
        }
    }
}

/// Members of every group, its children's members included.
fn expand_groups(
    raw: &RawInventory,
    names: &[&String],
    children: &Dag,
) -> BTreeMap<String, Vec<String>> {
    let order = children.topo_order().unwrap_or_default();
    let mut members: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    for &g in &order {
        let mut list: Vec<String> = raw.groups[names[g]]
            .hosts
            .iter()
            .map(|h| h.value.clone())
            .collect();
        for &c in &children.preds[g] {
            list.extend(members[c].iter().cloned());
        }
        let mut seen = std::collections::HashSet::new();
        list.retain(|h| seen.insert(h.clone()));
        members[g] = list;
    }
    names.iter().map(|n| (*n).clone()).zip(members).collect()
}

/// Groups containing `host`, outermost first, so inner groups' vars win.
fn ancestry_order(host: &str, raw: &RawInventory, names: &[&String], children: &Dag) -> Vec<usize> {
    let order = children.topo_order().unwrap_or_default();
    let mut depth = vec![0usize; names.len()];
    let mut contains = vec![false; names.len()];
    for &g in &order {
        contains[g] = raw.groups[names[g]]
            .hosts
            .iter()
            .any(|h| h.as_str() == host)
            || children.preds[g].iter().any(|&c| contains[c]);
        depth[g] = children.preds[g]
            .iter()
            .map(|&c| depth[c] + 1)
            .max()
            .unwrap_or(0);
    }
    let mut groups: Vec<usize> = (0..names.len()).filter(|&g| contains[g]).collect();
    groups.sort_by_key(|&g| (std::cmp::Reverse(depth[g]), names[g].clone()));
    groups
}

fn expand_path(base: &Path, path: &str) -> PathBuf {
    if let Some(rest) = path.strip_prefix("~/") {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        return Path::new(&home).join(rest);
    }
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}
