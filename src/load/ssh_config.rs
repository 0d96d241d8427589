//! OpenSSH client configuration (`~/.ssh/config`): the keywords runbook
//! uses, read with OpenSSH's rules (first obtained value wins, `Host`
//! patterns with `!negation`, `Include` scoped to the block it is in).
//!
//! Written here rather than taken from a crate: every value must keep the
//! file and line it came from (`runbook inventory` shows it, errors point
//! at it), which no maintained parser keeps.

use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Problem};
use crate::load::Pos;
use crate::model::HostKeyChecking;

/// OpenSSH's own limit on nested `Include`s (`READCONF_MAX_DEPTH`).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Where a value was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub path: PathBuf,
    pub pos: Pos,
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub at: Loc,
}

/// One hop of a `ProxyJump` chain: `[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proxy {
    /// `ProxyJump a,b`: through `a`, then `b`.
    Jump(Vec<Jump>),
    /// `ProxyJump none` or `ProxyCommand none`.
    Direct,
    /// `ProxyCommand ...`: not supported.
    Command,
}

/// `StrictHostKeyChecking`, with `no` kept apart so it can be warned about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strict {
    Checking(HostKeyChecking),
    /// `no`/`off`: treated as `accept-new`.
    No,
}

/// What the configuration says about one host name. Paths are as written:
/// `%` tokens and `~` are expanded once the host's other values are known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub host_name: Option<Setting<String>>,
    pub port: Option<Setting<u16>>,
    pub user: Option<Setting<String>>,
    pub identity_file: Option<Setting<String>>,
    pub known_hosts: Option<Setting<String>>,
    pub strict: Option<Setting<Strict>>,
    pub connect_timeout: Option<Setting<std::time::Duration>>,
    pub proxy: Option<Setting<Proxy>>,
}

#[derive(Debug)]
enum Item {
    /// `Host` patterns, or a `Match` block (never matches: unsupported).
    Block(Option<Vec<String>>),
    Include(Vec<File>),
    Value(Setting<Value>),
}

#[derive(Debug, Clone)]
enum Value {
    HostName(String),
    Port(u16),
    User(String),
    IdentityFile(String),
    KnownHosts(String),
    Strict(Strict),
    ConnectTimeout(Option<std::time::Duration>),
    Proxy(Proxy),
}

#[derive(Debug)]
struct File {
    items: Vec<Item>,
}

/// A parsed configuration file with everything it includes.
#[derive(Debug)]
pub struct SshConfig {
    root: File,
}

/// `~/.ssh/config`, when it exists.
#[must_use]
pub fn default_path() -> Option<PathBuf> {
    let path = home().join(".ssh/config");
    path.exists().then_some(path)
}

fn home() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
}

/// `~/` at the start of a path is the home directory.
#[must_use]
pub fn expand_tilde(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home().join(rest),
        None if path == "~" => home(),
        None => PathBuf::from(path),
    }
}

impl SshConfig {
    /// Reads `path` and its `Include`s. Warnings come back with the
    /// configuration; any error means there is none.
    pub fn read(path: &Path) -> (Option<Self>, Vec<Diagnostic>) {
        let mut diagnostics = Vec::new();
        let root = match std::fs::read_to_string(path) {
            Ok(text) => parse(path, &text, 0, &mut diagnostics),
            Err(e) => {
                diagnostics.push(Diagnostic::error(
                    path,
                    Pos::new(1, 1),
                    Problem::Unreadable {
                        reason: e.to_string(),
                    },
                ));
                return (None, diagnostics);
            }
        };
        let ok = !diagnostics.iter().any(Diagnostic::is_error);
        (ok.then_some(Self { root }), diagnostics)
    }

    /// The values that apply to `name` (the name given to ssh).
    #[must_use]
    pub fn lookup(&self, name: &str) -> Settings {
        let mut settings = Settings::default();
        collect(&self.root, &name.to_lowercase(), &mut settings);
        settings
    }
}

/// Lines before the first `Host` apply to every host; an included file
/// starts in the state of the line that includes it, and that state comes
/// back after it (as in OpenSSH's readconf.c).
fn collect(file: &File, name: &str, out: &mut Settings) {
    let mut active = true;
    for item in &file.items {
        match item {
            Item::Block(Some(patterns)) => active = host_matches(patterns, name),
            Item::Block(None) => active = false,
            Item::Include(files) if active => {
                for f in files {
                    collect(f, name, out);
                }
            }
            Item::Include(_) => {}
            Item::Value(v) if active => keep_first(out, v),
            Item::Value(_) => {}
        }
    }
}

