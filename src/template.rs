//! Templates in `run`, probes, `when` and `manual`: compiled once, with
//! undefined names as errors, and shell-quoting of every value interpolated
//! into a shell command unless it is marked `| raw`.

pub mod shell;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use minijinja::machinery::{Token, tokenize};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Object;
use minijinja::{Environment, UndefinedBehavior, Value};

use crate::load::Pos;
use shell::Context;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateId(usize);

/// The NAME of a value that is exactly `{{ secret.NAME }}`: the only form a
/// password field accepts, so that no password is ever written in a file.
#[must_use]
pub fn secret_reference(text: &str) -> Option<&str> {
    let inner = text
        .trim()
        .strip_prefix("{{")?
        .strip_suffix("}}")?
        .trim()
        .strip_prefix("secret.")?;
    let mut chars = inner.chars();
    let first = chars.next()?;
    ((first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'))
    .then_some(inner)
}

/// Whether a template's output is a shell command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    Shell,
    Text,
}

#[derive(Debug)]
struct Entry {
    source: String,
    pos: Pos,
    flavor: Flavor,
    /// Dotted names the template reads, e.g. `host.vars.service`; `None`
    /// for a literal with nothing to render.
    names: Option<Arc<BTreeSet<String>>>,
}

/// Every template of a runbook. Compiled templates are not kept: a
/// 5,000-step runbook would hold hundreds of MiB of bytecode, while
/// compiling again at render time costs microseconds next to a command.
pub struct Templates {
    env: Environment<'static>,
    entries: Vec<Entry>,
    /// Runbooks repeat the same probes on many steps; each distinct text is
    /// analysed once.
    seen: HashMap<(Flavor, String), Arc<BTreeSet<String>>>,
    /// [`check`]'s findings, once per distinct text too.
    checked: HashMap<(Flavor, String), Vec<Located>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

const SHELL: &str = "shell";

/// A value with a NUL fails the host: dropping the byte would run another
/// command than the one written, and over SSH the command would be cut.
const NUL_IN_VALUE: &str =
    "a value rendered into it holds a NUL byte, which a command cannot carry";

impl Templates {
    #[must_use]
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // A text without `{{` is used as written, final newline included:
        // one with a value must keep it too (`send: "OPTIONS ...\r\n\r\n"`
        // ends a SIP request with its blank line).
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        // Quoting depends only on the template being a command and the value
        // coming from `| raw`: minijinja's "safe" strings (`| safe`,
        // `| tojson`, `{% autoescape false %}`) are quoted like any other.
        env.set_formatter(|out, state, value| {
            let text = if let Some(Raw(text)) = value.downcast_object_ref::<Raw>() {
                text.clone()
            } else if state.name() == SHELL {
                let text = value.to_string();
                shlex::try_quote(&text).map_or_else(|_| text.clone(), std::borrow::Cow::into_owned)
            } else {
                value.to_string()
            };
            // A NUL cannot pass through `sh` or an SSH exec request: it would
            // silently cut the command short.
            if state.name() == SHELL && text.contains('\0') {
                return Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    NUL_IN_VALUE,
                ));
            }
            out.write_str(&text).map_err(minijinja::Error::from)
        });
        env.add_filter("raw", |v: Value| Value::from_object(Raw(v.to_string())));
        Self {
            env,
            entries: Vec::new(),
            seen: HashMap::new(),
            checked: HashMap::new(),
        }
    }

    /// Compiles `source` to check it; the error is the template engine's message.
    pub fn add(&mut self, source: &str, flavor: Flavor, pos: Pos) -> Result<TemplateId, String> {
        let id = TemplateId(self.entries.len());
        let is_literal = !(source.contains("{{") || source.contains("{%") || source.contains("{#"));
        let names = if is_literal {
            None
        } else if let Some(names) = self.seen.get(&(flavor, source.to_string())) {
            Some(Arc::clone(names))
        } else if let Some(names) = simple_names(source) {
            let names = Arc::new(names);
            self.seen
                .insert((flavor, source.to_string()), Arc::clone(&names));
            Some(names)
        } else {
            let template = self
                .env
                .template_from_named_str(flavor.name(), source)
                .map_err(|e| describe(&e))?;
            let names: Arc<BTreeSet<String>> =
                Arc::new(template.undeclared_variables(true).into_iter().collect());
            self.seen
                .insert((flavor, source.to_string()), Arc::clone(&names));
            Some(names)
        };
        self.entries.push(Entry {
            source: source.to_string(),
            pos,
            flavor,
            names,
        });
        Ok(id)
    }

    /// What [`check`] finds in `source`.
    pub fn findings(&mut self, source: &str, flavor: Flavor) -> Vec<Located> {
        self.checked
            .entry((flavor, source.to_string()))
            .or_insert_with(|| check(source, flavor))
            .clone()
    }

    #[must_use]
    pub fn source(&self, id: TemplateId) -> &str {
        &self.entries[id.0].source
    }

    #[must_use]
    pub fn pos(&self, id: TemplateId) -> Pos {
        self.entries[id.0].pos
    }

    pub fn names(&self, id: TemplateId) -> impl Iterator<Item = &String> {
        self.entries[id.0].names.iter().flat_map(|n| n.iter())
    }

    /// Every `secret.NAME` the template reads.
    pub fn secrets(&self, id: TemplateId) -> impl Iterator<Item = &str> {
        self.names(id)
            .filter_map(|n| n.strip_prefix("secret."))
            .map(|n| n.split('.').next().unwrap_or(n))
    }

    pub fn render(&self, id: TemplateId, context: &Value) -> Result<String, String> {
        let entry = &self.entries[id.0];
        if entry.names.is_none() {
            return Ok(entry.source.clone());
        }
        let rendered = self
            .env
            .template_from_named_str(entry.flavor.name(), &entry.source)
            .and_then(|t| t.render(context))
            .map_err(|e| describe(&e))?;
        // A C string ends at a NUL: over SSH the command would be cut short
        // (even to nothing, reported ok) instead of failing.
        if rendered.contains('\0') {
            return Err(NUL_IN_VALUE.into());
        }
        Ok(rendered)
    }
}

