//! JSON Schema generated from the loader's own types, so it cannot drift.

use crate::load::{RawInventory, RawRunbook};

#[must_use]
pub fn runbook() -> serde_json::Value {
    with_id(schemars::schema_for!(RawRunbook), "runbook")
}

#[must_use]
pub fn inventory() -> serde_json::Value {
    with_id(schemars::schema_for!(RawInventory), "inventory")
}

/// Either document, for editors that map one schema to every YAML file.
#[must_use]
pub fn combined() -> serde_json::Value {
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "runbook or inventory",
        "anyOf": [runbook(), inventory()],
    })
}

fn with_id(schema: schemars::Schema, kind: &str) -> serde_json::Value {
    let mut value = schema.to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.insert("$id".into(), format!("urn:runbook:schema:{kind}:1").into());
    }
    value
}
