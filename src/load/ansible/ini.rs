//! The INI inventory format, parsed line by line as Ansible's `ini` plugin
//! does: `[group]`, `[group:children]`, `[group:vars]`, host lines with
//! `key=value` variables whose values are Python literals.

use indexmap::IndexMap;
use serde_json::Value;

use super::Tree;
use crate::diagnostic::{Diagnostic, Problem};
use crate::load::{Pos, Source};

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Hosts,
    Children,
    Vars,
}

/// A group named before it is declared: `[x:vars]`, or a child in
/// `[p:children]`; an error unless `[x]` or `[x:children]` follows.
struct Pending {
    pos: Pos,
    state: State,
    parents: Vec<String>,
}

pub fn parse(source: &Source) -> Result<Tree, Box<Diagnostic>> {
    let mut tree = Tree::default();
    let mut pending: IndexMap<String, Pending> = IndexMap::new();
    let mut group = "ungrouped".to_string();
    let mut state = State::Hosts;
    for (i, raw_line) in source.text.lines().enumerate() {
        let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let indent = raw_line.len() - raw_line.trim_start().len();
        let at = |offset: usize| {
            Pos::new(
                line_no,
                u32::try_from(raw_line[..indent + offset].chars().count() + 1).unwrap_or(u32::MAX),
            )
        };
        let fail = |offset: usize, message: String| {
            Box::new(Diagnostic::error(
                &source.path,
                at(offset),
                Problem::Syntax {
                    message,
                    suggestion: None,
                },
            ))
        };
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some((name, kind)) = section(line) {
            state = match kind {
                None | Some("hosts") => State::Hosts,
                Some("children") => State::Children,
                Some("vars") => State::Vars,
                Some(other) => {
                    return Err(fail(
                        0,
                        format!(
                            "section [{name}:{other}] has an unknown type `{other}`: use `children` or `vars`"
                        ),
                    ));
                }
            };
            group = name.to_string();
            if !tree.groups.contains_key(&group) {
                if state == State::Vars && !pending.contains_key(&group) {
                    pending.insert(
                        group.clone(),
                        Pending {
                            pos: at(0),
                            state,
                            parents: Vec::new(),
                        },
                    );
                }
                tree.add_group(&group, at(0));
            }
            if state != State::Vars && pending.contains_key(&group) {
                if pending[&group].state == State::Children {
                    add_pending_children(&mut tree, &group, &mut pending)
                        .map_err(|e| fail(0, e))?;
                } else {
                    pending.shift_remove(&group);
                }
            }
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            return Err(fail(
                0,
                format!(
                    "invalid section `{line}`: a section is `[group]`, `[group:children]` or `[group:vars]`, without spaces"
                ),
            ));
        }
        match state {
            State::Hosts => {
                let tokens = shlex_split(line).map_err(|e| fail(0, e))?;
                let Some(pattern) = tokens.first() else {
                    continue;
                };
                if pattern == "---" {
                    return Err(fail(
                        0,
                        "`---` starts a YAML document: this file mixes INI and YAML".into(),
                    ));
                }
                let (hosts, port) = super::expand_pattern(pattern).map_err(|e| fail(0, e))?;
                let mut vars = Vec::new();
                for token in &tokens[1..] {
                    let Some((k, v)) = token.split_once('=') else {
                        let offset = line.find(token.as_str()).unwrap_or(0);
                        return Err(fail(
                            offset,
                            format!("expected a `key=value` host variable, found `{token}`"),
                        ));
                    };
                    vars.push((k.to_string(), python_literal(v)));
                }
                for host in hosts {
                    tree.add_host(&host, &group, port, at(0));
                    for (k, v) in &vars {
                        tree.set_host_var(&host, k.clone(), v.clone());
                    }
                }
            }
            State::Vars => {
                let Some((k, v)) = line.split_once('=') else {
                    return Err(fail(
                        0,
                        format!("expected `key=value` in [{group}:vars], found `{line}`"),
                    ));
                };
                tree.set_group_var(&group, k.trim().to_string(), python_literal(v.trim()));
            }
            State::Children => {
                let child = group_name(line).ok_or_else(|| {
                    fail(
                        0,
                        format!("expected a group name in [{group}:children], found `{line}`"),
                    )
                })?;
                if tree.groups.contains_key(child) {
                    tree.add_child(&group, child).map_err(|e| fail(0, e))?;
                } else {
                    pending
                        .entry(child.to_string())
                        .or_insert_with(|| Pending {
                            pos: at(0),
                            state: State::Children,
                            parents: Vec::new(),
                        })
                        .parents
                        .push(group.clone());
                }
            }
        }
    }
    if let Some((name, p)) = pending.first() {
        let message = match p.state {
            State::Vars => format!("section [{name}:vars] is for a group that is never declared"),
            _ => format!(
                "section [{}:children] names group `{name}`, which is never declared",
                p.parents.last().map_or("?", String::as_str)
            ),
        };
        return Err(Box::new(Diagnostic::error(
            &source.path,
            p.pos,
            Problem::Syntax {
                message,
                suggestion: None,
            },
        )));
    }
    Ok(tree)
}

