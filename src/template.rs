//! Templates in `run`, probes, `when` and `manual`: compiled once, with
//! undefined names as errors, and shell-quoting of every value interpolated
//! into a shell command unless it is marked `| raw`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use crate::load::Pos;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateId(usize);

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
        env.set_auto_escape_callback(|name| {
            if name == SHELL {
                AutoEscape::Custom(SHELL.into())
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(|out, state, value| {
            if matches!(state.auto_escape(), AutoEscape::Custom(name) if name == SHELL)
                && !value.is_safe()
            {
                let text = value.to_string();
                if text.contains('\0') {
                    return Err(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        NUL_IN_VALUE,
                    ));
                }
                let quoted = shlex::try_quote(&text).unwrap_or_else(|_| text.clone().into());
                out.write_str(&quoted).map_err(minijinja::Error::from)
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        env.add_filter("raw", |v: Value| Value::from_safe_string(v.to_string()));
        Self {
            env,
            entries: Vec::new(),
            seen: HashMap::new(),
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
    use super::{Flavor, Templates, simple_names};
    use crate::load::Pos;

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
