//! Ansible inventories (INI and YAML) read the way `ansible-inventory` reads
//! them: the same groups, members, order and variable precedence, so that
//! `runbook inventory --format json` equals `ansible-inventory --list`.

mod ini;
mod node;
mod yaml;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value;

use super::{Pos, Source};
use crate::diagnostic::{Diagnostic, Problem};
use crate::model::inventory::Origin;

pub use node::Node;

/// The two Ansible inventory formats `-i` accepts besides the native one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ini,
    Yaml,
}

/// Top-level keys of runbooks and native inventories: a file with one of
/// them is not an Ansible inventory (whose top-level keys are groups).
const NATIVE_KEYS: &[&str] = &[
    "version",
    "name",
    "title",
    "description",
    "vars",
    "defaults",
    "phases",
    "steps",
    "hosts",
    "groups",
];

/// Whether `text` is an Ansible inventory, and which kind, from its content
/// (Ansible too guesses from content, trying YAML before INI).
#[must_use]
pub fn sniff(text: &str) -> Option<Format> {
    let significant = |l: &&str| {
        let t = l.trim();
        !t.is_empty()
            && !t.starts_with('#')
            && !t.starts_with(';')
            && t != "---"
            && !t.starts_with('%')
    };
    let first = text.lines().find(significant)?;
    if text.trim_start().starts_with("$ANSIBLE_VAULT") {
        return Some(Format::Yaml);
    }
    if first.starts_with('{') {
        return None;
    }
    let keys: Vec<&str> = text.lines().filter_map(top_level_key).collect();
    match top_level_key(first) {
        Some(_) if keys.iter().any(|k| NATIVE_KEYS.contains(k)) => None,
        Some(_) => Some(Format::Yaml),
        None if first.starts_with("- ") || first == "-" => None,
        None => Some(Format::Ini),
    }
}

/// `key` of a line `key:` or `key: value` at column 0 (a YAML mapping key).
fn top_level_key(line: &str) -> Option<&str> {
    let (key, rest) = line.split_once(':')?;
    let key = key.trim_end();
    let plain = !key.is_empty()
        && !key.starts_with(['#', '[', '-', ' ', '\t'])
        && !key.contains(char::is_whitespace);
    (plain && (rest.is_empty() || rest.starts_with([' ', '\t'])))
        .then(|| key.trim_matches(['"', '\'']))
}

#[derive(Debug, Clone, Default)]
pub struct Group {
    /// Hosts named in this group itself, in the order first added.
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    pub parents: Vec<String>,
    pub vars: IndexMap<String, Value>,
    /// The longest path from `all`; with `priority` and the name it orders
    /// group variables (Ansible's `sort_groups`).
    pub depth: usize,
    pub priority: i64,
    pub pos: Pos,
}

#[derive(Debug, Clone, Default)]
pub struct HostDef {
    pub vars: IndexMap<String, Value>,
    /// Groups the host was put in directly.
    pub groups: Vec<String>,
    pub pos: Pos,
}

/// Groups and hosts as an inventory file declares them.
#[derive(Debug, Clone)]
pub struct Tree {
    pub groups: IndexMap<String, Group>,
    pub hosts: IndexMap<String, HostDef>,
}

impl Default for Tree {
    fn default() -> Self {
        let mut tree = Self {
            groups: IndexMap::new(),
            hosts: IndexMap::new(),
        };
        tree.add_group("all", Pos::new(1, 1));
        tree.add_group("ungrouped", Pos::new(1, 1));
        let _ = tree.add_child("all", "ungrouped");
        tree
    }
}

impl Tree {
    pub fn add_group(&mut self, name: &str, pos: Pos) {
        self.groups
            .entry(name.to_string())
            .or_insert_with(|| Group {
                priority: 1,
                pos,
                ..Group::default()
            });
    }