fn keep_first(out: &mut Settings, v: &Setting<Value>) {
    fn first<T>(slot: &mut Option<Setting<T>>, value: T, at: &Loc) {
        if slot.is_none() {
            *slot = Some(Setting {
                value,
                at: at.clone(),
            });
        }
    }
    let at = &v.at;
    match v.value.clone() {
        Value::HostName(s) => first(&mut out.host_name, s, at),
        Value::Port(p) => first(&mut out.port, p, at),
        Value::User(s) => first(&mut out.user, s, at),
        Value::IdentityFile(s) => first(&mut out.identity_file, s, at),
        Value::KnownHosts(s) => first(&mut out.known_hosts, s, at),
        Value::Strict(s) => first(&mut out.strict, s, at),
        Value::ConnectTimeout(t) => {
            // `ConnectTimeout none` still takes the slot: later lines lose.
            if out.connect_timeout.is_none()
                && let Some(t) = t
            {
                first(&mut out.connect_timeout, t, at);
            }
        }
        Value::Proxy(p) => first(&mut out.proxy, p, at),
    }
}

/// A `Host` line matches when one of its patterns does and none of its
/// `!negated` ones does.
fn host_matches(patterns: &[String], name: &str) -> bool {
    let mut matched = false;
    for p in patterns {
        if let Some(negated) = p.strip_prefix('!') {
            if wildcard(negated, name) {
                return false;
            }
        } else if wildcard(p, name) {
            matched = true;
        }
    }
    matched
}

/// `*` and `?` wildcards, as OpenSSH's `match_pattern`.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A word of a line and the column it starts at.
struct Word {
    text: String,
    column: u32,
}

/// Splits a line into its keyword and arguments: `Keyword value`,
/// `Keyword=value`, double or single quotes around words, `#` starting a
/// comment where a word would start.
fn split(line: &str) -> Result<Vec<Word>, u32> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    let col = |i: usize| u32::try_from(i + 1).unwrap_or(u32::MAX);
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || (c == '=' && words.len() == 1) {
            i += 1;
            continue;
        }
        if c == '#' {
            break;
        }
        let start = i;
        let mut text = String::new();
        while i < chars.len() && !chars[i].is_whitespace() {
            let c = chars[i];
            if c == '=' && words.is_empty() {
                break;
            }
            if c == '"' || c == '\'' {
                let close = chars[i + 1..].iter().position(|&q| q == c).ok_or(col(i))?;
                text.extend(&chars[i + 1..i + 1 + close]);
                i += close + 2;
            } else {
                text.push(c);
                i += 1;
            }
        }
        words.push(Word {
            text,
            column: col(start),
        });
    }
    Ok(words)
}

