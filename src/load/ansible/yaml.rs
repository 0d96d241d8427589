//! The YAML inventory format: top-level groups, each with `hosts`,
//! `children` (groups, recursively) and `vars`, read as Ansible's `yaml`
//! plugin does (entries it skips with a warning are skipped here too).

use serde_json::Value;

use super::{Node, Tree};
use crate::diagnostic::{Diagnostic, Problem};
use crate::load::{Pos, Source};

pub fn parse(source: &Source) -> Result<Tree, Box<Diagnostic>> {
    let node = parse_node(source)?;
    let error = |pos: Pos, message: String| {
        Box::new(Diagnostic::error(
            &source.path,
            pos,
            Problem::Syntax {
                message,
                suggestion: None,
            },
        ))
    };
    let Node::Map(groups) = node else {
        return Err(error(
            Pos::new(1, 1),
            "an Ansible YAML inventory is a mapping of group names (such as `all:`)".into(),
        ));
    };
    let mut tree = Tree::default();
    let mut cx = Cx {
        source,
        tree: &mut tree,
    };
    for (name, data) in groups {
        cx.group(&name, data).map_err(|(pos, m)| error(pos, m))?;
    }
    Ok(tree)
}

/// YAML as PyYAML (YAML 1.1) reads it: `yes`/`no` are booleans, `0644` is
/// octal.
pub fn parse_node(source: &Source) -> Result<Node, Box<Diagnostic>> {
    crate::load::parse_with(source, true)
}

struct Cx<'a> {
    source: &'a Source,
    tree: &'a mut Tree,
}

type Failure = (Pos, String);

impl Cx<'_> {
    fn group(&mut self, name: &str, data: Node) -> Result<(), Failure> {
        let entries = match data {
            Node::Null => Vec::new(),
            Node::Map(entries) => entries,
            _ => return Ok(()),
        };
        let pos = self.pos_of(name);
        self.tree.add_group(name, pos);
        for (key, value) in entries {
            // A section given as a string names one entry without data.
            let value = match value {
                Node::Scalar(Value::String(s))
                    if matches!(key.as_str(), "hosts" | "children" | "vars") =>
                {
                    Node::Map(vec![(s, Node::Null)])
                }
                v => v,
            };
            let items = match value {
                Node::Map(items) => items,
                Node::Null => continue,
                _ if matches!(key.as_str(), "hosts" | "children" | "vars") => {
                    return Err((
                        self.pos_of(&key),
                        format!("`{key}` of group `{name}` must be a mapping"),
                    ));
                }
                _ => continue,
            };
            match key.as_str() {
                "vars" => {
                    for (k, v) in items {
                        self.tree.set_group_var(name, k, v.into_json());
                    }
                }
                "children" => {
                    for (child, data) in items {
                        self.group(&child, data)?;
                        let pos = self.pos_of(&child);
                        self.tree.add_child(name, &child).map_err(|e| (pos, e))?;
                    }
                }
                "hosts" => {
                    for (pattern, vars) in items {
                        let pos = self.pos_of(&pattern);
                        let (hosts, port) =
                            super::expand_pattern(&pattern).map_err(|e| (pos, e))?;
                        let vars = match vars {
                            Node::Map(vars) => vars,
                            Node::Null => Vec::new(),
                            _ => {
                                return Err((
                                    pos,
                                    format!("the variables of host `{pattern}` must be a mapping"),
                                ));
                            }
                        };
                        for host in hosts {
                            self.tree.add_host(&host, name, port, pos);
                            for (k, v) in &vars {
                                self.tree
                                    .set_host_var(&host, k.clone(), v.clone().into_json());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Where a key is written, for error messages: its first occurrence.
    fn pos_of(&self, key: &str) -> Pos {
        for (i, line) in self.source.text.lines().enumerate() {
            let trimmed = line.trim_start();
            let unquoted = trimmed.trim_start_matches(['"', '\'']);
            if let Some(rest) = unquoted.strip_prefix(key)
                && rest
                    .trim_start_matches(['"', '\''])
                    .trim_start()
                    .starts_with(':')
            {
                let column = line.len() - trimmed.len() + 1;
                return Pos::new(
                    u32::try_from(i + 1).unwrap_or(u32::MAX),
                    u32::try_from(column).unwrap_or(u32::MAX),
                );
            }
        }
        Pos::new(1, 1)
    }
}
