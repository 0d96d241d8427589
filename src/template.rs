//! Templates in `run`, probes, `when` and `manual`: compiled once, with
//! undefined names as errors, and shell-quoting of every value interpolated
//! into a shell command unless it is marked `| raw`.

use std::collections::BTreeSet;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use crate::load::Pos;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateId(usize);

/// Whether a template's output is a shell command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Shell,
    Text,
}

#[derive(Debug)]
struct Entry {
    source: String,
    pos: Pos,
    /// Dotted names the template reads, e.g. `host.vars.service`.
    names: BTreeSet<String>,
    /// `None` for a literal with nothing to render.
    name: Option<String>,
}

pub struct Templates {
    env: Environment<'static>,
    entries: Vec<Entry>,
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

impl Templates {
    #[must_use]
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.starts_with("shell/") {
                AutoEscape::Custom(SHELL.into())
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(|out, state, value| {
            if matches!(state.auto_escape(), AutoEscape::Custom(name) if name == SHELL)
                && !value.is_safe()
            {
                let text = value.to_string().replace('\0', "");
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
        }
    }

    /// Compiles `source`; the error is the template engine's own message.
    pub fn add(&mut self, source: &str, flavor: Flavor, pos: Pos) -> Result<TemplateId, String> {
        let id = TemplateId(self.entries.len());
        let is_literal = !(source.contains("{{") || source.contains("{%") || source.contains("{#"));
        let mut names = BTreeSet::new();
        let mut registered = None;
        if !is_literal {
            let name = match flavor {
                Flavor::Shell => format!("shell/{}", id.0),
                Flavor::Text => format!("text/{}", id.0),
            };
            self.env
                .add_template_owned(name.clone(), source.to_string())
                .map_err(|e| describe(&e))?;
            let template = self.env.get_template(&name).map_err(|e| describe(&e))?;
            names = template.undeclared_variables(true).into_iter().collect();
            registered = Some(name);
        }
        self.entries.push(Entry {
            source: source.to_string(),
            pos,
            names,
            name: registered,
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

    #[must_use]
    pub fn names(&self, id: TemplateId) -> &BTreeSet<String> {
        &self.entries[id.0].names
    }

    /// Every `secret.NAME` the template reads.
    pub fn secrets(&self, id: TemplateId) -> impl Iterator<Item = &str> {
        self.names(id)
            .iter()
            .filter_map(|n| n.strip_prefix("secret."))
            .map(|n| n.split('.').next().unwrap_or(n))
    }

    pub fn render(&self, id: TemplateId, context: &Value) -> Result<String, String> {
        let entry = &self.entries[id.0];
        let Some(name) = &entry.name else {
            return Ok(entry.source.clone());
        };
        let template = self.env.get_template(name).map_err(|e| describe(&e))?;
        template.render(context).map_err(|e| describe(&e))
    }
}

/// The template engine's message, without its debug dump.
fn describe(e: &minijinja::Error) -> String {
    let mut text = e.kind().to_string();
    if let Some(detail) = e.detail() {
        text = format!("{text}: {detail}");
    }
    text
}
