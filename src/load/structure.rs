//! A second look at a file the typed loader rejected: serde stops at the
//! first error, but a person fixing a runbook wants all of them. The YAML
//! is read again into a plain tree that remembers where each node was,
//! checked against the JSON Schema (generated from the loader's own
//! types), and every violation is reported at its line and column.

use std::collections::HashMap;

use serde_json::Value;
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};

use super::{Pos, Source};
use crate::diagnostic::{Diagnostic, Problem, suggest};

/// Beyond this many nodes, every alias counted at its expanded size, the
/// second look is skipped: a few hundred bytes of anchors can stand for
/// billions of nodes, and this pass must not be the way around the
/// loader's alias budget.
const MAX_NODES: usize = 200_000;

/// Deeper than this the second look is skipped too, so that its recursion
/// stays far from the end of the stack.
const MAX_DEPTH: usize = 128;

#[derive(Default)]
struct Tree {
    /// JSON pointer of each node -> where its value starts.
    values: HashMap<String, Pos>,
    /// JSON pointer of each mapping entry -> where its key starts.
    keys: HashMap<String, Pos>,
    /// JSON pointer of each mapping entry -> the characters from its key
    /// to the end of its value, for [`salvage`].
    entries: HashMap<String, (usize, usize)>,
    /// Where the last event read ends, in characters.
    end: usize,
    nodes: usize,
    /// Each anchor's value and its size in nodes, what an alias costs.
    anchors: HashMap<usize, (Value, usize)>,
}

fn pos(m: &serde_saphyr::granit_parser::Marker) -> Pos {
    Pos::new(
        u32::try_from(m.line()).unwrap_or(u32::MAX),
        u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
    )
}

/// `key` as one segment of a JSON pointer.
pub(crate) fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn scalar(text: &str, style: ScalarStyle) -> Value {
    if style != ScalarStyle::Plain {
        return Value::String(text.to_string());
    }
    match text {
        "~" | "null" | "Null" | "NULL" | "" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => text
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(text.to_string())),
    }
}

type Events<'a> = std::iter::Peekable<Parser<'a, serde_saphyr::granit_parser::StrInput<'a>>>;

impl Tree {
    /// Reads one node at `path`; `None` on a parse error, too many nodes or
    /// too deep a nesting.
    fn node(&mut self, events: &mut Events<'_>, path: &str, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        loop {
            let (event, span) = events.next()?.ok()?;
            self.end = span.end.index();
            let before = self.nodes;
            self.nodes += 1;
            if self.nodes > MAX_NODES {
                return None;
            }
            let at = pos(&span.start);
            let (value, anchor) = match event {
                Event::Scalar(text, style, anchor, _) => (scalar(&text, style), anchor),
                Event::Alias(id) => {
                    let (value, size) = self.anchors.get(&id)?;
                    // Charged before the copy, so the copy is always small.
                    self.nodes = before.checked_add(*size)?;
                    if self.nodes > MAX_NODES {
                        return None;
                    }
                    (value.clone(), 0)
                }
                Event::SequenceStart(_, anchor, _) => {
                    let mut items = Vec::new();
                    loop {
                        if let Some(Ok((Event::SequenceEnd, span))) = events.peek() {
                            self.end = span.end.index();
                            events.next();
                            break;
                        }
                        let child = format!("{path}/{}", items.len());
                        items.push(self.node(events, &child, depth + 1)?);
                    }
                    (Value::Array(items), anchor)
                }
                Event::MappingStart(_, anchor, _) => {
                    let mut map = serde_json::Map::new();
                    loop {
                        if let Some(Ok((Event::MappingEnd, span))) = events.peek() {
                            self.end = span.end.index();
                            events.next();
                            break;
                        }
                        let (key_at, key_start) = match events.peek() {
                            Some(Ok((_, span))) => (pos(&span.start), span.start.index()),
                            _ => return None,
                        };
                        let key = match self.node(events, &format!("{path}/?"), depth + 1)? {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        let child = format!("{path}/{}", escape(&key));
                        self.keys.insert(child.clone(), key_at);
                        let value = self.node(events, &child, depth + 1)?;
                        self.entries.insert(child.clone(), (key_start, self.end));
                        map.insert(key, value);
                    }
                    (Value::Object(map), anchor)
                }
                _ => {
                    self.nodes = before;
                    continue;
                }
            };
            self.values.insert(path.to_string(), at);
            if anchor != 0 {
                // The kept copy is charged too: nested anchors would
                // otherwise keep one copy of the same nodes per level.
                let size = self.nodes - before;
                self.nodes += size;
                if self.nodes > MAX_NODES {
                    return None;
                }
                self.anchors.insert(anchor, (value.clone(), size));
            }
            return Some(value);
        }
    }
}