    /// As Ansible's `add_host`: a port applies only where the host is first
    /// seen.
    pub fn add_host(&mut self, name: &str, group: &str, port: Option<u16>, pos: Pos) {
        if !self.hosts.contains_key(name) {
            let mut def = HostDef {
                pos,
                ..HostDef::default()
            };
            if let Some(port) = port {
                def.vars.insert("ansible_port".into(), port.into());
            }
            self.hosts.insert(name.to_string(), def);
        }
        let def = &mut self.hosts[name];
        if !def.groups.iter().any(|g| g == group) {
            def.groups.push(group.to_string());
        }
        let g = &mut self.groups[group];
        if !g.hosts.iter().any(|h| h == name) {
            g.hosts.push(name.to_string());
        }
    }

    pub fn set_host_var(&mut self, host: &str, key: String, value: Value) {
        merge_var(&mut self.hosts[host].vars, key, value);
    }

    pub fn set_group_var(&mut self, group: &str, key: String, value: Value) {
        let g = &mut self.groups[group];
        if key == "ansible_group_priority" {
            if let Some(p) = value
                .as_i64()
                .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
            {
                g.priority = p;
            }
        } else {
            merge_var(&mut g.vars, key, value);
        }
    }

    /// Makes `child` a child of `parent`; refuses a loop.
    pub fn add_child(&mut self, parent: &str, child: &str) -> Result<(), String> {
        if parent == child {
            return Err(format!("group `{parent}` cannot be a child of itself"));
        }
        if self.descendants(child).contains(parent) {
            return Err(format!(
                "making `{child}` a child of `{parent}` creates a loop of groups"
            ));
        }
        if self.groups[parent].children.iter().any(|c| c == child) {
            return Ok(());
        }
        self.groups[parent].children.push(child.to_string());
        if !self.groups[child].parents.iter().any(|p| p == parent) {
            self.groups[child].parents.push(parent.to_string());
        }
        let mut stack = vec![(child.to_string(), self.groups[parent].depth + 1)];
        while let Some((g, depth)) = stack.pop() {
            let group = &mut self.groups[g.as_str()];
            if group.depth >= depth {
                continue;
            }
            group.depth = depth;
            stack.extend(group.children.iter().map(|c| (c.clone(), depth + 1)));
        }
        Ok(())
    }

    fn descendants(&self, group: &str) -> HashSet<String> {
        let mut seen = HashSet::new();
        let mut stack = vec![group.to_string()];
        while let Some(g) = stack.pop() {
            if seen.insert(g.clone()) {
                stack.extend(self.groups[g.as_str()].children.iter().cloned());
            }
        }
        seen
    }

    /// Every group a host is in, directly or through parents.
    #[must_use]
    pub fn host_groups(&self, host: &str) -> HashSet<String> {
        let mut seen = HashSet::new();
        let mut stack: Vec<String> = self.hosts[host].groups.clone();
        while let Some(g) = stack.pop() {
            if seen.insert(g.clone()) {
                stack.extend(self.groups[g.as_str()].parents.iter().cloned());
            }
        }
        seen
    }

    /// Ansible's `reconcile_inventory`: parentless groups go under `all`,
    /// hosts in no group under `ungrouped`, and `ungrouped` keeps only them.
    pub fn reconcile(&mut self) {
        let orphans: Vec<String> = self
            .groups
            .iter()
            .filter(|(name, g)| *name != "all" && g.parents.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        for g in orphans {
            let _ = self.add_child("all", &g);
        }
        let names: Vec<String> = self.hosts.keys().cloned().collect();
        for host in names {
            let groups = self.host_groups(&host);
            if groups.contains("ungrouped") {
                if groups.iter().any(|g| g != "all" && g != "ungrouped") {
                    self.groups["ungrouped"].hosts.retain(|h| *h != host);
                    self.hosts[host.as_str()]
                        .groups
                        .retain(|g| g != "ungrouped");
                }
            } else if groups.iter().all(|g| g == "all") {
                let pos = self.hosts[host.as_str()].pos;
                self.add_host(&host, "ungrouped", None, pos);
            }
        }
    }

    /// Members of every group, children's included, in inventory order.
    #[must_use]
    pub fn members(&self) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for name in self.groups.keys() {
            let mut list = Vec::new();
            let mut seen_hosts = HashSet::new();
            let mut seen_groups = HashSet::new();
            self.collect(name, &mut list, &mut seen_hosts, &mut seen_groups);
            out.insert(name.clone(), list);
        }
        out
    }