fn add_pending_children(
    tree: &mut Tree,
    group: &str,
    pending: &mut IndexMap<String, Pending>,
) -> Result<(), String> {
    let Some(p) = pending.shift_remove(group) else {
        return Ok(());
    };
    for parent in p.parents {
        tree.add_child(&parent, group)?;
        if pending
            .get(&parent)
            .is_some_and(|pp| pp.state == State::Children)
        {
            add_pending_children(tree, &parent, pending)?;
        }
    }
    Ok(())
}

/// `[name]` or `[name:kind]`, optionally followed by a comment.
fn section(line: &str) -> Option<(&str, Option<&str>)> {
    let rest = line.strip_prefix('[')?;
    let (inner, after) = rest.split_once(']')?;
    let after = after.trim_start();
    if !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    let (name, kind) = match inner.split_once(':') {
        Some((n, k)) => (n, Some(k)),
        None => (inner, None),
    };
    let name_ok = !name.is_empty() && !name.contains(char::is_whitespace);
    let kind_ok =
        kind.is_none_or(|k| !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_'));
    (name_ok && kind_ok).then_some((name, kind))
}

fn group_name(line: &str) -> Option<&str> {
    let name = line.split('#').next()?.trim_end();
    (!name.is_empty() && !name.contains([':', ']']) && !name.contains(char::is_whitespace))
        .then_some(name)
}

/// Python's `shlex.split(line, comments=True)`: words split on whitespace,
/// `'…'` and `"…"` quoting, backslash escapes, `#` starting a comment.
fn shlex_split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '#' => break,
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("no closing quotation".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("no escaped character".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// An INI value as Ansible reads it: a Python literal (`ast.literal_eval`)
/// when it is one, else the text itself.
#[must_use]
pub fn python_literal(text: &str) -> Value {
    let mut p = PyLit {
        chars: text.trim().chars().collect(),
        at: 0,
    };
    match p.value() {
        Some(v) if p.skip_ws() && p.at == p.chars.len() => v,
        _ => Value::String(text.to_string()),
    }
}

struct PyLit {
    chars: Vec<char>,
    at: usize,
}

impl PyLit {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_ws(&mut self) -> bool {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
        true
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.skip_ws();
        match self.peek()? {
            '[' => self.sequence('[', ']'),
            '(' => self.sequence('(', ')'),
            '{' => self.mapping(),
            '\'' | '"' => self.string().map(Value::String),
            _ => self.atom(),
        }
    }

    fn sequence(&mut self, open: char, close: char) -> Option<Value> {
        self.eat(open);
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Some(Value::Array(items));
            }
            items.push(self.value()?);
            if !self.eat(',') {
                return self.eat(close).then_some(Value::Array(items));
            }
        }
    }

    /// A dict, or a set (which Ansible turns into a list).
    fn mapping(&mut self) -> Option<Value> {
        self.eat('{');
        if self.eat('}') {
            return Some(Value::Object(serde_json::Map::new()));
        }
        let first = self.value()?;
        if !self.eat(':') {
            let mut items = vec![first];
            while self.eat(',') {
                if self.eat('}') {
                    return Some(Value::Array(items));
                }
                items.push(self.value()?);
            }
            return self.eat('}').then_some(Value::Array(items));
        }
        let mut map = serde_json::Map::new();
        let mut key = first;
        loop {
            let value = self.value()?;
            map.insert(key_text(&key)?, value);
            if self.eat('}') {
                return Some(Value::Object(map));
            }
            if !self.eat(',') {
                return None;
            }
            if self.eat('}') {
                return Some(Value::Object(map));
            }
            key = self.value()?;
            if !self.eat(':') {
                return None;
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        let mut out = String::new();
        // Adjacent literals concatenate: 'a' 'b' is 'ab'.
        while let Some(q @ ('\'' | '"')) = self.peek() {
            self.at += 1;
            loop {
                match self.peek()? {
                    c if c == q => {
                        self.at += 1;
                        break;
                    }
                    '\\' => {
                        self.at += 1;
                        let c = self.peek()?;
                        self.at += 1;
                        let escaped = match c {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '0' => '\0',
                            '\\' | '\'' | '"' => c,
                            other => {
                                out.push('\\');
                                other
                            }
                        };
                        out.push(escaped);
                    }
                    c => {
                        out.push(c);
                        self.at += 1;
                    }
                }
            }
            self.skip_ws();
        }
        Some(out)
    }

    fn atom(&mut self) -> Option<Value> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
        {
            // A sign only starts a number or follows an exponent.
            let c = self.peek()?;
            if matches!(c, '+' | '-')
                && self.at != start
                && !matches!(self.chars[self.at - 1], 'e' | 'E')
            {
                break;
            }
            self.at += 1;
        }
        let word: String = self.chars[start..self.at].iter().collect();
        match word.as_str() {
            "True" => return Some(Value::Bool(true)),
            "False" => return Some(Value::Bool(false)),
            "None" => return Some(Value::Null),
            _ => {}
        }
        number(&word)
    }
}

fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(true) => Some("True".into()),
        Value::Bool(false) => Some("False".into()),
        Value::Null => Some("None".into()),
        _ => None,
    }
}

