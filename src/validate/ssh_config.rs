//! Completing hosts from the OpenSSH client configuration: what the
//! inventory leaves unset is taken from the config, and a `ProxyJump` host
//! the inventory does not describe is built from the same config.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Problem};
use crate::load::ssh_config::{Jump, Loc, Proxy, Settings, SshConfig, Strict, expand_path};
use crate::model::inventory::{MAX_JUMPS, Origin};
use crate::model::{Duration, Host, HostKeyChecking};

/// Fills every host of `config_of` from its OpenSSH configuration file.
/// `fresh` builds a host the inventory does not name (a jump host) with
/// the inventory's defaults. Hosts keep the values the inventory sets
/// (those in their `origins`).
pub fn apply_ssh_config(
    hosts: &mut BTreeMap<String, Host>,
    config_of: &BTreeMap<String, PathBuf>,
    fresh: &dyn Fn(&str) -> Host,
) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let mut configs = BTreeMap::new();
    for path in config_of.values() {
        if configs.contains_key(path) {
            continue;
        }
        let (config, found) = SshConfig::read(path);
        diagnostics.extend(found);
        if let Some(c) = config {
            configs.insert(path.clone(), c);
        }
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        return dedup(diagnostics);
    }
    let mut settings = BTreeMap::new();
    for (name, path) in config_of {
        let (Some(host), Some(config)) = (hosts.get_mut(name), configs.get(path)) else {
            continue;
        };
        let s = config.lookup(name);
        complete(host, &s, &mut diagnostics);
        settings.insert(name.clone(), (s, config));
    }
    // Jumps once every inventory host is complete: a chain may pass
    // through any of them.
    let resolver = Resolver {
        hosts: hosts.clone(),
        configs: &configs,
        config_of,
        fresh,
        warnings: RefCell::new(Vec::new()),
    };
    for (name, (s, config)) in &settings {
        let Some(host) = hosts.get_mut(name) else {
            continue;
        };
        if host.origins.contains_key("jump") {
            continue;
        }
        let Some(proxy) = &s.proxy else { continue };
        match resolver.proxy(name, &proxy.value, &proxy.at, config) {
            Ok(Some((jump, via))) => {
                host.jump = Some(jump);
                host.jump_via = via;
                host.origins.insert("jump", origin(&proxy.at));
            }
            Ok(None) => {}
            Err(d) => diagnostics.push(*d),
        }
    }
    diagnostics.extend(resolver.warnings.take());
    for host in hosts.values() {
        diagnostics.extend(chain_too_long(host, hosts));
    }
    dedup(diagnostics)
}

/// The same line found for several hosts is said once.
fn dedup(diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut seen = HashSet::new();
    diagnostics
        .into_iter()
        .filter(|d| seen.insert((d.file.clone(), d.pos, d.problem.code())))
        .collect()
}

fn origin(at: &Loc) -> Origin {
    Origin::File {
        path: at.path.clone(),
        line: at.pos.line as usize,
    }
}

/// Takes from `s` each value the inventory did not set.
fn complete(host: &mut Host, s: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    let unset = |host: &Host, field: &str| !host.origins.contains_key(field);
    if let Some(v) = &s.host_name
        && unset(host, "address")
    {
        host.address = expand_path(&v.value, &[('h', &host.name), ('n', &host.name)])
            .to_string_lossy()
            .into_owned();
        host.origins.insert("address", origin(&v.at));
    }
    if let Some(v) = &s.port
        && unset(host, "port")
    {
        host.port = v.value;
        host.origins.insert("port", origin(&v.at));
    }
    if let Some(v) = &s.user
        && unset(host, "user")
    {
        host.user.clone_from(&v.value);
        host.origins.insert("user", origin(&v.at));
    }
    if let Some(v) = &s.connect_timeout
        && unset(host, "connect_timeout")
    {
        host.connect_timeout = Duration(v.value);
        host.origins.insert("connect_timeout", origin(&v.at));
    }
    if let Some(v) = &s.strict
        && unset(host, "host_key_checking")
    {
        host.host_key_checking = match v.value {
            Strict::Checking(k) => k,
            Strict::No => {
                diagnostics.push(Diagnostic::warning(
                    &v.at.path,
                    v.at.pos,
                    Problem::SshConfigStrictNo {
                        host: host.name.clone(),
                    },
                ));
                HostKeyChecking::AcceptNew
            }
        };
        host.origins.insert("host_key_checking", origin(&v.at));
    }
    let port = host.port.to_string();
    let local = std::env::var("USER").unwrap_or_default();
    let home = std::env::var("HOME").unwrap_or_default();
    let tokens = [
        ('h', host.address.as_str()),
        ('n', host.name.as_str()),
        ('p', port.as_str()),
        ('r', host.user.as_str()),
        ('u', local.as_str()),
        ('d', home.as_str()),
    ];
    let identity = s
        .identity_file
        .as_ref()
        .filter(|_| unset(host, "identity_file"))
        .map(|v| (expand_path(&v.value, &tokens), origin(&v.at)));
    let known = s
        .known_hosts
        .as_ref()
        .filter(|_| unset(host, "known_hosts"))
        .map(|v| (expand_path(&v.value, &tokens), origin(&v.at)));
    if let Some((path, from)) = identity {
        host.identity_file = Some(path);
        host.origins.insert("identity_file", from);
    }
    if let Some((path, from)) = known {
        host.known_hosts = Some(path);
        host.origins.insert("known_hosts", from);
    }
}

