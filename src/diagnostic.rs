//! Validation findings: what is wrong, where, and what to do about it.
//! Every user-facing validation message is written in this file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::load::Pos;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Problem {
    #[error("cannot read the file: {reason}")]
    Unreadable { reason: String },
    #[error("the file is {bytes} bytes, more than the {limit}-byte limit")]
    TooLarge { bytes: u64, limit: u64 },
    #[error("the file is not valid UTF-8")]
    NotUtf8,
    #[error("the file holds a NUL byte, so it is not a text file")]
    NotText,
    #[error("the file is empty")]
    Empty,
    #[error("{message}")]
    Syntax {
        message: String,
        suggestion: Option<String>,
    },
    #[error("YAML does not allow tabs for indentation; use spaces")]
    Tab { hint: String },
    #[error("{subject} is not indented like the lines around it")]
    Indentation { subject: String, hint: String },
    #[error("unknown {what} `{found}`; expected {}", or_list(options))]
    UnknownChoice {
        what: String,
        found: String,
        options: Vec<String>,
        suggestion: Option<String>,
    },
    #[error("unknown field `{field}` in `{parent}`")]
    MisplacedField { field: String, parent: String },
    #[error("targets not checked: no inventory given")]
    TargetsNotChecked,
    #[error("unsupported format version `{found}`")]
    UnsupportedVersion { found: u64 },
    #[error(
        "invalid {what} `{name}`: use lowercase letters, digits, `-` and `_`, starting with a letter or digit"
    )]
    InvalidName { what: &'static str, name: String },
    #[error(
        "invalid {what} name `{name}`: use letters, digits, `.`, `-`, `_` and `:` (a short name, a domain name or an IP address), not starting with `-` or `.`"
    )]
    InvalidHostName { what: &'static str, name: String },
    #[error(
        "invalid address `{address}`: use a domain name or an IP address (letters, digits, `.`, `-`, `_`, `:` and `%`), not starting with `-`"
    )]
    InvalidAddress { address: String },
    #[error("{what} holds a NUL byte (`\\0`), which a command cannot carry")]
    NulByte { what: String },
    #[error("duplicate {what} `{name}`, first defined on line {first_line}")]
    Duplicate {
        what: &'static str,
        name: String,
        first_line: u32,
    },
    #[error("unknown {what} `{name}`")]
    Unknown {
        what: &'static str,
        name: String,
        suggestion: Option<String>,
    },
    #[error("dependency cycle between {what}s: {}", path.join(" -> "))]
    Cycle {
        what: &'static str,
        path: Vec<String>,
    },
    #[error("step `{step}` has nothing to do")]
    NothingToDo { step: String },
    #[error("service `{service}` has an empty `ready_when`")]
    EmptyReadyWhen { service: String },
    #[error("step `{step}` has both `manual` and `run`")]
    ManualAndRun { step: String },
    #[error(
        "a probe needs exactly one of `command`, `tcp`, `http`, `tls`, `smtp`, `sip`, `ping` or `dns`, found {found}"
    )]
    ProbeKind { found: usize },
    #[error("`{field}` only applies to a `command` probe")]
    StdoutWithoutCommand { field: &'static str },
    #[error("invalid regular expression: {reason}")]
    BadRegex { reason: String },
    #[error("`attempts` must be at least 1")]
    ZeroAttempts,
    #[error("`{probe}` on step `{step}` has no targets, so it needs {needs}")]
    ControllerProbe {
        step: String,
        probe: &'static str,
        needs: &'static str,
    },
    #[error("invalid template: {reason}")]
    Template { reason: String },
    #[error("`{tag}` is inside {}, where its shell quoting does not hold", context.describe())]
    QuotedValue {
        tag: String,
        context: crate::template::shell::Context,
    },
    #[error("`{tag}` is inside {}, so where the values after it land depends on the branch taken", context.describe())]
    BlockInQuotes {
        tag: String,
        context: crate::template::shell::Context,
    },
    #[error("`{tag}` uses a secret in an expression, whose result could not be masked")]
    SecretExpression { tag: String },
    #[error("`raw` in `{tag}` is not the last filter of a `{{{{ }}}}`")]
    MisplacedRaw { tag: String },
    #[error("undefined name `{name}`{}", for_host.as_ref().map(|h| format!(" for host `{h}`")).unwrap_or_default())]
    UndefinedName {
        name: String,
        for_host: Option<String>,
    },
    #[error("`--var {name}` does not override any variable declared under `vars`")]
    UnknownVarOverride {
        name: String,
        suggestion: Option<String>,
    },
    #[error("host `{host}` is reached through {} jump hosts ({}), more than the {limit} supported", chain.len(), chain.join(" -> "))]
    JumpChainTooLong {
        host: String,
        chain: Vec<String>,
        limit: usize,
    },
    #[error("unbalanced quotes")]
    SshConfigQuotes,
    #[error("`{keyword}` needs a value")]
    SshConfigMissingValue { keyword: String },
    #[error("invalid `{keyword}` value `{found}`: expected {expected}")]
    SshConfigValue {
        keyword: String,
        found: String,
        expected: &'static str,
    },
    #[error("`Include` nested more than {limit} deep")]
    SshConfigIncludeDepth { limit: usize },
    #[error(
        "`Match` blocks are not supported: the lines up to the next `Host` or `Match` are ignored"
    )]
    SshConfigMatch,
    #[error("`ProxyCommand` (for host `{host}`) is not supported")]
    SshConfigProxyCommand { host: String },
    #[error(
        "`StrictHostKeyChecking no` (for host `{host}`) is treated as `accept-new`: a changed host key is still refused"
    )]
    SshConfigStrictNo { host: String },
    #[error("`{name}` is both a host and a group")]
    HostGroupClash { name: String },
    #[error("step `{step}` runs a command with neither `check` nor `verify`")]
    RunWithoutProbe { step: String },
    #[error("step `{step}` runs a command with no timeout")]
    RunWithoutTimeout { step: String },
    #[error("this looks like a literal {what}")]
    LiteralSecret { what: &'static str },
    #[error("vault-encrypted values are not supported")]
    VaultValue,
    #[error("{message}")]
    AnsibleVariable { message: String },
    #[error("`{field}` must be a secret reference such as `{{{{ secret.NAME }}}}`, not a value")]
    NotSecretReference { field: &'static str },
    #[error("{what} `{name}` is never used")]
    Unused { what: &'static str, name: String },
    #[error("host `{host}` has `shell: none`, so its commands cannot run through sudo (`become`)")]
    BecomeWithoutShell { host: String },
    #[error("step `{step}` runs through sudo (`become`) on {hosts} with `shell: none`")]
    StepBecomeWithoutShell { step: String, hosts: String },
    #[error("step `{step}` has `on_failure: continue` but {dependents} {} on it", if *count == 1 { "depends" } else { "depend" })]
    ContinueWithDependents {
        step: String,
        dependents: String,
        count: usize,
    },
    #[error("`{code}` is not an HTTP status; expected 100 to 599")]
    BadHttpStatus { code: u16 },
    #[error("`status` lists no status")]
    NoHttpStatus,
    #[error("`webhook` must be `{{{{ secret.NAME }}}}` or an http:// or https:// URL: {reason}")]
    WebhookUrl { reason: &'static str },
    #[error("`{field}` in `{probe}` {reason}")]
    ProbeField {
        probe: &'static str,
        field: &'static str,
        reason: String,
    },
}

impl Problem {
    /// A stable identifier for tooling (`--format json`).
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Unreadable { .. } => "unreadable",
            Self::TooLarge { .. } => "too-large",
            Self::NotUtf8 => "not-utf8",
            Self::NotText => "not-text",
            Self::NulByte { .. } => "nul-byte",
            Self::Empty => "empty",
            Self::Syntax { .. }
            | Self::Tab { .. }
            | Self::Indentation { .. }
            | Self::UnknownChoice { .. }
            | Self::MisplacedField { .. } => "syntax",
            Self::TargetsNotChecked => "targets-not-checked",
            Self::UnsupportedVersion { .. } => "version",
            Self::InvalidName { .. }
            | Self::InvalidHostName { .. }
            | Self::InvalidAddress { .. } => "invalid-name",
            Self::Duplicate { .. } => "duplicate",
            Self::Unknown { .. } => "unknown-reference",
            Self::Cycle { .. } => "cycle",
            Self::NothingToDo { .. } => "nothing-to-do",
            Self::ManualAndRun { .. } => "manual-and-run",
            Self::EmptyReadyWhen { .. } => "empty-ready-when",
            Self::ProbeKind { .. } => "probe-kind",
            Self::StdoutWithoutCommand { .. } => "stdout-without-command",
            Self::BadRegex { .. } => "bad-regex",
            Self::ZeroAttempts => "zero-attempts",
            Self::ControllerProbe { .. } => "controller-probe",
            Self::Template { .. } => "template",
            Self::QuotedValue { .. } => "quoted-value",
            Self::BlockInQuotes { .. } => "block-in-quotes",
            Self::SecretExpression { .. } => "secret-expression",
            Self::MisplacedRaw { .. } => "misplaced-raw",
            Self::UndefinedName { .. } => "undefined-name",
            Self::UnknownVarOverride { .. } => "unknown-var",
            Self::JumpChainTooLong { .. } => "jump-chain-too-long",
            Self::HostGroupClash { .. } => "host-group-clash",
            Self::SshConfigQuotes
            | Self::SshConfigMissingValue { .. }
            | Self::SshConfigValue { .. }
            | Self::SshConfigIncludeDepth { .. } => "ssh-config",
            Self::SshConfigMatch => "ssh-config-match",
            Self::SshConfigProxyCommand { .. } => "ssh-config-proxy-command",
            Self::SshConfigStrictNo { .. } => "ssh-config-strict-no",
            Self::RunWithoutProbe { .. } => "run-without-probe",
            Self::RunWithoutTimeout { .. } => "run-without-timeout",
            Self::LiteralSecret { .. } => "literal-secret",
            Self::NotSecretReference { .. } => "not-secret-reference",
            Self::Unused { .. } => "unused",
            Self::VaultValue => "vault-value",
            Self::AnsibleVariable { .. } => "ansible-variable",
            Self::ContinueWithDependents { .. } => "continue-with-dependents",
            Self::BecomeWithoutShell { .. } | Self::StepBecomeWithoutShell { .. } => {
                "become-without-shell"
            }
            Self::BadHttpStatus { .. } | Self::NoHttpStatus => "http-status",
            Self::ProbeField { .. } => "probe-field",
            Self::WebhookUrl { .. } => "webhook-url",
        }
    }

    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Unknown {
                suggestion: Some(s),
                ..
            }
            | Self::UnknownVarOverride {
                suggestion: Some(s),
                ..
            }
            | Self::Syntax {
                suggestion: Some(s),
                ..
            }
            | Self::UnknownChoice {
                suggestion: Some(s),
                ..
            } => Some(format!("did you mean `{s}`?")),
            Self::Tab { hint } | Self::Indentation { hint, .. } => Some(hint.clone()),
            Self::UnknownChoice { .. } => Some("use one of the values listed".into()),
            Self::MisplacedField { field, parent } => {
                Some(format!("`{field}` goes beside `{parent}`, one level up"))
            }
            Self::TargetsNotChecked => {
                Some("pass the inventory with `-i FILE` to check them".into())
            }
            Self::UnsupportedVersion { .. } => Some("this runbook tool reads `version: 1`".into()),
            Self::TooLarge { .. } => {
                Some("split the runbook, or check that this is the right file".into())
            }
            Self::NothingToDo { .. } => Some("add `run`, `check`, `verify` or `manual`".into()),
            Self::WebhookUrl { .. } => Some(
                "keep the URL in a secret, `{{ secret.NAME }}` (RUNBOOK_SECRET_NAME), or write it whole"
                    .into(),
            ),
            Self::EmptyReadyWhen { .. } => {
                Some("name the steps whose success makes the service available again".into())
            }
            Self::ProbeKind { .. } => {
                Some("split it into `check` and `verify`, or remove one".into())
            }
            Self::ControllerProbe { .. } => {
                Some("add `targets`, or give the probe an explicit address".into())
            }
            Self::UndefinedName { name, .. } if name.starts_with("vars.") => {
                Some("declare it under `vars`".into())
            }
            Self::UndefinedName { name, .. } if name.starts_with("host.vars.") => Some(
                "set it in the inventory for that host, one of its groups, or `defaults`".into(),
            ),
            Self::RunWithoutProbe { .. } => Some(
                "add a `check` so a restored host is skipped, or a `verify` so success is proven"
                    .into(),
            ),
            Self::RunWithoutTimeout { .. } => {
                Some("set `timeout` on the step or under `defaults`".into())
            }
            Self::LiteralSecret { .. } | Self::NotSecretReference { .. } => {
                Some("use `{{ secret.NAME }}` and RUNBOOK_SECRET_NAME instead".into())
            }
            Self::VaultValue => Some(
                "decrypt it (`ansible-vault decrypt`) and give the value as `{{ secret.NAME }}`"
                    .into(),
            ),
            Self::ContinueWithDependents { .. } => Some(
                "its dependents will be blocked when it fails; consider `abort` or `pause`".into(),
            ),
            Self::Cycle { .. } => Some("remove one of these dependencies".into()),
            Self::BecomeWithoutShell { .. } | Self::StepBecomeWithoutShell { .. } => Some(
                "sudo needs a shell: remove `become` there, or set `shell: posix` if the host has one"
                    .into(),
            ),
            Self::SshConfigIncludeDepth { .. } => Some("does a file include itself?".into()),
            Self::SshConfigMatch => Some(
                "write the settings under `Host` patterns, or set them in the inventory".into(),
            ),
            Self::SshConfigProxyCommand { .. } => {
                Some("use `ProxyJump`, or `jump` in the inventory".into())
            }
            Self::SshConfigStrictNo { .. } => {
                Some("write `accept-new`, or remove the stale key from the known hosts file".into())
            }
            Self::QuotedValue { context, .. } => Some(quoting_hint(*context).into()),
            Self::BlockInQuotes { .. } => Some(
                "close quotes, comments and heredocs before a `{% %}` and open them after it"
                    .into(),
            ),
            Self::SecretExpression { .. } => Some(
                "interpolate it alone, as `{{ secret.NAME }}`, and transform it in the command"
                    .into(),
            ),
            Self::MisplacedRaw { .. } => Some(
                "write it last: `{{ host.vars.x | raw }}` (the value is then shell code)".into(),
            ),
            _ => None,
        }
    }
}

