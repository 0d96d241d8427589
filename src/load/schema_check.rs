//! A small validator for the JSON Schema subset our generated schemas use
//! (`$ref`, `type`, `properties`, `required`, `additionalProperties`,
//! `items`, `anyOf`/`oneOf`, `const`/`enum`, `pattern`, `minimum`/`maximum`),
//! reporting problems in our own words. A general validator crate cost
//! more build time than the rest of the tool together.

use regex::Regex;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Issue {
    UnknownField {
        path: String,
        field: String,
    },
    MissingField {
        path: String,
        field: String,
    },
    WrongType {
        path: String,
        expected: Vec<&'static str>,
    },
    UnknownVariant {
        path: String,
        options: Vec<String>,
    },
    BadPattern {
        path: String,
    },
    OutOfRange {
        path: String,
        min: Option<f64>,
        max: Option<f64>,
    },
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, actual: &str) -> bool {
    expected == actual || (expected == "number" && actual == "integer")
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Every issue of `value` against `schema`, whose `$ref`s point into `root`.
pub fn check(root: &Value, schema: &Value, value: &Value, path: &str, out: &mut Vec<Issue>) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        if let Some(resolved) = target.strip_prefix('#').and_then(|p| root.pointer(p)) {
            check(root, resolved, value, path, out);
        }
        return;
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = schema.get(key).and_then(Value::as_array) {
            branch(root, branches, value, path, out);
            return;
        }
    }
    if let Some(types) = schema.get("type") {
        let expected: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let actual = kind(value);
        if !expected.is_empty() && !expected.iter().any(|t| type_matches(t, actual)) {
            out.push(Issue::WrongType {
                path: path.to_string(),
                expected: expected
                    .iter()
                    .filter(|t| **t != "null")
                    .map(|t| static_name(t))
                    .collect(),
            });
            return;
        }
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        out.push(Issue::UnknownVariant {
            path: path.to_string(),
            options: vec![c.as_str().map_or_else(|| c.to_string(), str::to_string)],
        });
        return;
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        out.push(Issue::UnknownVariant {
            path: path.to_string(),
            options: options
                .iter()
                .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_string))
                .collect(),
        });
        return;
    }
    if let (Some(pattern), Value::String(s)) =
        (schema.get("pattern").and_then(Value::as_str), value)
        && Regex::new(pattern).is_ok_and(|re| !re.is_match(s))
    {
        out.push(Issue::BadPattern {
            path: path.to_string(),
        });
    }
    if let Some(n) = value.as_f64() {
        let min = schema.get("minimum").and_then(Value::as_f64);
        let max = schema.get("maximum").and_then(Value::as_f64);
        if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
            out.push(Issue::OutOfRange {
                path: path.to_string(),
                min,
                max,
            });
        }
    }
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (key, child) in map {
                let child_path = format!("{path}/{}", escape(key));
                match (
                    props.and_then(|p| p.get(key)),
                    schema.get("additionalProperties"),
                ) {
                    (Some(s), _) => check(root, s, child, &child_path, out),
                    (None, Some(Value::Bool(false))) => out.push(Issue::UnknownField {
                        path: child_path,
                        field: key.clone(),
                    }),
                    (None, Some(s @ Value::Object(_))) => check(root, s, child, &child_path, out),
                    (None, _) => {}
                }
            }
            for field in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(field) = field.as_str()
                    && !map.contains_key(field)
                {
                    out.push(Issue::MissingField {
                        path: path.to_string(),
                        field: field.to_string(),
                    });
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, child) in items.iter().enumerate() {
                    check(root, item, child, &format!("{path}/{i}"), out);
                }
            }
        }
        _ => {}
    }
}

/// `schema` with its `$ref`s followed and, for an optional field, its
/// non-null branch taken: the schema that describes a mapping or list.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut schema = schema;
    for _ in 0..16 {
        if let Some(target) = schema.get("$ref").and_then(Value::as_str)
            && let Some(resolved) = target.strip_prefix('#').and_then(|p| root.pointer(p))
        {
            schema = resolved;
            continue;
        }
        let branches = ["anyOf", "oneOf"]
            .iter()
            .find_map(|k| schema.get(*k).and_then(Value::as_array));
        match branches.and_then(|b| {
            b.iter()
                .find(|b| b.get("type") != Some(&Value::from("null")))
        }) {
            Some(b) => schema = b,
            None => break,
        }
    }
    schema
}