struct Resolver<'a> {
    /// Inventory hosts, complete but for their jumps.
    hosts: BTreeMap<String, Host>,
    configs: &'a BTreeMap<PathBuf, SshConfig>,
    config_of: &'a BTreeMap<String, PathBuf>,
    fresh: &'a dyn Fn(&str) -> Host,
    warnings: RefCell<Vec<Diagnostic>>,
}

/// What `jump` and `jump_via` become.
type Link = (String, Option<Box<Host>>);

impl Resolver<'_> {
    /// `name`'s proxy setting as a jump, if it is one.
    fn proxy(
        &self,
        name: &str,
        proxy: &Proxy,
        at: &Loc,
        config: &SshConfig,
    ) -> Result<Option<Link>, Box<Diagnostic>> {
        match proxy {
            Proxy::Direct => Ok(None),
            Proxy::Command => Err(Box::new(Diagnostic::error(
                &at.path,
                at.pos,
                Problem::SshConfigProxyCommand { host: name.into() },
            ))),
            // As OpenSSH, a host is not its own jump host (`Host *` with a
            // `ProxyJump` also matches the jump host).
            Proxy::Jump(chain)
                if chain.len() == 1 && chain[0].host == name && chain[0].user.is_none() =>
            {
                Ok(None)
            }
            Proxy::Jump(chain) => {
                let mut trail = vec![name.to_string()];
                self.link(chain, at, config, &mut trail).map(Some)
            }
        }
    }

    /// The last host of `chain`, reached through the ones before it: by
    /// name when it is an inventory host as it is, else built here.
    fn link(
        &self,
        chain: &[Jump],
        at: &Loc,
        config: &SshConfig,
        trail: &mut Vec<String>,
    ) -> Result<Link, Box<Diagnostic>> {
        let Some((last, before)) = chain.split_last() else {
            return Err(Box::new(too_long(at, trail)));
        };
        trail.push(last.host.clone());
        // One more than the limit is enough to report; a cycle stops here.
        if trail.len() > MAX_JUMPS + 1 {
            return Err(Box::new(too_long(at, trail)));
        }
        let known = self.hosts.get(&last.host);
        if before.is_empty() && last.user.is_none() && last.port.is_none() && known.is_some() {
            return Ok((last.host.clone(), None));
        }
        let mut hop = known.cloned().unwrap_or_else(|| {
            let mut h = (self.fresh)(&last.host);
            complete(
                &mut h,
                &config.lookup(&last.host),
                &mut self.warnings.borrow_mut(),
            );
            h
        });
        if let Some(user) = &last.user {
            hop.user.clone_from(user);
            hop.origins.insert("user", origin(at));
        }
        if let Some(port) = last.port {
            hop.port = port;
            hop.origins.insert("port", origin(at));
        }
        if !before.is_empty() {
            let (jump, via) = self.link(before, at, config, trail)?;
            hop.jump = Some(jump);
            hop.jump_via = via;
            hop.origins.insert("jump", origin(at));
        } else if !hop.origins.contains_key("jump") {
            // The first hop is reached as `ssh` would reach it: through
            // its own `ProxyJump`, if any.
            let own = match known {
                Some(_) => self
                    .config_of
                    .get(&last.host)
                    .and_then(|p| self.configs.get(p)),
                None => Some(config),
            };
            if let Some(c) = own
                && let Some(p) = c.lookup(&last.host).proxy
                && let Some((jump, via)) = self.proxy(&last.host, &p.value, &p.at, c)?
            {
                hop.jump = Some(jump);
                hop.jump_via = via;
                hop.origins.insert("jump", origin(&p.at));
            }
        }
        let key = chain.iter().map(written).collect::<Vec<_>>().join(",");
        Ok((key, Some(Box::new(hop))))
    }
}

fn written(j: &Jump) -> String {
    let user = j.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
    let port = j.port.map(|p| format!(":{p}")).unwrap_or_default();
    format!("{user}{}{port}", j.host)
}

fn too_long(at: &Loc, trail: &[String]) -> Diagnostic {
    Diagnostic::error(
        &at.path,
        at.pos,
        Problem::JumpChainTooLong {
            host: trail.first().cloned().unwrap_or_default(),
            chain: trail.iter().skip(1).cloned().collect(),
            limit: MAX_JUMPS,
        },
    )
}