fn quoting_hint(context: crate::template::shell::Context) -> &'static str {
    use crate::template::shell::Context;
    match context {
        Context::SingleQuotes | Context::DoubleQuotes => {
            "remove the quotes: the value is quoted for you"
        }
        Context::Backticks => "write `$( … )` instead of backticks: the value is quoted for you",
        Context::Heredoc => {
            "write the value with `printf '%s\\n' {{ … }}` rather than inside a heredoc"
        }
        // bash evaluates a variable's text as arithmetic too, running any
        // `$( )` in it: only a number may reach it.
        Context::Arithmetic => {
            "assign it first and check it is a number: `n={{ … }}; [ \"$n\" -eq \"$n\" ] || exit 1; echo $((n + 1))`"
        }
        Context::Parameter => {
            "assign it to a variable first: `d={{ … }}; echo \"${X:-$d}\"` (check a subscript or an offset is a number)"
        }
        Context::Ambiguous => {
            "before a value, avoid `\\'` in `$'…'`, `'` in `\"${ }\"` and `case` in `$( )`"
        }
        Context::Comment | Context::Unknown => "move it out of the comment",
        Context::Backslash | Context::Dollar => "remove the character before it",
        Context::Word => "",
    }
}

/// One finding, located in a file.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub pos: Pos,
    pub problem: Problem,
}