/// The field names the mapping at `path` (a JSON pointer into `value`)
/// may hold, as `root` describes it; empty when it is not a mapping.
#[must_use]
pub fn fields_at(root: &Value, value: &Value, path: &str) -> Vec<String> {
    schema_at(root, value, path)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The schema of the node at `path` (a JSON pointer into `value`), with
/// its `$ref`s followed and an optional field's `null` branch left aside.
#[must_use]
pub fn schema_at<'a>(root: &'a Value, value: &Value, path: &str) -> Option<&'a Value> {
    let mut schema = resolve(root, root);
    let mut value = value;
    for segment in path.split('/').skip(1) {
        let key = segment.replace("~1", "/").replace("~0", "~");
        let next = match value {
            Value::Array(items) => key
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i))
                .zip(schema.get("items")),
            Value::Object(map) => map.get(&key).zip(
                schema
                    .get("properties")
                    .and_then(|p| p.get(&key))
                    .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object())),
            ),
            _ => None,
        };
        let (child, child_schema) = next?;
        value = child;
        schema = resolve(root, child_schema);
    }
    Some(schema)
}

/// `anyOf` / `oneOf`: fine when a branch accepts the value; otherwise the
/// problem of the branch meant for it (not the `null` of an optional
/// field), or the list of allowed constants.
fn branch(root: &Value, branches: &[Value], value: &Value, path: &str, out: &mut Vec<Issue>) {
    let mut results = Vec::new();
    for b in branches {
        let mut issues = Vec::new();
        check(root, b, value, path, &mut issues);
        if issues.is_empty() {
            return;
        }
        results.push(issues);
    }
    let all_constants = results.iter().all(|r| {
        r.len() == 1 && matches!(&r[0], Issue::UnknownVariant { path: p, .. } if p == path)
    });
    if all_constants {
        let options = results
            .iter()
            .flat_map(|r| match &r[0] {
                Issue::UnknownVariant { options, .. } => options.clone(),
                _ => Vec::new(),
            })
            .collect();
        out.push(Issue::UnknownVariant {
            path: path.to_string(),
            options,
        });
        return;
    }
    let null_only = |r: &Vec<Issue>| {
        r.len() == 1
            && matches!(&r[0], Issue::WrongType { path: p, expected } if p == path && expected.is_empty())
    };
    if let Some(best) = results.into_iter().find(|r| !null_only(r)) {
        out.extend(best);
    }
}

fn static_name(t: &str) -> &'static str {
    match t {
        "integer" => "integer",
        "number" => "number",
        "string" => "string",
        "boolean" => "boolean",
        "array" => "array",
        "object" => "object",
        _ => "null",
    }
}

#[cfg(test)]
mod tests {
    use super::{Issue, check};

    #[test]
    fn reports_each_kind_of_problem_at_its_path() {
        let root = crate::schema::runbook();
        let doc = serde_json::json!({
            "version": 1, "name": "x",
            "steps": [
                {"id": "a", "comand": "true", "timeout": "5x", "retries": "twice", "on_failure": "retry"},
                {"title": "no id"}
            ]
        });
        let mut issues = Vec::new();
        check(&root, &root, &doc, "", &mut issues);
        let paths: Vec<String> = issues
            .iter()
            .map(|i| match i {
                Issue::UnknownField { path, .. } => format!("unknown {path}"),
                Issue::MissingField { path, field } => format!("missing {path}/{field}"),
                Issue::WrongType { path, .. } => format!("type {path}"),
                Issue::UnknownVariant { path, options } => {
                    format!("variant {path} {}", options.join(","))
                }
                Issue::BadPattern { path } => format!("pattern {path}"),
                Issue::OutOfRange { path, .. } => format!("range {path}"),
            })
            .collect();
        assert_eq!(
            paths,
            [
                "unknown /steps/0/comand",
                "variant /steps/0/on_failure abort,continue,pause",
                "type /steps/0/retries",
                "pattern /steps/0/timeout",
                "missing /steps/1/id",
            ]
        );
    }
}