/// A value marked `| raw`: written into a command as it is.
#[derive(Debug)]
struct Raw(String);

impl Object for Raw {
    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a template's text shows to be wrong before any value is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// A value in a command outside a plain word, where its quotes would
    /// not hold.
    Quoted(Context),
    /// A `{% %}` inside quotes, a comment or a heredoc: where the values
    /// after it land would depend on the branch taken.
    BlockInQuotes(Context),
    /// A secret in an expression or a filter, whose result masking cannot
    /// recognise.
    SecretExpression,
    /// `raw` other than as the last filter of a `{{ }}`.
    MisplacedRaw,
}

/// A finding at the `{{` or `{%` at byte `offset` of the template, whose
/// tag reads `tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub offset: usize,
    pub tag: String,
    pub finding: Finding,
}

/// Checks what the template engine accepts but this tool refuses: values
/// in a command anywhere but in a plain word, expressions on secrets, a
/// misplaced `raw`. A template the engine cannot read yields nothing here;
/// compiling it reports why.
fn check(source: &str, flavor: Flavor) -> Vec<Located> {
    let mut found = Vec::new();
    if !(source.contains("{{") || source.contains("{%")) {
        return found;
    }
    let mut scanner = shell::Scanner::default();
    let mut tag: Option<(bool, usize, Vec<Token<'_>>)> = None;
    for item in tokenize(source, false, SyntaxConfig::default()) {
        let Ok((token, span)) = item else { break };
        match token {
            Token::TemplateData(text) if flavor == Flavor::Shell => scanner.feed(text),
            Token::TemplateData(_) => {}
            Token::VariableStart | Token::BlockStart => {
                tag = Some((
                    matches!(token, Token::VariableStart),
                    span.start_offset as usize,
                    Vec::new(),
                ));
            }
            Token::VariableEnd | Token::BlockEnd => {
                let Some((variable, start, inner)) = tag.take() else {
                    continue;
                };
                let mut at = |finding| {
                    found.push(Located {
                        offset: start,
                        tag: source
                            .get(start..span.end_offset as usize)
                            .unwrap_or_default()
                            .to_string(),
                        finding,
                    });
                };
                let raw =
                    variable && matches!(inner.as_slice(), [.., Token::Pipe, Token::Ident("raw")]);
                let raws = inner
                    .iter()
                    .filter(|t| matches!(t, Token::Ident("raw")))
                    .count();
                if raws > usize::from(raw) {
                    at(Finding::MisplacedRaw);
                }
                let expr = if raw {
                    &inner[..inner.len() - 2]
                } else {
                    &inner
                };
                let reads_secret = inner.iter().any(|t| matches!(t, Token::Ident("secret")));
                let plain_secret = variable
                    && matches!(expr, [Token::Ident("secret"), Token::Dot, Token::Ident(_)]);
                if reads_secret && !plain_secret {
                    at(Finding::SecretExpression);
                }
                if flavor == Flavor::Shell {
                    let context = scanner.context();
                    if variable {
                        if !raw && context != Context::Word {
                            at(Finding::Quoted(context));
                        }
                        scanner.value(raw);
                    } else {
                        if !scanner.at_rest() {
                            at(Finding::BlockInQuotes(context));
                        }
                        scanner.block();
                    }
                }
            }
            other => {
                if let Some((_, _, inner)) = &mut tag {
                    inner.push(other);
                }
            }
        }
    }
    found
}

impl Flavor {
    const fn name(self) -> &'static str {
        match self {
            Self::Shell => SHELL,
            Self::Text => "text",
        }
    }
}