/// A Python int or float literal (`-3`, `0x1f`, `1_000`, `1.5`, `2e3`).
fn number(word: &str) -> Option<Value> {
    let (negative, digits) = match word.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, word.strip_prefix('+').unwrap_or(word)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || digits.starts_with(['+', '-'])
    {
        return None;
    }
    let clean = digits.replace('_', "");
    let lower = clean.to_ascii_lowercase();
    let radix = [("0x", 16), ("0o", 8), ("0b", 2)]
        .into_iter()
        .find(|(p, _)| lower.starts_with(p));
    let int = match radix {
        Some((prefix, radix)) => i64::from_str_radix(&lower[prefix.len()..], radix).ok(),
        // Python refuses `012`: leading zeros only in zero itself.
        None if lower.len() > 1
            && lower.starts_with('0')
            && lower.bytes().all(|b| b.is_ascii_digit())
            && lower.bytes().any(|b| b != b'0') =>
        {
            return None;
        }
        None if lower.bytes().all(|b| b.is_ascii_digit()) => lower.parse::<i64>().ok(),
        None => None,
    };
    if let Some(n) = int {
        return Some(Value::from(if negative { -n } else { n }));
    }
    if lower
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
        && lower.bytes().any(|b| b.is_ascii_digit())
        && !lower.starts_with('e')
    {
        let f: f64 = lower.parse().ok()?;
        return serde_json::Number::from_f64(if negative { -f } else { f }).map(Value::Number);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_read_as_python_literals() {
        assert_eq!(python_literal("1"), json!(1));
        assert_eq!(python_literal("-3"), json!(-3));
        assert_eq!(python_literal("1.5"), json!(1.5));
        assert_eq!(python_literal("True"), json!(true));
        assert_eq!(python_literal("true"), json!("true"));
        assert_eq!(python_literal("None"), json!(null));
        assert_eq!(python_literal("[1, 'a']"), json!([1, "a"]));
        assert_eq!(python_literal("{'a': 1}"), json!({"a": 1}));
        assert_eq!(python_literal("(1,)"), json!([1]));
        assert_eq!(python_literal("0x10"), json!(16));
        assert_eq!(python_literal("012"), json!("012"));
        assert_eq!(python_literal("10.0.0.1"), json!("10.0.0.1"));
        assert_eq!(python_literal("'quoted'"), json!("quoted"));
        assert_eq!(python_literal("a b"), json!("a b"));
        assert_eq!(python_literal("e5"), json!("e5"));
    }

    #[test]
    fn host_lines_split_like_python_shlex() {
        assert_eq!(
            shlex_split(r#"h a="x y" b='z' c=d#e # comment"#).unwrap(),
            ["h", "a=x y", "b=z", "c=d"]
        );
        assert!(shlex_split("h a='x").is_err());
    }
}