fn parse(path: &Path, text: &str, depth: usize, diagnostics: &mut Vec<Diagnostic>) -> File {
    let mut items = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = u32::try_from(n + 1).unwrap_or(u32::MAX);
        let at = |column: u32| Pos::new(line_no, column);
        let error = |column: u32, problem: Problem| Diagnostic::error(path, at(column), problem);
        let words = match split(line) {
            Ok(w) => w,
            Err(column) => {
                diagnostics.push(error(column, Problem::SshConfigQuotes));
                continue;
            }
        };
        let Some((keyword, args)) = words.split_first() else {
            continue;
        };
        let key = keyword.text.to_lowercase();
        let loc = |column: u32| Loc {
            path: path.to_path_buf(),
            pos: at(column),
        };
        let wanted = matches!(
            key.as_str(),
            "host"
                | "match"
                | "include"
                | "hostname"
                | "port"
                | "user"
                | "identityfile"
                | "userknownhostsfile"
                | "stricthostkeychecking"
                | "connecttimeout"
                | "proxyjump"
                | "proxycommand"
        );
        // Keywords runbook has no use for are skipped like ssh skips
        // those it does not know under `IgnoreUnknown`.
        if !wanted {
            continue;
        }
        let Some(first) = args.first() else {
            diagnostics.push(error(
                keyword.column,
                Problem::SshConfigMissingValue {
                    keyword: keyword.text.clone(),
                },
            ));
            continue;
        };
        let value = |v: Value| {
            Item::Value(Setting {
                value: v,
                at: loc(first.column),
            })
        };
        let invalid = |expected: &'static str| Problem::SshConfigValue {
            keyword: keyword.text.clone(),
            found: first.text.clone(),
            expected,
        };
        let item = match key.as_str() {
            "host" => Item::Block(Some(args.iter().map(|w| w.text.clone()).collect())),
            "match" => {
                diagnostics.push(Diagnostic::warning(
                    path,
                    at(keyword.column),
                    Problem::SshConfigMatch,
                ));
                Item::Block(None)
            }
            "include" => {
                if depth >= MAX_INCLUDE_DEPTH {
                    diagnostics.push(error(
                        keyword.column,
                        Problem::SshConfigIncludeDepth {
                            limit: MAX_INCLUDE_DEPTH,
                        },
                    ));
                    continue;
                }
                let mut files = Vec::new();
                for arg in args {
                    let mut pattern = expand_tilde(&arg.text);
                    // As in OpenSSH: relative to ~/.ssh.
                    if pattern.is_relative() {
                        pattern = home().join(".ssh").join(pattern);
                    }
                    for file in glob(&pattern) {
                        match std::fs::read_to_string(&file) {
                            Ok(text) => files.push(parse(&file, &text, depth + 1, diagnostics)),
                            Err(e) => diagnostics.push(Diagnostic::error(
                                path,
                                at(arg.column),
                                Problem::Unreadable {
                                    reason: format!("{}: {e}", file.display()),
                                },
                            )),
                        }
                    }
                }
                Item::Include(files)
            }
            "hostname" => value(Value::HostName(first.text.clone())),
            "port" => match first.text.parse::<u16>() {
                Ok(p) if p > 0 => value(Value::Port(p)),
                _ => {
                    diagnostics.push(error(
                        first.column,
                        invalid("a port number from 1 to 65535"),
                    ));
                    continue;
                }
            },
            "user" => value(Value::User(first.text.clone())),
            "identityfile" => value(Value::IdentityFile(first.text.clone())),
            // Several files may be listed; the first is where runbook
            // looks and records.
            "userknownhostsfile" => value(Value::KnownHosts(first.text.clone())),
            "stricthostkeychecking" => {
                let strict = match first.text.to_lowercase().as_str() {
                    "yes" | "ask" => Strict::Checking(HostKeyChecking::Strict),
                    "accept-new" => Strict::Checking(HostKeyChecking::AcceptNew),
                    "no" | "off" => Strict::No,
                    _ => {
                        diagnostics.push(error(
                            first.column,
                            invalid("`yes`, `accept-new`, `no` or `ask`"),
                        ));
                        continue;
                    }
                };
                value(Value::Strict(strict))
            }
            "connecttimeout" => match connect_timeout(&first.text) {
                Some(t) => value(Value::ConnectTimeout(t)),
                None => {
                    diagnostics.push(error(
                        first.column,
                        invalid("seconds, or a time such as `30s` or `1m`"),
                    ));
                    continue;
                }
            },
            "proxyjump" if first.text.eq_ignore_ascii_case("none") => {
                value(Value::Proxy(Proxy::Direct))
            }
            "proxyjump" => match first.text.split(',').map(jump).collect() {
                Some(chain) => value(Value::Proxy(Proxy::Jump(chain))),
                None => {
                    diagnostics.push(error(
                        first.column,
                        invalid("`[user@]host[:port]`, comma-separated"),
                    ));
                    continue;
                }
            },
            "proxycommand" if first.text.eq_ignore_ascii_case("none") => {
                value(Value::Proxy(Proxy::Direct))
            }
            "proxycommand" => value(Value::Proxy(Proxy::Command)),
            _ => continue,
        };
        items.push(item);
    }
    File { items }
}

/// `ConnectTimeout`: seconds, or an OpenSSH time (`30s`, `1m`); `None`
/// inside for `none`.
fn connect_timeout(text: &str) -> Option<Option<std::time::Duration>> {
    if text.eq_ignore_ascii_case("none") {
        return Some(None);
    }
    if let Ok(secs) = text.parse::<u64>() {
        return (secs > 0).then_some(Some(std::time::Duration::from_secs(secs)));
    }
    crate::model::Duration::parse(&text.to_lowercase())
        .ok()
        .map(|d| Some(d.std()))
}