/// The loader's own error first, then every other structural error of
/// `source`, each at its own position.
#[must_use]
pub fn explain(source: &Source, kind: super::FileKind, first: Diagnostic) -> Vec<Diagnostic> {
    let budget =
        matches!(&first.problem, Problem::Syntax { message, .. } if super::is_refusal(message));
    let schema = match kind {
        super::FileKind::Runbook => crate::schema::runbook(),
        super::FileKind::Inventory => crate::schema::inventory(),
    };
    let others = if budget {
        Vec::new()
    } else {
        check(source, &schema)
    };
    let mut all = vec![first];
    for d in others {
        match all.iter().position(|a| a.pos == d.pos) {
            // The parser's words for these speak Rust ("unknown variant")
            // or miss where the field belongs; ours replace them.
            Some(i)
                if matches!(
                    d.problem,
                    Problem::UnknownChoice { .. } | Problem::MisplacedField { .. }
                ) =>
            {
                all[i] = d;
            }
            Some(_) => {}
            None => all.push(d),
        }
    }
    all
}

/// The typed reading of a file the typed loader rejected, with every field
/// the structural pass rejected left out, so that the checks after it
/// (references, cycles, templates) still run and a person sees every
/// independent error at once. `None` when a rejected field cannot be left
/// out: a required one, a list or a mapping (leaving out `targets` or
/// `vars` would only cause errors of its own), or a missing field.
#[must_use]
pub fn salvage<T: serde::de::DeserializeOwned>(
    source: &Source,
    kind: super::FileKind,
) -> Option<T> {
    use super::schema_check::Issue;
    let schema = match kind {
        super::FileKind::Runbook => crate::schema::runbook(),
        super::FileKind::Inventory => crate::schema::inventory(),
    };
    let mut tree = Tree::default();
    let mut events = Parser::new_from_str(&source.text).peekable();
    let doc = tree.node(&mut events, "", 0)?;
    let mut issues = Vec::new();
    super::schema_check::check(&schema, &schema, &doc, "", &mut issues);
    let mut text: Vec<char> = source.text.chars().collect();
    for issue in &issues {
        let path = match issue {
            Issue::UnknownField { path, .. } => path,
            Issue::MissingField { .. } => return None,
            Issue::WrongType { path, .. }
            | Issue::UnknownVariant { path, .. }
            | Issue::BadPattern { path }
            | Issue::OutOfRange { path, .. } => {
                let (parent, field) = path.rsplit_once('/')?;
                let parent_schema = super::schema_check::schema_at(&schema, &doc, parent)?;
                let field_schema = super::schema_check::schema_at(&schema, &doc, path)?;
                let required = parent_schema
                    .get("required")
                    .and_then(Value::as_array)
                    .is_some_and(|r| r.iter().any(|f| f.as_str() == Some(field)));
                let nested = ["properties", "items", "additionalProperties"]
                    .iter()
                    .any(|k| field_schema.get(*k).is_some());
                if required || nested {
                    return None;
                }
                path
            }
        };
        let &(start, end) = tree.entries.get(path)?;
        // Blanked rather than cut, so every other node keeps its line and
        // column; a flow mapping's comma goes with its entry.
        let after = text[end.min(text.len())..]
            .iter()
            .position(|c| !c.is_whitespace())
            .map(|i| end + i);
        let end = match after {
            Some(i) if text[i] == ',' => i + 1,
            _ => end,
        };
        for c in text.get_mut(start..end)? {
            if !c.is_whitespace() {
                *c = ' ';
            }
        }
    }
    let repaired = Source {
        path: source.path.clone(),
        text: text.into_iter().collect(),
    };
    super::parse(&repaired).ok()
}

/// The structural errors of a file, then the errors the checks after it
/// found in its [`salvage`]d reading, less those the left-out fields cause
/// (a step left with nothing to do) and those already reported.
#[must_use]
pub fn merge(structural: Vec<Diagnostic>, salvaged: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut all = structural;
    for d in salvaged {
        let consequence = matches!(
            d.problem,
            Problem::NothingToDo { .. }
                | Problem::ProbeKind { .. }
                | Problem::StdoutWithoutCommand { .. }
                | Problem::ControllerProbe { .. }
        );
        if !consequence && all.iter().all(|a| a.pos != d.pos) {
            all.push(d);
        }
    }
    all
}

/// Where each mapping key starts, by the JSON pointer of its value (`/hosts/web-1`);
/// empty when the file does not read or is too large for this pass.
#[must_use]
pub fn key_positions(source: &Source) -> HashMap<String, Pos> {
    let mut tree = Tree::default();
    let mut events = Parser::new_from_str(&source.text).peekable();
    match tree.node(&mut events, "", 0) {
        Some(_) => tree.keys,
        None => HashMap::new(),
    }
}