    fn collect(
        &self,
        group: &str,
        list: &mut Vec<String>,
        seen_hosts: &mut HashSet<String>,
        seen_groups: &mut HashSet<String>,
    ) {
        if !seen_groups.insert(group.to_string()) {
            return;
        }
        let g = &self.groups[group];
        for h in &g.hosts {
            if seen_hosts.insert(h.clone()) {
                list.push(h.clone());
            }
        }
        for c in &g.children {
            self.collect(c, list, seen_hosts, seen_groups);
        }
    }

    /// Groups ordered as Ansible merges their variables: by depth, then
    /// priority, then name (`all` excluded: it always comes first).
    #[must_use]
    pub fn sorted_groups(&self, groups: &HashSet<String>) -> Vec<String> {
        let mut list: Vec<&String> = groups.iter().filter(|g| *g != "all").collect();
        list.sort_by_key(|g| {
            (
                self.groups[g.as_str()].depth,
                self.groups[g.as_str()].priority,
                *g,
            )
        });
        list.into_iter().cloned().collect()
    }
}

/// Setting a variable twice merges two mappings (as Ansible's
/// `set_variable`); anything else is replaced.
fn merge_var(vars: &mut IndexMap<String, Value>, key: String, value: Value) {
    if let (Some(Value::Object(old)), Value::Object(new)) = (vars.get_mut(&key), &value) {
        merge_objects(old, new.clone());
        return;
    }
    vars.insert(key, value);
}

fn merge_objects(old: &mut serde_json::Map<String, Value>, new: serde_json::Map<String, Value>) {
    for (k, v) in new {
        match (old.get_mut(&k), v) {
            (Some(Value::Object(o)), Value::Object(n)) => merge_objects(o, n),
            (_, v) => {
                old.insert(k, v);
            }
        }
    }
}

/// A variable's value and where it was set.
pub type Resolved = BTreeMap<String, (Value, Origin)>;

/// An Ansible inventory read, with each host's variables resolved.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub source: Source,
    pub format: Format,
    pub tree: Tree,
    /// Per host, in inventory order: every variable as Ansible resolves it.
    pub hostvars: IndexMap<String, Resolved>,
    /// `all`'s variables (inventory file and `group_vars/all`).
    pub all_vars: Resolved,
}

/// Reads an Ansible inventory and the `group_vars/` and `host_vars/` next
/// to it. Errors come with their file, line and column.
pub fn load(source: Source, format: Format) -> Result<Loaded, Vec<Diagnostic>> {
    let mut diagnostics = vault_values(&source.path, &source.text);
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    let parsed = match format {
        Format::Ini => ini::parse(&source),
        Format::Yaml => yaml::parse(&source),
    };
    let mut tree = match parsed {
        Ok(tree) => tree,
        Err(d) => return Err(vec![*d]),
    };
    tree.reconcile();
    let base = source.path.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut files = VarsFiles {
        base,
        cache: HashMap::new(),
        diagnostics: Vec::new(),
    };
    let mut all_vars = Resolved::new();
    put(
        &mut all_vars,
        &tree.groups["all"].vars,
        &Origin::Group("all".into()),
    );
    all_vars.extend(files.get("group_vars", "all"));
    let mut hostvars = IndexMap::new();
    for (name, def) in &tree.hosts {
        let groups = tree.sorted_groups(&tree.host_groups(name));
        let mut vars = Resolved::new();
        put(
            &mut vars,
            &tree.groups["all"].vars,
            &Origin::Group("all".into()),
        );
        for g in &groups {
            put(
                &mut vars,
                &tree.groups[g.as_str()].vars,
                &Origin::Group(g.clone()),
            );
        }
        vars.extend(files.get("group_vars", "all"));
        for g in &groups {
            vars.extend(files.get("group_vars", g));
        }
        put(&mut vars, &def.vars, &Origin::Host);
        vars.extend(files.get("host_vars", name));
        hostvars.insert(name.clone(), vars);
    }
    diagnostics.append(&mut files.diagnostics);
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    Ok(Loaded {
        source,
        format,
        tree,
        hostvars,
        all_vars,
    })
}