/// `[user@]host[:port]`, also as `ssh://[user@]host[:port]`; an IPv6
/// address in brackets.
fn jump(text: &str) -> Option<Jump> {
    let text = text.strip_prefix("ssh://").unwrap_or(text);
    let (user, rest) = match text.rsplit_once('@') {
        Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
        Some(_) => return None,
        None => (None, text),
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (host, after) = inner.split_once(']')?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p > 0)?),
        None => None,
    };
    (!host.is_empty()).then(|| Jump {
        user,
        host: host.to_string(),
        port,
    })
}

/// The files matching a path whose components may hold `*` or `?`,
/// sorted, as glob(3) gives them to OpenSSH.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for component in pattern.components() {
        let part = component.as_os_str().to_string_lossy();
        if !part.contains(['*', '?']) {
            for f in &mut found {
                f.push(component);
            }
            continue;
        }
        let mut next = Vec::new();
        for dir in &found {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| wildcard(&part, n) && (part.starts_with('.') || !n.starts_with('.')))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        found = next;
    }
    found.retain(|f| f.is_file());
    found
}

/// Expands the `%` tokens OpenSSH expands in paths, then `~`.
#[must_use]
pub fn expand_path(path: &str, tokens: &[(char, &str)]) -> PathBuf {
    let mut out = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => match tokens.iter().find(|(k, _)| *k == t) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push('%');
                    out.push(t);
                }
            },
            None => out.push('%'),
        }
    }
    expand_tilde(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> (tempfile::TempDir, SshConfig) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, text).unwrap();
        let (config, diagnostics) = SshConfig::read(&path);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        (dir, config.unwrap())
    }

    #[test]
    fn the_first_obtained_value_wins_and_negation_excludes() {
        let (_d, c) = config(
            "Host web-* !web-old\n  User first\n  Port=2200\nHost *\n  User second\n  HostName %h.example\n",
        );
        let s = c.lookup("web-1");
        assert_eq!(s.user.unwrap().value, "first");
        assert_eq!(s.port.as_ref().unwrap().value, 2200);
        assert_eq!(s.port.unwrap().at.pos, Pos::new(3, 8));
        assert_eq!(s.host_name.unwrap().value, "%h.example");
        assert_eq!(c.lookup("web-old").user.unwrap().value, "second");
        assert_eq!(c.lookup("WEB-2").user.unwrap().value, "first");
    }

    #[test]
    fn an_include_applies_only_inside_a_matching_block_and_scopes_its_hosts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        std::fs::write(
            dir.path().join("conf.d/a.conf"),
            "User included\nHost other\n  Port 2\n",
        )
        .unwrap();
        let main = dir.path().join("config");
        std::fs::write(
            &main,
            format!(
                "Host db\n  Include {0}/conf.d/*.conf\n  Port 1\nHost nope\n  Include {0}/conf.d/*\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let (c, d) = SshConfig::read(&main);
        assert!(d.is_empty(), "{d:?}");
        let c = c.unwrap();
        let db = c.lookup("db");
        assert_eq!(db.user.unwrap().value, "included");
        // The included file's `Host other` ended its block, not db's.
        assert_eq!(db.port.unwrap().value, 1);
        assert_eq!(c.lookup("web").user, None);
    }

    #[test]
    fn bad_values_are_located_and_match_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "Host a\n  Port eighty\n  ProxyJump b:0\n  User \"x\nMatch all\n  HostName\n",
        )
        .unwrap();
        let (c, d) = SshConfig::read(&path);
        assert!(c.is_none());
        let found: Vec<(u32, u32, bool)> = d
            .iter()
            .map(|d| (d.pos.line, d.pos.column, d.is_error()))
            .collect();
        assert_eq!(
            found,
            [
                (2, 8, true),
                (3, 13, true),
                (4, 8, true),
                (5, 1, false),
                (6, 3, true)
            ]
        );
    }

    #[test]
    fn jump_chains_and_paths_are_parsed_as_openssh_does() {
        assert_eq!(
            jump("ops@[::1]:2222"),
            Some(Jump {
                user: Some("ops".into()),
                host: "::1".into(),
                port: Some(2222)
            })
        );
        assert_eq!(jump("@x"), None);
        assert_eq!(
            expand_path("/k/%h-%r%%", &[('h', "db"), ('r', "ops")]),
            PathBuf::from("/k/db-ops%")
        );
    }
}