/// Every structural error of `source` against `schema`, located.
#[must_use]
pub fn check(source: &Source, schema: &Value) -> Vec<Diagnostic> {
    use super::schema_check::Issue;
    let mut tree = Tree::default();
    let mut events = Parser::new_from_str(&source.text).peekable();
    let Some(doc) = tree.node(&mut events, "", 0) else {
        return Vec::new();
    };
    let mut issues = Vec::new();
    super::schema_check::check(schema, schema, &doc, "", &mut issues);
    let at = |p: &str| tree.values.get(p).copied().unwrap_or(Pos::new(1, 1));
    let shown = |p: &str| match doc.pointer(p) {
        Some(Value::String(s)) => format!("`{s}`"),
        Some(other) => format!("`{other}`"),
        None => "nothing".into(),
    };
    let known = known_fields();
    let mut out = Vec::new();
    let mut push = |pos: Pos, problem: Problem| {
        out.push(Diagnostic::error(&source.path, pos, problem));
    };
    let syntax = |message: String, suggestion: Option<String>| Problem::Syntax {
        message,
        suggestion,
    };
    for issue in issues {
        match issue {
            Issue::UnknownField { path, field } => {
                let pos = tree.keys.get(&path).copied().unwrap_or_else(|| at(&path));
                if let Some(parent) = one_level_up(schema, &doc, &path, &field) {
                    push(pos, Problem::MisplacedField { field, parent });
                    continue;
                }
                // A field known elsewhere is no typo of itself.
                let suggestion =
                    suggest(&field, known.iter().map(String::as_str)).filter(|s| *s != field);
                push(pos, syntax(format!("unknown field `{field}`"), suggestion));
            }
            Issue::MissingField { path, field } => {
                push(at(&path), syntax(format!("missing field `{field}`"), None))
            }
            Issue::WrongType { path, expected } => {
                let words: Vec<&str> = expected
                    .iter()
                    .map(|t| match *t {
                        "array" => "a list",
                        "object" => "a mapping",
                        "integer" => "a whole number",
                        "boolean" => "true or false",
                        "number" => "a number",
                        _ => "a string",
                    })
                    .collect();
                push(
                    at(&path),
                    syntax(
                        format!(
                            "invalid type: {} where {} was expected",
                            shown(&path),
                            words.join(" or ")
                        ),
                        None,
                    ),
                );
            }
            Issue::UnknownVariant { path, options } => {
                let found = match doc.pointer(&path) {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                let suggestion = suggest(&found, options.iter().map(String::as_str));
                push(
                    at(&path),
                    Problem::UnknownChoice {
                        what: choice_name(&path),
                        found,
                        options,
                        suggestion,
                    },
                );
            }
            Issue::BadPattern { path } => push(
                at(&path),
                syntax(
                    format!(
                        "invalid duration {}: write a number and a unit, such as `500ms`, `10s`, `5m` or `1h30m`",
                        shown(&path)
                    ),
                    None,
                ),
            ),
            Issue::OutOfRange { path, min, max } => {
                let range = match (min, max) {
                    (Some(a), Some(b)) => format!("from {a} to {b}"),
                    (Some(a), None) => format!("of at least {a}"),
                    (None, Some(b)) => format!("of at most {b}"),
                    (None, None) => String::new(),
                };
                push(
                    at(&path),
                    syntax(
                        format!(
                            "{} is out of range: expected a number {range}",
                            shown(&path)
                        ),
                        None,
                    ),
                );
            }
        }
    }
    out
}

/// The key of the mapping holding `path`'s mapping, when `field` would be
/// valid there: a field written one level too deep.
fn one_level_up(schema: &Value, doc: &Value, path: &str, field: &str) -> Option<String> {
    let (parent, _) = path.rsplit_once('/')?;
    let (grandparent, key) = parent.rsplit_once('/')?;
    let key = key.replace("~1", "/").replace("~0", "~");
    if key.parse::<usize>().is_ok() {
        return None;
    }
    super::schema_check::fields_at(schema, doc, grandparent)
        .iter()
        .any(|f| f == field)
        .then_some(key)
}

/// How a message names the value at `path`: "transport", or "`on_failure`
/// value" for a name that does not read as a word.
fn choice_name(path: &str) -> String {
    let name = path
        .rsplit('/')
        .find(|s| s.parse::<usize>().is_err())
        .unwrap_or("")
        .replace("~1", "/")
        .replace("~0", "~");
    if name == "on" {
        // `notify`'s `on` lists events: "unknown on" would not read.
        "event".into()
    } else if name.chars().all(|c| c.is_ascii_lowercase()) && !name.is_empty() {
        name
    } else {
        format!("`{name}` value")
    }
}

/// Every field name the formats know, for "did you mean".
fn known_fields() -> Vec<String> {
    let mut names = Vec::new();
    collect_properties(&crate::schema::runbook(), &mut names);
    collect_properties(&crate::schema::inventory(), &mut names);
    names.sort();
    names.dedup();
    names
}

fn collect_properties(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            for v in map.values() {
                collect_properties(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_properties(v, out)),
        _ => {}
    }
}