impl Diagnostic {
    pub fn error(file: &Path, pos: Pos, problem: Problem) -> Self {
        Self {
            severity: Severity::Error,
            file: file.to_path_buf(),
            pos,
            problem,
        }
    }

    pub fn warning(file: &Path, pos: Pos, problem: Problem) -> Self {
        Self {
            severity: Severity::Warning,
            file: file.to_path_buf(),
            pos,
            problem,
        }
    }

    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `error: message` / `  --> file:line:col` / caret snippet / hint.
    #[must_use]
    pub fn render(&self, source: Option<&str>) -> String {
        self.render_line(
            source.and_then(|s| s.lines().nth(self.pos.line.saturating_sub(1) as usize)),
        )
    }

    /// [`Diagnostic::render`] given only the diagnostic's own source line:
    /// callers rendering many diagnostics split the file once, not once
    /// per diagnostic.
    #[must_use]
    pub fn render_line(&self, source_line: Option<&str>) -> String {
        let mut out = String::new();
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{label}: {}", printable(&self.problem.to_string()));
        let Pos { line, column } = self.pos;
        let _ = writeln!(out, "  --> {}:{line}:{column}", self.file.display());
        if let Some(text) = source_line {
            let gutter = " ".repeat(line.to_string().len());
            let at_tab = text.chars().nth((column.max(1) - 1) as usize) == Some('\t');
            let (text, col) = excerpt(text, (column.max(1) - 1) as usize);
            // A tab is shown as a space: underline it alone.
            let width = if at_tab { 1 } else { token_width(&text, col) };
            let pad: String = text.chars().take(col).map(|_| ' ').collect();
            let _ = writeln!(out, "{gutter} |");
            let _ = writeln!(out, "{line} | {text}");
            let _ = writeln!(out, "{gutter} | {pad}{}", "^".repeat(width));
        }
        if let Some(hint) = self.problem.hint() {
            let _ = writeln!(out, "  = hint: {hint}");
        }
        out
    }