fn put(vars: &mut Resolved, from: &IndexMap<String, Value>, origin: &Origin) {
    for (k, v) in from {
        vars.insert(k.clone(), (v.clone(), origin.clone()));
    }
}

/// `group_vars/NAME` and `host_vars/NAME`, each read once.
struct VarsFiles {
    base: PathBuf,
    cache: HashMap<(&'static str, String), Resolved>,
    diagnostics: Vec<Diagnostic>,
}

impl VarsFiles {
    fn get(&mut self, dir: &'static str, name: &str) -> Resolved {
        let key = (dir, name.to_string());
        if let Some(found) = self.cache.get(&key) {
            return found.clone();
        }
        let mut vars = Resolved::new();
        for path in vars_files(&self.base.join(dir), name) {
            match read_vars_file(&path) {
                Ok(file_vars) => vars.extend(file_vars),
                Err(mut d) => self.diagnostics.append(&mut d),
            }
        }
        self.cache.insert(key, vars.clone());
        vars
    }
}

/// The files Ansible reads for `NAME` under `dir`: the first of `NAME`,
/// `NAME.yml`, `NAME.yaml`, `NAME.json` that exists; a folder is read whole,
/// sorted, hidden files and backups skipped (Ansible's `find_vars_files`).
fn vars_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    if !dir.is_dir() {
        return Vec::new();
    }
    for ext in ["", ".yml", ".yaml", ".json"] {
        let path = dir.join(format!("{name}{ext}"));
        if path.is_dir() {
            let mut found = Vec::new();
            folder_files(&path, &mut found);
            return found;
        }
        if path.exists() {
            return vec![path];
        }
    }
    Vec::new()
}

fn folder_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        let path = dir.join(&name);
        let ext = Path::new(&name).extension().map(|e| e.to_string_lossy());
        if path.is_dir() && ext.is_none() {
            folder_files(&path, out);
        } else if path.is_file()
            && ext
                .as_deref()
                .is_none_or(|e| matches!(e, "yml" | "yaml" | "json"))
        {
            out.push(path);
        }
    }
}

fn read_vars_file(path: &Path) -> Result<Resolved, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic::error(
            path,
            Pos::new(1, 1),
            Problem::Unreadable {
                reason: e.to_string(),
            },
        )]
    })?;
    let vault = vault_values(path, &text);
    if !vault.is_empty() {
        return Err(vault);
    }
    if text.trim().is_empty() {
        return Ok(Resolved::new());
    }
    let source = Source {
        path: path.to_path_buf(),
        text,
    };
    let node = yaml::parse_node(&source).map_err(|d| vec![*d])?;
    let entries = match node {
        Node::Null => return Ok(Resolved::new()),
        Node::Map(entries) => entries,
        _ => {
            return Err(vec![Diagnostic::error(
                path,
                Pos::new(1, 1),
                Problem::Syntax {
                    message: "a variables file must be a mapping of names to values".into(),
                    suggestion: None,
                },
            )]);
        }
    };
    Ok(entries
        .into_iter()
        .map(|(k, v)| {
            let line = key_line(&source.text, &k);
            let origin = Origin::File {
                path: path.to_path_buf(),
                line,
            };
            (k, (v.into_json(), origin))
        })
        .collect())
}

/// The line of a top-level key, for `runbook inventory`'s origins.
fn key_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| top_level_key(l) == Some(key))
        .map_or(1, |i| i + 1)
}

