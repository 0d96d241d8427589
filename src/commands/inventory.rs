//! `runbook inventory [-i INV] [--host NAME] [--format text|json]`: the
//! inventory as resolved, and where each setting came from.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use indexmap::IndexMap;
use serde_json::Value;

use crate::cli::{Global, InventoryArgs, InventoryFormat};
use crate::error::{Error, SUCCESS};
use crate::load;
use crate::load::ansible::{self, Tree};
use crate::model::inventory::Origin;
use crate::model::{Host, Inventory, TransportKind};

/// What is shown of one host's variables: value and, when known, origin.
type Vars = IndexMap<String, BTreeMap<String, (Value, Option<Origin>)>>;

pub fn run(global: &Global, args: &InventoryArgs) -> Result<u8, Error> {
    let path = global
        .inventory
        .as_ref()
        .ok_or_else(|| Error::Usage("`runbook inventory` needs an inventory: `-i FILE`".into()))?;
    let (tree, inventory, vars) = if let Some(result) = super::input::ansible(path) {
        let (loaded, checked) = result.map_err(|diagnostics| {
            super::input::print_files(&diagnostics);
            super::input::invalid(path)
        })?;
        super::input::print_files(&checked.diagnostics);
        let inventory = checked
            .inventory
            .ok_or_else(|| super::input::invalid(path))?;
        let vars: Vars = loaded
            .hostvars
            .iter()
            .map(|(h, vars)| {
                let shown = vars
                    .iter()
                    .map(|(k, (v, o))| (k.clone(), (v.clone(), Some(o.clone()))))
                    .collect();
                (h.clone(), shown)
            })
            .collect();
        (loaded.tree, inventory, vars)
    } else {
        let (_, inventory) = super::input::load_inventory(path)?;
        let (_, raw) = load::load_inventory(path).map_err(|_| super::input::invalid(path))?;
        let tree = native_tree(&raw);
        let vars = tree
            .hosts
            .keys()
            .filter_map(|h| inventory.hosts.get(h))
            .map(|h| (h.name.clone(), native_vars(h, &inventory, &raw)))
            .collect();
        (tree, inventory, vars)
    };
    if let Some(name) = &args.host
        && !inventory.hosts.contains_key(name)
    {
        return Err(Error::Usage(format!(
            "no host `{name}` in `{}`",
            path.display()
        )));
    }
    let wanted = |h: &String| args.host.as_ref().is_none_or(|n| n == h);
    match args.format {
        InventoryFormat::Json => {
            let hostvars: IndexMap<String, BTreeMap<String, Value>> = vars
                .iter()
                .filter(|(h, _)| wanted(h))
                .map(|(h, v)| {
                    (
                        h.clone(),
                        v.iter().map(|(k, (v, _))| (k.clone(), v.clone())).collect(),
                    )
                })
                .collect();
            let value = match &args.host {
                // As `ansible-inventory --host NAME`: the host's variables.
                Some(name) => Value::Object(
                    hostvars
                        .get(name)
                        .map(|v| v.clone().into_iter().collect())
                        .unwrap_or_default(),
                ),
                None => ansible::list_json(&tree, &hostvars),
            };
            println!("{}", crate::redact::json_text(format!("{value:#}")));
        }
        InventoryFormat::Text => {
            let mut out = String::new();
            for (name, shown) in vars.iter().filter(|(h, _)| wanted(h)) {
                if let Some(host) = inventory.hosts.get(name) {
                    describe(&mut out, host, &inventory, &tree, shown);
                }
            }
            print!("{out}");
        }
    }
    Ok(SUCCESS)
}

/// A native inventory's groups in the shape Ansible gives them: `all` over
/// every parentless group, `ungrouped` holding hosts in no group.
fn native_tree(raw: &load::RawInventory) -> Tree {
    let mut tree = Tree::default();
    for (name, h) in &raw.hosts {
        let def = ansible::HostDef {
            pos: h.pos,
            ..ansible::HostDef::default()
        };
        tree.hosts.insert(name.clone(), def);
    }
    for (name, g) in &raw.groups {
        tree.add_group(name, g.pos);
    }
    for (name, g) in &raw.groups {
        for h in &g.hosts {
            tree.add_host(h, name, None, h.pos);
        }
        for c in &g.children {
            // Loops were refused when the inventory was validated.
            let _ = tree.add_child(name, c);
        }
    }
    tree.reconcile();
    tree
}