    /// A GitHub Actions workflow command.
    #[must_use]
    pub fn github(&self) -> String {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = printable(&self.problem.to_string());
        if let Some(hint) = self.problem.hint() {
            let _ = write!(message, " (hint: {hint})");
        }
        let message = message
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A");
        let file = self.file.display().to_string().replace(',', "%2C");
        format!(
            "::{level} file={file},line={},col={}::{message}",
            self.pos.line, self.pos.column
        )
    }

    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "severity": self.severity,
            "code": self.problem.code(),
            "file": self.file.display().to_string(),
            "line": self.pos.line,
            "column": self.pos.column,
            "message": self.problem.to_string(),
            "hint": self.problem.hint(),
        })
    }
}

/// `text` with control characters (a name may hold ESC or a newline)
/// written as escapes, so that no message can drive the terminal.
#[must_use]
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// At most [`EXCERPT_CHARS`] of a source line around column `col` (0-based),
/// tabs and control characters shown as one space or `?` each so that the
/// carets stay aligned; returns the excerpt and `col` within it.
fn excerpt(line: &str, col: usize) -> (String, usize) {
    let chars: Vec<char> = line
        .chars()
        .map(|c| match c {
            '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect();
    if chars.len() <= EXCERPT_CHARS {
        return (chars.into_iter().collect(), col);
    }
    let start = col
        .saturating_sub(EXCERPT_CHARS / 2)
        .min(chars.len() - EXCERPT_CHARS);
    let end = start + EXCERPT_CHARS;
    let mut text = String::new();
    if start > 0 {
        text.push_str("...");
    }
    text.extend(&chars[start..end]);
    if end < chars.len() {
        text.push_str("...");
    }
    let shift = if start > 0 { 3 } else { 0 };
    (text, col.saturating_sub(start) + shift)
}

/// The longest excerpt of a source line an error shows.
const EXCERPT_CHARS: usize = 160;

/// The width of the YAML token starting at `col`, so carets underline a
/// whole name rather than its first letter.
fn token_width(line: &str, col: usize) -> usize {
    let rest: Vec<char> = line.chars().skip(col).collect();
    let Some(&first) = rest.first() else {
        return 1;
    };
    let len = if first == '"' || first == '\'' {
        rest.iter()
            .skip(1)
            .position(|&c| c == first)
            .map_or(rest.len(), |i| i + 2)
    } else {
        // A plain scalar ends at flow punctuation, a comment, or the `: `
        // that closes a mapping key.
        (0..rest.len())
            .find(|&i| {
                matches!(rest[i], ',' | ']' | '}' | '#')
                    || (rest[i] == ':' && rest.get(i + 1).is_none_or(|c| c.is_whitespace()))
            })
            .unwrap_or(rest.len())
    };
    let token: String = rest[..len].iter().collect();
    token.trim_end().chars().count().max(1)
}

/// The closest known name, if one is close enough to be a typo.
#[must_use]
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= 2.max(name.len() / 3) && *d < c.len().max(name.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

/// "`a`", "`a` or `b`", "`a`, `b` or `c`".
fn or_list(options: &[String]) -> String {
    let quoted: Vec<String> = options.iter().map(|o| format!("`{o}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

/// `1 step`, `2 steps`.
#[must_use]
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