/// Every vault-encrypted value (`!vault` tag, or `$ANSIBLE_VAULT` text),
/// reported where it is: runbook cannot decrypt them.
#[must_use]
pub fn vault_values(path: &Path, text: &str) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    // The indentation of a `!vault |` key: its block's lines are the same
    // value, not reported again.
    let mut block: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        if let Some(key_indent) = block {
            if line.trim().is_empty() || indent > key_indent {
                continue;
            }
            block = None;
        }
        let code = line.split(" #").next().unwrap_or(line);
        if code.trim_start().starts_with('#') {
            continue;
        }
        let tag = code
            .find("!vault")
            .filter(|&c| code[c + 6..].chars().next().is_none_or(char::is_whitespace));
        if tag.is_some() {
            block = Some(indent);
        }
        if let Some(c) = tag.or_else(|| code.find("$ANSIBLE_VAULT")) {
            found.push(Diagnostic::error(
                path,
                Pos::new(
                    u32::try_from(i + 1).unwrap_or(u32::MAX),
                    u32::try_from(code[..c].chars().count() + 1).unwrap_or(u32::MAX),
                ),
                Problem::VaultValue,
            ));
        }
    }
    found
}

/// `ansible-inventory --list`: groups reachable from `all` with their hosts
/// and children (empty ones left out), and `_meta.hostvars` (hosts without
/// variables left out).
#[must_use]
pub fn list_json(tree: &Tree, hostvars: &IndexMap<String, BTreeMap<String, Value>>) -> Value {
    let mut out = serde_json::Map::new();
    let mut seen = HashSet::new();
    format_group(tree, "all", &mut out, &mut seen);
    let vars: serde_json::Map<String, Value> = hostvars
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(h, v)| {
            (
                h.clone(),
                Value::Object(v.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            )
        })
        .collect();
    out.insert(
        "_meta".into(),
        serde_json::json!({"hostvars": vars, "profile": "inventory_legacy"}),
    );
    Value::Object(out)
}

fn format_group(
    tree: &Tree,
    name: &str,
    out: &mut serde_json::Map<String, Value>,
    seen: &mut HashSet<String>,
) {
    let group = &tree.groups[name];
    let mut entry = serde_json::Map::new();
    if name != "all" && !group.hosts.is_empty() {
        entry.insert("hosts".into(), group.hosts.clone().into());
    }
    if !group.children.is_empty() {
        entry.insert("children".into(), group.children.clone().into());
    }
    for child in &group.children {
        if seen.insert(child.clone()) {
            format_group(tree, child, out, seen);
        }
    }
    if !entry.is_empty() {
        out.insert(name.to_string(), Value::Object(entry));
    }
}

/// A host pattern expanded as Ansible does: an optional `:port`, then
/// `[a:b]` / `[a:b:step]` ranges, numeric (zero-padded when written so) or
/// alphabetic, several per name.
pub fn expand_pattern(pattern: &str) -> Result<(Vec<String>, Option<u16>), String> {
    let (name, port) = split_port(pattern);
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("port `{p}` is not a number from 0 to 65535"))?,
        ),
        None => None,
    };
    if pattern.trim_end().ends_with(':') && port.is_none() {
        return Err(format!(
            "invalid host pattern `{pattern}`: a trailing `:` must be followed by a port"
        ));
    }
    let names = if name.contains('[') {
        expand_range(name)?
    } else {
        vec![name.to_string()]
    };
    Ok((names, port))
}

/// `host:port` or `[host]:port`, when the host part is a valid address or
/// name (else the whole text is the name, as in Ansible's `parse_address`).
fn split_port(pattern: &str) -> (&str, Option<&str>) {
    let split = if let Some(rest) = pattern.strip_prefix('[')
        && let Some((inner, port)) = rest.rsplit_once("]:")
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
    {
        Some((inner, port))
    } else {
        pattern.rsplit_once(':').filter(|(host, port)| {
            !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && !host.contains(':')
                && !host.is_empty()
        })
    };
    match split {
        Some((host, port)) if valid_address(host) => (host, Some(port)),
        _ => (pattern, None),
    }
}

fn valid_address(host: &str) -> bool {
    // Ranges count as name characters here; their syntax is checked when
    // they are expanded.
    let mut depth = 0;
    let plain: String = host
        .chars()
        .map(|c| match c {
            '[' => {
                depth += 1;
                'a'
            }
            ']' => {
                depth -= 1;
                'a'
            }
            _ if depth > 0 => 'a',
            c => c,
        })
        .collect();
    plain.split('.').all(|label| {
        !label.is_empty()
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
            && !label.starts_with('-')
            && !label.ends_with(['-', '_'])
    })
}