/// A chain longer than runbook follows, counted over both inventory and
/// OpenSSH jumps (the inventory's own chains are checked before).
fn chain_too_long(host: &Host, hosts: &BTreeMap<String, Host>) -> Option<Diagnostic> {
    let mut hops = Vec::new();
    let mut at: Option<PathBuf> = None;
    let mut line = 0;
    let mut current = host;
    while let Some(name) = &current.jump {
        if let Some(Origin::File { path, line: l }) = current.origins.get("jump")
            && at.is_none()
        {
            at = Some(path.clone());
            line = *l;
        }
        let next = current.jump_via.as_deref().or_else(|| hosts.get(name))?;
        hops.push(next.name.clone());
        if hops.len() > MAX_JUMPS {
            let path = at?;
            return Some(Diagnostic::error(
                Path::new(&path),
                crate::load::Pos::new(u32::try_from(line).unwrap_or(u32::MAX), 1),
                Problem::JumpChainTooLong {
                    host: host.name.clone(),
                    chain: hops,
                    limit: MAX_JUMPS,
                },
            ));
        }
        current = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::diagnostic::Diagnostic;
    use crate::model::Inventory;

    /// The config's path (its folder lives as long as the returned one),
    /// the inventory, the findings.
    fn resolve(
        config: &str,
        inventory: &str,
    ) -> (
        PathBuf,
        Option<Inventory>,
        Vec<Diagnostic>,
        tempfile::TempDir,
    ) {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        std::fs::write(dir.join("cfg"), config).unwrap();
        let path = dir.join("inventory.yaml");
        std::fs::write(&path, inventory).unwrap();
        let (source, raw) = crate::load::load_inventory(&path).unwrap();
        let checked = crate::validate::inventory::inventory(&source, &raw);
        (
            dir.join("cfg"),
            checked.inventory,
            checked.diagnostics,
            temp,
        )
    }

    #[test]
    fn each_value_records_its_line_and_the_inventory_keeps_its_own() {
        let (cfg, inv, d, _dir) = resolve(
            "Host db\n  User ops\n  Port 2222\n  HostName 10.0.0.%n\n  IdentityFile ~/k/%r@%h\n",
            "version: 1\ndefaults: {ssh_config: cfg, port: 22}\nhosts:\n  db: {}\n",
        );
        assert!(d.is_empty(), "{d:?}");
        let db = &inv.unwrap().hosts["db"];
        assert_eq!((db.user.as_str(), db.port), ("ops", 22));
        assert_eq!(db.address, "10.0.0.db");
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        assert_eq!(
            db.identity_file,
            Some(PathBuf::from(format!("{home}/k/ops@10.0.0.db")))
        );
        let at = |line| Origin::File {
            path: cfg.clone(),
            line,
        };
        assert_eq!(db.origins["user"], at(2));
        assert_eq!(db.origins["address"], at(4));
        assert_eq!(db.origins["identity_file"], at(5));
        assert_eq!(db.origins["port"], Origin::Defaults);
    }

    #[test]
    fn a_jump_chain_mixes_inventory_and_config_hosts() {
        let (_, inv, d, _dir) = resolve(
            "Host db\n  ProxyJump ops@edge:2200,inner\nHost *\n  ProxyJump gw\n",
            "version: 1\ndefaults: {ssh_config: cfg}\nhosts:\n  db: {}\n  edge: {address: 192.0.2.1}\n  gw: {}\n",
        );
        assert!(d.is_empty(), "{d:?}");
        let inv = inv.unwrap();
        let db = &inv.hosts["db"];
        assert_eq!(db.jump.as_deref(), Some("ops@edge:2200,inner"));
        let inner = db.jump_via.as_deref().unwrap();
        assert_eq!(
            (inner.name.as_str(), inner.address.as_str()),
            ("inner", "inner")
        );
        assert_eq!(inner.jump.as_deref(), Some("ops@edge:2200"));
        let edge = inner.jump_via.as_deref().unwrap();
        assert_eq!(
            (edge.address.as_str(), edge.user.as_str(), edge.port),
            ("192.0.2.1", "ops", 2200)
        );
        // The first hop goes its own way: `Host *` sends it through gw,
        // which is not its own jump host.
        assert_eq!(edge.jump.as_deref(), Some("gw"));
        assert!(edge.jump_via.is_none(), "gw is the inventory host");
        assert_eq!(inv.hosts["gw"].jump, None);
    }

    #[test]
    fn a_jump_cycle_through_the_config_is_refused_where_it_is_written() {
        let (cfg, inv, d, _dir) = resolve(
            "Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n",
            "version: 1\ndefaults: {ssh_config: cfg}\nhosts:\n  a: {}\n",
        );
        assert!(inv.is_none());
        assert!(
            d.iter().any(|d| d.file == cfg
                && d.pos.line == 2
                && d.problem.code() == "jump-chain-too-long"),
            "{d:?}"
        );
    }

    #[test]
    fn a_missing_ssh_config_file_is_an_error_in_the_inventory() {
        let (_, inv, d, _dir) = resolve("", "version: 1\nhosts:\n  a: {ssh_config: nope}\n");
        assert!(inv.is_none());
        assert_eq!((d[0].pos.line, d[0].pos.column), (3, 19), "{d:?}");
        assert!(d[0].problem.to_string().contains("nope` is not a file"));
    }
}