/// The names read by a template made only of `{{ a.b.c }}` and
/// `{{ a.b | raw }}` blocks, found without compiling it: most runbook
/// templates look like this, and compiling thousands of them dominated
/// validation time. Anything else returns `None` and is compiled.
fn simple_names(source: &str) -> Option<BTreeSet<String>> {
    if source.contains("{%") || source.contains("{#") {
        return None;
    }
    let mut names = BTreeSet::new();
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        let inner = after[..end].trim();
        let expr = match inner.split_once('|') {
            Some((e, filter)) if filter.trim() == "raw" => e.trim(),
            Some(_) => return None,
            None => inner,
        };
        let valid = !expr.is_empty()
            && expr.split('.').all(|part| {
                let mut chars = part.chars();
                chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if !valid {
            return None;
        }
        names.insert(expr.to_string());
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return None;
    }
    Some(names)
}

/// The template engine's message, without its debug dump.
fn describe(e: &minijinja::Error) -> String {
    let mut text = e.kind().to_string();
    if let Some(detail) = e.detail() {
        text = format!("{text}: {detail}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{Flavor, Templates, secret_reference, simple_names};
    use crate::load::Pos;

    #[test]
    fn only_a_whole_secret_reference_names_a_secret() {
        assert_eq!(secret_reference("{{ secret.SUDO_OPS }}"), Some("SUDO_OPS"));
        assert_eq!(secret_reference(" {{secret.x_1}} "), Some("x_1"));
        assert_eq!(secret_reference("hunter2"), None);
        assert_eq!(secret_reference("pw-{{ secret.X }}"), None);
        assert_eq!(secret_reference("{{ secret.X | upper }}"), None);
        assert_eq!(secret_reference("{{ vars.X }}"), None);
    }

    #[test]
    fn simple_templates_are_read_without_compiling_and_agree_with_the_engine() {
        for source in [
            "systemctl restart {{ host.vars.service }} --port {{vars.port}}",
            "echo {{ secret.TOKEN | raw }}",
        ] {
            let fast = simple_names(source).expect("simple");
            let mut t = Templates::new();
            let env = &mut t.env;
            let compiled: std::collections::BTreeSet<String> = env
                .template_from_named_str("x", source)
                .unwrap()
                .undeclared_variables(true)
                .into_iter()
                .collect();
            assert_eq!(fast, compiled, "{source}");
            assert!(t.add(source, Flavor::Shell, Pos::new(1, 1)).is_ok());
        }
        for source in [
            "{{ a == 'b' }}",
            "{% if x %}y{% endif %}",
            "{{ x | upper }}",
            "{{ x }",
            "}} {{ a",
        ] {
            assert!(simple_names(source).is_none(), "{source}");
        }
    }
}