fn expand_range(line: &str) -> Result<Vec<String>, String> {
    let Some((head, rest)) = line.split_once('[') else {
        return Ok(vec![line.to_string()]);
    };
    let Some((range, tail)) = rest.split_once(']') else {
        return Err(format!("host range `{line}` has no closing `]`"));
    };
    let bounds: Vec<&str> = range.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err("a host range must be begin:end or begin:end:step".into());
    }
    let begin = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    if end.is_empty() {
        return Err("a host range must give its end".into());
    }
    let step: usize = match bounds.get(2) {
        Some(s) => s
            .parse()
            .ok()
            .filter(|&s| s > 0)
            .ok_or_else(|| format!("host range step `{s}` is not a positive number"))?,
        None => 1,
    };
    let letters: Vec<char> = ('a'..='z').chain('A'..='Z').collect();
    let pick = |s: &str| {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => letters.iter().position(|&l| l == c),
            _ => None,
        }
    };
    let items: Vec<String> = if let (Some(b), Some(e)) = (pick(begin), pick(end)) {
        if b > e {
            return Err("a host range must have begin <= end".into());
        }
        letters[b..=e]
            .iter()
            .step_by(step)
            .map(char::to_string)
            .collect()
    } else {
        let b: u64 = begin
            .parse()
            .map_err(|_| format!("host range bound `{begin}` is not a number or a letter"))?;
        let e: u64 = end
            .parse()
            .map_err(|_| format!("host range bound `{end}` is not a number or a letter"))?;
        let width = if begin.starts_with('0') && begin.len() > 1 {
            if begin.len() != end.len() {
                return Err(
                    "a zero-padded host range must write begin and end with as many digits".into(),
                );
            }
            begin.len()
        } else {
            0
        };
        if e.saturating_sub(b) > 100_000 {
            return Err(format!("host range `[{range}]` is too large"));
        }
        (b..=e)
            .step_by(step)
            .map(|n| format!("{n:0width$}"))
            .collect()
    };
    let mut out = Vec::new();
    for item in items {
        let name = format!("{head}{item}{tail}");
        if name.contains('[') {
            out.extend(expand_range(&name)?);
        } else {
            out.push(name);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_as_ansible_does() {
        let names = |p: &str| expand_pattern(p).unwrap().0;
        assert_eq!(names("web[01:03]"), ["web01", "web02", "web03"]);
        assert_eq!(names("db-[a:c]"), ["db-a", "db-b", "db-c"]);
        assert_eq!(names("h[1:10:3]"), ["h1", "h4", "h7", "h10"]);
        assert_eq!(names("r[1:2]n[a:b]"), ["r1na", "r1nb", "r2na", "r2nb"]);
        assert_eq!(expand_pattern("db:2222").unwrap().1, Some(2222));
        assert_eq!(expand_pattern("[10.0.0.1]:22").unwrap().1, Some(22));
        assert!(expand_pattern("web[1:]").is_err());
        assert!(expand_pattern("web[01:3]").is_err());
    }

    #[test]
    fn sniffing_tells_ini_yaml_and_native_apart() {
        assert_eq!(sniff("[web]\nw1\n"), Some(Format::Ini));
        assert_eq!(sniff("# c\nw1 ansible_host=1.2.3.4\n"), Some(Format::Ini));
        assert_eq!(sniff("---\nall:\n  hosts:\n    a:\n"), Some(Format::Yaml));
        assert_eq!(sniff("version: 1\nhosts: {}\n"), None);
        assert_eq!(sniff("hosts:\n  a: {}\n"), None);
        assert_eq!(sniff("version: 1\nname: x\nsteps: []\n"), None);
    }

    #[test]
    fn vault_values_are_found_where_they_are() {
        let text = "a: 1\npw: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  3031\n";
        let found = vault_values(Path::new("f"), text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pos, Pos::new(2, 5));
    }
}