/// A native host's variables, with its connection settings under the names
/// Ansible gives them, so the JSON reads like `ansible-inventory --list`.
fn native_vars(
    host: &Host,
    inventory: &Inventory,
    raw: &load::RawInventory,
) -> BTreeMap<String, (Value, Option<Origin>)> {
    let mut out: BTreeMap<String, (Value, Option<Origin>)> = BTreeMap::new();
    let own = raw.hosts.get(&host.name);
    for (k, v) in &host.vars {
        // The host's own value, else a group of the host that sets this
        // value, else the defaults.
        let origin = if own.is_some_and(|h| h.vars.contains_key(k)) {
            Origin::Host
        } else {
            raw.groups
                .iter()
                .filter(|(n, g)| {
                    g.vars.get(k) == Some(v)
                        && inventory
                            .groups
                            .get(*n)
                            .is_some_and(|m| m.contains(&host.name))
                })
                .map(|(n, _)| Origin::Group(n.clone()))
                .next_back()
                .unwrap_or(Origin::Defaults)
        };
        out.insert(k.clone(), (v.clone(), Some(origin)));
    }
    let mut setting = |field: &str, name: &str, value: Value| {
        if let Some(origin) = host.origins.get(field) {
            out.insert(name.into(), (value, Some(origin.clone())));
        }
    };
    setting("address", "ansible_host", host.address.clone().into());
    setting("port", "ansible_port", host.port.into());
    setting("user", "ansible_user", host.user.clone().into());
    if let Some(key) = &host.identity_file {
        setting(
            "identity_file",
            "ansible_ssh_private_key_file",
            key.display().to_string().into(),
        );
    }
    let connection = match host.transport {
        TransportKind::Local => "local",
        TransportKind::Ssh => "ssh",
    };
    setting("transport", "ansible_connection", connection.into());
    if let Some(jump) = &host.jump {
        setting(
            "jump",
            "ansible_ssh_common_args",
            format!("-J {jump}").into(),
        );
    }
    out
}

fn describe(
    out: &mut String,
    host: &Host,
    inventory: &Inventory,
    tree: &Tree,
    vars: &BTreeMap<String, (Value, Option<Origin>)>,
) {
    let from = |field: &str| origin_text(host.origins.get(field));
    let _ = writeln!(out, "{}", host.name);
    let mut line = |label: &str, value: String, origin: String| {
        let _ = writeln!(out, "  {label:<13}{value:<32} {origin}");
    };
    let transport = match host.transport {
        TransportKind::Local => "local",
        TransportKind::Ssh => "ssh",
    };
    line("address", host.address.clone(), from("address"));
    line("port", host.port.to_string(), from("port"));
    line("user", host.user.clone(), from("user"));
    line("transport", transport.into(), from("transport"));
    let shell = match host.shell {
        crate::model::Shell::Posix => "posix",
        crate::model::Shell::None => "none (commands sent as they are)",
    };
    line("shell", shell.into(), from("shell"));
    if let Some(key) = &host.identity_file {
        line(
            "identity_file",
            key.display().to_string(),
            from("identity_file"),
        );
    }
    // The chain in the order connections are made: outermost jump first.
    if host.r#become {
        let who = host.become_user.as_deref().unwrap_or("root");
        let password = host
            .become_password
            .as_ref()
            .map_or_else(String::new, |s| format!(", password {{{{ secret.{s} }}}}"));
        line("become", format!("sudo as {who}{password}"), from("become"));
    }
    let mut chain = Vec::new();
    let mut at = host.jump.clone();
    while let Some(j) = at {
        if chain.contains(&j) || chain.len() > crate::model::inventory::MAX_JUMPS {
            break;
        }
        at = inventory.hosts.get(&j).and_then(|h| h.jump.clone());
        chain.push(j);
    }
    chain.reverse();
    if !chain.is_empty() {
        line("jump", chain.join(" -> "), from("jump"));
    }
    line(
        "known_hosts",
        host.known_hosts
            .as_ref()
            .map_or_else(|| "~/.ssh/known_hosts".into(), |p| p.display().to_string()),
        from("known_hosts"),
    );
    let mut groups: Vec<&String> = tree
        .groups
        .keys()
        .filter(|g| {
            inventory
                .groups
                .get(*g)
                .is_some_and(|m| m.contains(&host.name))
        })
        .collect();
    groups.sort();
    line(
        "groups",
        groups
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        String::new(),
    );
    if !host.vars.is_empty() {
        let _ = writeln!(out, "  variables");
        for (k, (v, origin)) in vars.iter().filter(|(k, _)| host.vars.contains_key(*k)) {
            let shown = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            let _ = writeln!(
                out,
                "    {k:<24} {shown:<23} {}",
                origin_text(origin.as_ref())
            );
        }
    }
}

fn origin_text(origin: Option<&Origin>) -> String {
    match origin {
        None => "(default)".into(),
        Some(Origin::Host) => "(host)".into(),
        Some(Origin::Defaults) => "(inventory defaults)".into(),
        Some(Origin::Group(g)) => format!("(group {g})"),
        Some(Origin::File { path, line }) => format!("({}:{line})", path.display()),
    }
}
